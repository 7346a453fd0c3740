"""The alert receiver's settings: the size limit, the replay windows, and one section per
source (`settings.alerts.<source>`), each its source plug-in's own model (`SOURCE.settings`)
with its secret.

A source whose secret is not configured is disabled: its requests are refused with a
reason (404), never accepted unauthenticated.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from killswitch.errors import ConfigurationError

S = TypeVar("S", bound=BaseModel)


class SourceSettings(BaseModel):
    """Base of a source's section."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class AlertSettings(BaseModel):
    """`POST /alerts/<source>`: size limit, replay windows and one section per source."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    max_body: int = Field(256 * 1024, ge=1024, le=8 * 1024 * 1024, description="bytes")
    replay_window_s: int = Field(
        300, ge=30, le=3600, description="how old a signed timestamp may be, either way"
    )
    replay_retention_s: int = Field(
        3 * 86400,
        ge=3600,
        description="how long an id is remembered by schemes without a timestamp (a webhook "
        "delivery id, an event id): at least as long as the sender retries or redelivers",
    )
    sources: dict[str, Any] = Field(
        default_factory=dict,
        description="filled from the per-source sections (`alerts.<source>`); read them with "
        "section()",
    )

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        """Each registered source's section, parsed by its own model (defaults when absent)."""
        if not isinstance(data, dict):
            return data
        from killswitch.alerts.registry import plugins

        data = dict(data)
        given = data.pop("sources", None) or {}
        if not isinstance(given, dict):
            raise ValueError("sources: a mapping of source name to section")
        sections: dict[str, Any] = {}
        for plugin in plugins():
            raw = data.pop(plugin.name, given.get(plugin.name, {}))
            if isinstance(raw, plugin.settings):
                sections[plugin.name] = raw
                continue
            try:
                sections[plugin.name] = plugin.settings.model_validate(raw)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or plugin.name}: {e['msg']}"
                    for e in exc.errors(include_input=False, include_url=False)
                )
                raise ValueError(f"{plugin.name}: {problems}") from None
        data["sources"] = sections
        return data

    def section(self, name: str, model: type[S]) -> S:
        """One source's section, as its plug-in's settings model."""
        value = self.sources.get(name)
        if not isinstance(value, model):
            raise ConfigurationError(f"no {model.__name__} section {name!r} in settings.alerts")
        return value
