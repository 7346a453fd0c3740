"""The receiver's OpenAPI 3.1 document (`GET /alerts/openapi.json`), built from the same
pydantic models that parse the bodies, so a schemathesis run can target it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from killswitch.alerts.registry import plugins
from killswitch.alerts.settings import AlertSettings

REF = "#/components/schemas/{model}"


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
    paths: dict[str, Any] = {}
    for plugin in plugins():
        section = settings.section(plugin.name, plugin.settings)
        headers = [
            {
                "name": h.name,
                "in": "header",
                "required": h.required,
                "schema": {"type": "string"},
                "description": h.description,
            }
            for h in plugin.headers(section)
        ]
        body = _schema(plugin.body, components)
        paths[f"/alerts/{plugin.name}"] = {
            "post": {
                "operationId": f"alert_{plugin.name}",
                "summary": plugin.summary,
                "parameters": headers,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
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
