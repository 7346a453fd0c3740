"""The contract between the sandbox core and each provider's stand-in plug-in.

A revoker names its plug-in module (`stand_in = "killswitch.sandbox.<provider>"`); that
module exposes `STAND_IN`, an object implementing `StandIn`. The core (daemon, control,
CLI) only walks the plug-ins (`killswitch.sandbox.plugins`): it names none of them.

Two processes see a plug-in: the sandbox daemon, where `serve` starts the stand-in and
answers `reset`; and whoever seeds (`sandbox up`, the tests, the benchmarks), where
`bootstrap` (fresh stand-in) or `attach` (already seeded) gives a `Seeder`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from killswitch.models import AgentStatus

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from killswitch.inventory import Inventory
    from killswitch.sandbox.proxy import Layer, Proxies, Throttled
    from killswitch.sandbox.tokens import Lag, Token, Tokens
    from killswitch.secrets import MaterialStore


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One agent to seed. `options[provider]` are that provider's own seeding options (its
    plug-in parses them, and refuses an unknown one); `skip` names providers seeding nothing."""

    id: str
    owner: str
    purpose: str
    status: AgentStatus = AgentStatus.ACTIVE
    environment: str = "prod"
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    skip: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Seeded:
    """How many credentials and grants a provider's discovery will find for one agent."""

    credentials: int = 0
    grants: int = 0

    def __add__(self, other: Seeded) -> Seeded:
        return Seeded(self.credentials + other.credentials, self.grants + other.grants)

    def as_dict(self) -> dict[str, int]:
        """The `sandbox status --json` shape."""
        return {"credentials": self.credentials, "grants": self.grants}


@dataclass(frozen=True, slots=True)
class SweepSeeds:
    """What a zombie sweep must find among the healthy fleet, by category (references only,
    never secrets), and the agents this seeding added or changed (with what they hold)."""

    orphan: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    long_lived: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()
    reused: tuple[str, ...] = ()
    agents: Mapping[str, Seeded] = field(default_factory=dict)

    def __add__(self, other: SweepSeeds) -> SweepSeeds:
        agents = dict(self.agents)
        for agent_id, seeded in other.agents.items():
            agents[agent_id] = agents.get(agent_id, Seeded()) + seeded
        return SweepSeeds(
            self.orphan + other.orphan,
            self.stale + other.stale,
            self.long_lived + other.long_lived,
            self.expired + other.expired,
            self.reused + other.reused,
            agents,
        )


@dataclass(frozen=True, slots=True)
class Host:
    """What the sandbox daemon offers a plug-in whose stand-in it starts."""

    root: Path  # the sandbox's directory (logs/, files a stand-in writes)
    http_url: str  # the shared HTTP app every plug-in may add routes to, direct
    http_proxied: str  # the same app through its fault proxy (what the kill switch calls)
    tokens: Tokens  # the shared app's credential store
    proxies: Proxies
    latency_ms: float

    def proxy(
        self,
        name: str,
        port: int,
        throttled: Throttled | None = None,
        layer: Layer | None = None,
        *,
        tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
    ) -> str:
        """Put fault proxy `name` in front of a loopback port (`throttled`: the provider's
        own throttling answer, a raw HTTP response or one per request head; `layer`: sees
        every exchange; `tls`: the listener's and the upstream TLS contexts, for a stand-in
        that speaks HTTPS); its URL."""
        port = self.proxies.add(name, port, self.latency_ms, throttled, layer, tls=tls)
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    def grpc_relay(self, name: str, port: int) -> str:
        """Put fault relay `name` (HTTP/2 cleartext, faults per gRPC call) in front of a
        gRPC server on a loopback port; its `host:port` target."""
        return f"127.0.0.1:{self.proxies.add(name, port, self.latency_ms, protocol='h2')}"


def _nothing() -> None:
    return None


def _no_processes() -> Mapping[str, Mapping[str, Any]]:
    return {}


@dataclass(frozen=True, slots=True)
class Hosted:
    """A stand-in started in the daemon."""

    stand_ins: Mapping[str, Any] = field(default_factory=dict)  # merged into `stand_ins`
    routes: Sequence[BaseRoute] = ()  # served by the shared HTTP app
    mint: Callable[[Mapping[str, Any]], Token] | None = None  # POST /_sandbox/seed
    bulk: Callable[[Mapping[str, Any]], int] | None = None  # POST /_sandbox/bulk
    reset: Callable[[], None] = _nothing  # POST /_sandbox/reset: forget everything
    stop: Callable[[], None] = _nothing
    # Child processes it runs now: name -> {"pid", "marker"} (`status` lists, `down` stops).
    processes: Callable[[], Mapping[str, Mapping[str, Any]]] = _no_processes
    # POST /_sandbox/lag/<provider> (`killswitch sandbox lag`): the propagation delay after a
    # credential is killed; answers what is in force. None: a plug-in whose credentials live
    # in the shared `Tokens` (it mints there) lags through them; any other cannot lag.
    lag: Callable[[Lag], Mapping[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Sandbox:
    """A running sandbox as its seeders see it: the daemon's endpoints (`stand_ins`), the
    inventory and where probe material goes."""

    stand_ins: Mapping[str, Any]
    inventory: Inventory
    store: MaterialStore


class Seeder(Protocol):
    """One provider's seeding against a bootstrapped stand-in."""

    def seed_agent(self, spec: AgentSpec, options: Mapping[str, Any]) -> Seeded:
        """The agent's credentials and grants at this provider (secrets to the store)."""
        ...

    def seed_sweep(self) -> SweepSeeds:
        """Zombies, orphans and the like for the sweep to find (after the demo fleet)."""
        ...

    def profile(self) -> Mapping[str, Any]:
        """The kill switch's settings sections for this provider (section name -> value)."""
        ...

    def status(self) -> Mapping[str, Any]:
        """`sandbox status --json` `providers` entries (name -> JSON-able value)."""
        ...


class StandIn(Protocol):
    """A provider's sandbox plug-in: `STAND_IN` in the module its revoker names."""

    @property
    def fault_target(self) -> str | None:
        """The fault proxy the kill switch reaches this stand-in through (None: direct)."""
        ...

    def serve(self, host: Host) -> Hosted:
        """Start the stand-in inside the sandbox daemon."""
        ...

    def material(self, stand_ins: Mapping[str, Any]) -> Mapping[str, MaterialStore]:
        """Probe-material stores this stand-in offers (secret source name -> writer)."""
        ...

    def bootstrap(self, sandbox: Sandbox) -> Seeder:
        """Prepare a fresh stand-in (the kill switch's own identity, shared groups…)."""
        ...

    def attach(self, sandbox: Sandbox, providers: Mapping[str, Any]) -> Seeder:
        """A seeder for an already seeded sandbox, from its status `providers`."""
        ...
