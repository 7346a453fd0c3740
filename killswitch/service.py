"""`killswitch serve`: one warm process for the on-call path (the `/killswitch` Slack
endpoint, later the alert webhooks) and the scheduled zombie sweep.

Slack requests are checked here before Bolt sees them: signed with the signing secret,
no older than the replay window, never seen before. A refused request changes nothing and
is ledgered with the user it claims to come from.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from killswitch.errors import KillSwitchError, RefusedError
from killswitch.recorder import refuse
from killswitch.request import Request
from killswitch.runtime import Runtime
from killswitch.settings import Settings
from killswitch.slack_app import command

log = logging.getLogger(__name__)
SWEEP_DEPLOYMENT = "scheduled"


class UnverifiedRequestError(RefusedError):
    code = "unverified-request"
    remediation = "Requests must come from Slack: signed, fresh (5 minutes), and not replayed."


class RequestGuard:
    """Signature, timestamp window and replay check of Slack's signed requests."""

    def __init__(self, signing_secret: str, window_s: int) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.window_s = window_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def problem(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Why the request is refused, or None when it is Slack's and new."""
        timestamp = headers.get("x-slack-request-timestamp")
        signature = headers.get("x-slack-signature")
        if not timestamp or not signature:
            return "unsigned request"
        try:
            age = abs(time.time() - int(timestamp))
        except ValueError:
            return "malformed timestamp"
        if age > self.window_s:
            return f"stale request ({age:.0f}s old; the window is {self.window_s}s)"
        if not self.verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return "signature does not match the signing secret"
        digest = hashlib.sha256(signature.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            self._seen = {k: t for k, t in self._seen.items() if now - t < self.window_s}
            if digest in self._seen:
                return "replayed request (this exact signed request was seen before)"
            self._seen[digest] = now
        return None


def claimed(body: bytes) -> tuple[str, str, str]:
    """(user, channel, text) a request claims, for the ledger line of a refusal."""
    form = {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}
    if "payload" in form:
        try:
            payload = json.loads(form["payload"])
            return (
                str(payload.get("user", {}).get("id", "?")),
                str(payload.get("channel", {}).get("id", "?")),
                "button",
            )
        except ValueError:
            return "?", "?", "payload"
    return form.get("user_id", "?"), form.get("channel_id", "?"), form.get("text", "")


def build(runtime: Runtime) -> Starlette:
    """The service's HTTP app."""
    from slack_bolt.adapter.starlette import SlackRequestHandler

    from killswitch.slack_app.app import SlackCommands

    config = runtime.settings.slack_app
    commands = SlackCommands(runtime)
    assert config.signing_secret is not None  # noqa: S101  (SlackCommands checked it)
    guard = RequestGuard(config.signing_secret.get_secret_value(), config.replay_window_s)
    handler = SlackRequestHandler(commands.app)

    async def slack_events(request: HttpRequest) -> Response:
        body = await request.body()
        problem = guard.problem(request.headers, body)
        if problem is not None:
            user, channel, text = claimed(body)
            agent = command.claimed(text).agent_id or "-"
            refusal = Request(
                agent_id=agent,
                reason=text[:200] or "-",
                actor=f"slack:unverified:{user[:32]}",
                trigger=f"slack:{channel[:32]}",
            )
            await run_in_threadpool(
                refuse, runtime, refusal, UnverifiedRequestError(problem), "slack-request"
            )
            return JSONResponse({"error": problem}, status_code=401)
        # Bolt's dispatch blocks until the listener acks: keep it off the event loop.
        return await run_in_threadpool(_dispatch, handler, request, body)

    async def health(request: HttpRequest) -> Response:
        return JSONResponse({"ok": True, "target": runtime.settings.target})

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )


def _dispatch(handler: object, request: HttpRequest, body: bytes) -> Response:
    from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response

    app = handler.app  # type: ignore[attr-defined]
    return to_starlette_response(app.dispatch(to_bolt_request(request, body)))


def serve(runtime: Runtime, host: str, port: int) -> None:
    """Run until interrupted."""
    import uvicorn

    from killswitch.orchestrator import prefect_environment

    try:
        prefect_environment(runtime.settings)
    except KillSwitchError as exc:  # runs fall back to break-glass and say so in the thread
        log.warning("%s — Slack runs will go break-glass until it answers", exc.message)
        log.warning("the scheduled sweep needs Prefect: not scheduled")
    else:
        schedule_sweep(runtime.settings)
    uvicorn.run(build(runtime), host=host, port=port, log_level="warning")


def schedule_sweep(settings: Settings) -> threading.Thread | None:
    """Serve the `zombie-sweep` deployment on `sweep.cron` from a Prefect runner in a thread
    of this process; each scheduled run is a subprocess of it (its own runtime)."""
    cron = settings.sweep.cron
    if not cron:
        log.info("sweep.cron is not set: no scheduled sweep")
        return None

    def run() -> None:
        from prefect.runner import Runner
        from prefect.schedules import Cron
        from prefect.types.entrypoint import EntrypointType

        from flows.zombie_sweep import zombie_sweep

        async def main() -> None:
            runner = Runner(name="killswitch-serve", pause_on_shutdown=False)
            await runner.aadd_flow(
                zombie_sweep,
                name=SWEEP_DEPLOYMENT,
                schedule=Cron(cron, timezone=settings.sweep.timezone),
                parameters={"actor": "schedule", "trigger": "schedule"},
                tags=["killswitch", "sweep"],
                description="killswitch zombie sweep (settings: sweep.*)",
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
            log.info("zombie sweep scheduled: %s (%s)", cron, settings.sweep.timezone)
            await runner.start(webserver=False)

        try:
            asyncio.run(main())
        except Exception:
            log.exception("the sweep scheduler stopped")

    thread = threading.Thread(target=run, name="sweep-scheduler", daemon=True)
    thread.start()
    return thread
