"""Seeding the stand-ins of the shared HTTP app: each agent's credentials are minted by the
app's sandbox-only `/_sandbox/seed` (dispatched to the plug-in), declared in the inventory by
reference, and their secrets kept in the probe-material store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from killswitch.models import CredentialRef
from killswitch.sandbox.http import PROXY, mint
from killswitch.sandbox.plugin import AgentSpec, Sandbox, Seeded, SweepSeeds


@dataclass(frozen=True, slots=True)
class Mint:
    """One credential every agent gets: the probe material's field, the plug-in's options."""

    secret_field: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Minted:
    """A `Seeder` for one provider of the shared HTTP app."""

    provider: str
    sandbox: Sandbox
    mints: tuple[Mint, ...]
    base_path: str  # the provider's API root on the shared app (`/<provider>/v1`, say)
    admin_key: str | None = None  # the stand-in's admin key, when the provider has one
    orphans: tuple[str, ...] = ()  # owners of credentials the sweep must find orphaned

    @property
    def url(self) -> str:
        """The shared app, direct (seeding is never faulted)."""
        return str(self.sandbox.stand_ins[PROXY]["url"])

    @property
    def base_url(self) -> str:
        """The provider's API root through the fault proxy (what the kill switch calls)."""
        return f"{self.sandbox.stand_ins[PROXY]['proxied']}{self.base_path}"

    def seed_agent(self, spec: AgentSpec, options: Mapping[str, Any]) -> Seeded:
        """The agent's credentials: `mints`, or `{"mints": [{…the plug-in's options}, …]}`
        instead (each minted with the first mint's secret field)."""
        if set(options) - {"mints"}:
            raise TypeError(f"no {self.provider} seeding options: {sorted(options)}")
        mints = self.mints
        if "mints" in options:
            field_name = self.mints[0].secret_field
            mints = tuple(Mint(field_name, dict(extra)) for extra in options["mints"])
        for wanted in mints:
            minted = mint(self.url, self.provider, spec.id, **wanted.extra)
            ref = CredentialRef(self.provider, minted["kind"], minted["ref"])
            self.sandbox.inventory.declare(spec.id, ref)
            self.sandbox.store.add(
                minted["kind"],
                minted["ref"],
                {wanted.secret_field: minted["secret"]},
                agent_id=spec.id,
            )
        return Seeded(credentials=len(mints))

    def seed_sweep(self) -> SweepSeeds:
        """A credential for each of `orphans` (nobody the inventory knows), never declared."""
        refs = tuple(mint(self.url, self.provider, owner)["ref"] for owner in self.orphans)
        return SweepSeeds(orphan=refs)

    def section(self) -> dict[str, Any]:
        """The settings section: the API root, the admin key (None when there is none)."""
        return {"base_url": self.base_url, "admin_key": self.admin_key}

    def profile(self) -> Mapping[str, Any]:
        """`<provider>`: its section."""
        return {self.provider: self.section()}

    def status(self) -> Mapping[str, Any]:
        """`providers.<provider>`: the API root, and the admin key when there is one."""
        shown = {k: v for k, v in self.section().items() if v is not None}
        return {self.provider: shown}
