"""What a run needs, opened once from settings: inventory, ledger, secrets, revokers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from killswitch.errors import ConfigurationError
from killswitch.execution import Timing
from killswitch.inventory import Inventory, open_inventory
from killswitch.ledger import Ledger
from killswitch.ledger_key import open_ledger
from killswitch.secrets import ChainedSource, KeyringFile, SecretSource
from killswitch.settings import Settings
from revokers.base import Revoker, build
from revokers.plugin import load
from revokers.registry import plugin as plugin_named
from revokers.registry import plugins


def secret_sources(settings: Settings) -> list[SecretSource]:
    """The configured probe-material sources, in order: `keyring` (a local file) or a
    provider plug-in that offers one (its settings section configures it)."""
    offered = {p.name: p.secret_source for p in plugins() if p.secret_source}
    sources: list[SecretSource] = []
    for name in settings.secret_sources:
        if name == "keyring":
            if settings.keyring_path is not None:
                sources.append(KeyringFile(settings.keyring_path))
        elif name in offered:
            plugin = plugin_named(name)
            assert plugin is not None  # noqa: S101  (offered ⊆ plugins)
            source: SecretSource = load(offered[name])(settings.section(name, plugin.settings))
            sources.append(source)
        else:
            known = ", ".join(["keyring", *sorted(offered)])
            raise ConfigurationError(f"unknown secret source {name!r} ({known})")
    return sources


@dataclass
class Runtime:
    """Open for the life of a process (the warm service keeps one; the CLI opens one per run)."""

    settings: Settings
    inventory: Inventory
    ledger: Ledger
    secrets: SecretSource
    revokers: dict[str, Revoker] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings, providers: Sequence[str] | None = None) -> Runtime:
        return cls(
            settings=settings,
            inventory=open_inventory(settings),
            ledger=open_ledger(settings),
            secrets=ChainedSource(secret_sources(settings)),
            revokers=build(list(settings.providers if providers is None else providers), settings),
        )

    def provider_workers(self, wanted: int) -> int:
        """How many providers to work on at once (settings.provider_concurrency caps it)."""
        cap = self.settings.provider_concurrency
        return max(1, min(wanted, cap) if cap else wanted)

    @property
    def timing(self) -> Timing:
        return Timing(
            action_deadline_s=self.settings.action_deadline_s,
            probe_deadline_s=self.settings.probe_deadline_s,
            probe_interval_s=self.settings.probe_interval_s,
        )

    def with_secrets(self, extra: SecretSource) -> Runtime:
        """The same runtime asking `extra` (e.g. material carried by an alert) first."""
        return Runtime(
            self.settings,
            self.inventory,
            self.ledger,
            ChainedSource([extra, self.secrets]),
            self.revokers,
        )

    def close(self) -> None:
        for revoker in self.revokers.values():
            revoker.close()
        self.ledger.close()
        self.inventory.close()
