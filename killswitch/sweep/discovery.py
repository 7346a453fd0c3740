"""Sweep discovery: enumerate every provider that can list its NHIs into the inventory
(mark-and-sweep, streamed), and probe the declared tokens of providers that cannot."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from killswitch import progress
from killswitch.errors import KillSwitchError
from killswitch.execution import materials_for
from killswitch.models import AgentStatus, Credential, Nhi, VerdictStatus
from killswitch.runtime import Runtime
from killswitch.secrets import Material
from killswitch.sightings import Recorded, Sightings
from killswitch.verdicts import check_alive
from revokers.base import Revoker


def discover(
    runtime: Runtime, run_id: str, providers: Sequence[str] = ()
) -> tuple[list[Recorded], list[str]]:
    """Enumerate every enumerable provider into the inventory (mark-and-sweep), streaming."""
    sightings = Sightings(runtime.inventory)
    names = [
        n for n, r in runtime.revokers.items() if r.enumerable and (not providers or n in providers)
    ]

    def one(name: str) -> Recorded | str:
        progress.emit("discover", "enumerating", provider=name, run_id=run_id)
        try:
            recorded = sightings.record(
                name, _counted(runtime.revokers[name].enumerate(), name, run_id), run_id
            )
        except KillSwitchError as exc:
            return f"{name}: enumeration failed, nothing dropped: {exc.code}: {exc.message}"
        progress.emit(
            "discover",
            f"{recorded.seen} NHIs ({recorded.new} new, {recorded.gone} gone)",
            provider=name,
            run_id=run_id,
        )
        return recorded

    with ThreadPoolExecutor(max_workers=runtime.provider_workers(max(1, len(names)))) as pool:
        results = list(pool.map(one, names))
    return [r for r in results if isinstance(r, Recorded)], [
        r for r in results if isinstance(r, str)
    ]


def _counted(stream: Iterable[Nhi], provider: str, run_id: str) -> Iterator[Nhi]:
    for count, nhi in enumerate(stream, start=1):
        if count % 1000 == 0:
            progress.emit("discover", f"{count} so far", provider=provider, run_id=run_id)
        yield nhi


def declared_alive(
    runtime: Runtime,
    providers: Sequence[str] = (),
    only: Sequence[str] = (),
    *,
    now: datetime | None = None,
) -> list[Nhi]:
    """Providers that cannot list their credentials (Slack, GitHub): the inventory's
    declared tokens of retired or expired agents, probed once with the material on file.
    Only a token the provider accepted counts; one without material is not guessed at."""
    now = now or datetime.now(UTC)
    agents = [
        a
        for a in runtime.inventory.list_agents()
        if (a.status is AgentStatus.DECOMMISSIONED or (a.expires_at and a.expires_at <= now))
        and (not only or a.id in only)
    ]
    jobs: list[tuple[Revoker, Credential, Sequence[Material]]] = []
    for agent in agents:
        for ref in runtime.inventory.declared(agent.id):
            revoker = runtime.revokers.get(ref.provider)
            if (
                revoker is None
                or revoker.enumerable
                or (providers and ref.provider not in providers)
            ):
                continue
            if ref.kind not in revoker.credential_kinds:
                continue
            credential = Credential(
                ref.provider, ref.kind, ref.ref, f"{ref.provider}:{agent.id}", agent.id
            )
            materials = materials_for(revoker, runtime.secrets, credential)
            if materials:
                jobs.append((revoker, credential, materials))

    def probe(job: tuple[Revoker, Credential, Sequence[Material]]) -> Nhi | None:
        revoker, credential, materials = job
        verdict = check_alive(revoker, credential, materials, deadline_s=0.0, interval_s=0.0)
        if verdict.status is not VerdictStatus.ALIVE:
            return None
        return Nhi(
            provider=credential.provider,
            kind=credential.kind,
            ref=credential.ref,
            principal=credential.principal,
            agent_tag=credential.agent_id,
            detail=f"declared; probe: {verdict.evidence}",
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [n for n in pool.map(probe, jobs) if n is not None]
