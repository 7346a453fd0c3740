"""What a `/killswitch` slash command says, parsed once at the edge."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from killswitch.errors import RefusedError
from killswitch.guards import validate_agent_id

USAGE = """*`/killswitch` — the kill switch for AI-agent credentials*
• `/killswitch contain AGENT reason…` — kill every credential of AGENT, prove each one dead
• `/killswitch contain a,b,c reason…` (or `owner:TEAM`, `credential:REF`) — a fleet: one plan, \
its blast radius, a button above the guard, progress per agent
• `/killswitch dry-run AGENT` — the plan (blast radius), changing nothing
• `/killswitch status AGENT` — current state, last runs, last verdicts
• `/killswitch restore AGENT reason…` — undo a containment (false positive; asks to confirm)
• `/killswitch help` — this text"""

# Slack's own limit for a slash command's text is 4,000 characters; ours is tighter, and a
# reason has its own (guards.MAX_REASON), both checked before anything is acked or posted.
MAX_TEXT = 1000
SUBCOMMANDS = ("contain", "dry-run", "status", "restore", "help")
MUTATING = frozenset({"contain", "restore"})
NEEDS_REASON = MUTATING
FLEET_SUBCOMMANDS = frozenset({"contain", "dry-run"})


class UsageError(RefusedError):
    code = "usage"
    remediation = "`/killswitch help` lists the commands."


class SlashCommand(BaseModel):
    """Slack's slash-command payload (form fields). Slack adds fields over time, so unknown
    ones are ignored here rather than refused; the ones used are required."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    command: str = Field(max_length=64)
    text: str = Field("", max_length=MAX_TEXT)
    user_id: str = Field(min_length=1, max_length=32)
    user_name: str = ""
    channel_id: str = Field(min_length=1, max_length=32)
    team_id: str = ""


@dataclass(frozen=True, slots=True)
class Fleet:
    """Which agents a fleet command names: a list, a team's, or a leaked credential's holders
    (the CLI's --agents, --owner, --credential)."""

    agents: str | None = None
    owner: str | None = None
    credential: str | None = None

    @property
    def label(self) -> str:
        """As Slack shows it: `&`, `<`, `>` escaped (a `<!channel>` in a team's name is text)."""
        if self.agents is not None:
            count = len(self.agents.split(","))
            text = f"{count} agents" if count > 3 else self.agents
        elif self.owner is not None:
            text = f"owner:{self.owner}"
        else:
            text = f"credential:{self.credential}"
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True, slots=True)
class Parsed:
    subcommand: str
    agent_id: str = ""
    reason: str = ""
    fleet: Fleet | None = None

    @property
    def target(self) -> str:
        """What the command acts on, as a person reads it: the agent, or the fleet."""
        return self.fleet.label if self.fleet is not None else self.agent_id


def claimed(text: str) -> Parsed:
    """What a command that could not be parsed (or verified) claims to be, cut to size, for
    the ledger line of its refusal: never trusted, never acted on."""
    words = text.split()
    return Parsed(words[0][:32] if words else "help", words[1][:64] if len(words) > 1 else "")


def parse(text: str) -> Parsed:
    """`contain agent-7 leaked key` → Parsed("contain", "agent-7", "leaked key")."""
    words = text.split()
    if not words or words[0].lower() == "help":
        return Parsed("help")
    subcommand = words[0].lower()
    if subcommand not in SUBCOMMANDS:
        raise UsageError(f"unknown subcommand {words[0]!r}")
    if len(words) < 2:
        raise UsageError(f"`{subcommand}` needs an agent id")
    reason = " ".join(words[2:])
    if subcommand in NEEDS_REASON and not reason:
        raise UsageError(
            f"`{subcommand}` needs a reason after the agent id (it goes into the ledger)"
        )
    fleet = fleet_of(words[1]) if subcommand in FLEET_SUBCOMMANDS else None
    if fleet is not None:
        return Parsed(subcommand, "", reason, fleet)
    return Parsed(subcommand, validate_agent_id(words[1]), reason)


def fleet_of(target: str) -> Fleet | None:
    """`a,b,c`, `owner:TEAM` or `credential:REF` (None: one agent's id). Every listed id is
    checked like one agent's; a team or a credential is checked when the fleet is selected."""
    kind, _, value = target.partition(":")
    if kind in ("owner", "credential") and value:
        return Fleet(owner=value) if kind == "owner" else Fleet(credential=value)
    if "," not in target:
        return None
    ids = [validate_agent_id(i) for i in target.split(",") if i]
    if not ids:
        raise UsageError("name at least one agent")
    return Fleet(agents=",".join(ids))
