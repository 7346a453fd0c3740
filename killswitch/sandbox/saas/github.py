"""GitHub stand-in: POST /credentials/revoke (202, asynchronous) and GET /user (401 when dead).

The revoke endpoint is for exposed credentials: unauthenticated, 403 when authenticated,
422 on a malformed body, and revocation lands a little after the 202.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from killswitch.sandbox.saas.state import State, Token, rand

BAD_CREDENTIALS = {
    "message": "Bad credentials",
    "documentation_url": "https://docs.github.com/rest",
    "status": "401",
}


def mint(state: State, owner: str, fine_grained: bool = False) -> Token:
    if fine_grained:
        secret = f"github_pat_{rand(22)}_{rand(59)}"
    else:
        secret = f"ghp_{rand(36)}"
    ref = f"{owner}/{'fine-grained' if fine_grained else 'classic'}-{rand(6).lower()}"
    return state.add(Token("github", "github.token", ref, secret, owner))


def routes(state: State) -> list[Route]:
    def fault_response() -> Response | None:
        fault = state.fault("github")
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
        lands = time.monotonic() + state.github_revoke_delay_s
        for secret in credentials:
            token = state.by_secret(str(secret))
            if token is not None and token.dead_at is None:
                token.dead_at = lands
        return Response(status_code=202)

    async def user(request: Request) -> Response:
        if (fault := fault_response()) is not None:
            return fault
        auth = request.headers.get("authorization", "")
        secret = auth.split(" ", 1)[1] if " " in auth else ""
        token = state.by_secret(secret)
        if token is None or not token.alive():
            return JSONResponse(BAD_CREDENTIALS, status_code=401)
        return JSONResponse(
            {"login": token.owner, "id": abs(hash(token.owner)) % 10**8, "type": "User"}
        )

    return [
        Route("/github/credentials/revoke", revoke, methods=["POST"]),
        Route("/github/user", user, methods=["GET"]),
    ]
