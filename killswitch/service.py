"""`killswitch serve`: one warm process for the on-call path (the `/killswitch` Slack
endpoint, later the alert webhooks) and the scheduled zombie sweep.

Slack requests are checked here before Bolt sees them: signed with the signing secret,
no older than the replay window, never seen before. A refused request changes nothing and
is ledgered with the user it claims to come from.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from killswitch.errors import KillSwitchError
from killswitch.recorder import refuse
from killswitch.request import Request
from killswitch.run_admission import SCHEDULE_PARAMETERS
from killswitch.runtime import Runtime
from killswitch.settings import Settings
from killswitch.slack_app import command
from killswitch.slack_app.gate import (
    MAX_BODY,
    RefusalThrottle,
    RequestGuard,
    SeenRequests,
    UnverifiedRequestError,
    claimed,
)

log = logging.getLogger(__name__)
SWEEP_DEPLOYMENT = "scheduled"


def build(runtime: Runtime) -> Starlette:
    """The service's HTTP app."""
    from slack_bolt.adapter.starlette import SlackRequestHandler

    from killswitch.slack_app.app import SlackCommands

    config = runtime.settings.slack_app
    commands = SlackCommands(runtime)
    assert config.signing_secret is not None  # noqa: S101  (SlackCommands checked it)
    guard = RequestGuard(
        config.signing_secret.get_secret_value(),
        config.replay_window_s,
        SeenRequests(runtime.inventory),
    )
    handler = SlackRequestHandler(commands.app)

    throttle = RefusalThrottle()

    def refuse_request(problem: str, body: bytes, client: str) -> None:
        """Ledger a refused request (rate-limited per claimed user and client address)."""
        user, channel, text = claimed(body)
        suppressed = throttle.admit(f"{client}:{user}")
        if suppressed is None:
            return
        refusal = Request(
            agent_id=command.claimed(text).agent_id or "-",
            reason=text[:200] or "-",
            actor=f"slack:unverified:{user}",
            trigger=f"slack:{channel}",
        )
        detail = (
            f"{problem} ({suppressed} more refused since the last line)" if suppressed else problem
        )
        refuse(runtime, refusal, UnverifiedRequestError(detail), "slack-request")

    async def slack_events(request: HttpRequest) -> Response:
        client = request.client.host if request.client else "?"
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            too_big = f"body larger than {MAX_BODY} bytes"
            await run_in_threadpool(refuse_request, too_big, b"", client)
            return JSONResponse({"error": too_big}, status_code=413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                too_big = f"body larger than {MAX_BODY} bytes"
                await run_in_threadpool(refuse_request, too_big, b"", client)
                return JSONResponse({"error": too_big}, status_code=413)
        problem = await run_in_threadpool(guard.problem, request.headers, body)
        if problem is not None:
            await run_in_threadpool(refuse_request, problem, body, client)
            return JSONResponse({"error": problem}, status_code=401)
        # Bolt's dispatch blocks until the listener acks: keep it off the event loop.
        answer = await run_in_threadpool(_dispatch, handler, request, body)
        if answer.status_code == 404:  # signed, but neither our command nor our button
            await run_in_threadpool(refuse_request, "not a /killswitch request", body, client)
        return answer

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
    from slack_bolt.context import BoltContext
    from slack_bolt.request.internals import build_context

    app = handler.app  # type: ignore[attr-defined]
    bolt_request = to_bolt_request(request, body)
    form = parse_qs(body.decode(), keep_blank_values=True)
    if "command" in form and "payload" not in form and not bolt_request.body:
        # slack-bolt reads any form body that contains the word "payload" as an interactive
        # payload, and drops a slash command whose text merely mentions it: parse it as the
        # form it is.
        bolt_request.body = {k: v[-1] for k, v in form.items()}
        bolt_request.context = build_context(BoltContext({}), bolt_request.body)
    return to_starlette_response(app.dispatch(bolt_request))


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
    of this process; each scheduled run is a subprocess of it (its own runtime), admitted
    as the schedule's own run (`killswitch.run_admission`); other runs need a ticket."""
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
                # Exactly what admits an unticketed run as the schedule's (run_admission).
                parameters=dict(SCHEDULE_PARAMETERS),
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
