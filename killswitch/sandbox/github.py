"""GitHub's sandbox plug-in, on the shared HTTP app: POST /credentials/revoke (202,
asynchronous), DELETE /installation/token, GET /user and GET /installation/repositories;
per agent a classic and a fine-grained token (an installation token `ghs_` on request).

As GitHub documents them: the revoke endpoint is for exposed credentials — unauthenticated
(403 when authenticated), at most 1,000 tokens a request (422 "Validation failed" beyond,
or on a malformed body), personal access and OAuth/App user tokens only (an installation
token in the list is left alone: it is revoked with `DELETE /installation/token`,
authenticated with itself, 204). An installation token cannot call GET /user (403 "Resource
not accessible by integration"). Revocation lands a little after the 202.

Sandbox only (`/_sandbox/github/settings`): how long after the 202 a revocation lands
(`revoke_delay_s`), and a rate-limit mode for the unauthenticated revoke endpoint
(`rate_limit`: calls allowed per window and IP — GitHub allows 60 an hour; `used`, `reset_in_s`):
beyond it, 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset`, as GitHub answers.
`GET /_sandbox/github/calls` lists the revoke calls received (how many tokens, which refs).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
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

DOCS = "https://docs.github.com/rest"
BAD_CREDENTIALS = {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
MAX_TOKENS = 1000
HOUR = 3600.0


@dataclass
class Limit:
    """The revoke endpoint's unauthenticated rate limit, per client IP (None: no limit)."""

    calls: int | None = None
    window_s: float = HOUR
    used: dict[str, int] = field(default_factory=dict)
    resets_at: float = 0.0

    def take(self, ip: str) -> tuple[dict[str, str], bool]:
        """Count one call: its rate-limit headers (none when the mode is off), and whether
        it is over the limit."""
        if self.calls is None:
            return {}, False
        now = time.time()
        if now >= self.resets_at:
            self.used, self.resets_at = {}, now + self.window_s
        used = self.used[ip] = self.used.get(ip, 0) + 1
        headers = {
            "x-ratelimit-limit": str(self.calls),
            "x-ratelimit-remaining": str(max(self.calls - used, 0)),
            "x-ratelimit-used": str(min(used, self.calls)),
            "x-ratelimit-reset": str(int(self.resets_at) + 1),
            "x-ratelimit-resource": "core",
        }
        return headers, used > self.calls


@dataclass
class State:
    """What the stand-in remembers besides tokens."""

    delay_s: float = 1.0
    limit: Limit = field(default_factory=Limit)
    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Secret-scanning alerts by (repository, number), and the token that may read them.
    scanning: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    scanning_reader: str | None = None

    def clear(self) -> None:
        with self.lock:
            self.delay_s, self.limit, self.calls = 1.0, Limit(), []
            self.scanning, self.scanning_reader = {}, None


def mint(
    tokens: Tokens, owner: str, fine_grained: bool = False, installation: bool = False
) -> Token:
    """A classic (`ghp_`), fine-grained (`github_pat_`) or installation (`ghs_`) token."""
    if installation:
        secret, kind = f"ghs_{rand(36)}", "installation"
    elif fine_grained:
        secret, kind = f"github_pat_{rand(22)}_{rand(59)}", "fine-grained"
    else:
        secret, kind = f"ghp_{rand(36)}", "classic"
    ref = f"{owner}/{kind}-{rand(6).lower()}"
    return tokens.add(Token("github", "github.token", ref, secret, owner))


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth.split(" ", 1)[1].strip() if " " in auth else ""


