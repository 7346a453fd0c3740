"""The Bolt app: `/killswitch` commands and the confirmation buttons.

Every handler parses and authorizes, acks (Slack allows 3 s; the ack never waits on a
provider), then works in Bolt's thread pool through the one pipeline: plan once, ask for a
button when the blast radius or the subcommand calls for one — the button runs exactly the
plan it was posted with — run the kept plan as a flow in this warm process, narrate it in a
thread, and post the final report.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App
from slack_sdk import WebClient

from killswitch import pipeline, progress, restoration
from killswitch.errors import ConfigurationError, KillSwitchError, RefusedError
from killswitch.models import Agent, ContainmentReport, Plan, VerdictStatus
from killswitch.recorder import refuse
from killswitch.request import Mode, Request, Workflow
from killswitch.runtime import Runtime
from killswitch.slack_app import blocks, status
from killswitch.slack_app.access import Access
from killswitch.slack_app.command import (
    MUTATING,
    USAGE,
    Parsed,
    SlashCommand,
    UsageError,
    claimed,
    parse,
)
from killswitch.slack_app.fleet import FleetCommands
from killswitch.slack_app.thread import Board, Thread

log = logging.getLogger(__name__)


class ConfirmationRefusedError(RefusedError):
    code = "confirmation-refused"
    remediation = "Only the requester (or, under the two-person rule, a second on-call) confirms."


class StateMovedOnError(RefusedError):
    code = "state-moved-on"
    remediation = "Run the command again: it plans (and asks) anew for the agent as it is now."


@dataclass(frozen=True, slots=True)
class Pending:
    """A mutating command waiting for its button: the kept plan's run id (a containment),
    the undo records the restore would reverse, as they were when the button was posted, or
    a fleet's id and kept plans."""

    request: Request
    parsed: Parsed
    channel_id: str
    thread_ts: str | None
    expires: float
    undo_ids: tuple[int, ...] = ()
    fleet: tuple[str, tuple[Plan, ...]] | None = None

    @property
    def id(self) -> str:
        return self.request.run_id


