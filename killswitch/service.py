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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from killswitch import heap
from killswitch.errors import ConfigurationError, KillSwitchError
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

if TYPE_CHECKING:
    from killswitch.alerts.handling import AlertDesk
    from killswitch.slack_app.app import SlackCommands

log = logging.getLogger(__name__)
SWEEP_DEPLOYMENT = "scheduled"


def build(runtime: Runtime, *, desk: list[AlertDesk] | None = None) -> Starlette:
    """The service's HTTP app: the Slack endpoint (when Slack is configured) and the alert
    receiver (when a source is); `desk` receives the alert desk (tests wait on its runs)."""
    settings = runtime.settings
    routes: list[BaseRoute] = [Route("/healthz", _health(runtime), methods=["GET"])]
    commands = None
    if settings.slack_app.signing_secret is not None or settings.slack_app.bot_token is not None:
        from killswitch.slack_app.app import SlackCommands

        commands = SlackCommands(runtime)
        routes.append(Route("/slack/events", _slack_endpoint(runtime, commands), methods=["POST"]))
    from killswitch.alerts.settings import enabled_sources

    if enabled_sources(settings.alerts):
        desk_ = alert_desk(runtime, commands)
        if desk is not None:
            desk.append(desk_)
        routes += alert_routes(runtime, desk_)
    if len(routes) == 1:
        raise ConfigurationError(
            "nothing to serve: configure slack_app (signing_secret, bot_token) or an alert "
            "source (alerts.<source>)"
        )
    return Starlette(routes=routes)


def _health(runtime: Runtime) -> Callable[[HttpRequest], Awaitable[Response]]:
    async def health(request: HttpRequest) -> Response:
        return JSONResponse({"ok": True, "target": runtime.settings.target})

    return health


def alert_desk(runtime: Runtime, commands: SlackCommands | None) -> AlertDesk:
    """The alert desk over the configured playbooks (refused when any is invalid)."""
    from killswitch.alerts.handling import AlertDesk
    from killswitch.alerts.playbooks import default_directory, load

    book = load(runtime.settings.alerts.playbooks_dir or default_directory())
    return AlertDesk(runtime, book, slack=commands)


def alert_routes(runtime: Runtime, desk: AlertDesk) -> list[BaseRoute]:
    """`POST /alerts/<source>`: authenticated by each source, handled by the desk; every
    refusal ledgered (rate-limited per source and client)."""
    from killswitch.alerts.receiver import routes
    from killswitch.alerts.refusals import AlertRefusedError
    from killswitch.alerts.replay import SeenAlerts

    throttle = RefusalThrottle()

    def refuse_alert(source: str, problem: AlertRefusedError, client: str, claimed: str) -> None:
        suppressed = throttle.admit(f"alert:{source}:{client}")
        if suppressed is None:
            return
        refusal = Request(
            agent_id="-",
            reason=claimed[:200] or "-",
            actor=f"alert:unverified:{source}",
            trigger=f"alert:{source}:{client}",
        )
        if suppressed:
            problem = type(problem)(f"{problem.message} ({suppressed} more refused since)")
        refuse(runtime, refusal, problem, "alert-request")

    return list(
        routes(
            runtime.settings.alerts,
            handle=desk,
            refuse=refuse_alert,
            replay=SeenAlerts(runtime.inventory),
        )
    )


def _slack_endpoint(
    runtime: Runtime, commands: SlackCommands
) -> Callable[[HttpRequest], Awaitable[Response]]:
    """`/slack/events`: checked here (size, signature, window, replay) before Bolt sees it."""
    from slack_bolt.adapter.starlette import SlackRequestHandler

    config = runtime.settings.slack_app
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

    return slack_events


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

    app = build(runtime)  # refuses to start on an invalid playbook or nothing to serve
    try:
        warm(runtime.settings)
    except KillSwitchError as exc:  # runs fall back to break-glass and say so in the thread
        log.warning("%s — Slack runs will go break-glass until it answers", exc.message)
        log.warning("the scheduled sweep needs Prefect: not scheduled")
    else:
        schedule_sweep(runtime.settings)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def warm(settings: Settings) -> None:
    """Before the first request: Prefect pointed at its API and the flows imported (the first
    alert or command must not pay for it), and what is loaded now kept out of the garbage
    collector's full scans (killswitch/heap.py) — that even when Prefect does not answer
    (KillSwitchError: runs go break-glass)."""
    from killswitch.orchestrator import prefect_environment

    try:
        prefect_environment(settings)
        import flows.contain  # noqa: F401
        import flows.restore  # noqa: F401
    finally:
        heap.keep_warm()


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
