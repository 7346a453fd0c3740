"""`/killswitch contain a,b,c reason…` (or `owner:TEAM`, `credential:REF`): a fleet from Slack,
as the CLI's `contain --agents` does it — select, plan once, post the blast radius, ask for the
button above the guard, contain over the workers (or, with none, in this process, said so),
and narrate it per agent in the thread as each finishes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from killswitch import pipeline, progress
from killswitch.errors import KillSwitchError, RefusedError
from killswitch.fleet.report import FleetReport, blast_radius
from killswitch.fleet.selection import select
from killswitch.models import Plan
from killswitch.orchestrator import NoWorkersError, OrchestratorUnreachableError
from killswitch.request import Mode, Request
from killswitch.slack_app import blocks
from killswitch.slack_app.command import Parsed
from killswitch.slack_app.thread import LiveReply, Thread

if TYPE_CHECKING:
    from killswitch.slack_app.app import SlackCommands


class FleetBoard(LiveReply):
    """One thread reply, updated in place as agents start and finish (throttled)."""

    def __init__(
        self, thread: Thread, fleet_id: str, plans: Sequence[Plan], interval_s: float = 0.5
    ) -> None:
        super().__init__(thread, interval_s)
        self.fleet_id = fleet_id
        self.agents = {p.run_id: p.agent.id for p in plans}
        self.states = dict.fromkeys(self.agents.values(), "waiting")
        self.headline = f"containing {len(plans)} agents"

    def __call__(self, event: progress.Event) -> None:
        run_id = event.data.get("run_id")
        with self._lock:
            if event.kind == "fleet" and run_id == self.fleet_id:
                self.headline = event.message
            elif event.kind == "agent" and run_id in self.agents:
                agent = self.agents[run_id]
                state = str(event.data.get("state") or "running")
                # "agent-7: PROVEN (22/22 dead, on worker-2)" → "PROVEN (22/22 dead, …)"
                said = event.message.removeprefix(f"{agent}: ")
                self.states[agent] = "running" if state == "running" else said
            else:
                return
            self._push(now=False)

    def shown(self) -> tuple[str, blocks.Blocks]:
        done = sum(s not in ("waiting", "running") for s in self.states.values())
        text = f"progress: {done}/{len(self.states)} agents done"
        return text, blocks.fleet_board(self.headline, self.states, len(self.states))


class FleetCommands:
    """The fleet's side of the slash command, through the app's thread, access and buttons."""

    def __init__(self, commands: SlackCommands) -> None:
        self.commands = commands

    def start(self, parsed: Parsed, request: Request, user: str, channel: str) -> None:
        """Select and plan (after the ack: a credential's holders take provider calls), then
        run it, ask for the button, or — a dry run — show the blast radius to `user` only."""
        fleet = parsed.fleet
        assert fleet is not None  # noqa: S101  (on_command routes fleets only)
        commands, runtime = self.commands, self.commands.runtime
        dry_run = request.mode is Mode.DRY_RUN
        thread = Thread(commands.client, channel)
        if not dry_run:
            thread.start(
                f"contain fleet {fleet.label} requested by {user}",
                blocks.request("contain fleet", fleet.label, user, parsed.reason, request.run_id),
            )
        try:
            chosen = select(
                runtime, agents=fleet.agents, owner=fleet.owner, credential=fleet.credential
            )
        except RefusedError as exc:
            commands.refused(exc, request, str(request.workflow))
            self.refused(thread, user, exc)
            return
        try:
            fleet_id, plans = pipeline.plan_fleet(runtime, chosen.agents, request)
        except RefusedError as exc:  # ledgered as each agent was authorized
            self.refused(thread, user, exc)
            return
        except KillSwitchError as exc:
            if thread.ts is None:
                thread.whisper(user, f":no_entry: {exc.message}")
            else:
                commands.failed(thread, exc)
            return
        shown = blocks.fleet_plan(len(plans), blast_radius(plans), chosen.skipped)
        if dry_run:
            thread.whisper(user, "dry run: nothing was changed", shown)
            return
        thread.reply(f"blast radius: {len(plans)} agents", shown)
        why = self.over_guard(plans)
        if why:
            commands.ask_fleet(request, parsed, thread, why, fleet_id, tuple(plans))
            return
        self.run(fleet_id, plans, thread)

    @staticmethod
    def refused(thread: Thread, user: str, exc: RefusedError) -> None:
        """In the thread (a dry run has none: to the user only); nothing was planned."""
        said = f":no_entry: {exc.message}\n_{exc.remediation}_"
        if thread.ts is None:
            thread.whisper(user, said)
        else:
            thread.reply(f"refused: {exc.message}", [blocks.section(said)])

    def over_guard(self, plans: Sequence[Plan]) -> str:
        """Why the fleet needs a button: more agents than `scale.confirm_over_agents`, or more
        credentials than `slack_app.confirm_over_credentials` ('' when neither)."""
        settings = self.commands.runtime.settings
        agents, credentials = len(plans), sum(len(p.credentials) for p in plans)
        if agents > settings.scale.confirm_over_agents:
            return (
                f"it would contain {agents} agents (more than {settings.scale.confirm_over_agents})"
            )
        if credentials > settings.slack_app.confirm_over_credentials:
            return (
                f"it would contain {credentials} credentials (more than "
                f"{settings.slack_app.confirm_over_credentials})"
            )
        return ""

    def run(self, fleet_id: str, plans: Sequence[Plan], thread: Thread) -> FleetReport | None:
        """Over the workers; with no orchestrator or no worker, in this process, said so."""
        runtime = self.commands.runtime
        board = FleetBoard(thread, fleet_id, plans)
        with progress.listening(board):
            try:
                try:
                    report = pipeline.run_fleet(runtime, fleet_id, plans, mode=Mode.FLOW)
                except (OrchestratorUnreachableError, NoWorkersError) as exc:
                    # Only for want of an orchestrator or of workers: a missing provider limit
                    # (or any other error) is reported, not bypassed.
                    thread.reply(
                        "no workers: containing here",
                        [
                            blocks.section(
                                f":warning: {exc.message} — containing the fleet in this "
                                "process (break-glass: same plans, same revokers, same ledger)"
                            )
                        ],
                    )
                    report = pipeline.run_fleet(runtime, fleet_id, plans, mode=Mode.BREAK_GLASS)
            except KillSwitchError as exc:
                self.commands.failed(thread, exc)
                return None
            finally:
                board.close()
        report = replace(report, blast=blast_radius(plans))
        thread.reply(
            f"{'FLEET PROVEN' if report.ok else 'FLEET NOT PROVEN'}: "
            f"{report.count('dead')} dead of {sum(len(a.rows) for a in report.agents)}",
            blocks.fleet_report(report, self.commands.config.oncall_mention),
        )
        return report