class SlackCommands:
    """The handlers, with the warm runtime they act through."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.config = settings.slack_app
        if self.config.bot_token is None or self.config.signing_secret is None:
            raise ConfigurationError("slack_app.bot_token and slack_app.signing_secret are needed")
        self.client = WebClient(
            token=self.config.bot_token.get_secret_value(), base_url=self.config.api_url
        )
        self.access = Access(self.config, self.client)
        self.pending: dict[str, Pending] = {}
        self._lock = threading.Lock()
        self.app = App(
            signing_secret=self.config.signing_secret.get_secret_value(),
            client=self.client,
            token_verification_enabled=False,
            listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="slack-app"),
        )
        self.app.command("/killswitch")(self.on_command)
        self.app.action("killswitch_confirm")(self.on_confirm)
        self.app.action("killswitch_cancel")(self.on_cancel)
        self.fleets = FleetCommands(self)

    def request(self, parsed: Parsed, user_id: str, channel_id: str) -> Request:
        """The pipeline's request for a parsed command (one run id from here on)."""
        return Request(
            agent_id=parsed.agent_id or "-",
            reason=parsed.reason or parsed.subcommand,
            actor=f"slack:{user_id}",
            trigger=f"slack:{channel_id}",
            mode=Mode.DRY_RUN if parsed.subcommand == "dry-run" else Mode.FLOW,
            workflow=Workflow.RESTORE if parsed.subcommand == "restore" else Workflow.CONTAIN,
        )

    def refused(self, error: RefusedError, request: Request, action: str) -> str:
        refuse(self.runtime, request, error, action)
        return f":no_entry: {error.message}\n_{error.remediation}_"

    def on_command(self, ack: Ack, body: dict[str, Any]) -> None:
        """Parse and authorize, ack, then plan (once) and run or ask for the button."""
        try:
            command = SlashCommand.model_validate(body)
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            error = UsageError(f"malformed slash command ({fields})")
            user = str(body.get("user_id", "?"))[:32] if isinstance(body, dict) else "?"
            ack(text=self.refused(error, self.request(Parsed("help"), user, "?"), "slack-command"))
            return
        user, channel = command.user_id, command.channel_id
        try:
            parsed = parse(command.text)
        except RefusedError as exc:
            raw = claimed(command.text)
            text = self.refused(exc, self.request(raw, user, channel), "slack-command")
            ack(text=text + ("\n" + USAGE if isinstance(exc, UsageError) else ""))
            return
        if parsed.subcommand == "help":
            ack(text=USAGE)
            return
        if parsed.subcommand == "status":
            ack(text=status.said(self.runtime, parsed.agent_id))
            return
        request = self.request(parsed, user, channel)
        try:
            if parsed.subcommand in MUTATING:
                try:
                    self.access.check(user, channel)
                except RefusedError as exc:
                    ack(text=self.refused(exc, request, parsed.subcommand))
                    return
            if parsed.fleet is not None:  # every agent is authorized as the fleet is planned
                ack(text=f"`{parsed.subcommand}` of {parsed.target} accepted (planning the fleet)")
                self.fleets.start(parsed, request, user, channel)
                return
            agent = pipeline.authorize(self.runtime, request)  # ledgers its own refusals
        except RefusedError as exc:
            ack(text=f":no_entry: {exc.message}\n_{exc.remediation}_")
            return
        ack(text=f"`{parsed.subcommand} {parsed.agent_id}` accepted (run `{request.run_id[:12]}`)")
        if parsed.subcommand == "dry-run":
            self.dry_run(request, agent, user, channel)
            return
        thread = Thread(self.client, channel)
        thread.start(
            f"{parsed.subcommand} {parsed.agent_id} requested by {user}",
            blocks.request(parsed.subcommand, parsed.agent_id, user, parsed.reason, request.run_id),
        )
        if parsed.subcommand == "restore":
            self.ask_restore(request, parsed, channel, thread)
            return
        try:
            plan = pipeline.plan(self.runtime, request, agent)
        except KillSwitchError as exc:
            self.failed(thread, exc)
            return
        if len(plan.credentials) > self.config.confirm_over_credentials:
            why = (
                f"it would contain {len(plan.credentials)} credentials (more than "
                f"{self.config.confirm_over_credentials})"
            )
            self.ask(Pending(request, parsed, channel, thread.ts, self._expiry()), thread, why)
            return
        self.run(request, thread)

    def _expiry(self) -> float:
        return time.monotonic() + self.config.confirmation_ttl_s

    def ask_restore(self, request: Request, parsed: Parsed, channel: str, thread: Thread) -> None:
        """A restore gives the agent its credentials back: always a button, bound to the
        changes it would reverse now."""
        try:
            _, records = restoration.pending(self.runtime, request)
        except KillSwitchError as exc:
            self.failed(thread, exc)
            return
        pending = Pending(
            request, parsed, channel, thread.ts, self._expiry(), tuple(r.id for r in records)
        )
        self.ask(pending, thread, "a restore gives the agent its credentials back")

    def ask_fleet(
        self,
        request: Request,
        parsed: Parsed,
        thread: Thread,
        why: str,
        fleet_id: str,
        plans: tuple[Plan, ...],
    ) -> None:
        """A fleet's kept plans wait for the button, as one agent's plan does."""
        pending = Pending(
            request, parsed, thread.channel, thread.ts, self._expiry(), fleet=(fleet_id, plans)
        )
        self.ask(pending, thread, why)

    def ask(self, pending: Pending, thread: Thread, why: str) -> None:
        with self._lock:
            self.pending[pending.id] = pending
        parsed = pending.parsed
        actor = pending.request.actor
        thread.reply(
            f"confirm {parsed.subcommand} {parsed.target}?",
            blocks.confirm(
                parsed.subcommand,
                parsed.target,
                why,
                pending.id,
                "" if actor.startswith("alert:") else actor.removeprefix("slack:"),
                self.config.two_person_rule,
            ),
        )

    def ask_for_alert(self, request: Request, channel: str, why: str) -> None:
        """An alert's kept plan waits for any on-call's button in the incident channel."""
        thread = Thread(self.client, channel)
        thread.start(
            f"alert: contain {request.agent_id}?",
            blocks.request("contain", request.agent_id, "", request.reason, request.run_id),
        )
        parsed = Parsed("contain", request.agent_id, request.reason)
        self.ask(Pending(request, parsed, channel, thread.ts, self._expiry()), thread, why)

    def tell(self, channel: str, text: str, *, resume: str | None = None) -> None:
        """A message to a channel (with a resume button: the alert storm breaker)."""
        Thread(self.client, channel).start(text, blocks.told(text, resume))

    def on_confirm(self, ack: Ack, body: dict[str, Any]) -> None:
        """Run exactly what the button was posted for, once, if the clicker may."""
        ack()
        clicker = str(body["user"]["id"])
        pending_id = str(body["actions"][0]["value"])
        with self._lock:
            pending = self.pending.get(pending_id)
        channel = str(body.get("channel", {}).get("id") or (pending.channel_id if pending else ""))
        thread = Thread(self.client, channel, pending.thread_ts if pending else None)
        if pending is None or time.monotonic() > pending.expires:
            thread.whisper(clicker, "This confirmation has expired or was already used.")
            return
        requester = pending.request.actor.removeprefix("slack:")
        if pending.request.actor.startswith("alert:"):  # an alert asked: any on-call decides
            allowed = self.access.is_oncall(clicker)
        elif self.config.two_person_rule:
            allowed = clicker != requester and self.access.is_oncall(clicker)
        else:
            allowed = clicker == requester
        parsed = pending.parsed
        clicked = replace(pending.request, actor=f"slack:{clicker}", trigger=f"slack:{channel}")
        try:
            self.access.check(clicker, channel)  # the channel rule holds for every click
            if not allowed:
                raise ConfirmationRefusedError(
                    f"<@{clicker}> may not confirm {parsed.subcommand} of {parsed.target}"
                )
            if parsed.subcommand == "restore":
                self.still_the_same(pending)
        except RefusedError as exc:
            thread.whisper(clicker, self.refused(exc, clicked, f"confirm-{parsed.subcommand}"))
            return
        with self._lock:
            if self.pending.pop(pending_id, None) is None:
                return  # a double click: the first one runs
        message_ts = str(body.get("message", {}).get("ts") or "")
        if message_ts:
            thread.update(
                message_ts,
                "confirmed",
                [blocks.section(f":ballot_box_with_check: confirmed by <@{clicker}>")],
            )
        if pending.fleet is not None:
            self.fleets.run(*pending.fleet, thread)
            return
        self.run(pending.request, thread)

    def still_the_same(self, pending: Pending) -> None:
        """Refuse a restore button once the agent's state has moved on since it was posted."""
        now = tuple(r.id for r in self.runtime.inventory.pending_undo(pending.request.agent_id))
        if now != pending.undo_ids:
            raise StateMovedOnError(
                f"{pending.request.agent_id}'s containment changed since this button was posted"
            )

    def on_cancel(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        clicker = str(body["user"]["id"])
        with self._lock:
            pending = self.pending.get(str(body["actions"][0]["value"]))
            requester = pending.request.actor.removeprefix("slack:") if pending else ""
            if pending and (clicker == requester or self.access.is_oncall(clicker)):
                self.pending.pop(pending.id, None)
            else:
                pending = None
        if pending is not None:
            thread = Thread(self.client, pending.channel_id, pending.thread_ts)
            thread.reply("cancelled", [blocks.section(f"cancelled by <@{clicker}>")])

    def failed(self, thread: Thread, exc: KillSwitchError) -> None:
        thread.reply(
            f"failed: {exc.message}",
            [
                blocks.section(
                    f":rotating_light: {exc.message} {self.config.oncall_mention}\n"
                    f"_{exc.remediation}_"
                )
            ],
        )

    def run(
        self,
        request: Request,
        thread: Thread,
        *,
        runtime: Runtime | None = None,
        tags: tuple[str, ...] = (),
        plan_s: float = 0.0,
    ) -> ContainmentReport | None:
        """The kept plan as a flow in this warm process; if Prefect is unreachable, the same
        plan break-glass — said so. `runtime`: this one with more secrets (an alert's)."""
        runtime = runtime or self.runtime
        board = Board(thread, request.run_id)
        with progress.listening(board):
            try:
                if request.workflow is Workflow.RESTORE:
                    self.finish_restore(thread, request)
                    return None
                try:
                    report = pipeline.run(runtime, request.run_id, tags=tags, plan_s=plan_s)
                except ConfigurationError as exc:
                    thread.reply(
                        "orchestrator unreachable",
                        [
                            blocks.section(
                                f":warning: {exc.message} — running break-glass (same plan, same "
                                "revokers, same ledger)"
                            )
                        ],
                    )
                    report = pipeline.run(runtime, request.run_id, mode=Mode.BREAK_GLASS)
            except KillSwitchError as exc:
                self.failed(thread, exc)
                return None
            finally:
                board.close()
        counts = ", ".join(f"{report.count(s)} {s.value}" for s in VerdictStatus)
        thread.reply(
            f"{'PROVEN' if report.ok else 'NOT PROVEN'}: {counts}",
            blocks.report(report, self.config.oncall_mention),
        )
        return report

    def finish_restore(self, thread: Thread, request: Request) -> None:
        try:
            report = pipeline.restore(self.runtime, request)
        except ConfigurationError as exc:
            thread.reply("orchestrator unreachable", [blocks.section(f":warning: {exc.message}")])
            report = pipeline.restore(self.runtime, replace(request, mode=Mode.BREAK_GLASS))
        thread.reply("restored" if report.ok else "restore incomplete", blocks.restored(report))

    def dry_run(self, request: Request, agent: Agent, user: str, channel: str) -> None:
        try:
            plan = pipeline.plan(self.runtime, request, agent)
        except KillSwitchError as exc:
            Thread(self.client, channel).whisper(user, f":no_entry: {exc.message}")
            return
        Thread(self.client, channel).whisper(
            user, "dry run: nothing was changed", blocks.plan(plan)
        )
