"""Actions: each injects one kind of failure, runs the kill switch through it (the CLI, in
subprocesses), and records the invariants it checked and the figures it measured in the lab
(the hypothesis reads them afterwards; `probes.findings` puts them in the journal).

An action raises only when the experiment itself could not be carried out; a broken
invariant is a failed check, so that every invariant of the run is reported."""

from __future__ import annotations

import functools
import json
import resource
import signal
import socket
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from killswitch_chaos import lab
from killswitch_chaos.faults import MixedFaults
from killswitch_chaos.lab import Lab, Ran, only_providers
from killswitch_chaos.verdicts import all_dead, by_provider, entries, keys, plan_shape, retries

F = TypeVar("F", bound=Callable[..., Any])
REASON = "chaos experiment"
MARGIN_S = 2.0  # assembling the report, on top of the deadlines


def recorded(func: F) -> F:
    """An action that crashed is a failed check too (and is re-raised for the journal)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            lab().check(f"{func.__name__} ran", False, f"{type(exc).__name__}: {exc}")
            raise

    return wrapper  # type: ignore[return-value]


def _env(providers: list[str] | None, **extra: Any) -> dict[str, str]:
    env = {k: str(v) for k, v in extra.items()}
    if providers:
        env["KILLSWITCH_PROVIDERS"] = json.dumps(providers)
    return env


def _contain(current: Lab, agent: str, *flags: str, **env: str) -> Ran:
    return current.cli("contain", agent, "--reason", REASON, "--json", *flags, **env)


def _dry_run(current: Lab, agent: str, **env: str) -> dict[str, Any]:
    ran = _contain(current, agent, "--dry-run", **env)
    if ran.code != 0:
        raise RuntimeError(f"dry run of {agent} failed: exit {ran.code}: {ran.stderr[-500:]}")
    shown: dict[str, Any] = ran.json()
    return shown


def _restore_exactly(current: Lab, label: str, agent: str, before: dict[str, Any], **env: str):
    """`restore` ends ok with every credential alive, and discovery then finds exactly what
    it found before the containment (every grant back, nothing more)."""
    restored = current.cli("restore", agent, "--reason", "chaos: false positive", "--json", **env)
    current.check(f"{label}: restore exit 0", restored.code == 0, f"exit {restored.code}")
    try:
        report = restored.json()
    except ValueError:
        current.check(f"{label}: restore report", False, restored.stderr[-300:])
        return
    checks = report.get("checks", [])
    not_alive = [c["ref"] for c in checks if c["verdict"] != "alive"]
    current.check(
        f"{label}: restore proves every credential alive",
        bool(checks) and not not_alive,
        f"{len(checks)} checked, not alive: {not_alive[:5]}",
    )
    # Restore refuses what cannot be undone at the provider (a revoked Slack, GitHub or
    # Vault token, a deleted OpenAI key: "irreversible at the provider"), and says so.
    refused = list(report.get("refused") or [])
    other = [r for r in refused if "irreversible at the provider" not in r]
    current.check(
        f"{label}: restore refused only what is irreversible",
        not other and not report.get("errors"),
        f"refused {other[:4]}, errors {report.get('errors')}",
    )
    irreversible = {r.split()[0] for r in refused if r not in other}
    after = _dry_run(current, agent, **env)
    (had, grants_before), (has, grants_after) = plan_shape(before), plan_shape(after)
    gone = sorted(set(had) - set(has))
    # Every grant back; every credential back but those killed for good at a provider whose
    # revocations restore named irreversible; nothing more.
    exact = (
        grants_after == grants_before
        and set(has) <= set(had)
        and all(c.split(".", 1)[0] in irreversible for c in gone)
    )
    current.check(
        f"{label}: restore returns every grant exactly",
        exact,
        ""
        if exact
        else f"grants before {grants_before} after {grants_after}; credentials gone {gone[:6]}, "
        f"new {sorted(set(has) - set(had))[:6]}",
    )
    current.figures.setdefault("restore", {})[label] = {
        "grants": len(grants_after),
        "credentials_back": len(has),
        "killed_for_good": len(gone),
    }


def _verify(current: Lab, label: str) -> None:
    verified = current.cli("audit", "verify")
    current.check(f"{label}: audit verify holds", verified.code == 0, verified.stdout[-300:])


# -- 30% mixed transient faults ------------------------------------------------------------


@recorded
def contain_under_mixed_faults(
    agents: int = 3, rate: float = 0.3, providers: str | None = None
) -> dict[str, Any]:
    """Fault about `rate` of the requests through every fault proxy (503, throttling, HTML
    503, resets, rotating) while `agents` agents are contained at once; every credential
    must end dead, and the ledger must show the retries."""
    current = lab()
    only = only_providers(providers)
    targets = [current.seed("mixed", only=only) for _ in range(agents)]
    current.agents += targets
    full, not_faulted = current.faultable()
    in_scope = set(only or current.providers())
    proxies = sorted(p for p, behind in full.items() if in_scope & set(behind))
    # A proxy that also carries part of a partly-direct provider is faulted too (its calls
    # through it are faulted; the rest is named below).
    proxies += sorted(
        {p for prov in in_scope & set(not_faulted) for p in current.reach()[prov]["proxies"]}
        - set(proxies)
    )
    faults = MixedFaults(current.proxy_control, proxies, rate).start()
    started = time.monotonic()
    env = _env(only)
    running = [
        (agent, current.spawn("contain", agent, "--reason", REASON, "--json", **env))
        for agent in targets
    ]
    done = [(agent, current.collect(proc, started)) for agent, proc in running]
    seen = faults.stop()
    reports = [all_dead(current, f"contain {agent}", ran, agent) for agent, ran in done]
    rows = entries(current.ledger, [r["run_id"] for r in reports if r])
    counted = retries(rows)
    injected = sum(s["faulted"] for s in seen.values())
    current.check("faults were injected", injected > 0, f"{injected} faulted requests")
    current.check(
        "retries visible in the ledger",
        counted["action_retries"] > 0,
        f"{counted['action_retries']} action retries in {len(rows)} entries",
    )
    current.figures.update(
        faults=seen,
        retries=counted,
        not_faulted={p: why for p, why in not_faulted.items() if p in in_scope},
        runs=[
            {
                "agent": agent,
                "exit": ran.code,
                "wall_s": round(ran.elapsed_s, 2),
                "errors": [e[:200] for e in report.get("errors", [])],
            }
            for (agent, ran), report in zip(done, reports, strict=True)
        ],
        credentials=sum(len(r.get("credentials", [])) for r in reports),
    )
    return {"proxies": proxies, "faults": seen, "retries": counted}


# -- a provider down, or silent ------------------------------------------------------------


def _run_with_fault(
    current: Lab,
    label: str,
    proxy: str,
    only: list[str] | None,
    *,
    action_deadline_s: float,
    probe_deadline_s: float,
    overhead_s: float,
    **fault: Any,
) -> dict[str, Any]:
    agent = current.seed(f"{proxy}-{label}", only=only)
    current.agents.append(agent)
    env = _env(
        only,
        KILLSWITCH_ACTION_DEADLINE_S=action_deadline_s,
        KILLSWITCH_PROBE_DEADLINE_S=probe_deadline_s,
        **fault.pop("env", {}),
    )
    known = _dry_run(current, agent, **env)  # the last discovery the report must fall back on
    affected = current.behind(proxy)
    in_scope = set(only or current.providers())
    expected_unknown = keys(known, affected)
    current.fault(proxy, **fault)
    try:
        ran = _contain(current, agent, **env)
    finally:
        current.fault(proxy, kind="", down=False)
    name = f"{proxy} {label}"
    current.check(f"{name}: exit 1", ran.code == 1, f"exit {ran.code}")
    current.check(f"{name}: no traceback", "Traceback" not in ran.stderr)
    try:
        report = ran.json()
    except ValueError:
        current.check(f"{name}: a JSON report", False, ran.stderr[-300:])
        return {}
    # The run's own clock (plan to report) against its deadlines: discovery and the actions
    # each within the action deadline, the probes within theirs, and a margin for the
    # report; the command's wall time (interpreter, Prefect start) against more.
    deadline = 2 * action_deadline_s + probe_deadline_s
    total = float(report["timings"]["total_s"])
    current.check(
        f"{name}: ends inside its deadline",
        total <= deadline + MARGIN_S and ran.elapsed_s <= deadline + overhead_s,
        f"run {total:.1f}s (wall {ran.elapsed_s:.1f}s) of {deadline:.0f}s + {MARGIN_S:.0f}s",
    )
    rows = {f"{c['kind']}:{c['ref']}": c for c in report["credentials"]}
    unknown = {
        k for k, c in rows.items() if c["provider"] in affected and c["verdict"] == "unknown"
    }
    current.check(
        f"{name}: each credential behind it named unknown",
        expected_unknown <= unknown and bool(expected_unknown),
        f"{len(unknown & expected_unknown)}/{len(expected_unknown)} named",
    )
    others = {p: dict(v) for p, v in by_provider(report).items() if p not in affected}
    not_dead = {p: v for p, v in others.items() if set(v) != {"dead"}}
    current.check(f"{name}: every other provider dead", not not_dead, f"not dead: {not_dead}")
    missing = [
        p for p in in_scope - set(affected) if current.seeded[agent].get(p) and p not in others
    ]
    current.check(f"{name}: no provider missing", not missing, f"missing {missing}")
    current.check(
        f"{name}: the summary counts them",
        report["summary"]["unknown"] >= len(expected_unknown),
        f"summary {report['summary']}",
    )
    return {
        "proxy": proxy,
        "providers": affected,
        "exit": ran.code,
        "wall_s": round(ran.elapsed_s, 2),
        "total_s": report["timings"]["total_s"],
        "deadline_s": deadline,
        "unknown": len(unknown),
        "dead": sum(v.get("dead", 0) for v in others.values()),
        "errors": [e[:160] for e in report.get("errors", [])],
    }


@recorded
def each_provider_down(
    proxies: str | None = None,
    providers: str | None = None,
    action_deadline_s: float = 4.0,
    probe_deadline_s: float = 15.0,
    overhead_s: float = 20.0,
) -> list[dict[str, Any]]:
    """Each fault proxy in turn refuses every connection while an agent is contained: the
    providers behind it end `unknown`, each credential named; the others `dead`; exit 1;
    the run ends inside its deadline."""
    current = lab()
    only = only_providers(providers)
    in_scope = set(only or current.providers())
    targets = only_providers(proxies) or sorted(
        name for name in current.proxies() if in_scope & set(current.behind(name))
    )
    turns = [
        _run_with_fault(
            current,
            "down",
            proxy,
            only,
            action_deadline_s=action_deadline_s,
            probe_deadline_s=probe_deadline_s,
            overhead_s=overhead_s,
            down=True,
        )
        for proxy in targets
    ]
    _, not_faulted = current.faultable()
    current.figures.update(
        turns=turns, not_faulted={p: w for p, w in not_faulted.items() if p in in_scope}
    )
    return turns


@recorded
def one_provider_blackholed(
    proxy: str = "vault",
    providers: str | None = None,
    action_deadline_s: float = 4.0,
    probe_deadline_s: float = 15.0,
    overhead_s: float = 20.0,
) -> dict[str, Any]:
    """One proxy swallows every request (no answer, ever): the same invariants as down, and
    the run must not wait for the provider's read timeouts."""
    current = lab()
    only = only_providers(providers)
    if only is not None:  # the black-holed provider is always in the experiment
        only = sorted(set(only) | set(current.behind(proxy)))
    extra: dict[str, str] = {}
    if proxy == "vault":
        # Vault is also the probe-material store; a silent store makes every probe unknown
        # by design (tests/killswitch/test_holds.py). Here: Vault the provider, alone.
        extra["KILLSWITCH_SECRET_SOURCES"] = '["keyring"]'  # noqa: S105
    turn = _run_with_fault(
        current,
        "blackholed",
        proxy,
        only,
        action_deadline_s=action_deadline_s,
        probe_deadline_s=probe_deadline_s,
        overhead_s=overhead_s,
        kind="blackhole",
        count=1_000_000,
        env=extra,
    )
    silent = any("silent" in e for e in turn.get("errors", []))
    current.check(
        f"{proxy} blackholed: the report names it silent", silent, str(turn.get("errors"))
    )
    current.figures.update(turn=turn, secret_sources=extra.get("KILLSWITCH_SECRET_SOURCES"))
    return turn


