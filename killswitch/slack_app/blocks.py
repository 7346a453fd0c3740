"""Block Kit for the thread: the request, the plan, the live board, the final report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from killswitch.fleet.report import NOT_OK, Blast, FleetReport, summary_line
from killswitch.models import ContainmentReport, Plan, RestoreReport, VerdictStatus

Blocks = list[dict[str, Any]]
SECTION_LIMIT = 2900  # Slack caps a section's text at 3000 characters
ICON = {
    VerdictStatus.DEAD: "DEAD",
    VerdictStatus.ALIVE: "ALIVE!",
    VerdictStatus.UNVERIFIED: "unverified",
    VerdictStatus.UNKNOWN: "UNKNOWN!",
}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:SECTION_LIMIT]}]}


def request(subcommand: str, agent_id: str, user_id: str, reason: str, run_id: str) -> Blocks:
    return [
        section(
            f":rotating_light: *{subcommand} `{agent_id}`* requested by "
            f"{f'<@{user_id}>' if user_id else 'an alert'}\n>{reason}"
        ),
        context(f"run `{run_id[:12]}` · progress and the final report in this thread"),
    ]


def plan(plan_: Plan) -> Blocks:
    pending = sum(not a.in_place for a in plan_.actions)
    irreversible = sum(not a.reversible for a in plan_.actions)
    lines = [
        f"*plan* for `{plan_.agent.id}` (owner {plan_.agent.owner}) on *{plan_.target}*: "
        f"{len(plan_.credentials)} credentials across {', '.join(plan_.providers) or 'nothing'}; "
        f"{pending} actions to take, {len(plan_.actions) - pending} already in place"
    ]
    if irreversible:
        lines.append(f":warning: {irreversible} irreversible (revoked for good)")
    lines += [f":shield: protected, never touched: `{p}`" for p in plan_.protected_skipped]
    lines += [f":x: {e}" for e in plan_.errors]
    return [section("\n".join(lines))]


def board(headline: str, states: Mapping[str, Mapping[str, Any]]) -> Blocks:
    """The plan's headline, then one line per provider: containing → probing → n/m dead."""
    lines = [f"*{headline}*"]
    for provider, state in sorted(states.items()):
        phase = state.get("phase", "waiting")
        if phase == "done":
            dead, total = state.get("dead", 0), state.get("total", 0)
            mark = ":white_check_mark:" if dead == total else ":x:"
            lines.append(f"{mark} *{provider}*: {dead}/{total} dead")
        else:
            lines.append(f":hourglass_flowing_sand: *{provider}*: {phase}")
    return [section("\n".join(lines))]


def fleet_plan(agents: int, blast: Sequence[Blast], skipped: Sequence[str]) -> Blocks:
    """The fleet's blast radius: agents × credentials × grants × actions per provider."""
    rows = [("provider", "agents", "credentials", "actions")]
    rows += [(b.provider, str(b.agents), str(b.credentials), str(b.actions)) for b in blast]
    rows.append(
        (
            "total",
            str(agents),
            str(sum(b.credentials for b in blast)),
            str(sum(b.actions for b in blast)),
        )
    )
    blocks = [section(f"*blast radius*: {agents} agents\n```{_table(rows)}```")]
    if skipped:
        blocks.append(context("skipped: " + "; ".join(skipped[:20])))
    return blocks


def fleet_board(headline: str, states: Mapping[str, str], total: int) -> Blocks:
    """How many agents are done, and a line per agent that is running or was not proven."""
    done = [a for a, s in states.items() if s not in ("waiting", "running")]
    proven = sum(states[a].startswith("PROVEN") for a in done)
    lines = [f"*{headline}*", f"{len(done)}/{total} agents done: {proven} proven"]
    running = [a for a, s in states.items() if s == "running"]
    if running:
        lines.append(
            ":hourglass_flowing_sand: running: " + ", ".join(f"`{a}`" for a in running[:15])
        )
    lines += [f":x: `{a}`: {states[a]}" for a in done if not states[a].startswith("PROVEN")][:20]
    return [section("\n".join(lines))]


def fleet_report(report_: FleetReport, mention: str) -> Blocks:
    """One line per agent (verdict counts, where it ran), the evidence of what is not dead."""
    dead = report_.count("dead")
    total = sum(len(a.rows) for a in report_.agents)
    if report_.ok:
        head = f":white_check_mark: *FLEET CONTAINED AND PROVEN* — {dead}/{total} credentials dead"
    else:
        head = (
            f":rotating_light: *FLEET NOT PROVEN* — {summary_line(report_.agents)} {mention} — "
            "re-run the same command (what is contained stays contained)"
        )
    lines = []
    for a in report_.agents:
        mark = ":white_check_mark:" if a.ok else ":x:"
        where = f" on {a.worker}" if a.worker else ""
        lines.append(
            f"{mark} `{a.agent_id}` {a.state}: {a.count('dead')}/{len(a.rows)} dead{where}"
        )
    listing = "\n".join(lines)
    if len(listing) > SECTION_LIMIT - 10:
        listing = listing[: SECTION_LIMIT - 60] + "\n… (`killswitch audit show` has all)"
    blocks = [section(head), section(listing)]
    bad = [r for a in report_.not_proven for r in a.rows if r.verdict in NOT_OK]
    if bad:
        blocks.append(
            section(
                "\n".join(f"• `{r.agent_id}` `{_short(r.ref)}`: {r.evidence}" for r in bad[:10])
            )
        )
    blocks.append(
        context(
            f"fleet `{report_.fleet_id[:12]}` ({report_.mode}) · {report_.elapsed_s:.1f}s · ledger "
            f"{'verified' if report_.ledger_verified else 'NOT VERIFIED'}"
        )
    )
    return blocks


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows
    )


