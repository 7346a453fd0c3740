"""Stand-ins for Slack, GitHub, OpenAI and Anthropic: one Starlette app, a router each.

Each keeps its provider's documented shapes and token formats. `/_sandbox/*` is the
sandbox's own control surface (seeding, fault injection, the Slack messages received); no
real provider has it, and no revoker calls it.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from killswitch.sandbox.gcp import GcpState, token_exchange
from killswitch.sandbox.proxy import Proxies
from killswitch.sandbox.saas import anthropic, github, openai, slack
from killswitch.sandbox.saas.state import Fault, State
from killswitch.sandbox.serving import ThreadedServer

PROVIDERS = ("slack", "github", "openai", "anthropic")


def build(state: State, proxies: Proxies | None = None, gcp: GcpState | None = None) -> Starlette:
    async def seed(request: Request) -> JSONResponse:
        body = await request.json()
        provider, owner = body["provider"], body["owner"]
        if provider == "slack":
            token = slack.mint(state, owner, body.get("kind", "slack.bot-token"))
        elif provider == "github":
            token = github.mint(state, owner, bool(body.get("fine_grained")))
        elif provider == "openai":
            token = openai.mint(state, owner)
        elif provider == "anthropic":
            token = anthropic.mint(state, owner)
        else:
            return JSONResponse({"error": f"unknown provider {provider}"}, status_code=400)
        return JSONResponse({"kind": token.kind, "ref": token.ref, "secret": token.secret})

    async def faults(request: Request) -> JSONResponse:
        body = await request.json()
        with state.lock:
            state.faults[body["provider"]] = Fault(
                int(body["status"]), body.get("retry_after"), int(body.get("count", 1))
            )
        return JSONResponse({"ok": True})

    async def settings(request: Request) -> JSONResponse:
        body = await request.json()
        if "github_revoke_delay_s" in body:
            state.github_revoke_delay_s = float(body["github_revoke_delay_s"])
        with state.lock:
            state.usergroups.update(body.get("usergroups", {}))
        return JSONResponse({"ok": True})

    async def reset(request: Request) -> JSONResponse:
        state.clear()
        if gcp is not None:
            gcp.reset()
        return JSONResponse({"ok": True})

    async def gcp_token(request: Request) -> JSONResponse:
        """Google's OAuth2 token endpoint for service-account keys (jwt-bearer grant)."""
        if gcp is None:
            return JSONResponse({"error": "no GCP stand-in here"}, status_code=404)
        status, body = token_exchange(gcp, await request.body())
        return JSONResponse(body, status_code=status)

    async def backdate(request: Request) -> JSONResponse:
        """{"access_key_id", "created_days_ago", "last_used_days_ago"}: rewrite an access
        key's history inside moto, which runs in this process (sandbox only)."""
        body = await request.json()
        try:
            moved = _backdate_aws_key(
                str(body["access_key_id"]),
                int(body["created_days_ago"]),
                body.get("last_used_days_ago"),
            )
        except KeyError as exc:
            return JSONResponse({"error": f"no such key {exc}"}, status_code=404)
        return JSONResponse(moved)

    async def bulk(request: Request) -> JSONResponse:
        """{"provider", "owner", "count", ["project"]}: many keys at once, no secrets back
        (scale tests); DELETE {"owner"} forgets them."""
        body = await request.json()
        if request.method == "DELETE":
            return JSONResponse({"forgotten": state.forget(str(body["owner"]))})
        provider, owner, count = body["provider"], str(body["owner"]), int(body["count"])
        if provider == "openai":
            for _ in range(count):
                openai.mint(state, owner, body.get("project", openai.PROJECT))
        elif provider == "anthropic":
            for _ in range(count):
                anthropic.mint(state, owner)
        else:
            return JSONResponse({"error": f"no bulk seeding for {provider}"}, status_code=400)
        return JSONResponse({"minted": count})

    async def messages(request: Request) -> JSONResponse:
        with state.lock:
            return JSONResponse(list(state.messages))

    async def proxy_list(request: Request) -> JSONResponse:
        return JSONResponse(proxies.describe() if proxies else {})

    async def proxy_set(request: Request) -> JSONResponse:
        """POST {"name", "upstream_port", ["latency_ms"]} adds or re-points a proxy;
        POST /{name} {"latency_ms", "kind", "count", "retry_after_s", "down"} sets faults."""
        if proxies is None:
            return JSONResponse({"error": "no proxies here"}, status_code=404)
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
        if proxies is not None:
            proxies.reset_counts()
        return JSONResponse({"ok": True})

    routes: list[Any] = [
        Route("/_sandbox/proxies", proxy_list, methods=["GET"]),
        Route("/_sandbox/proxies", proxy_set, methods=["POST"]),
        Route("/_sandbox/proxies/counts/reset", proxy_reset, methods=["POST"]),
        Route("/_sandbox/proxies/{name}", proxy_set, methods=["POST"]),
        Route("/_sandbox/seed", seed, methods=["POST"]),
        Route("/_sandbox/bulk", bulk, methods=["POST", "DELETE"]),
        Route("/_sandbox/aws/backdate", backdate, methods=["POST"]),
        Route("/gcp/token", gcp_token, methods=["POST"]),
        Route("/_sandbox/faults", faults, methods=["POST"]),
        Route("/_sandbox/settings", settings, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/slack/messages", messages, methods=["GET"]),
    ]
    for module in (slack, github, openai, anthropic):
        routes += module.routes(state)
    return Starlette(routes=routes)


def _backdate_aws_key(key_id: str, created_days: int, used_days: int | None) -> dict[str, str]:
    from datetime import timedelta

    from moto.core.utils import utcnow
    from moto.iam.models import AccessKeyLastUsed, iam_backends

    for _, account in list(iam_backends.items()):
        backend = account["aws"]
        key = backend.access_keys.get(key_id)
        if key is None:
            continue
        key.create_date = utcnow() - timedelta(days=created_days)
        if used_days is not None:
            key.last_used = AccessKeyLastUsed(
                timestamp=utcnow() - timedelta(days=int(used_days)),
                service="iam",
                region="us-east-1",
            )
        return {"access_key_id": key_id, "create_date": key.create_date.isoformat()}
    raise KeyError(key_id)


class Server(ThreadedServer):
    """The SaaS stand-ins on a free loopback port, in a thread of the sandbox daemon."""

    def __init__(
        self,
        state: State | None = None,
        proxies: Proxies | None = None,
        gcp: GcpState | None = None,
    ) -> None:
        self.state = state or State()
        super().__init__(build(self.state, proxies, gcp), "saas-stand-ins")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
