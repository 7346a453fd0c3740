"""A re-run after a killed containment stands on the killed run's baseline (issue 17, kill -9).

A run killed after its first revocation leaves credentials revoked but not proven. Its
re-run's own baseline is rejected, and a rejection proves a kill only when the same probe
succeeded just before *our* revocation of it: the killed run took that baseline, and the
ledger keeps what it saw (one `baseline` entry per provider per run, credential keys and
answers only, killswitch/recorder.py). A credential blocked in this run carries it over
from an earlier run R of the same agent when all of these hold:

- R's baseline is the newest one of this credential (same provider) that is not a
  rejection (re-runs killed in turn saw it rejected too), and it says `accepted` — or
  `alternative`: then it is the alternative probe that must be rejected now;
- R then started to revoke it: a `contain` of R's on the credential (or its principal)
  that went through, or an undo record of R's for one in the inventory (written before the
  call is sent: a run killed mid-call leaves one);
- no restore of the agent started after R's baseline (it would make the credential live
  again, and a later rejection somebody else's);
- R's baseline is at most `CARRY_S` old.

The verdict then follows the usual rules: an allow-listed rejection, held over the settle
window. Limits: what happened at the provider between R's baseline and now, other than R's
revocation, is not seen (a console re-enable then a revoke, the probe material rotated in
the secret store); `CARRY_S` bounds that window. The ledger is read once per provider per
run, and only when some control is blocked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from killswitch.models import Credential, Outcome, Verb
from killswitch.runtime import Runtime
from killswitch.verdicts import Answer, Control

log = logging.getLogger(__name__)
# An hour: a re-run comes minutes after a kill; older than this, too much may have happened
# at the provider since, unseen.
CARRY_S = 3600.0
ACTION = "baseline"
TAKEN = "taken"
MIXED = "mixed"  # one credential's materials answered differently (never carried)
CARRIES = (Answer.ACCEPTED.value, Answer.ALTERNATIVE.value)


def summary(controls: Sequence[Control]) -> str:
    """One credential's controls as the ledger records them: the answer all its materials
    gave (`none` without material), else `mixed`."""
    answers = {c.answer.value for c in controls}
    if not answers:
        return Answer.NONE.value
    return answers.pop() if len(answers) == 1 else MIXED


@dataclass(frozen=True, slots=True)
class Carried:
    """An earlier run's baseline that stands for a blocked one of this run."""

    run_id: str
    ts: str
    alternative: bool

    def control(self) -> Control:
        """The control it makes: not blocked, its `said` naming where the proof comes from."""
        probe = "its alternative probe authenticated" if self.alternative else "authenticated"
        return Control(
            f"baseline carried from run {self.run_id[:12]} (killed or earlier): {probe} at "
            f"{self.ts}, before that run revoked it; rejected again now",
            alternative=self.alternative,
            answer=Answer.REJECTED,
        )


def carry(
    runtime: Runtime,
    *,
    run_id: str,
    agent_id: str,
    provider: str,
    credentials: Sequence[Credential],
    controls: Mapping[str, tuple[Control, ...]],
) -> dict[str, tuple[Control, ...]]:
    """`controls`, each blocked one replaced by a carried one where the rule above allows.
    A ledger or inventory that cannot be read changes nothing (the verdicts stay unproven)."""
    blocked = [c for c in credentials if any(x.blocked for x in controls.get(c.key, ()))]
    if not blocked:
        return dict(controls)
    try:
        found = _earlier(runtime, run_id, agent_id, provider, blocked)
    except Exception:
        log.exception("could not read earlier baselines of %s (%s)", agent_id, provider)
        return dict(controls)
    carried = dict(controls)
    for key, proof in found.items():
        carried[key] = tuple(proof.control() if x.blocked else x for x in controls[key])
    return carried


