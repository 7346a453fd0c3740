"""The sweep's policy, one stage per run at most: notify the owner → grace period →
contain (proven by probes) → second grace period → destroy. Grace starts only once a notice
was delivered; every decision is ledgered; protected identities are only reported."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from killswitch import progress
from killswitch.containment import Request
from killswitch.errors import KillSwitchError
from killswitch.ledger import Entry
from killswitch.models import VerdictStatus
from killswitch.runtime import Runtime
from killswitch.sightings import Case, Sightings
from killswitch.sweep.classify import Category, Finding
from killswitch.sweep.models import Contain, Step, SweepRequest

SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
MAX_LINES = 30  # per Slack notice; the rest is one command away
AGENT_LEVEL = (Category.ZOMBIE, Category.EXPIRED)


class Notifier:
    """Tells owners about findings: a Slack DM when the owner is a Slack user id, else a
    message in the hygiene channel naming the owner (slack-sdk `chat.postMessage`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.channel = runtime.settings.sweep.notify_channel
        token = runtime.settings.slack_app.bot_token
        self.client = None
        if token is not None:
            from slack_sdk import WebClient

            self.client = WebClient(
                token=token.get_secret_value(), base_url=runtime.settings.slack.base_url
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
    """The sweep's decisions for one run, with the ledger entries they leave."""

    def __init__(
        self,
        runtime: Runtime,
        request: SweepRequest,
        contain: Contain,
        dry_run: bool,
        sightings: Sightings,
    ) -> None:
        self.runtime = runtime
        self.request = request
        self.contain = contain
        self.dry_run = dry_run
        self.sightings = sightings
        self.config = runtime.settings.sweep
        self.now = datetime.now(UTC)
        self.notifier = Notifier(runtime)

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
                steps.append(
                    self._step(
                        f"protected:{finding.nhi.key}",
                        "protected",
                        finding,
                        "protected identity: reported, never acted on",
                    )
                )
                continue
            leading = next(
                (
                    c
                    for c in finding.categories
                    if c in AGENT_LEVEL
                    and self.config.actions[c] in ("contain", "destroy")
                    and finding.agent_id
                ),
                None,
            )
            if leading is not None:
                agent_cases.setdefault(f"{leading.value}:{finding.agent_id}", (leading, []))[
                    1
                ].append(finding)
            elif any(self.config.actions[c] != "report" for c in finding.categories):
                notices.setdefault(finding.owner, []).append(finding)
            else:
                steps.append(self._step(f"report:{finding.nhi.key}", "report", finding, "reported"))
        for key, (category, found) in agent_cases.items():
            steps += self._agent_case(key, category, found)
        for case in self.sightings.cases():
            scoped = not self.request.agents or case.agent_id in self.request.agents
            if scoped and case.key not in agent_cases and not case.key.startswith("notify:"):
                steps += self._lingering(case)
        for owner, found in notices.items():
            steps += self._notify_findings(owner, found)
        return steps

    def _step(self, case: str, action: str, finding: Finding, detail: str, ok: bool = True) -> Step:
        step = Step(case, action, finding.agent_id, finding.category.value, detail, ok)
        self.write(
            f"sweep.{action}",
            ("would-" if self.dry_run else "") + ("ok" if ok else "failed"),
            finding.agent_id,
            provider=finding.nhi.provider,
            credential=finding.nhi.ref,
            kind=finding.nhi.kind,
            categories=[c.value for c in finding.categories],
            owasp=list(finding.owasp),
            score=finding.score,
            detail=detail,
        )
        return step

    def _record(self, step: Step) -> Step:
        self.write(
            f"sweep.{step.action}",
            ("would-" if self.dry_run else "") + ("ok" if step.ok else "failed"),
            step.agent_id,
            case=step.case,
            category=step.category,
            detail=step.detail,
            containment_run=step.containment_run,
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
        lines = [_line(f) for f in fresh]
        headline = f"killswitch sweep: {len(fresh)} credential(s) need attention"
        key = f"notify:{owner or '-'}"
        if self.dry_run:
            return [
                self._record(
                    Step(
                        key,
                        "notify",
                        "",
                        fresh[0].category.value,
                        f"would tell {owner or 'the hygiene channel'} about {len(fresh)}",
                    )
                )
            ]
        problem = self.notifier.send(owner, lines, headline)
        if not problem:
            for f in fresh:
                self.sightings.open_case(f"notify:{f.nhi.key}", f.category.value, f.agent_id)
                self.sightings.update_case(f"notify:{f.nhi.key}", notified_at=self.now)
        return [
            self._record(
                Step(
                    key,
                    "notify",
                    "",
                    fresh[0].category.value,
                    problem or f"told {owner or 'the hygiene channel'} about {len(fresh)}",
                    ok=not problem,
                )
            )
        ]

    def _agent_case(self, key: str, category: Category, found: Sequence[Finding]) -> list[Step]:
        """notify → (grace) → contain → (grace) → destroy, one stage per run at most."""
        agent_id = found[0].agent_id
        action = self.config.actions[category]
        case = self.sightings.case(key)
        if case is None or case.notified_at is None:
            deadline = self.now + timedelta(seconds=self.config.notify_grace_s)
            if self.dry_run:
                return [
                    self._record(
                        Step(
                            key,
                            "notify",
                            agent_id,
                            category.value,
                            f"would tell the owner; contain {len(found)} after grace",
                        )
                    )
                ]
            owner = found[0].owner
            lines = [_line(f) for f in found]
            headline = (
                f"killswitch sweep: agent {agent_id} is {category.value}; its {len(found)} "
                f"working credential(s) will be contained after {deadline:%Y-%m-%d %H:%M} UTC"
                + (" and destroyed after a second grace period" if action == "destroy" else "")
            )
            problem = self.notifier.send(owner, lines, headline)
            if problem:
                return [
                    self._record(Step(key, "notify", agent_id, category.value, problem, ok=False))
                ]
            self.sightings.open_case(key, category.value, agent_id)
            self.sightings.update_case(key, notified_at=self.now, contain_after=deadline)
            return [
                self._record(
                    Step(
                        key,
                        "notify",
                        agent_id,
                        category.value,
                        f"owner told; contain after {deadline.isoformat()}",
                    )
                )
            ]
        return self._advance(case, action, pending=len(found))

    def _lingering(self, case: Case) -> list[Step]:
        """An open agent case whose findings are gone: contained (destroy may be due), or
        somebody else dealt with it before the grace period ended."""
        category = Category(case.category)
        action = self.config.actions[category]
        if case.contained_at is None:
            if not self.dry_run:
                self.sightings.update_case(case.key, closed_at=self.now)
            return [
                self._record(
                    Step(
                        case.key,
                        "close",
                        case.agent_id,
                        case.category,
                        "nothing of it works any more: case closed",
                    )
                )
            ]
        return self._advance(case, action, pending=0)

    def _advance(self, case: Case, action: str, *, pending: int) -> list[Step]:
        category = case.category
        if case.contained_at is None:
            if case.contain_after is not None and self.now < case.contain_after:
                return [
                    self._record(
                        Step(
                            case.key,
                            "wait",
                            case.agent_id,
                            category,
                            f"grace period: contain after {case.contain_after.isoformat()}",
                        )
                    )
                ]
            return [self._run(case, "contain", pending)]
        if action != "destroy":  # the policy changed since it was contained
            if not self.dry_run:
                self.sightings.update_case(case.key, closed_at=self.now)
            return [
                self._record(
                    Step(case.key, "close", case.agent_id, category, "contained; policy ends there")
                )
            ]
        if case.destroy_after is not None and self.now < case.destroy_after:
            return [
                self._record(
                    Step(
                        case.key,
                        "wait",
                        case.agent_id,
                        category,
                        f"contained; destroy after {case.destroy_after.isoformat()}",
                    )
                )
            ]
        return [self._run(case, "destroy", pending)]

    def _run(self, case: Case, stage: str, pending: int) -> Step:
        if self.dry_run:
            return self._record(
                Step(
                    case.key,
                    stage,
                    case.agent_id,
                    case.category,
                    f"would {stage} agent {case.agent_id}",
                )
            )
        request = Request(
            agent_id=case.agent_id,
            reason=f"zombie sweep: agent {case.agent_id} is {case.category}"
            + (f" ({pending} working credential(s))" if pending else ""),
            actor=self.request.actor,
            trigger="sweep",
            verb="decommission" if stage == "destroy" else "contain",
        )
        try:
            report = self.contain(request)
        except KillSwitchError as exc:
            return self._record(
                Step(
                    case.key,
                    stage,
                    case.agent_id,
                    case.category,
                    f"{exc.code}: {exc.message}",
                    ok=False,
                    containment_run=request.run_id,
                )
            )
        if report.ok:
            if stage == "contain" and self.config.actions[Category(case.category)] == "destroy":
                self.sightings.update_case(
                    case.key,
                    contained_at=self.now,
                    destroy_after=self.now + timedelta(seconds=self.config.destroy_grace_s),
                )
            elif stage == "contain":  # the policy ends here: the case is done
                self.sightings.update_case(case.key, contained_at=self.now, closed_at=self.now)
            else:
                self.sightings.update_case(case.key, destroyed_at=self.now, closed_at=self.now)
        counts = ", ".join(f"{report.count(s)} {s.value}" for s in VerdictStatus if report.count(s))
        detail = ("proven: " if report.ok else "NOT PROVEN: ") + (counts or "nothing to do")
        return self._record(
            Step(
                case.key,
                stage,
                case.agent_id,
                case.category,
                detail,
                ok=report.ok,
                containment_run=request.run_id,
            )
        )


def _line(finding: Finding) -> str:
    nhi = finding.nhi
    return (
        f"[{finding.score}] {finding.category.value} — {nhi.kind} {nhi.ref}"
        + (f" (agent {', '.join(finding.agent_ids)})" if finding.agent_ids else "")
        + f": {finding.reasons[0]} · {finding.owasp[0]}"
    )