# -- kill -9 -------------------------------------------------------------------------------

KILL_POINTS: dict[str, str] = {
    "plan": "action = 'plan'",
    "first-action": "action NOT IN ('plan', 'contain', 'probe', 'baseline')",
    "first-verdict": "action = 'probe'",
}


def _max_seq(current: Lab) -> int:
    db = sqlite3.connect(f"file:{current.ledger}?mode=ro", uri=True, timeout=30)
    try:
        [seq] = db.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()
    finally:
        db.close()
    return int(seq)


def _wait_for(current: Lab, agent: str, since: int, where: str, proc: Any, limit_s: float) -> str:
    """The run id of the first ledger entry of `agent` after `since` matching `where`."""
    deadline = time.monotonic() + limit_s
    db = sqlite3.connect(f"file:{current.ledger}?mode=ro", uri=True, timeout=30)
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            row = db.execute(
                f"SELECT run_id FROM entries WHERE seq > ? AND agent = ? AND {where} "  # noqa: S608
                "ORDER BY seq LIMIT 1",
                (since, agent),
            ).fetchone()
            if row:
                return str(row[0])
            time.sleep(0.002)
    finally:
        db.close()
    return ""


@recorded
def kill_at_each_point(
    points: str = "plan,first-action,first-verdict", providers: str | None = None
) -> list[dict[str, Any]]:
    """`kill -9` a containment at each point; then `audit verify` holds, `audit unfinished`
    lists the run, a re-run proves every credential dead, and restore returns every grant
    exactly."""
    current = lab()
    only = only_providers(providers)
    env = _env(only)
    turns = []
    for point in only_providers(points) or []:
        agent = current.seed(f"kill-{point}", only=only)
        current.agents.append(agent)
        before = _dry_run(current, agent, **env)
        since = _max_seq(current)
        started = time.monotonic()
        proc = current.spawn("contain", agent, "--reason", REASON, "--json", **env)
        run_id = _wait_for(current, agent, since, KILL_POINTS[point], proc, 120)
        killed = proc.poll() is None and bool(run_id)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        current.collect(proc, started)
        label = f"kill -9 at {point}"
        current.check(f"{label}: killed mid-run", killed, f"run {run_id or 'not seen'}")
        _verify(current, label)
        unfinished = current.cli("audit", "unfinished", "--json")
        listed = [r for r in json.loads(unfinished.stdout or "[]") if r["run_id"] == run_id]
        current.check(f"{label}: audit unfinished lists the run", bool(listed), run_id)
        rerun = _contain(current, agent, **env)
        split = _proven_after_a_kill(current, f"{label}: re-run", rerun, agent)
        _restore_exactly(current, label, agent, before, **env)
        _verify(current, f"{label}: after restore")
        turns.append(
            {
                "point": point,
                "killed_after_s": round(time.monotonic() - started, 2),
                "listed_unfinished": bool(listed),
                "rerun_exit": rerun.code,
                "rerun": split,
            }
        )
    current.figures.update(turns=turns)
    return turns


