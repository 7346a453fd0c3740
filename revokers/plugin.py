"""What a provider plug-in declares, light enough to import before any SDK.

Each provider package (`revokers/<name>/__init__.py`) exposes one `PLUGIN`: its name, its
settings model (a section of the profile), where its revoker and its sandbox stand-in live,
and what the core must know about it without naming it. `revokers.registry` lists the
packages, one line each; nothing else in the core names a provider.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model


class ProviderSettings(BaseModel):
    """A provider's section of the profile: frozen, and a misspelled field is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpProviderSettings(ProviderSettings):
    """A token provider reached over HTTPS (its subclass sets the real API root)."""

    base_url: str
    admin_key: SecretStr | None = Field(
        None, description="the organisation admin key, where the provider has one"
    )
    timeout_s: float = 10.0
    max_workers: int = Field(16, ge=1, le=128)
    verify: bool | str = True


def http_plugin(
    name: str, revoker: str, base_url: str, secret_shapes: tuple[str, ...] = ()
) -> Plugin:
    """The plug-in of a token provider reached over HTTPS: settings with its real API root."""
    settings = create_model(
        f"{name.capitalize()}Settings",
        __base__=HttpProviderSettings,
        __doc__=f"Where the {name} API is (set `base_url` only to reach a proxy).",
        base_url=(str, Field(base_url, description="the API root")),
    )
    return Plugin(
        name, settings, revoker, f"killswitch.sandbox.{name}", secret_shapes=secret_shapes
    )


def load(path: str) -> Any:
    """`package.module:Name` → the object (imported only when asked for)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True, slots=True)
class Plugin:
    """One provider, as the registry knows it."""

    name: str
    settings: type[ProviderSettings]
    # `module:Class` of the revoker; imported (with its SDK) only when a run needs it.
    revoker: str
    # The sandbox module that stands in for the provider (`killswitch.sandbox.<name>`).
    stand_in: str
    # Probe-material fields that name rather than prove (they may appear in reports).
    identifier_fields: frozenset[str] = field(default_factory=frozenset)
    # Regexes of the provider's secret material (searched anywhere, any case) and of its
    # identifiers that look like secrets but are not (an access key id).
    secret_shapes: tuple[str, ...] = ()
    identifier_shapes: tuple[str, ...] = ()
    # A cloud or secrets platform (a zombie there weighs more than a SaaS token).
    infrastructure: bool = False
    # `module:Class` of a secret source this provider offers (`secret_sources: [<name>]`);
    # built with the provider's settings section.
    secret_source: str | None = None