def routes(tokens: Tokens, state: State) -> list[Route]:
    """The endpoints, and the sandbox-only settings and call log."""

    def fault_response() -> Response | None:
        fault = tokens.fault("github")
        if fault is None:
            return None
        headers = {"Retry-After": str(int(fault.retry_after or 1))} if fault.retry_after else {}
        if fault.status in (403, 429):
            reset = time.time() + (fault.retry_after or 60)
            headers |= {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(reset + 1))}
        return JSONResponse(
            {"message": "API rate limit exceeded", "documentation_url": DOCS},
            status_code=fault.status,
            headers=headers,
        )

    def invalid(why: str) -> JSONResponse:
        body = {"message": "Validation Failed", "documentation_url": DOCS, "errors": [why]}
        return JSONResponse(body, status_code=422)

    async def revoke(request: Request) -> Response:
        if (fault := fault_response()) is not None:
            return fault
        if request.headers.get("authorization"):
            return JSONResponse({"message": "Must not be authenticated"}, status_code=403)
        ip = request.client.host if request.client else "?"
        with state.lock:
            limited, exceeded = state.limit.take(ip)
        if exceeded:
            body = {
                "message": f"API rate limit exceeded for {ip}. (But here's the good news: "
                "Authenticated requests get a higher rate limit.)",
                "documentation_url": DOCS,
            }
            return JSONResponse(body, status_code=403, headers=limited)
        try:
            body = await request.json()
            credentials = [str(c) for c in body["credentials"]]
        except Exception:
            return invalid("credentials: an array of strings is required")
        if not credentials:
            return invalid("credentials: at least one")
        if len(credentials) > MAX_TOKENS:
            return invalid(f"credentials: at most {MAX_TOKENS} per request")
        lands = time.monotonic() + state.delay_s
        refs = []
        for secret in credentials:
            token = tokens.by_secret(secret)
            if token is None or secret.startswith("ghs_"):
                continue  # unknown, or a type this endpoint does not revoke
            refs.append(token.ref)
            if token.dead_at is None:
                token.dead_at = lands
        with state.lock:
            state.calls.append({"tokens": len(credentials), "refs": refs})
        return Response(status_code=202, headers=limited)

    async def installation_token(request: Request) -> Response:
        if (fault := fault_response()) is not None:
            return fault
        secret = _bearer(request)
        token = tokens.by_secret(secret)
        if token is None or not token.alive() or not secret.startswith("ghs_"):
            return JSONResponse(BAD_CREDENTIALS, status_code=401)
        token.status = "revoked"
        return Response(status_code=204)

    async def user(request: Request) -> Response:
        if (fault := fault_response()) is not None:
            return fault
        secret = _bearer(request)
        token = tokens.by_secret(secret)
        if token is None or not token.alive():
            return JSONResponse(BAD_CREDENTIALS, status_code=401)
        if secret.startswith("ghs_"):
            body = {"message": "Resource not accessible by integration", "documentation_url": DOCS}
            return JSONResponse(body, status_code=403)
        return JSONResponse(
            {"login": token.owner, "id": abs(hash(token.owner)) % 10**8, "type": "User"}
        )

    async def repositories(request: Request) -> Response:
        if (fault := fault_response()) is not None:
            return fault
        secret = _bearer(request)
        token = tokens.by_secret(secret)
        if token is None or not token.alive():
            return JSONResponse(BAD_CREDENTIALS, status_code=401)
        if not secret.startswith("ghs_"):
            body = {"message": "Resource not accessible by personal access token"}
            return JSONResponse({**body, "documentation_url": DOCS}, status_code=403)
        return JSONResponse({"total_count": 0, "repositories": []})

    async def settings(request: Request) -> Response:
        body = await request.json()
        with state.lock:
            if "revoke_delay_s" in body:
                state.delay_s = float(body["revoke_delay_s"])
            if "rate_limit" in body:
                # A fresh window from now; `used`: calls already made in it (from here).
                ip = request.client.host if request.client else "?"
                state.limit = Limit(
                    None if body["rate_limit"] is None else int(body["rate_limit"]),
                    float(body.get("reset_in_s", HOUR)),
                    {ip: int(body.get("used", 0))},
                    time.time() + float(body.get("reset_in_s", HOUR)),
                )
        return JSONResponse({"ok": True})

    async def calls(request: Request) -> Response:
        with state.lock:
            return JSONResponse(list(state.calls))

    async def scanning_seed(request: Request) -> Response:
        """{"repository", "number", "secret", "secret_type", "reader"}: an alert GitHub's
        secret scanning raised, and the token allowed to read it (sandbox only)."""
        body = await request.json()
        with state.lock:
            state.scanning[(str(body["repository"]), int(body["number"]))] = {
                "secret": str(body["secret"]),
                "secret_type": str(body.get("secret_type", "github_personal_access_token")),
            }
            state.scanning_reader = str(body["reader"])
        return JSONResponse({"ok": True})

    async def scanning_alert(request: Request) -> Response:
        """`GET /repos/{owner}/{repo}/secret-scanning/alerts/{alert_number}`: the REST alert,
        with its `secret` (the webhook carries none); 401 for a bad token, 404 unknown."""
        with state.lock:
            reader = state.scanning_reader
            repository = f"{request.path_params['owner']}/{request.path_params['repo']}"
            try:
                number = int(request.path_params["number"])
            except ValueError:
                number = -1
            found = state.scanning.get((repository, number))
        if reader is None or _bearer(request) != reader:
            return JSONResponse(BAD_CREDENTIALS, status_code=401)
        if found is None:
            return JSONResponse({"message": "Not Found", "documentation_url": DOCS}, 404)
        html = f"https://github.com/{repository}/security/secret-scanning/{number}"
        return JSONResponse(
            {
                "number": number,
                "state": "open",
                "secret_type": found["secret_type"],
                "secret_type_display_name": "GitHub Personal Access Token",
                "secret": found["secret"],
                "validity": "active",
                "html_url": html,
                "url": f"https://api.github.com/repos/{repository}/secret-scanning/alerts/{number}",
            }
        )

    return [
        Route("/_sandbox/github/settings", settings, methods=["POST"]),
        Route("/_sandbox/github/calls", calls, methods=["GET"]),
        Route("/github/credentials/revoke", revoke, methods=["POST"]),
        Route("/github/installation/token", installation_token, methods=["DELETE"]),
        Route("/github/installation/repositories", repositories, methods=["GET"]),
        Route("/github/user", user, methods=["GET"]),
        Route("/_sandbox/github/secret-scanning", scanning_seed, methods=["POST"]),
        Route(
            "/github/repos/{owner}/{repo}/secret-scanning/alerts/{number}",
            scanning_alert,
            methods=["GET"],
        ),
    ]


