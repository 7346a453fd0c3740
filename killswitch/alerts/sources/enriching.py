"""What a sender leaves out of its alert, fetched from the sender's own API before the alert
is traced: GitHub's webhook names a secret-scanning alert but not the leaked value, which
its REST API holds (`alerts.github.api_token`)."""

from __future__ import annotations

from dataclasses import replace

from killswitch.alerts.models import Alert
from killswitch.alerts.settings import AlertSettings
from killswitch.alerts.sources.github_values import leaked_value, with_leaked_value
from killswitch.errors import KillSwitchError


def enriched(alert: Alert, settings: AlertSettings) -> tuple[Alert, str | None]:
    """The alert with the value its sender left out, and a note of what was done (or why
    not); unchanged when nothing is missing or the sender has no API for it."""
    if alert.source != "github" or any(c.secret is not None for c in alert.credentials):
        return alert, None
    if settings.github.api_token is None:
        return alert, "the leaked value is not fetched (no alerts.github.api_token)"
    try:
        found = leaked_value(alert, settings.github)
    except KillSwitchError as exc:
        return alert, f"the leaked value could not be fetched: {exc.code}: {exc.message}"
    if found.value is None:
        return alert, found.problem
    credentials = tuple(
        with_leaked_value(c, found.value) if c.identifier is None else c for c in alert.credentials
    )
    return replace(alert, credentials=credentials), "the leaked value was read from GitHub's API"