def _short(ref: str, width: int = 34) -> str:
    if ref.startswith("arn:") and ref.count(":") >= 5:
        ref = ref.split(":", 5)[5]
    return ref if len(ref) <= width else "…" + ref[-(width - 1) :]


def report(report_: ContainmentReport, mention: str) -> Blocks:
    counts = ", ".join(f"{report_.count(s)} {s.value}" for s in VerdictStatus)
    done = "DECOMMISSIONED" if report_.workflow == "decommission" else "CONTAINED"
    if report_.ok:
        head = f":white_check_mark: *{done} AND PROVEN* `{report_.agent.id}` — {counts}"
    else:
        head = (
            f":rotating_light: *NOT PROVEN* `{report_.agent.id}` — {counts} {mention} "
            "— read the evidence, re-run (idempotent), contain by hand if it stays alive"
        )
    rows = [("provider", "kind", "credential", "verdict")]
    rows += [
        (c.credential.provider, c.credential.kind, _short(c.credential.ref), ICON[c.verdict.status])
        for c in report_.credentials
    ]
    table = _table(rows)
    if len(table) > SECTION_LIMIT - 10:
        table = table[: SECTION_LIMIT - 60] + "\n… (`killswitch audit show --run` has all)"
    blocks = [section(head), section(f"```{table}```")]
    bad = [
        c
        for c in report_.credentials
        if c.verdict.status in (VerdictStatus.ALIVE, VerdictStatus.UNKNOWN)
    ]
    if bad:
        blocks.append(
            section(
                "\n".join(f"• `{_short(c.credential.ref)}`: {c.verdict.evidence}" for c in bad[:10])
            )
        )
    t = report_.timings
    blocks.append(
        context(
            f"plan {t.plan_s:.2f}s · contain {t.contain_s:.2f}s · verify {t.verify_s:.2f}s · "
            f"total {t.total_s:.2f}s · ledger "
            f"{'verified' if report_.ledger_verified else 'NOT VERIFIED'} · run `{report_.run_id}`"
        )
    )
    return blocks


def restored(report_: RestoreReport) -> Blocks:
    works = sum(v.status is VerdictStatus.ALIVE for _, v in report_.checks)
    head = ":white_check_mark: *RESTORED*" if report_.ok else ":x: *RESTORE INCOMPLETE*"
    lines = [
        f"{head} `{report_.agent.id}`: {len(report_.results)} change(s) reversed, "
        f"{works}/{len(report_.checks)} credentials work again"
    ]
    lines += [f"• not restorable: {message}" for message in report_.refused[:10]]
    return [section("\n".join(lines)), context(f"run `{report_.run_id}`")]


def confirm(
    subcommand: str, agent_id: str, why: str, pending_id: str, user_id: str, second_person: bool
) -> Blocks:
    if not user_id:  # an alert asked: whoever is on call
        who = "an on-call engineer"
    else:
        who = "a second on-call engineer" if second_person else f"<@{user_id}>"
    return [
        section(
            f":warning: *{subcommand} `{agent_id}`* needs a confirmation: {why}.\n"
            f"Only {who} can confirm."
        ),
        {
            "type": "actions",
            "block_id": "killswitch_confirm",
            "elements": [
                {
                    "type": "button",
                    "action_id": "killswitch_confirm",
                    "style": "danger",
                    "text": {"type": "plain_text", "text": f"Confirm {subcommand}"},
                    "value": pending_id,
                },
                {
                    "type": "button",
                    "action_id": "killswitch_cancel",
                    "text": {"type": "plain_text", "text": "Cancel"},
                    "value": pending_id,
                },
            ],
        },
    ]


def told(text: str, resume_action: str | None = None) -> Blocks:
    """A message to a channel; with `resume_action`, a button that resumes (the storm breaker)."""
    message: Blocks = [section(text)]
    if resume_action:
        message.append(
            {
                "type": "actions",
                "block_id": resume_action,
                "elements": [
                    {
                        "type": "button",
                        "action_id": resume_action,
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Resume automatic containment"},
                        "value": "resume",
                    }
                ],
            }
        )
    return message
