"""Azure's sandbox plug-in: an HTTPS stand-in (CA from trustme; direct, as the fault proxy
speaks plain HTTP/1.1) for ARM role assignments, Graph service principals and the Entra
token endpoint; per agent a service principal, client secrets and role assignments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from killswitch.sandbox.plugin import Host, Hosted, Sandbox, StandIn
from killswitch.sandbox.tokens import Lag

if TYPE_CHECKING:
    from killswitch.sandbox.azure.fleet import Seeder
    from killswitch.secrets import MaterialStore


@dataclass(frozen=True, slots=True)
class AzureStandIn:
    """The HTTPS stand-in (`stand_ins.azure`: URLs, tenant, the kill switch's app, the CA)."""

    fault_target: str | None = None

    def serve(self, host: Host) -> Hosted:
        """Start it on a free port; its CA certificate goes to the sandbox directory."""
        from killswitch.sandbox.azure.app import AzureServer
        from killswitch.sandbox.azure.state import AzureState

        state = AzureState()
        server = AzureServer(state, host.root)
        server.start()

        def lag(wanted: Lag) -> Mapping[str, Any]:
            """`killswitch sandbox lag azure N`: its propagation mode (no flaps)."""
            with state.lock:
                state.propagation_s = wanted.seconds
            return {"seconds": wanted.seconds, "flap": False}

        return Hosted(
            stand_ins={"azure": server.describe()}, reset=state.reset, stop=server.stop, lag=lag
        )

    def material(self, stand_ins: Mapping[str, Any]) -> Mapping[str, MaterialStore]:
        """None."""
        return {}

    def bootstrap(self, sandbox: Sandbox) -> Seeder:
        """Nothing to prepare: the kill switch's own app exists from the start."""
        from killswitch.sandbox.azure import fleet

        return fleet.Seeder(fleet.Azure(dict(sandbox.stand_ins["azure"])), sandbox)

    def attach(self, sandbox: Sandbox, providers: Mapping[str, Any]) -> Seeder:
        """From `providers.azure`."""
        from killswitch.sandbox.azure import fleet

        return fleet.Seeder(fleet.Azure(dict(providers["azure"])), sandbox)


STAND_IN: StandIn = AzureStandIn()