def _earlier(
    runtime: Runtime, run_id: str, agent_id: str, provider: str, blocked: Sequence[Credential]
) -> dict[str, Carried]:
    rows = [r for r in runtime.ledger.rows(agent=agent_id) if r["run_id"] != run_id]
    restored = max((int(r["seq"]) for r in rows if _restoring(r)), default=0)
    baselines = [
        r
        for r in reversed(rows)  # newest first
        if r["action"] == ACTION and r["outcome"] == TAKEN and r["provider"] == provider
    ]
    contained = {
        (r["run_id"], r["credential"])
        for r in rows
        if r["provider"] == provider
        and _detail(r).get("verb") == Verb.CONTAIN.value
        and r["outcome"] == Outcome.DONE.value
    }
    undo: list[tuple[str, str]] | None = None

    def revoked(run: str, credential: Credential) -> bool:
        nonlocal undo
        targets = {t for t in (credential.ref, credential.principal) if t}
        if any((run, t) in contained for t in targets):
            return True
        if undo is None:  # read only when the ledger does not show it
            undo = [
                (u.run_id, u.action.target)
                for u in runtime.inventory.pending_undo(agent_id)
                if u.action.provider == provider and u.action.verb is Verb.CONTAIN
            ]
        return any(run == r and t in targets for r, t in undo)

    found: dict[str, Carried] = {}
    now = datetime.now(UTC)
    for credential in blocked:
        for row in baselines:
            answers = _detail(row).get("controls")
            answer = answers.get(credential.key) if isinstance(answers, Mapping) else None
            if answer is None or answer == Answer.REJECTED.value:
                continue
            taken = datetime.fromisoformat(str(row["ts"])).astimezone(UTC)
            if (
                answer in CARRIES
                and int(row["seq"]) > restored
                and (now - taken).total_seconds() <= CARRY_S
                and revoked(str(row["run_id"]), credential)
            ):
                found[credential.key] = Carried(
                    str(row["run_id"]),
                    taken.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    alternative=answer == Answer.ALTERNATIVE.value,
                )
            break  # the newest baseline that was no rejection decides
    return found


def _restoring(row: Mapping[str, Any]) -> bool:
    """A restore that started (a refused one changed nothing)."""
    action = str(row["action"])
    return (action == "restore" and row["outcome"] != "refused") or action.startswith("restore:")


def _detail(row: Mapping[str, Any]) -> Mapping[str, Any]:
    detail = row.get("detail")
    return detail if isinstance(detail, Mapping) else {}


def vanished(
    runtime: Runtime, agent_id: str, provider: str, found: Sequence[Credential]
) -> tuple[Credential, ...]:
    """Credentials of the agent's last plan at `provider` that discovery no longer finds and
    that an earlier run which never finished (killed, or stopped by its ledger) started to
    revoke at most `CARRY_S` ago, with no restore since: a revoked Vault token or lease is
    gone from the provider's listings once killed. The re-run names them and probes them
    again; without this, a run killed between such a revocation and its probe left the
    credential proven by nobody. A run that finished proved (or reported) its own. () on
    the common path, where nothing is missing."""
    from killswitch.plans import Plans

    seen = {c.key for c in found}
    last = Plans(runtime.inventory).last_known(agent_id, provider)
    missing = [c for c in last if c.key not in seen]
    if not missing:
        return ()
    try:
        rows = list(runtime.ledger.rows(agent=agent_id))
    except Exception:
        log.exception("could not read the ledger of %s (%s)", agent_id, provider)
        return ()
    restored = max((int(r["seq"]) for r in rows if _restoring(r)), default=0)
    opened: dict[str, str] = {}  # run id -> its workflow, for runs started and not closed
    for r in rows:
        action, outcome = str(r["action"]), str(r["outcome"])
        if action in ("contain", "decommission"):
            if outcome == "started":
                opened[str(r["run_id"])] = action
            elif opened.get(str(r["run_id"])) == action:
                del opened[str(r["run_id"])]
    if not opened:
        return ()
    now = datetime.now(UTC)
    revoked = {
        str(r["credential"])
        for r in rows
        if str(r["run_id"]) in opened
        and r["provider"] == provider
        and int(r["seq"]) > restored
        and _detail(r).get("verb") == Verb.CONTAIN.value
        and r["outcome"] == Outcome.DONE.value
        and (now - datetime.fromisoformat(str(r["ts"])).astimezone(UTC)).total_seconds() <= CARRY_S
    }
    # A run stopped before it could ledger the result (killed, its ledger locked) left the
    # intent it recorded in the inventory before the call.
    revoked |= {
        u.action.target
        for u in runtime.inventory.pending_undo(agent_id)
        if u.run_id in opened and u.action.provider == provider and u.action.verb is Verb.CONTAIN
    }
    return tuple(c for c in missing if revoked & {t for t in (c.ref, c.principal) if t})
