"""The receiver's OpenAPI 3.1 document (`GET /alerts/openapi.json`), built from the same
pydantic models that parse the bodies, so a schemathesis run can target it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from killswitch.alerts.settings import AlertSettings
from killswitch.alerts.sources.alertmanager import AlertmanagerWebhook
from killswitch.alerts.sources.aws import EventBridgeEvent
from killswitch.alerts.sources.generic import GenericAlert
from killswitch.alerts.sources.github import SecretScanningEvent
from killswitch.alerts.sources.sns import SnsMessage

REF = "#/components/schemas/{model}"


def _header(name: str, required: bool, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF, by_alias=True)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def document(settings: AlertSettings) -> dict[str, Any]:
    """The OpenAPI document of `POST /alerts/<source>` under these settings."""
    components: dict[str, Any] = {
        "Refusal": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
        }
    }
    refusal = {
        "description": "refused: nothing was changed",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Refusal"}}},
    }
    sources: dict[str, tuple[type[BaseModel], list[dict[str, Any]], str]] = {
        "aws": (
            EventBridgeEvent,
            [_header(settings.aws.header, True, "the EventBridge connection's API key")],
            "An EventBridge event (AWS Health, GuardDuty) from an API destination.",
        ),
        "sns": (
            SnsMessage,
            [_header("x-amz-sns-message-type", False, "Notification, SubscriptionConfirmation…")],
            "An SNS HTTPS delivery (signed inside the body).",
        ),
        "alertmanager": (
            AlertmanagerWebhook,
            [_header("authorization", True, "Bearer <token>")],
            "A Prometheus Alertmanager webhook notification (version 4).",
        ),
        "github": (
            SecretScanningEvent,
            [
                _header("x-hub-signature-256", True, "sha256=<hex HMAC of the body>"),
                _header("x-github-delivery", True, "the delivery's GUID"),
                _header("x-github-event", True, "secret_scanning_alert (or ping)"),
            ],
            "A GitHub secret_scanning_alert organisation webhook.",
        ),
        "generic": (
            GenericAlert,
            [
                _header("webhook-id", True, "Standard Webhooks message id"),
                _header("webhook-timestamp", True, "seconds since the epoch"),
                _header("webhook-signature", True, "v1,<base64 HMAC-SHA256>"),
            ],
            "Any detector's alert in the documented generic shape (Standard Webhooks).",
        ),
    }
    paths: dict[str, Any] = {}
    for name, (model, headers, summary) in sources.items():
        paths[f"/alerts/{name}"] = {
            "post": {
                "operationId": f"alert_{name}",
                "summary": summary,
                "parameters": headers,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _schema(model, components)}},
                },
                "responses": {
                    "200": {"description": "a protocol message, acknowledged"},
                    "202": {"description": "accepted: the handler's answer"},
                    **{str(s): refusal for s in (400, 401, 403, 404, 409, 413, 415, 422)},
                    "503": {"description": "not handled now: retry (never for bad input)"},
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "killswitch alert receiver", "version": "1"},
        "paths": paths,
        "components": {"schemas": components},
    }
