"""`/killswitch status AGENT`: what an on-call engineer asks first, from inventory and ledger."""

from __future__ import annotations

from killswitch.runtime import Runtime


def said(runtime: Runtime, agent_id: str) -> str:
    """Current state, the last runs and the last verdicts, from inventory and ledger."""
    agent = runtime.inventory.get_agent(agent_id)
    if agent is None:
        return f":grey_question: `{agent_id}` is not in the inventory"
    runs, verdicts = [], {}
    for row in runtime.ledger.rows(agent=agent_id):
        if row["action"] in ("contain", "restore", "decommission") and row["outcome"] != "started":
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
