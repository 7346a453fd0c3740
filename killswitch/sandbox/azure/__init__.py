"""Azure's sandbox plug-in: an HTTPS stand-in (CA from trustme) for ARM role assignments,
Graph service principals and the Entra token endpoint, behind the `azure` fault proxy (which
terminates TLS with a certificate of the same CA); per agent a service principal, client
secrets and role assignments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from killswitch.sandbox.plugin import Host, Hosted, Sandbox, StandIn
from killswitch.sandbox.tokens import Lag

# ARM's and Graph's own throttling answer (with the proxy's Retry-After): 429 and this body.
THROTTLED = (
    b'{"error": {"code": "TooManyRequests", "message": "The request is being throttled as '
    b"the limit has been reached for operations. Please retry after the time given in the "
    b'Retry-After header."}}'
)

if TYPE_CHECKING:
    from killswitch.sandbox.azure.fleet import Seeder
    from killswitch.secrets import MaterialStore


@dataclass(frozen=True, slots=True)
class AzureStandIn:
    """The HTTPS stand-in (`stand_ins.azure`: URLs, tenant, the kill switch's app, the CA)."""

    fault_target: str | None = "azure"

    def serve(self, host: Host) -> Hosted:
        """Start it on a free port (its CA certificate goes to the sandbox directory) and the
        `azure` proxy before it, serving the stand-in's own certificate."""
        from killswitch.sandbox.azure.app import AzureServer
        from killswitch.sandbox.azure.state import AzureState

        state = AzureState()
        server = AzureServer(state, host.root)
        server.start()
        assert server.http.tls is not None  # noqa: S101
        port = host.proxies.add(
            "azure",
            server.port,
            host.latency_ms,
            tls=server.http.tls,
            upstream_ca=server.ca_path,
            throttle_body=(THROTTLED, "application/json"),
        )
        proxied = f"https://127.0.0.1:{port}"
        described = {
            **server.describe(),
            # What the kill switch uses (the profile); seeding goes direct.
            "proxied": {
                "url": proxied,
                "arm_url": f"{proxied}/arm",
                "graph_url": f"{proxied}/graph",
                "authority": f"127.0.0.1:{port}",
            },
        }

        def lag(wanted: Lag) -> Mapping[str, Any]:
            """`killswitch sandbox lag azure N`: its propagation mode (no flaps)."""
            with state.lock:
                state.propagation_s = wanted.seconds
            return {"seconds": wanted.seconds, "flap": False}

        return Hosted(stand_ins={"azure": described}, reset=state.reset, stop=server.stop, lag=lag)

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