CARRIED = "baseline carried from run"


def _proven_after_a_kill(current: Lab, label: str, ran: Ran, agent: str) -> dict[str, int]:
    """A re-run after a kill is proven (exit 0: nothing alive, nothing unknown): every
    credential `dead` — those the killed run had revoked on the baseline it ledgered before
    (killswitch/carried.py), which its evidence names; the others on the re-run's own."""
    current.check(f"{label}: exit 0", ran.code == 0, f"exit {ran.code}")
    current.check(f"{label}: no traceback", "Traceback" not in ran.stderr)
    try:
        report: dict[str, Any] = ran.json()
    except ValueError:
        current.check(f"{label}: a JSON report", False, ran.stderr[-300:])
        return {}
    rows = report["credentials"]
    named = sum(current.seeded.get(agent, {}).values())
    current.check(f"{label}: every seeded credential named", len(rows) >= named, f"{len(rows)}")
    odd = [f"{c['kind']}:{c['verdict']}" for c in rows if c["verdict"] != "dead"]
    current.check(f"{label}: every credential dead", not odd, f"other verdicts: {odd[:6]}")
    split = {"dead": 0, "carried": 0}
    for c in rows:
        split[c["verdict"]] = split.get(c["verdict"], 0) + 1
        split["carried"] += CARRIED in c.get("evidence", "")
    return split


