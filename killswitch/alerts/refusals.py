"""Why the alert receiver refuses a request: one `RefusedError` per reason, each with the
HTTP status it is answered with. A refusal's message never holds secret material: it names
what was wrong, never the value that was."""

from __future__ import annotations

from killswitch.errors import RefusedError


class AlertRefusedError(RefusedError):
    """A request to `POST /alerts/<source>` that changes nothing."""

    code = "alert-refused"
    status = 400
    remediation = "Fix the request; nothing was changed."


class UnknownSourceError(AlertRefusedError):
    code = "alert-unknown-source"
    status = 404
    remediation = "The sources are aws, sns, alertmanager, github and generic."


class SourceDisabledError(AlertRefusedError):
    code = "alert-source-disabled"
    status = 404
    remediation = "Configure the source's secret in settings.alerts.<source> to enable it."


class UnsignedError(AlertRefusedError):
    code = "alert-unsigned"
    status = 401
    remediation = "The sender must sign (or carry the token of) every request."


class ForgedError(AlertRefusedError):
    code = "alert-forged"
    status = 401
    remediation = "The signature or token does not match: check the secret on both sides."


class NotAllowedError(AlertRefusedError):
    code = "alert-not-allowed"
    status = 403
    remediation = "Only the topics and certificate hosts in settings.alerts.sns are accepted."


class StaleError(AlertRefusedError):
    code = "alert-stale"
    status = 401
    remediation = "The request's timestamp is outside the replay window: check the clocks."


class ReplayedError(AlertRefusedError):
    code = "alert-replayed"
    status = 409
    remediation = "This exact request was accepted before; nothing was done twice."


class TooLargeError(AlertRefusedError):
    code = "alert-too-large"
    status = 413
    remediation = "Alert bodies are limited by settings.alerts.max_body."


class MalformedError(AlertRefusedError):
    code = "alert-malformed"
    status = 422
    remediation = "The body is not the source's documented payload shape."


class UnsupportedMediaError(AlertRefusedError):
    code = "alert-unsupported-media"
    status = 415
    remediation = "Alert bodies are UTF-8 JSON."
