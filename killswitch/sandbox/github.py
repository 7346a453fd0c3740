"""GitHub's sandbox plug-in, on the shared HTTP app: POST /credentials/revoke (202,
asynchronous) and GET /user (401 when dead); per agent a classic and a fine-grained token.

The revoke endpoint is for exposed credentials: unauthenticated, 403 when authenticated,
422 on a malformed body, and revocation lands a little after the 202
(`/_sandbox/github/settings {"revoke_delay_s"}` changes how long after).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from killswitch.sandbox.http import PROXY
from killswitch.sandbox.minting import Mint, Minted
from killswitch.sandbox.plugin import Host, Hosted, Sandbox, StandIn
from killswitch.sandbox.tokens import Token, Tokens, rand
from killswitch.secrets import MaterialStore

BAD_CREDENTIALS = {
    "message": "Bad credentials",
    "documentation_url": "https://docs.github.com/rest",
    "status": "401",
}


class Delay:
    """How long after the 202 a revocation lands (seconds)."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds


def mint(tokens: Tokens, owner: str, fine_grained: bool = False) -> Token:
    """A classic (`ghp_`) or fine-grained (`github_pat_`) token."""
    if fine_grained:
        secret = f"github_pat_{rand(22)}_{rand(59)}"
    else:
        secret = f"ghp_{rand(36)}"
    ref = f"{owner}/{'fine-grained' if fine_grained else 'classic'}-{rand(6).lower()}"
    return tokens.add(Token("github", "github.token", ref, secret, owner))


def routes(tokens: Tokens, delay: Delay) -> list[Route]:
    """The two endpoints, and the sandbox-only revocation delay."""

    def fault_response() -> Response | None:
        fault = tokens.fault("github")
        if fault is None:
            return None
        headers = {"Retry-After": str(int(fault.retry_after or 1))} if fault.retry_after else {}
        return JSONResponse(
            {"message": "API rate limit exceeded"}, status_code=fault.status, headers=headers
        )

    async def revoke(request: Request) -> Response:
        if (fault := fault_response()) is not None:
            return fault
        if request.headers.get("authorization"):
            return JSONResponse({"message": "Must not be authenticated"}, status_code=403)
        try:
            body = await request.json()
            credentials = list(body["credentials"])
        except Exception:
            return JSONResponse({"message": "Invalid request", "status": "422"}, status_code=422)
        if not credentials or len(credentials) > 1000:
            return JSONResponse({"message": "Validation Failed", "status": "422"}, status_code=422)
        lands = time.monotonic() + delay.seconds
        for secret in credentials:
            token = tokens.by_secret(str(secret))
            if token is not None and token.dead_at is None:
                token.dead_at = lands
        return Response(status_code=202)

    async def user(request: Request) -> Response:
        if (fault := fault_response()) is not None:
            return fault
        auth = request.headers.get("authorization", "")
        secret = auth.split(" ", 1)[1] if " " in auth else ""
        token = tokens.by_secret(secret)
        if token is None or not token.alive():
            return JSONResponse(BAD_CREDENTIALS, status_code=401)
        return JSONResponse(
            {"login": token.owner, "id": abs(hash(token.owner)) % 10**8, "type": "User"}
        )

    async def settings(request: Request) -> Response:
        delay.seconds = float((await request.json())["revoke_delay_s"])
        return JSONResponse({"ok": True})

    return [
        Route("/_sandbox/github/settings", settings, methods=["POST"]),
        Route("/github/credentials/revoke", revoke, methods=["POST"]),
        Route("/github/user", user, methods=["GET"]),
    ]


def set_delay(http_url: str, seconds: float) -> None:
    """How long after the 202 the stand-in's revocations land (`http_url`: the shared app)."""
    httpx.post(
        f"{http_url}/_sandbox/github/settings", json={"revoke_delay_s": seconds}, timeout=10
    ).raise_for_status()


@dataclass(frozen=True, slots=True)
class GithubStandIn:
    """Routes on the shared HTTP app, behind its proxy."""

    fault_target: str | None = PROXY

    def serve(self, host: Host) -> Hosted:
        """Its routes; `/_sandbox/seed` mints `{"fine_grained": bool}` tokens."""
        return Hosted(
            routes=routes(host.tokens, Delay()),
            mint=lambda body: mint(host.tokens, str(body["owner"]), bool(body.get("fine_grained"))),
        )

    def material(self, stand_ins: Mapping[str, Any]) -> Mapping[str, MaterialStore]:
        """None."""
        return {}

    def bootstrap(self, sandbox: Sandbox) -> Minted:
        """A classic and a fine-grained token per agent."""
        return Minted(
            "github",
            sandbox,
            (Mint("token"), Mint("token", {"fine_grained": True})),
            "/github",
        )

    def attach(self, sandbox: Sandbox, providers: Mapping[str, Any]) -> Minted:
        """As `bootstrap`: nothing to remember."""
        return self.bootstrap(sandbox)


STAND_IN: StandIn = GithubStandIn()
