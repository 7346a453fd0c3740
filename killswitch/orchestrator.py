"""Pointing Prefect at the configured API before it is imported (importing it costs about a
second, and it reads its settings at import), and failing fast when it does not answer."""

from __future__ import annotations

import logging
import os
import urllib.request

from killswitch.errors import ConfigurationError
from killswitch.settings import Settings

log = logging.getLogger(__name__)


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
        raise ConfigurationError(
            f"the Prefect API at {api} is unreachable ({exc})",
            remediation="Run the same command with --break-glass: same plan, same revokers, "
            "same ledger, no orchestrator.",
        ) from exc
