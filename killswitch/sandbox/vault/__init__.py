"""Vault's sandbox plug-in: an OpenBao dev server (real, Vault-API compatible) as a child of
the daemon, behind the `vault` fault proxy; its KV engine as a probe-material store; per agent
an entity with AppRole and userpass aliases, tokens, secret-ids, leases and groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from killswitch.sandbox.plugin import Host, Hosted, Sandbox, StandIn

if TYPE_CHECKING:
    from killswitch.sandbox.vault.fleet import Seeder
    from killswitch.secrets import MaterialStore


@dataclass(frozen=True, slots=True)
class VaultStandIn:
    """OpenBao (`stand_ins.openbao`: direct and proxied URLs, the root token)."""

    fault_target: str | None = "vault"

    def serve(self, host: Host) -> Hosted:
        """Start OpenBao on a free port and wait for it; a reset restarts it empty."""
        from killswitch.sandbox.vault.server import OpenBao

        server = OpenBao(host.root)
        server.start()
        proxied = host.proxy("vault", server.port)
        return Hosted(
            stand_ins={
                "openbao": {"url": server.url, "proxied": proxied, "root_token": server.root_token}
            },
            reset=server.restart,
            stop=server.stop,
            processes=server.processes,
        )

    def material(self, stand_ins: Mapping[str, Any]) -> Mapping[str, MaterialStore]:
        """`vault`: the KV engine under `KV_PREFIX`, written with the root token."""
        from pydantic import SecretStr

        from killswitch.sandbox.vault.fleet import KV_PREFIX
        from revokers.vault.material import VaultKvSource
        from revokers.vault.settings import VaultSettings

        bao = stand_ins["openbao"]
        writer = VaultSettings(
            addr=bao["url"], token=SecretStr(bao["root_token"]), kv_prefix=KV_PREFIX
        )
        return {"vault": VaultKvSource(writer)}

    def bootstrap(self, sandbox: Sandbox) -> Seeder:
        """Auth methods, PKI, policies, groups, and the kill switch's own token."""
        from killswitch.sandbox.vault import fleet

        bao = sandbox.stand_ins["openbao"]
        vault = fleet.Vault(bao["url"], bao["root_token"])
        token = fleet.bootstrap(vault)
        return fleet.Seeder(vault, sandbox, token, fleet.root_accessor(vault))

    def attach(self, sandbox: Sandbox, providers: Mapping[str, Any]) -> Seeder:
        """From `providers.vault`, direct (seeding is never faulted), with the root token."""
        from killswitch.sandbox.vault import fleet

        info, bao = providers["vault"], sandbox.stand_ins["openbao"]
        vault = fleet.Vault(bao["url"], bao["root_token"])
        return fleet.Seeder(vault, sandbox, info["token"], info["root_accessor"])


STAND_IN: StandIn = VaultStandIn()
