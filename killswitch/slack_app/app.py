"""The Bolt app: `/killswitch` commands and the confirmation buttons.

Every handler acks first (Slack allows 3 s; the ack never waits on a provider), then works
in Bolt's thread pool: plan, confirm when the blast radius or the verb asks for it, run the
`contain` flow in this warm process, narrate it in a thread, and post the final report.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from killswitch import containment, launch, progress
from killswitch.containment import Request, refuse
from killswitch.errors import ConfigurationError, KillSwitchError, RefusedError
from killswitch.guards import resolve_agent
from killswitch.models import VerdictStatus
from killswitch.runtime import Runtime
from killswitch.slack_app import blocks
from killswitch.slack_app.access import Access
from killswitch.slack_app.command import MUTATING, USAGE, Parsed, SlashCommand, UsageError, parse
from killswitch.slack_app.thread import Board, Thread

log = logging.getLogger(__name__)


class ConfirmationRefusedError(RefusedError):
    code = "confirmation-refused"
    remediation = "Only the requester (or, under the two-person rule, a second on-call) confirms."


@dataclass(frozen=True, slots=True)
class Pending:
    """A mutating command waiting for its button."""

    id: str
    parsed: Parsed
    user_id: str
    channel_id: str
    thread_ts: str | None
    expires: float


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
            listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="slack"),
        )
        self.app.command("/killswitch")(self.on_command)
        self.app.action("killswitch_confirm")(self.on_confirm)
        self.app.action("killswitch_cancel")(self.on_cancel)

    def request(self, parsed: Parsed, user_id: str, channel_id: str, **kw: Any) -> Request:
        return Request(
            agent_id=parsed.agent_id or "-",
            reason=parsed.reason or parsed.verb,
            actor=f"slack:{user_id}",
            trigger=f"slack:{channel_id}",
            **kw,
        )

    def refused(
        self, error: RefusedError, parsed: Parsed, user_id: str, channel_id: str, action: str
    ) -> str:
        refuse(self.runtime, self.request(parsed, user_id, channel_id), error, action)
        return f":no_entry: {error.message}\n_{error.remediation}_"

    def on_command(self, ack: Ack, body: dict[str, Any]) -> None:
        command = SlashCommand.model_validate(body)
        user, channel = command.user_id, command.channel_id
        try:
            parsed = parse(command.text)
        except RefusedError as exc:
            raw = Parsed(
                command.text.split()[0] if command.text.split() else "help",
                (command.text.split() + ["", ""])[1][:64],
            )
            text = self.refused(exc, raw, user, channel, "slack-command")
            ack(text=text + ("\n" + USAGE if isinstance(exc, UsageError) else ""))
            return
        if parsed.verb == "help":
            ack(text=USAGE)
            return
        if parsed.verb == "status":
            ack(text=self.status(parsed.agent_id))
            return
        try:
            if parsed.verb in MUTATING:
                self.access.check(user, channel)
            resolve_agent(
                self.runtime.inventory, parsed.agent_id, self.runtime.settings.protected_agents
            )
        except RefusedError as exc:
            ack(text=self.refused(exc, parsed, user, channel, parsed.verb))
            return
        run_id = uuid.uuid4().hex
        ack(text=f"`{parsed.verb} {parsed.agent_id}` accepted (run `{run_id[:12]}`)")
        if parsed.verb == "dry-run":
            self.dry_run(parsed, user, channel)
            return
        thread = Thread(self.client, channel)
        thread.start(
            f"{parsed.verb} {parsed.agent_id} requested by {user}",
            blocks.request(parsed.verb, parsed.agent_id, user, parsed.reason, run_id),
        )
        why = self.needs_confirmation(parsed, user, channel)
        if why:
            self.ask(parsed, user, channel, thread, why)
            return
        self.run(parsed, user, channel, thread, run_id)

    def needs_confirmation(self, parsed: Parsed, user: str, channel: str) -> str:
        if parsed.verb == "restore":
            return "a restore gives the agent its credentials back"
        request = self.request(parsed, user, channel, mode="dry-run")
        try:
            plan = containment.prepare(self.runtime, request)
        except KillSwitchError:
            return ""  # the run itself will refuse or fail, loudly
        if len(plan.credentials) > self.config.confirm_over_credentials:
            return (
                f"it would contain {len(plan.credentials)} credentials (more than "
                f"{self.config.confirm_over_credentials})"
            )
        return ""

    def ask(self, parsed: Parsed, user: str, channel: str, thread: Thread, why: str) -> None:
        pending = Pending(
            uuid.uuid4().hex,
            parsed,
            user,
            channel,
            thread.ts,
            time.monotonic() + self.config.confirmation_ttl_s,
        )
        with self._lock:
            self.pending[pending.id] = pending
        thread.reply(
            f"confirm {parsed.verb} {parsed.agent_id}?",
            blocks.confirm(
                parsed.verb, parsed.agent_id, why, pending.id, user, self.config.two_person_rule
            ),
        )

    def on_confirm(self, ack: Ack, body: dict[str, Any]) -> None:
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
        if self.config.two_person_rule:
            allowed = clicker != pending.user_id and self.access.is_oncall(clicker)
        else:
            allowed = clicker == pending.user_id
        if not allowed:
            error = ConfirmationRefusedError(
                f"<@{clicker}> may not confirm {pending.parsed.verb} of {pending.parsed.agent_id}"
            )
            thread.whisper(
                clicker,
                self.refused(
                    error, pending.parsed, clicker, channel, f"confirm-{pending.parsed.verb}"
                ),
            )
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
        self.run(
            pending.parsed, pending.user_id, channel, thread, uuid.uuid4().hex, confirmed_by=clicker
        )

    def on_cancel(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        clicker = str(body["user"]["id"])
        with self._lock:
            pending = self.pending.get(str(body["actions"][0]["value"]))
            if pending and (clicker == pending.user_id or self.access.is_oncall(clicker)):
                self.pending.pop(pending.id, None)
            else:
                pending = None
        if pending is not None:
            thread = Thread(self.client, pending.channel_id, pending.thread_ts)
            thread.reply("cancelled", [blocks.section(f"cancelled by <@{clicker}>")])

    def run(
        self,
        parsed: Parsed,
        user: str,
        channel: str,
        thread: Thread,
        run_id: str,
        confirmed_by: str = "",
    ) -> None:
        """The flow in this warm process; if Prefect is unreachable, break-glass — said so."""
        request = self.request(parsed, user, channel, mode="flow", run_id=run_id)
        board = Board(thread, run_id)
        with progress.listening(board):
            try:
                if parsed.verb == "restore":
                    self.finish_restore(thread, request)
                    return
                try:
                    report = launch.contain(self.runtime, request)
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
                    request = self.request(parsed, user, channel, mode="break-glass", run_id=run_id)
                    report = launch.contain(self.runtime, request)
            except KillSwitchError as exc:
                thread.reply(
                    f"failed: {exc.message}",
                    [
                        blocks.section(
                            f":rotating_light: {exc.message} {self.config.oncall_mention}\n"
                            f"_{exc.remediation}_"
                        )
                    ],
                )
                return
            finally:
                board.close()
        counts = ", ".join(f"{report.count(s)} {s.value}" for s in VerdictStatus)
        thread.reply(
            f"{'PROVEN' if report.ok else 'NOT PROVEN'}: {counts}",
            blocks.report(report, self.config.oncall_mention),
        )

    def finish_restore(self, thread: Thread, request: Request) -> None:
        report = launch.restore(self.runtime, request)
        thread.reply("restored" if report.ok else "restore incomplete", blocks.restored(report))

    def dry_run(self, parsed: Parsed, user: str, channel: str) -> None:
        request = self.request(parsed, user, channel, mode="dry-run")
        try:
            report = launch.contain(self.runtime, request)
        except KillSwitchError as exc:
            Thread(self.client, channel).whisper(user, f":no_entry: {exc.message}")
            return
        plan = blocks.plan(report.plan)
        Thread(self.client, channel).whisper(user, "dry run: nothing was changed", plan)

    def status(self, agent_id: str) -> str:
        """Current state, the last runs and the last verdicts, from inventory and ledger."""
        agent = self.runtime.inventory.get_agent(agent_id)
        if agent is None:
            return f":grey_question: `{agent_id}` is not in the inventory"
        runs, verdicts = [], {}
        for row in self.runtime.ledger.rows(agent=agent_id):
            if (
                row["action"] in ("contain", "restore", "decommission")
                and row["outcome"] != "started"
            ):
                runs.append(f"{row['ts'][:19]} {row['action']} {row['outcome']} by {row['actor']}")
            elif row["action"] == "probe":
                verdicts[f"{row['provider']} {row['credential']}"] = row["outcome"]
        lines = [f"*{agent.id}* — owner {agent.owner}, status *{agent.status.value}*"]
        lines += [f"• {line}" for line in runs[-5:]] or ["• no runs yet"]
        if verdicts:
            tally: dict[str, int] = {}
            for outcome in verdicts.values():
                tally[outcome] = tally.get(outcome, 0) + 1
            lines.append("last verdicts: " + ", ".join(f"{n} {o}" for o, n in tally.items()))
        return "\n".join(lines)
