"""Pointing Prefect at the configured API before it is imported (importing it costs about a
second, and it reads its settings at import), and failing fast when it does not answer —
before the run, or when Prefect itself finds the API gone (an exit-3 error, no traceback)."""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from killswitch.errors import ConfigurationError, KillSwitchError
from killswitch.settings import Settings

log = logging.getLogger(__name__)

BREAK_GLASS = (
    "Run the same command with --break-glass: same plan, same revokers, same ledger, no "
    "orchestrator."
)


# Set once this process found the Prefect API unreachable: the CLI then exits without
# waiting for Prefect's exit-time log and event drains, which would retry that API.
UNREACHABLE: list[str] = []


class NoWorkersError(ConfigurationError):
    """The Prefect server answers, but no worker polls the pool a fleet's lanes go to (or
    the lane deployment is missing): the runs would wait forever."""

    code = "no-workers"


class OrchestratorUnreachableError(ConfigurationError):
    """The Prefect API did not answer (down, hung, or answering its health check only)."""

    code = "orchestrator-unreachable"
    remediation = BREAK_GLASS

    def __init__(self, message: str, *, remediation: str | None = None) -> None:
        super().__init__(message, remediation=remediation)
        UNREACHABLE.append(message)


def _unreachable(exc: BaseException, api: str) -> str | None:
    """What in the chain says the orchestrator's API could not be reached, if anything:
    Prefect's own "Failed to reach API", or a transport error or 5xx from that API (not
    from a provider)."""
    import httpx

    where = httpx.URL(api).netloc if api else b""

    def at_api(error: httpx.HTTPError) -> bool:
        try:
            return not where or error.request.url.netloc == where
        except RuntimeError:  # an error raised without its request
            return False

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RuntimeError) and "Failed to reach API" in str(current):
            return str(current).splitlines()[0]
        if isinstance(current, httpx.TransportError) and at_api(current):
            return type(current).__name__
        if (
            isinstance(current, httpx.HTTPStatusError)
            and current.response.status_code >= 500
            and at_api(current)
        ):
            return f"HTTP {current.response.status_code} from {current.request.url.path}"
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def reaching_orchestrator(settings: Settings) -> Iterator[None]:
    """Around a flow run in this process: the orchestrator failing under it is an
    OrchestratorUnreachableError (exit 3, the break-glass remedy), never a traceback."""
    try:
        yield
    except KillSwitchError:
        raise
    except Exception as exc:
        api = os.environ.get("PREFECT_API_URL") or settings.prefect_api_url or ""
        said = _unreachable(exc, api)
        if said is None:
            raise
        raise OrchestratorUnreachableError(
            f"the Prefect API at {api or '(a temporary server)'} stopped answering ({said}); "
            "whatever the run did before is in the ledger (`killswitch audit unfinished`)",
        ) from exc


def prefect_environment(settings: Settings, *, verbose: bool = False) -> None:
    """Point Prefect at the configured API; keep its console quiet; fail fast (with the
    break-glass remedy) when the API does not answer."""
    if settings.prefect_api_url:
        os.environ["PREFECT_API_URL"] = settings.prefect_api_url
    if settings.prefect_api_auth is not None:
        # Prefect's clients send it as HTTP basic auth; the flow runs our runner starts
        # inherit it. Never logged.
        os.environ["PREFECT_API_AUTH_STRING"] = settings.prefect_api_auth.get_secret_value()
    os.environ.setdefault("PREFECT_HOME", str(settings.home / "prefect-client"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_API_REQUEST_TIMEOUT", "10")
    if not verbose:
        # The report says NOT PROVEN loudly; Prefect's own traceback of the failed run is
        # for `-v` (and the Prefect UI).
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        log.warning(
            "no Prefect API configured: Prefect starts a temporary server (about 10 s). Set "
            "prefect_api_url, run `killswitch sandbox up`, or use --break-glass."
        )
        return
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=2) as response:  # noqa: S310
            response.read()
    except OSError as exc:
        raise OrchestratorUnreachableError(
            f"the Prefect API at {api} is unreachable ({exc})"
        ) from exc
