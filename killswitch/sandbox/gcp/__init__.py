"""GCP's sandbox plug-in: a gRPC server for `google.iam.admin.v1.IAM` and the project's IAM
policy, behind the `gcp` fault relay (HTTP/2, faults per call), and Google's token endpoint
on the shared HTTP app (through its proxy, `saas`, like every HTTP call); per agent two
service accounts with keys and bindings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from killswitch.sandbox.plugin import Host, Hosted, Sandbox, StandIn

if TYPE_CHECKING:
    from killswitch.sandbox.gcp.fleet import Seeder
    from killswitch.secrets import MaterialStore


@dataclass(frozen=True, slots=True)
class GcpStandIn:
    """The gRPC stand-in (`stand_ins.gcp`) behind the `gcp` relay; its token endpoint is
    behind the shared app's proxy (`saas`)."""

    fault_target: str | None = "gcp"

    def serve(self, host: Host) -> Hosted:
        """Start the gRPC server; the token endpoint joins the shared app at `/gcp/token`."""
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        from killswitch.sandbox.gcp.services import GcpServer
        from killswitch.sandbox.gcp.state import PROJECT, GcpState
        from killswitch.sandbox.gcp.token import token_exchange

        # Key files name this token endpoint: through the fault proxy, like every HTTP call.
        state = GcpState(token_uri=f"{host.http_proxied}/gcp/token")
        server = GcpServer(state)
        server.start()
        relayed = host.grpc_relay("gcp", server.port)

        async def token(request: Request) -> JSONResponse:
            """Google's OAuth2 token endpoint for service-account keys (jwt-bearer grant)."""
            status, body = token_exchange(state, await request.body())
            return JSONResponse(body, status_code=status)

        async def clock_skew(request: Request) -> JSONResponse:
            """Sandbox only: {"email", "on"} → that account's assertions get Google's
            clock-skew `invalid_grant`, or no longer."""
            body = await request.json()
            with state.lock:
                if body.get("on", True):
                    state.skewed.add(str(body["email"]))
                else:
                    state.skewed.discard(str(body["email"]))
            return JSONResponse({"ok": True})

        return Hosted(
            stand_ins={
                "gcp": {
                    "grpc_target": f"127.0.0.1:{server.port}",
                    "proxied_grpc_target": relayed,
                    "token_uri": state.token_uri,
                    "project": PROJECT,
                }
            },
            routes=[
                Route("/gcp/token", token, methods=["POST"]),
                Route("/_sandbox/gcp/clock-skew", clock_skew, methods=["POST"]),
            ],
            reset=state.reset,
            stop=server.stop,
        )

    def material(self, stand_ins: Mapping[str, Any]) -> Mapping[str, MaterialStore]:
        """None."""
        return {}

    def bootstrap(self, sandbox: Sandbox) -> Seeder:
        """Nothing to prepare: the project exists, the stand-in asks no caller identity."""
        from killswitch.sandbox.gcp import fleet

        info = sandbox.stand_ins["gcp"]
        return fleet.Seeder(fleet.Gcp(info["grpc_target"], info["project"]), sandbox)

    def attach(self, sandbox: Sandbox, providers: Mapping[str, Any]) -> Seeder:
        """From `providers.gcp`."""
        from killswitch.sandbox.gcp import fleet

        info = providers["gcp"]
        return fleet.Seeder(fleet.Gcp(info["grpc_target"], info["project"]), sandbox)


STAND_IN: StandIn = GcpStandIn()
