"""Azure's sandbox plug-in: an HTTPS stand-in (CA from trustme) for ARM role assignments,
Graph service principals and the Entra token endpoint, behind the `azure` fault proxy, which
terminates TLS with a certificate of the same CA (the kill switch trusts it already) and
throttles as ARM and Graph do; per agent a service principal, client secrets and role
assignments."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from killswitch.sandbox.plugin import Host, Hosted, Sandbox, StandIn
from killswitch.sandbox.proxy import canned
from killswitch.sandbox.tokens import Lag

if TYPE_CHECKING:
    from killswitch.sandbox.azure.fleet import Seeder
    from killswitch.secrets import MaterialStore

# ARM and Graph throttle alike: 429, `Retry-After` in seconds, their JSON error body. Entra's
# token endpoint answers a throttled client-credentials grant 429 + `Retry-After` too (MSAL
# docs; real: 60 s), with its request-budget service error (azure-identity keeps only the
# body's words, never the status).
ARM_THROTTLED = canned(
    429,
    b'{"error": {"code": "TooManyRequests", "message": "Too many requests. Please retry '
    b'after the time given in the Retry-After header (sandbox proxy)."}}',
    "application/json; charset=utf-8",
    "Retry-After: 1\r\n",
)
ENTRA_THROTTLED = canned(
    429,
    b'{"error": "temporarily_unavailable", "error_description": "AADSTS90024: '
    b"RequestBudgetExceededError - A transient error has occurred. Try again.\\r\\nTrace ID: "
    b'sandbox-proxy", "error_codes": [90024]}',
    "application/json; charset=utf-8",
    "Retry-After: 1\r\n",
)


def throttled(head: bytes) -> bytes:
    """Entra's answer for its endpoints (`/{tenant}/…`), ARM's and Graph's for theirs."""
    path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
    return ARM_THROTTLED if path.startswith((b"/arm/", b"/graph/")) else ENTRA_THROTTLED


@dataclass(frozen=True, slots=True)
class AzureStandIn:
    """The HTTPS stand-in (`stand_ins.azure`: URLs, tenant, the kill switch's app, the CA)."""

    fault_target: str | None = "azure"

    def serve(self, host: Host) -> Hosted:
        """Start it on a free port (its CA certificate goes to the sandbox directory) and put
        the `azure` proxy before it; the kill switch's profile names the proxy."""
        from killswitch.sandbox.azure.app import AzureServer
        from killswitch.sandbox.azure.state import AzureState

        state = AzureState()
        server = AzureServer(state, host.root)
        server.start()
        listening = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        listening.load_cert_chain(server.chain, server.key)
        upstream = ssl.create_default_context(cafile=str(server.ca_path))
        proxied = host.proxy("azure", server.port, throttled, tls=(listening, upstream))
        described = {
            **server.describe(),
            "proxied": proxied,
            "proxied_authority": proxied.removeprefix("https://"),
            "proxied_arm_url": f"{proxied}/arm",
            "proxied_graph_url": f"{proxied}/graph",
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
