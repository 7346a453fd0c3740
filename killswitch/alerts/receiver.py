"""`POST /alerts/<source>`: the door of the alert pipeline. Everything from an HTTP request
to authenticated, validated `Alert`s — or a refusal.

The receiver reads the body within `max_body` (from Content-Length and while streaming),
lets the source authenticate it before anything is parsed, and hands each alert to
`handle` (the caller decides and answers; the receiver answers 202 with its dict). Every
refusal is passed to `refuse` (the caller ledgers it) and answered 4xx with
`{"error": …, "code": …}`; no input makes it answer 5xx. The one 503s are the sender's cue
to retry: the SNS certificate host did not answer, the replay store (the inventory
database) failed, or `handle` failed (its replay entry is dropped, so the retry is
accepted).
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from killswitch.alerts.models import SOURCES, Alert
from killswitch.alerts.openapi import document
from killswitch.alerts.refusals import (
    AlertRefusedError,
    MalformedError,
    SourceDisabledError,
    TooLargeError,
    UnknownSourceError,
)
from killswitch.alerts.replay import ReplayCache
from killswitch.alerts.settings import AlertSettings
from killswitch.alerts.sources import Admitted, Incoming, Source, claim
from killswitch.alerts.sources.alertmanager import AlertmanagerSource
from killswitch.alerts.sources.aws import AwsSource
from killswitch.alerts.sources.generic import GenericSource
from killswitch.alerts.sources.github import GithubSource
from killswitch.alerts.sources.sns import Fetch, SnsSource, https_fetch
from killswitch.store_postgres import DatabaseUnavailable

log = logging.getLogger(__name__)

Handle = Callable[[Alert], Awaitable[dict[str, Any]]]
# (source, the refusal, client address, what the request claims to be) → ledgered.
Refuse = Callable[[str, AlertRefusedError, str, str], None]


class UnreadableError(MalformedError):
    """A request no source rule covers broke the reading of it (a defect of ours: logged)."""

    code = "alert-unreadable"
    status = 400


class MethodNotAllowedError(AlertRefusedError):
    code = "alert-method-not-allowed"
    status = 405
    remediation = "Alerts are sent with POST /alerts/<source>."


class NotHandledError(AlertRefusedError):
    code = "alert-not-handled"
    status = 503
    remediation = "The alert was authenticated but could not be handled; the sender retries."


def build_sources(
    settings: AlertSettings, replay: ReplayCache, fetch: Fetch | None = None
) -> dict[str, Source]:
    """One source per name in `SOURCES`, configured from the settings."""
    return {
        "aws": AwsSource(settings.aws, replay, settings.replay_retention_s),
        "sns": SnsSource(settings.sns, replay, fetch or https_fetch(settings.sns.cert_ca_file)),
        "alertmanager": AlertmanagerSource(settings.alertmanager),
        "github": GithubSource(settings.github, replay, settings.replay_retention_s),
        "generic": GenericSource(settings.generic, replay, settings.replay_window_s),
    }


def routes(
    settings: AlertSettings,
    *,
    handle: Handle,
    refuse: Refuse,
    replay: ReplayCache,
    fetch: Fetch | None = None,
) -> list[Route]:
    """The receiver's routes, to mount in `killswitch serve`'s app."""
    sources = build_sources(settings, replay, fetch)
    assert set(sources) == set(SOURCES)  # noqa: S101
    limit = settings.max_body
    spec = document(settings)

    async def refused(name: str, problem: AlertRefusedError, client: str, claimed: str) -> Response:
        try:
            await run_in_threadpool(refuse, name, problem, client, claimed)
        except Exception:  # the ledger failing must not turn a 4xx into a 5xx
            log.exception("could not ledger the refusal of an alert request")
        return JSONResponse(
            {"error": problem.message, "code": problem.code}, status_code=problem.status
        )

    async def receive(request: HttpRequest) -> Response:
        name = request.path_params["source"]
        client = request.client.host if request.client else "?"
        source = sources.get(name)
        if source is None:
            return await refused(
                claim(name), UnknownSourceError(f"no alert source {claim(name)!r}"), client, "-"
            )
        if reason := source.disabled():
            return await refused(name, SourceDisabledError(reason), client, "-")
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = await _body(request, limit)
        incoming = Incoming(name, headers, body or b"", client, datetime.now(UTC))
        claimed = source.claimed(incoming)
        if body is None:
            problem = TooLargeError(f"body larger than {limit} bytes (or cut short)")
            return await refused(name, problem, client, claimed)
        try:
            outcome = await run_in_threadpool(source.accept, incoming)
        except AlertRefusedError as problem:
            return await refused(name, problem, client, claimed)
        except Exception as exc:
            if _store_failed(exc):  # the replay store, not the request: the sender must retry
                log.exception("the replay store failed on an alert request (%s)", name)
                busy = NotHandledError("the replay store is unavailable; retry")
                return await refused(name, busy, client, claimed)
            log.exception("alert source %s failed on a request", name)
            return await refused(
                name, UnreadableError("the request could not be read"), client, claimed
            )
        if not isinstance(outcome, Admitted):
            return JSONResponse(outcome.body, status_code=outcome.status)
        answers = []
        try:
            for alert in outcome.alerts:
                answers.append(await handle(alert))
        except AlertRefusedError as problem:  # the handler's own refusal (a rate limit)
            if outcome.replay_key is not None:
                await run_in_threadpool(replay.forget, outcome.replay_key)
            if not answers:
                return await refused(name, problem, client, claimed)
            answers.append({"error": problem.message, "code": problem.code})
        except Exception:
            log.exception("the alert handler failed (%s)", name)
            if outcome.replay_key is not None:
                await run_in_threadpool(replay.forget, outcome.replay_key)
            if not answers:
                failed = NotHandledError("the alert could not be handled; retry")
                return await refused(name, failed, client, claimed)
            answers.append({"error": "a later alert of the group could not be handled"})
        answer: dict[str, Any] = answers[0] if len(answers) == 1 else {"alerts": answers}
        if outcome.note:
            answer = {**answer, "note": outcome.note}
        return JSONResponse(answer, status_code=202)

    async def other_method(request: HttpRequest) -> Response:
        problem = MethodNotAllowedError(f"{request.method} is not served: alerts are POSTed")
        name = claim(request.path_params.get("source", "-"))
        client = request.client.host if request.client else "?"
        return await refused(name, problem, client, "-")

    async def openapi(request: HttpRequest) -> Response:
        return JSONResponse(spec)

    return [
        Route("/alerts/openapi.json", openapi, methods=["GET"]),
        Route("/alerts/{source}", receive, methods=["POST"]),
        Route("/alerts/{source}", other_method, methods=["GET", "PUT", "PATCH", "DELETE"]),
    ]


async def _body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or None when it is (or claims to be) larger than `limit` or is cut short."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return None
    except ClientDisconnect:
        return None
    return body


def _store_failed(exc: BaseException) -> bool:
    """The replay store's database failed: SQLite's, or PostgreSQL's (down past its deadline,
    or refusing) when the inventory lives there."""
    if isinstance(exc, sqlite3.Error | DatabaseUnavailable):
        return True
    psycopg = sys.modules.get("psycopg")  # not imported: not a PostgreSQL store
    return psycopg is not None and isinstance(exc, psycopg.Error)


def app(
    settings: AlertSettings,
    *,
    handle: Handle,
    refuse: Refuse,
    replay: ReplayCache,
    fetch: Fetch | None = None,
) -> Starlette:
    """The receiver alone, as an app (tests, the benchmark)."""
    return Starlette(
        routes=routes(settings, handle=handle, refuse=refuse, replay=replay, fetch=fetch)
    )
