"""The sweep's policy, one stage per run at most: notify the owner → grace period →
contain (proven by probes) → second grace period → destroy. Grace starts only once a notice
was delivered; every decision is ledgered; protected identities are only reported."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from killswitch import progress
from killswitch.errors import KillSwitchError
from killswitch.ledger import Entry
from killswitch.models import VerdictStatus
from killswitch.request import Request, Workflow
from killswitch.runtime import Runtime
from killswitch.settings import Settings
from killswitch.sightings import Case, Sightings
from killswitch.sweep.classify import Category, Finding
from killswitch.sweep.models import Contain, Step, SweepRequest

SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
MAX_LINES = 30  # per Slack notice; the rest is one command away
AGENT_LEVEL = (Category.ZOMBIE, Category.EXPIRED)


class Notifier:
    """Tells owners about findings: a Slack DM when the owner is a Slack user id, else a
    message in the hygiene channel naming the owner (slack-sdk `chat.postMessage`)."""

    def __init__(self, settings: Settings) -> None:
        self.channel = settings.sweep.notify_channel
        token = settings.slack_app.bot_token
        self.client = None
        if token is not None:
            from slack_sdk import WebClient

            self.client = WebClient(
                token=token.get_secret_value(), base_url=settings.slack_app.api_url
            )

    def send(self, owner: str, lines: Sequence[str], headline: str) -> str:
        """Deliver one notice; returns '' when delivered, else why not."""
        if self.client is None:
            return "slack_app.bot_token is not set: nobody can be told"
        channel = owner if SLACK_USER.match(owner) else self.channel
        who = f"<@{owner}>" if SLACK_USER.match(owner) else (owner or "nobody (no owner)")
        shown = [f"• {line}" for line in lines[:MAX_LINES]]
        if len(lines) > MAX_LINES:
            shown.append(f"… and {len(lines) - MAX_LINES} more: `killswitch sweep --dry-run`")
        text = f"{headline}\nOwner: {who}\n" + "\n".join(shown)
        from slack_sdk.errors import SlackApiError

        try:
            self.client.chat_postMessage(channel=channel, text=text, unfurl_links=False)
        except SlackApiError as exc:
            return f"Slack refused the notice: {exc.response.get('error', 'error')}"
        except OSError as exc:
            return f"Slack unreachable: {exc}"
        return ""


class Acting:
    """The sweep's decisions for one run, each a Step with the ledger entry it leaves."""

    def __init__(
        self,
        runtime: Runtime,
        request: SweepRequest,
        contain: Contain,
        dry_run: bool,
        sightings: Sightings,
        *,
        now: datetime,
    ) -> None:
        self.runtime = runtime
        self.request = request
        self.contain = contain
        self.dry_run = dry_run
        self.sightings = sightings
        self.config = runtime.settings.sweep
        self.now = now
        self.notifier = Notifier(runtime.settings)

    def write(self, action: str, outcome: str, agent: str = "", **detail: object) -> None:
        self.runtime.ledger.append(
            Entry(
                run_id=self.request.run_id,
                actor=self.request.actor,
                trigger=self.request.trigger,
                agent=agent,
                action=action,
                outcome=outcome,
                provider=str(detail.pop("provider", "")),
                credential=str(detail.pop("credential", "")),
                detail=detail,
            )
        )

    def act(self, findings: Sequence[Finding]) -> list[Step]:
        steps: list[Step] = []
        agent_cases: dict[str, tuple[Category, list[Finding]]] = {}
        notices: dict[str, list[Finding]] = {}
        for finding in findings:
            if finding.protected:
                steps.append(self._finding_step(finding, "protected", "reported, never acted on"))
                continue
            leading = next((c for c in finding.categories if self._acts_on_agent(c, finding)), None)
            if leading is not None:
                key = f"{leading.value}:{finding.agent_id}"
                agent_cases.setdefault(key, (leading, []))[1].append(finding)
            elif any(self.config.actions[c] != "report" for c in finding.categories):
                notices.setdefault(finding.owner, []).append(finding)
            else:
                steps.append(self._finding_step(finding, "report", "reported"))
        for key, (category, found) in agent_cases.items():
            steps.append(self._agent_case(key, category, found))
        for case in self.sightings.cases():
            scoped = not self.request.agents or case.agent_id in self.request.agents
            if scoped and case.key not in agent_cases and not case.key.startswith("notify:"):
                steps.append(self._lingering(case))
        for owner, found in notices.items():
            steps += self._notify_findings(owner, found)
        return steps

    def _acts_on_agent(self, category: Category, finding: Finding) -> bool:
        wanted = self.config.actions[category] in ("contain", "destroy")
        return category in AGENT_LEVEL and wanted and bool(finding.agent_id)

    def _finding_step(self, finding: Finding, action: str, detail: str) -> Step:
        step = Step(
            f"{action}:{finding.nhi.key}", action, finding.agent_id, finding.category.value, detail
        )
        return self._record(step, finding)

    def _say(
        self,
        case: Case | str,
        action: str,
        detail: str,
        *,
        agent: str = "",
        category: str = "",
        ok: bool = True,
        run: str = "",
    ) -> Step:
        if isinstance(case, Case):
            key, agent, category = case.key, case.agent_id, case.category
        else:
            key = case
        return self._record(Step(key, action, agent, category, detail, ok, run))

    def _record(self, step: Step, finding: Finding | None = None) -> Step:
        about: dict[str, object] = {}
        if finding is not None:
            about = {
                "provider": finding.nhi.provider,
                "credential": finding.nhi.ref,
                "kind": finding.nhi.kind,
                "categories": [c.value for c in finding.categories],
                "owasp": list(finding.owasp),
                "score": finding.score,
            }
        self.write(
            f"sweep.{step.action}",
            ("would-" if self.dry_run else "") + ("ok" if step.ok else "failed"),
            step.agent_id,
            case=step.case,
            category=step.category,
            detail=step.detail,
            containment_run=step.containment_run,
            **about,
        )
        progress.emit(
            "sweep", f"{step.action} {step.case}: {step.detail}", run_id=self.request.run_id
        )
        return step

    def _notify_findings(self, owner: str, found: Sequence[Finding]) -> list[Step]:
        """One notice per owner listing what is new since the last notice; each NHI once."""
        fresh = [f for f in found if self.sightings.case(f"notify:{f.nhi.key}") is None]
        if not fresh:
            return []
        key, category = f"notify:{owner or '-'}", fresh[0].category.value
        whom = owner or "the hygiene channel"
        if self.dry_run:
            return [
                self._say(key, "notify", f"would tell {whom} about {len(fresh)}", category=category)
            ]
        headline = f"killswitch sweep: {len(fresh)} credential(s) need attention"
        problem = self.notifier.send(owner, [_line(f) for f in fresh], headline)
        if not problem:
            for f in fresh:
                self.sightings.open_case(f"notify:{f.nhi.key}", f.category.value, f.agent_id)
                self.sightings.update_case(f"notify:{f.nhi.key}", notified_at=self.now)
        detail = problem or f"told {whom} about {len(fresh)}"
        return [self._say(key, "notify", detail, category=category, ok=not problem)]

    def _agent_case(self, key: str, category: Category, found: Sequence[Finding]) -> Step:
        """notify → (grace) → contain → (grace) → destroy, one stage per run at most."""
        agent_id = found[0].agent_id
        action = self.config.actions[category]
        case = self.sightings.case(key)
        if case is not None and case.notified_at is not None:
            return self._advance(case, action, pending=len(found))

        def said(detail: str, ok: bool = True) -> Step:
            return self._say(key, "notify", detail, agent=agent_id, category=category.value, ok=ok)

        deadline = self.now + timedelta(seconds=self.config.notify_grace_s)
        if self.dry_run:
            detail = f"would tell the owner; contain {len(found)} after grace"
            return said(detail)
        headline = (
            f"killswitch sweep: agent {agent_id} is {category.value}; its {len(found)} "
            f"working credential(s) will be contained after {deadline:%Y-%m-%d %H:%M} UTC"
            + (" and destroyed after a second grace period" if action == "destroy" else "")
        )
        problem = self.notifier.send(found[0].owner, [_line(f) for f in found], headline)
        if problem:
            return said(problem, ok=False)
        self.sightings.open_case(key, category.value, agent_id)
        self.sightings.update_case(key, notified_at=self.now, contain_after=deadline)
        return said(f"owner told; contain after {deadline.isoformat()}")

    def _lingering(self, case: Case) -> Step:
        """An open agent case whose findings are gone: contained (destroy may be due), or
        somebody else dealt with it before the grace period ended."""
        if case.contained_at is not None:
            return self._advance(case, self.config.actions[Category(case.category)], pending=0)
        if not self.dry_run:
            self.sightings.update_case(case.key, closed_at=self.now)
        return self._say(case, "close", "nothing of it works any more: case closed")

    def _advance(self, case: Case, action: str, *, pending: int) -> Step:
        if case.contained_at is None:
            if case.contain_after is not None and self.now < case.contain_after:
                detail = f"grace period: contain after {case.contain_after.isoformat()}"
                return self._say(case, "wait", detail)
            return self._run(case, "contain", pending)
        if action != "destroy":  # the policy changed since it was contained
            if not self.dry_run:
                self.sightings.update_case(case.key, closed_at=self.now)
            return self._say(case, "close", "contained; the policy ends there")
        if case.destroy_after is not None and self.now < case.destroy_after:
            return self._say(
                case, "wait", f"contained; destroy after {case.destroy_after.isoformat()}"
            )
        return self._run(case, "destroy", pending)

    def _run(self, case: Case, stage: str, pending: int) -> Step:
        if self.dry_run:
            return self._say(case, stage, f"would {stage} agent {case.agent_id}")
        request = Request(
            agent_id=case.agent_id,
            reason=f"zombie sweep: agent {case.agent_id} is {case.category}"
            + (f" ({pending} working credential(s))" if pending else ""),
            actor=self.request.actor,
            trigger="sweep",
            workflow=Workflow.DECOMMISSION if stage == "destroy" else Workflow.CONTAIN,
        )
        try:
            report = self.contain(request)
        except KillSwitchError as exc:
            detail = f"{exc.code}: {exc.message}"
            return self._say(case, stage, detail, ok=False, run=request.run_id)
        if report.ok and stage == "destroy":
            self.sightings.update_case(case.key, destroyed_at=self.now, closed_at=self.now)
        elif report.ok and self.config.actions[Category(case.category)] == "destroy":
            destroy_after = self.now + timedelta(seconds=self.config.destroy_grace_s)
            self.sightings.update_case(case.key, contained_at=self.now, destroy_after=destroy_after)
        elif report.ok:  # containment is where this category's policy ends
            self.sightings.update_case(case.key, contained_at=self.now, closed_at=self.now)
        counts = ", ".join(f"{report.count(s)} {s.value}" for s in VerdictStatus if report.count(s))
        detail = ("proven: " if report.ok else "NOT PROVEN: ") + (counts or "nothing to do")
        return self._say(case, stage, detail, ok=report.ok, run=request.run_id)


def _line(finding: Finding) -> str:
    nhi = finding.nhi
    return (
        f"[{finding.score}] {finding.category.value} — {nhi.kind} {nhi.ref}"
        + (f" (agent {', '.join(finding.agent_ids)})" if finding.agent_ids else "")
        + f": {finding.reasons[0]} · {finding.owasp[0]}"
    )
