"""The Azure stand-in's own control routes, and the functions that call them (for tests
and for the sandbox CLI to wire later):

- `POST /_sandbox/azure/propagation {"seconds": N}`: from now on a principal disabled, or a
  secret removed, keeps getting tokens for N seconds after the change (0: at once);
- `POST /_sandbox/azure/token-faults {"app_id", "code": 90024 | 90033 | null, "count",
  "status"}`: the token endpoint answers that app's next `count` requests (all, without a
  count) with Entra's service error, with HTTP `status` (400 by default); `code: null`
  clears it."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from killswitch.sandbox.azure.state import AzureState, Fault
from killswitch.sandbox.azure.token import SERVICE_ERRORS


def routes(state: AzureState) -> list[Route]:
    """The propagation and token-fault switches (sandbox only: no token asked)."""

    async def propagation(request: Request) -> JSONResponse:
        seconds = float((await request.json())["seconds"])
        if seconds < 0:
            return JSONResponse({"error": "seconds must be >= 0"}, status_code=400)
        with state.lock:
            state.propagation_s = seconds
        return JSONResponse({"seconds": seconds})

    async def token_faults(request: Request) -> JSONResponse:
        body = await request.json()
        app_id, code = str(body["app_id"]), body.get("code")
        with state.lock:
            if code is None:
                state.faults.pop(app_id, None)
                return JSONResponse({"ok": True})
            if int(code) not in SERVICE_ERRORS:
                return JSONResponse({"error": f"codes: {sorted(SERVICE_ERRORS)}"}, status_code=400)
            count = body.get("count")
            state.faults[app_id] = Fault(
                int(code), None if count is None else int(count), int(body.get("status", 400))
            )
        return JSONResponse({"ok": True})

    return [
        Route("/_sandbox/azure/propagation", propagation, methods=["POST"]),
        Route("/_sandbox/azure/token-faults", token_faults, methods=["POST"]),
    ]


def _post(info: dict[str, Any], path: str, body: dict[str, Any]) -> None:
    from revokers.azure.graph import tls

    httpx.post(
        f"{info['url']}/_sandbox/azure/{path}",
        json=body,
        verify=tls(info["ca_cert"]),
        timeout=10,
    ).raise_for_status()


def set_propagation(info: dict[str, Any], seconds: float) -> None:
    """Make disabled principals and removed secrets keep working for `seconds` after the
    change (`info`: the stand-in's `providers.azure` entry of `sandbox status`)."""
    _post(info, "propagation", {"seconds": seconds})


def set_token_fault(
    info: dict[str, Any],
    app_id: str,
    code: int | None,
    count: int | None = None,
    status: int = 400,
) -> None:
    """Answer the app's next `count` token requests (every one: None) with AADSTS `code`
    (90024 or 90033) and HTTP `status`; `code=None` clears the fault."""
    _post(info, "token-faults", {"app_id": app_id, "code": code, "count": count, "status": status})
