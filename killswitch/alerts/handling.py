"""What the kill switch does with an authenticated alert: record it, drop its copies, find
its playbook and its agents, pass the guard rails, and then contain (in this warm process,
as a Prefect flow), ask the on-call with a button, or only tell the incident channel.

Each step is in the ledger under the alert's own id: the alert (never its secrets), the
playbook that matched, the decision per agent, the run it started. A containment goes the
one way every trigger goes — authorize, plan (kept), run — and is narrated in the incident
channel like a Slack-started run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from killswitch import pipeline
from killswitch.alerts import fingerprints as prints
from killswitch.alerts.attribution import Attribution, attribute
from killswitch.alerts.decisions import (
    AgentDecision,
    Outcome,
    alert_run,
    decide,
    described,
    trigger,
)
from killswitch.alerts.guard import Dedup, SourceRate, StormBreaker
from killswitch.alerts.models import Alert
from killswitch.alerts.playbooks import Book, Loaded
from killswitch.alerts.refusals import AlertRefusedError
from killswitch.alerts.sources.enriching import enriched
from killswitch.errors import ConfigurationError, KillSwitchError, RefusedError
from killswitch.models import AgentStatus, ContainmentReport
from killswitch.recorder import Recorder
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime

if TYPE_CHECKING:
    from killswitch.slack_app.app import SlackCommands

log = logging.getLogger(__name__)
RESUME_ACTION = "killswitch_resume_alerts"


class RateLimitedError(AlertRefusedError):
    code = "alert-rate-limited"
    status = 429
    remediation = "The source sent more alerts than `alerts.guards.rate_per_minute`; it retries."


class AlertDesk:
    """Decides and starts; the receiver calls it once per authenticated alert."""

    def __init__(
        self,
        runtime: Runtime,
        book: Book,
        *,
        slack: SlackCommands | None = None,
        workers: int = 8,
    ) -> None:
        self.runtime = runtime
        self.book = book
        self.slack = slack
        config = runtime.settings.alerts
        self.config = config
        self.dedup = Dedup(runtime.inventory, config.guards.dedup_window_s)
        self.breaker = StormBreaker(
            runtime.inventory, config.guards.storm_max_agents, config.guards.storm_window_s
        )
        self.rate = SourceRate(config.guards.rate_per_minute)
        allowed = runtime.settings.slack_app.allowed_channels
        self.channel = config.incident_channel or (allowed[0] if allowed else "C0INCIDENTS")
        self.fingerprints = prints.opened(runtime.settings, runtime.inventory)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alert-run")
        self.runs: dict[str, Future[ContainmentReport | None]] = {}
        self.run_wall_s: dict[str, float] = {}  # submitted → returned (the benchmark reads it)
        self._lock = threading.Lock()
        if slack is not None:
            slack.app.action(RESUME_ACTION)(self.on_resume)

    async def __call__(self, alert: Alert) -> dict[str, Any]:
        outcome = await run_in_threadpool(self.handle, alert)
        return outcome.as_dict()

    def _recorder(self, alert: Alert, agent_id: str = "-") -> Recorder:
        request = Request(
            agent_id=agent_id,
            reason=alert.summary[:200] or alert.event,
            actor=f"alert:{alert.source}",
            trigger=trigger(alert),
            run_id=alert_run(alert),
        )
        return Recorder(self.runtime, request)

    def handle(self, alert: Alert) -> Outcome:
        """Ledger, dedup, match, attribute, guard, act — never raises for an alert's content."""
        ref = alert_run(alert)
        record = self._recorder(alert)
        if not self.rate.admit(alert.source):
            raise RateLimitedError(
                f"more than {self.config.guards.rate_per_minute} {alert.source} alerts a minute"
            )
        record.write("alert", "received", **described(alert))
        seen = self.dedup.first(alert.dedup_key)
        if not seen.first:
            record.write("alert", "duplicate", dedup_key=alert.dedup_key, runs=list(seen.run_ids))
            return Outcome(
                ref,
                "duplicate",
                note="a copy of an alert already handled",
                linked_runs=seen.run_ids,
            )
        matched = self.book.match(alert)
        if matched is None:
            record.write("alert", "unmatched", playbooks=len(self.book.entries))
            self.tell(
                f":grey_question: alert {alert.source}/{alert.event}: no playbook "
                f"matches — told only. {alert.summary}"
            )
            return Outcome(ref, "notify", note="no playbook matches this alert")
        tracing = time.monotonic()
        alert, fetched = enriched(alert, self.config)
        if fetched:
            record.write("alert", "enriched", note=fetched)
        attribution = attribute(self.runtime, alert, self.fingerprints)
        traced_s = time.monotonic() - tracing
        record.write(
            "alert",
            "matched",
            playbook=matched.playbook.name,
            where=matched.where,
            do=matched.playbook.do,
            agents=list(attribution.agents),
            traced=list(attribution.traced),
            untraced=list(attribution.untraced),
            leaked_probe_material=attribution.leaked_keys,
        )
        if not attribution.agents:
            record.write("alert", "unattributed", tried=list(attribution.untraced))
            self.tell(
                f":mag: alert {alert.source}/{alert.event} ({matched.playbook.name}) could not "
                "be traced to an agent — nothing was contained. Tried:\n• "
                + "\n• ".join(attribution.untraced or ["nothing to trace"])
            )
            return Outcome(
                ref,
                "unattributed",
                matched.playbook.name,
                note="no agent found: " + "; ".join(attribution.untraced),
            )
        outcome = Outcome(ref, matched.playbook.do, matched.playbook.name, attribution_s=traced_s)
        for agent_id in attribution.agents:
            decided = self._one(alert, matched, attribution, agent_id)
            outcome.agents.append(decided)
            if decided.run_id:
                self.dedup.link(alert.dedup_key, decided.run_id)
        return outcome

    def _one(
        self, alert: Alert, matched: Loaded, attribution: Attribution, agent_id: str
    ) -> AgentDecision:
        playbook = matched.playbook
        request = Request(
            agent_id=agent_id,
            reason=f"alert {alert.source}/{alert.event} ({playbook.name}): {alert.summary}"[:480],
            actor=f"alert:{alert.source}",
            trigger=trigger(alert),
            mode=Mode.FLOW,
        )
        record = self._recorder(alert, agent_id)
        try:
            agent = pipeline.authorize(self.runtime, request)  # ledgers its refusals
        except RefusedError as exc:
            record.write("alert-decision", "refused", code=exc.code, message=exc.message)
            return AgentDecision(agent_id, "refused", exc.message)
        if agent.status is not AgentStatus.ACTIVE:
            record.write("alert-decision", "already-contained", status=agent.status.value)
            return AgentDecision(
                agent_id, "already-contained", f"the agent is {agent.status.value}"
            )
        do, why = decide(playbook, agent, len(attribution.agents))
        if do == "notify":
            record.write("alert-decision", "notify", why=why)
            self.tell(
                f":bell: alert {alert.source}/{alert.event} for `{agent_id}` ({why}): "
                f"{alert.summary}"
            )
            return AgentDecision(agent_id, "notify", why)
        if do == "contain":
            admission = self.breaker.admit(agent_id, request.run_id)
            if not admission.contain:
                do = "held"
                why = (
                    f"storm breaker open: {admission.contained} agents contained by alerts "
                    f"in {self.config.guards.storm_window_s}s"
                )
                if admission.tell:
                    self.tell_storm(admission.contained)
        # The leaked value is the probe material from the plan on: the baselines taken while
        # it is made (killswitch.controls) and the probes after containment use the same.
        leaked = attribution.secrets_for(agent_id)
        runtime = self.runtime.with_secrets(leaked) if leaked is not None else self.runtime
        planning = time.monotonic()
        try:
            plan = pipeline.plan(runtime, request, agent)
        except KillSwitchError as exc:
            record.write("alert-decision", "failed", code=exc.code, message=exc.message)
            self.tell(f":rotating_light: alert for `{agent_id}`: planning failed: {exc.message}")
            return AgentDecision(agent_id, "failed", exc.message)
        record.write(
            "alert-decision", do, why=why, run=request.run_id, credentials=len(plan.credentials)
        )
        plan_s = time.monotonic() - planning
        if do == "contain":
            self.start(request, runtime, alert, plan_s)
            return AgentDecision(agent_id, "contain", why, request.run_id, plan_s)
        self.ask(request, alert, why)
        return AgentDecision(agent_id, do, why, request.run_id, plan_s)

    def start(self, request: Request, runtime: Runtime, alert: Alert, plan_s: float = 0.0) -> None:
        """Run the kept plan in the background: a flow in this process (`runtime`: with the
        leaked values as the first secret source); narrated in the incident channel."""
        tags = (f"alert-source:{alert.source}", f"alert:{alert_run(alert)[:24]}")
        submitted = time.monotonic()
        future = self.pool.submit(self._run, runtime, request, alert, tags, plan_s)
        future.add_done_callback(
            lambda _: self.run_wall_s.__setitem__(request.run_id, time.monotonic() - submitted)
        )
        with self._lock:
            self.runs[request.run_id] = future

    def _run(
        self,
        runtime: Runtime,
        request: Request,
        alert: Alert,
        tags: tuple[str, ...],
        plan_s: float,
    ) -> ContainmentReport | None:
        try:
            if self.slack is not None:
                from killswitch.slack_app.thread import Thread

                thread = Thread(self.slack.client, self.channel)
                thread.start(
                    f"alert {alert.source}/{alert.event}: containing {request.agent_id}",
                    _alert_blocks(alert, request),
                )
                return self.slack.run(request, thread, runtime=runtime, tags=tags, plan_s=plan_s)
            try:
                return pipeline.run(runtime, request.run_id, tags=tags, plan_s=plan_s)
            except ConfigurationError as exc:
                log.warning("%s — alert run %s goes break-glass", exc.message, request.run_id)
                return pipeline.run(runtime, request.run_id, mode=Mode.BREAK_GLASS)
        except Exception:
            log.exception("alert run %s failed", request.run_id)
            raise

    def ask(self, request: Request, alert: Alert, why: str) -> None:
        """A button for the on-call in the incident channel, bound to the kept plan."""
        if self.slack is None:
            log.warning(
                "alert for %s held for a human (%s): Slack is not configured", request.agent_id, why
            )
            return
        self.slack.ask_for_alert(
            request, self.channel, f"alert {alert.source}/{alert.event}: {why}"
        )

    def tell(self, text: str) -> None:
        if self.slack is not None:
            self.slack.tell(self.channel, text)
        else:
            log.warning("%s", text)

    def tell_storm(self, contained: int) -> None:
        text = (
            f":rotating_light: *storm breaker open*: {contained} agents were contained by "
            f"alerts in the last {self.config.guards.storm_window_s}s. Every further alert "
            "now waits for a human (a button each)."
        )
        Recorder(self.runtime, Request("-", "storm breaker", "killswitch", "alerts")).write(
            "alert-breaker", "open", contained=contained
        )
        if self.slack is not None:
            self.slack.tell(self.channel, text, resume=RESUME_ACTION)
        else:
            log.warning("%s", text)

    def on_resume(self, ack: Callable[..., Any], body: Mapping[str, Any]) -> None:
        """The resume button: an on-call closes the breaker again."""
        ack()
        assert self.slack is not None  # noqa: S101  (registered only with Slack)
        clicker = str(body["user"]["id"])
        channel = str(body.get("channel", {}).get("id") or self.channel)
        request = Request(
            "-", "resume automatic containment", f"slack:{clicker}", f"slack:{channel}"
        )
        try:
            self.slack.access.check(clicker, channel)
        except RefusedError as exc:
            self.slack.refused(exc, request, "alert-breaker-resume")
            return
        state = self.breaker.resume(f"slack:{clicker}")
        Recorder(self.runtime, request).write("alert-breaker", "resumed", held=state.held)
        self.slack.tell(channel, f":white_check_mark: <@{clicker}> resumed automatic containment")

    def wait(self, run_id: str, timeout: float | None = None) -> ContainmentReport | None:
        """The report of a run this desk started (tests, `demo --via-alert`)."""
        with self._lock:
            future = self.runs[run_id]
        return future.result(timeout)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _alert_blocks(alert: Alert, request: Request) -> list[dict[str, Any]]:
    from killswitch.slack_app import blocks

    return [
        blocks.section(
            f":rotating_light: *alert* `{alert.source}/{alert.event}` → containing "
            f"`{request.agent_id}` (run `{request.run_id[:12]}`)\n{alert.summary}"
        )
    ]
