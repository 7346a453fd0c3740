"""The sandbox's shared HTTP app: one Starlette app on one uvicorn server, where plug-ins
add their stand-ins' routes, behind one fault proxy (`saas`).

`/_sandbox/*` is the sandbox's own control surface: seeding (`seed`, `bulk`, dispatched by
provider to the plug-in that minted it), injected HTTP faults, `reset`, and the fault
proxies' control. No real provider has it, and no revoker calls it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from killswitch.sandbox.plugin import Hosted
from killswitch.sandbox.proxy import Proxies
from killswitch.sandbox.serving import ThreadedServer
from killswitch.sandbox.tokens import Fault, Lag, Tokens

PROXY = "saas"  # the shared app's fault proxy (and its `stand_ins` entry)


def _proxy_routes(proxies: Proxies) -> list[BaseRoute]:
    async def proxy_list(request: Request) -> JSONResponse:
        return JSONResponse(proxies.describe())

    async def proxy_set(request: Request) -> JSONResponse:
        """POST {"name", "upstream_port", ["latency_ms"]} adds or re-points a proxy;
        POST /{name} {"latency_ms", "kind", "count", "retry_after_s", "down"} sets faults."""
        body = await request.json()
        name = request.path_params.get("name")
        try:
            if name is None:
                name = str(body["name"])
                if name in proxies.proxies:
                    proxies.proxies[name].upstream_port = int(body["upstream_port"])
                else:
                    proxies.add(name, int(body["upstream_port"]), float(body.get("latency_ms", 0)))
                return JSONResponse(proxies.describe()[name])
            if name == "*":
                return JSONResponse({n: proxies.set(n, **body) for n in list(proxies.proxies)})
            return JSONResponse(proxies.set(name, **body))
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def proxy_reset(request: Request) -> JSONResponse:
        proxies.reset_counts()
        return JSONResponse({"ok": True})

    return [
        Route("/_sandbox/proxies", proxy_list, methods=["GET"]),
        Route("/_sandbox/proxies", proxy_set, methods=["POST"]),
        Route("/_sandbox/proxies/counts/reset", proxy_reset, methods=["POST"]),
        Route("/_sandbox/proxies/{name}", proxy_set, methods=["POST"]),
    ]


def build(
    tokens: Tokens,
    proxies: Proxies,
    hosted: Mapping[str, Hosted],
    after_reset: Callable[[], None] = lambda: None,
) -> Starlette:
    """The app: the control surface, then every plug-in's own routes."""

    async def seed(request: Request) -> JSONResponse:
        """{"provider", "owner", …the plug-in's own options}: one fresh credential, its secret
        in the answer (seeding only)."""
        body = await request.json()
        plugin = hosted.get(str(body.get("provider")))
        if plugin is None or plugin.mint is None:
            return JSONResponse({"error": f"no seeding for {body.get('provider')}"}, 400)
        token = plugin.mint(body)
        return JSONResponse({"kind": token.kind, "ref": token.ref, "secret": token.secret})

    async def bulk(request: Request) -> JSONResponse:
        """{"provider", "owner", "count", …}: many credentials at once, no secrets back (scale
        tests); DELETE {"owner"} forgets them."""
        body = await request.json()
        if request.method == "DELETE":
            return JSONResponse({"forgotten": tokens.forget(str(body["owner"]))})
        plugin = hosted.get(str(body.get("provider")))
        if plugin is None or plugin.bulk is None:
            return JSONResponse({"error": f"no bulk seeding for {body.get('provider')}"}, 400)
        return JSONResponse({"minted": plugin.bulk(body)})

    async def faults(request: Request) -> JSONResponse:
        body = await request.json()
        with tokens.lock:
            tokens.faults[body["provider"]] = Fault(
                int(body["status"]), body.get("retry_after"), int(body.get("count", 1))
            )
        return JSONResponse({"ok": True})

    def lagger(provider: str) -> Callable[[Lag], Mapping[str, Any]] | None:
        """The plug-in's own lag, or the shared credential store's for a plug-in minting there."""
        plugin = hosted.get(provider)
        if plugin is None:
            return None
        if plugin.lag is not None:
            return plugin.lag
        if plugin.mint is not None:
            return lambda lag: tokens.set_lag(provider, lag)
        return None

    async def lags(request: Request) -> JSONResponse:
        """GET: the providers whose stand-ins can lag, and what is in force."""
        able = sorted(p for p in hosted if lagger(p) is not None)
        with tokens.lock:
            shared = {p: lag.as_dict() for p, lag in tokens.lags.items()}
        return JSONResponse({"providers": able, "shared": shared})

    async def lag(request: Request) -> JSONResponse:
        """POST /_sandbox/lag/<provider> {"seconds", "flap"}: its propagation delay."""
        provider = request.path_params["provider"]
        body = await request.json()
        try:
            wanted = Lag(float(body.get("seconds", 0)), bool(body.get("flap", False)))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        targets = [p for p in hosted if lagger(p) is not None] if provider == "*" else [provider]
        answered: dict[str, Any] = {}
        for name in targets:
            set_lag = lagger(name)
            if set_lag is None:
                able = ", ".join(sorted(p for p in hosted if lagger(p) is not None))
                return JSONResponse(
                    {"error": f"{name!r} has no propagation delay; these do: {able}"},
                    status_code=400,
                )
            answered[name] = dict(set_lag(wanted))
        return JSONResponse(answered)

    def forget_everything() -> None:
        tokens.clear()
        for plugin in hosted.values():
            plugin.reset()
        after_reset()

    async def reset(request: Request) -> JSONResponse:
        await run_in_threadpool(forget_everything)  # some stand-ins restart: not on the loop
        return JSONResponse({"ok": True})

    routes: list[BaseRoute] = [
        *_proxy_routes(proxies),
        Route("/_sandbox/seed", seed, methods=["POST"]),
        Route("/_sandbox/bulk", bulk, methods=["POST", "DELETE"]),
        Route("/_sandbox/faults", faults, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/lag", lags, methods=["GET"]),
        Route("/_sandbox/lag/{provider}", lag, methods=["POST"]),
    ]
    for plugin in hosted.values():
        routes += plugin.routes
    return Starlette(routes=routes)


class Server(ThreadedServer):
    """The shared app on a free loopback port, in a thread of the sandbox daemon."""

    @property
    def url(self) -> str:
        """The app's base URL, direct."""
        return f"http://127.0.0.1:{self.port}"


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def control_client() -> httpx.Client:
    """One client for the control surface, shared by the seeding threads: a fresh
    `httpx.post` builds an SSL context per call (the CA bundle read again), which cost
    seconds of CPU over a fleet's seeding."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=32))
        return _client


def mint(url: str, provider: str, owner: str, **extra: Any) -> dict[str, str]:
    """A fresh credential at the stand-in (`url`: the shared app): {kind, ref, secret}."""
    response = control_client().post(
        f"{url}/_sandbox/seed", json={"provider": provider, "owner": owner, **extra}, timeout=10
    )
    response.raise_for_status()
    minted: dict[str, str] = response.json()
    return minted


def inject_fault(
    url: str, provider: str, status: int, *, retry_after: float | None = None, count: int = 1
) -> None:
    """Make the stand-in answer the next `count` calls for `provider` with `status`."""
    httpx.post(
        f"{url}/_sandbox/faults",
        json={"provider": provider, "status": status, "retry_after": retry_after, "count": count},
        timeout=10,
    ).raise_for_status()


def set_lag(url: str, provider: str, seconds: float, *, flap: bool = False) -> dict[str, Any]:
    """A provider's propagation delay (`*`: every one that has it; 0 s: off); what is set."""
    response = httpx.post(
        f"{url}/_sandbox/lag/{provider}", json={"seconds": seconds, "flap": flap}, timeout=10
    )
    if response.status_code == 400:
        from killswitch.errors import SandboxError

        raise SandboxError(str(response.json().get("error")))
    response.raise_for_status()
    answered: dict[str, Any] = response.json()
    return answered


def reset(url: str) -> None:
    """Every stand-in in the daemon forgets everything (the sandbox's `up --reset`)."""
    httpx.post(f"{url}/_sandbox/reset", timeout=60).raise_for_status()