# -- Prefect down ----------------------------------------------------------------------------


@recorded
def contain_with_prefect_down(providers: str | None = None) -> dict[str, Any]:
    """The orchestrator's API refuses connections: exit 3 with the break-glass hint (no
    traceback); `--break-glass` then proves every credential dead."""
    current = lab()
    only = only_providers(providers)
    agent = current.seed("noprefect", only=only)
    current.agents.append(agent)
    with socket.socket() as held:  # bound, never listening: refused, and nobody else's
        held.bind(("127.0.0.1", 0))
        api = f"http://127.0.0.1:{held.getsockname()[1]}/api"
        refused = current.cli(
            "contain",
            agent,
            "--reason",
            REASON,
            **_env(
                only,
                KILLSWITCH_PREFECT_API_URL=api,
                PREFECT_API_URL=api,
                PREFECT_CLIENT_MAX_RETRIES=0,
            ),
        )
    current.check("prefect down: exit 3", refused.code == 3, f"exit {refused.code}")
    current.check("prefect down: no traceback", "Traceback" not in refused.stderr)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error[")]
    current.check(
        "prefect down: says orchestrator-unreachable and --break-glass",
        any("orchestrator-unreachable" in e for e in errors) and "--break-glass" in refused.stderr,
        errors[0][:200] if errors else refused.stderr[-200:],
    )
    glass = _contain(current, agent, "--break-glass", **_env(only))
    report = all_dead(current, "break-glass", glass, agent)
    current.figures.update(
        refused_s=round(refused.elapsed_s, 2),
        break_glass_s=round(glass.elapsed_s, 2),
        break_glass_total_s=report.get("timings", {}).get("total_s"),
        credentials=len(report.get("credentials", [])),
    )
    return {"refused_exit": refused.code, "break_glass_exit": glass.code}


# -- concurrency -----------------------------------------------------------------------------


@recorded
def two_concurrent_containments(providers: str | None = None) -> dict[str, Any]:
    """Two containments of one agent at once (one through Prefect, one break-glass): both
    proven, the ledger verifies, one set of undo records restores exactly."""
    current = lab()
    only = only_providers(providers)
    env = _env(only)
    agent = current.seed("twice", only=only)
    current.agents.append(agent)
    before = _dry_run(current, agent, **env)
    started = time.monotonic()
    first = current.spawn("contain", agent, "--reason", REASON, "--json", **env)
    second = current.spawn("contain", agent, "--reason", REASON, "--json", "--break-glass", **env)
    ran = [current.collect(first, started), current.collect(second, started)]
    for label, done in zip(("flow", "break-glass"), ran, strict=True):
        all_dead(current, f"concurrent {label}", done, agent)
    _verify(current, "concurrent")
    _restore_exactly(current, "concurrent", agent, before, **env)
    current.figures.update(
        concurrent=[{"exit": r.code, "wall_s": round(r.elapsed_s, 2)} for r in ran]
    )
    return {"exits": [r.code for r in ran]}


@recorded
def containment_during_a_sweep(providers: str | None = None) -> dict[str, Any]:
    """A containment while a zombie sweep enumerates and probes every provider: the
    containment is proven, the sweep finishes, the ledger verifies, restore is exact."""
    current = lab()
    only = only_providers(providers)
    env = _env(only)
    agent = current.seed("swept", only=only)
    current.agents.append(agent)
    before = _dry_run(current, agent, **env)
    started = time.monotonic()
    sweep = current.spawn("sweep", "--dry-run", "--json", "--break-glass", **env)
    time.sleep(0.5)  # the sweep under way first
    contained = _contain(current, agent, **env)
    swept = current.collect(sweep, started)
    all_dead(current, "contain during sweep", contained, agent)
    current.check(
        "the sweep finished",
        swept.code in (0, 1) and "Traceback" not in swept.stderr,
        f"exit {swept.code}",
    )
    _verify(current, "sweep")
    _restore_exactly(current, "sweep", agent, before, **env)
    current.figures.update(
        sweep={"exit": swept.code, "wall_s": round(swept.elapsed_s, 2)},
        contain={"exit": contained.code, "wall_s": round(contained.elapsed_s, 2)},
    )
    return {"sweep_exit": swept.code, "contain_exit": contained.code}


# -- the ledger's storage fails --------------------------------------------------------------


def _stops_loudly(current: Lab, label: str, ran: Ran, run_id: str) -> dict[str, Any]:
    current.check(f"{label}: the run fails (exit 1 or 3)", ran.code in (1, 3), f"exit {ran.code}")
    current.check(f"{label}: no traceback", "Traceback" not in ran.stderr, ran.stderr[-300:])
    loud = [line for line in ran.stderr.splitlines() if line.startswith("error[")]
    current.check(f"{label}: says why", bool(loud), loud[0][:200] if loud else ran.stderr[-200:])
    _verify(current, label)
    rows = entries(current.ledger, [run_id]) if run_id else []
    return {"exit": ran.code, "error": loud[0][:200] if loud else "", "entries": len(rows)}


@recorded
def ledger_locked_mid_run(hold_s: float = 40.0, providers: str | None = None) -> dict[str, Any]:
    """Another process holds the ledger's database locked (an exclusive transaction) from
    the run's first action on, longer than the ledger's busy timeout: the run stops loudly,
    the chain verifies, a re-run once the lock is gone is proven, restore is exact."""
    current = lab()
    only = only_providers(providers)
    env = _env(only)
    agent = current.seed("locked", only=only)
    current.agents.append(agent)
    before = _dry_run(current, agent, **env)
    since = _max_seq(current)
    started = time.monotonic()
    proc = current.spawn("contain", agent, "--reason", REASON, "--json", "--break-glass", **env)
    run_id = _wait_for(current, agent, since, KILL_POINTS["first-action"], proc, 120)
    locker = sqlite3.connect(current.ledger, timeout=30, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    locked_at = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - locked_at < hold_s:
            time.sleep(0.1)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    ran = current.collect(proc, started)
    figures = _stops_loudly(current, "ledger locked", ran, run_id)
    figures["stopped_after_lock_s"] = round(ran.elapsed_s - (locked_at - started), 1)
    rerun = _contain(current, agent, "--break-glass", **env)
    figures["rerun"] = _proven_after_a_kill(current, "ledger locked: re-run", rerun, agent)
    _restore_exactly(current, "ledger locked", agent, before, **env)
    current.figures.update(locked=figures)
    return figures


@recorded
def ledger_disk_full_mid_run(
    headroom_kib: int = 48, providers: str | None = None
) -> dict[str, Any]:
    """The run's files may grow only `headroom_kib` past the largest database (RLIMIT_FSIZE,
    SIGXFSZ ignored: writes fail with EFBIG, as on a full disk): the run stops loudly,
    nothing half-written (the chain verifies), a re-run with room is proven, restore is
    exact."""
    current = lab()
    only = only_providers(providers)
    env = _env(only)
    agent = current.seed("full", only=only)
    current.agents.append(agent)
    before = _dry_run(current, agent, **env)
    since = _max_seq(current)
    databases = [
        *current.ledger.parent.glob("ledger.db*"),
        *current.ledger.parent.glob("inventory.db*"),
    ]
    sizes = [p.stat().st_size for p in databases if p.is_file()]
    limit = max(sizes) + headroom_kib * 1024

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    started = time.monotonic()
    proc = current.spawn(
        "contain", agent, "--reason", REASON, "--json", "--break-glass", preexec_fn=full_disk, **env
    )
    ran = current.collect(proc, started)
    run_ids = {r["run_id"] for r in entries_since(current, since, agent)}
    figures = _stops_loudly(current, "disk full", ran, next(iter(run_ids), ""))
    rerun = _contain(current, agent, "--break-glass", **env)
    figures["rerun"] = _proven_after_a_kill(current, "disk full: re-run", rerun, agent)
    _restore_exactly(current, "disk full", agent, before, **env)
    current.figures.update(disk_full=figures)
    return figures


def entries_since(current: Lab, since: int, agent: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(f"file:{current.ledger}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute(
            "SELECT run_id, action, outcome FROM entries WHERE seq > ? AND agent = ?",
            (since, agent),
        ).fetchall()
    finally:
        db.close()
    return [{"run_id": r[0], "action": r[1], "outcome": r[2]} for r in rows]


# -- propagation delay -----------------------------------------------------------------------


@recorded
def contain_with_propagation_delay(
    lag_s: float = 3.0, settle_s: float = 2.0, providers: str | None = None
) -> dict[str, Any]:
    """Every stand-in that can lag keeps accepting a killed credential for `lag_s`; with a
    settle window of `settle_s` (for the providers that have one: `<provider>.settle_s`),
    no credential may be called `dead` before its kill + the delay + the settle window.

    Measured on the ledger's own clock: a provider's first dead verdict against its first
    containment action (a lower bound of every kill, so an early verdict cannot hide)."""
    current = lab()
    only = only_providers(providers)
    agent = current.seed("lagged", only=only)
    current.agents.append(agent)
    lagged = current.cli("sandbox", "lag", "*", str(lag_s), "--json")
    if lagged.code != 0:
        raise RuntimeError(f"sandbox lag refused: {lagged.stderr[-300:]}")
    laggy = sorted(set(json.loads(lagged.stdout)) & set(only or current.providers()))
    profile = json.loads(Path(current.status["profile"]).read_text())
    windows = {p: settle_s if "settle_s" in (profile.get(p) or {}) else 0.0 for p in laggy}
    settle = {f"KILLSWITCH_{p.upper()}__SETTLE_S": w for p, w in windows.items() if w}
    try:
        ran = _contain(current, agent, **_env(only, **settle))
    finally:
        current.cli("sandbox", "lag", "*", "0")
    report = all_dead(current, "lagged", ran, agent)
    rows = entries(current.ledger, [report["run_id"]]) if report else []
    gaps: dict[str, float] = {}
    for p in laggy:
        mine = [r for r in rows if r["provider"] == p]
        kills = [_ts(r) for r in mine if r["detail"].get("verb") == "contain"]
        deads = [_ts(r) for r in mine if r["action"] == "probe" and r["outcome"] == "dead"]
        if kills and deads:
            gaps[p] = round(min(deads) - min(kills), 2)
    early = {p: g for p, g in gaps.items() if g < lag_s + windows[p] - TOLERANCE_S}
    current.check(
        "dead only after the delay and the settle window",
        bool(gaps) and not early,
        f"first dead after the first kill: {gaps}; too early: {early}",
    )
    current.figures.update(
        lagged=laggy,
        lag_s=lag_s,
        settle_s=windows,
        first_dead_after_kill_s=gaps,
        total_s=report.get("timings", {}).get("total_s"),
    )
    return {"lagged": laggy, "gaps": gaps}


TOLERANCE_S = 0.3  # an action's ledger entry is written just after the kill it records


def _ts(row: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(row["ts"])).timestamp()


@recorded
def heal() -> None:
    """Every fault proxy clean, every propagation delay off."""
    lab().heal()