def configure(http_url: str, **settings: Any) -> None:
    """Change the stand-in's sandbox-only settings (`http_url`: the shared app)."""
    httpx.post(f"{http_url}/_sandbox/github/settings", json=settings, timeout=10).raise_for_status()


def raise_scanning_alert(
    http_url: str, repository: str, number: int, secret: str, reader: str
) -> None:
    """Make the stand-in hold a secret-scanning alert readable with `reader`."""
    httpx.post(
        f"{http_url}/_sandbox/github/secret-scanning",
        json={"repository": repository, "number": number, "secret": secret, "reader": reader},
        timeout=10,
    ).raise_for_status()


def set_delay(http_url: str, seconds: float) -> None:
    """How long after the 202 the stand-in's revocations land (`http_url`: the shared app)."""
    configure(http_url, revoke_delay_s=seconds)


def revoke_calls(http_url: str) -> list[dict[str, Any]]:
    """The revoke calls the stand-in received: `{"tokens": n, "refs": [...]}` each."""
    response = httpx.get(f"{http_url}/_sandbox/github/calls", timeout=10)
    response.raise_for_status()
    calls: list[dict[str, Any]] = response.json()
    return calls


@dataclass(frozen=True, slots=True)
class GithubStandIn:
    """Routes on the shared HTTP app, behind its proxy."""

    fault_target: str | None = PROXY

    def serve(self, host: Host) -> Hosted:
        """Its routes; `/_sandbox/seed` mints `{"fine_grained": bool, "installation": bool}`
        tokens."""
        state = State()
        return Hosted(
            routes=routes(host.tokens, state),
            mint=lambda body: mint(
                host.tokens,
                str(body["owner"]),
                bool(body.get("fine_grained")),
                bool(body.get("installation")),
            ),
            reset=state.clear,
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
