"""GCP IAM revoker (google-cloud-iam over gRPC, google-cloud-resource-manager for the
project's allow policy): an agent's service accounts, their user-managed keys, bindings.

contain = disable every key and the service account itself (reversible); detach = remove
`serviceAccount:` members from the project's bindings (recorded for undo); destroy = delete
keys, then the account; probe = the key exchanged for a token → `invalid_grant`.
GCP service accounts have no labels: an agent's are those whose description carries
`agent-id=<id>`, plus those the inventory names. See shared PROVIDERS.md, GCP section.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from google.cloud import iam_admin_v1

from killswitch.errors import ConfigurationError
from killswitch.models import (
    Action,
    ActionResult,
    Agent,
    Credential,
    CredentialRef,
    Nhi,
    UndoRecord,
    Verdict,
)
from killswitch.secrets import Material
from killswitch.settings import Settings
from revokers.base import Discovery, ProbeAttempt, Revoker, revoker
from revokers.gcp import discovery, operations, policies, probes
from revokers.gcp.client import Clients
from revokers.gcp.errors import translate
from revokers.gcp.settings import GcpSettings


@revoker("gcp")
class GcpRevoker(Revoker):
    credential_kinds = ("gcp.service-account-key",)
    principal_kinds = ("gcp.service-account",)
    grant_kinds = ("gcp.binding",)
    enumerable = True
    permissions = policies.PERMISSIONS

    def __init__(self, config: GcpSettings) -> None:
        if not config.project:
            raise ConfigurationError("gcp.project is not set")
        self.config = config
        self.project: str = config.project
        self.max_workers = config.max_workers
        self.settle_s = config.settle_s
        self.clients = Clients.open(config)
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: Settings) -> GcpRevoker:
        return cls(settings.section("gcp", GcpSettings))

    def _accounts(self) -> Iterator[iam_admin_v1.ServiceAccount]:
        """ListServiceAccounts, every page (the client pages lazily)."""
        try:
            yield from self.clients.iam.list_service_accounts(
                request={"name": f"projects/{self.project}", "page_size": 100},
                timeout=self.config.timeout_s,
            )
        except Exception as exc:
            raise translate(exc, doing="ListServiceAccounts") from exc

    def _keys(self, account: iam_admin_v1.ServiceAccount) -> list[discovery.Key]:
        try:
            listed = self.clients.iam.list_service_account_keys(
                request={"name": account.name, "key_types": [discovery.USER_MANAGED]},
                timeout=self.config.timeout_s,
            )
        except Exception as exc:
            raise translate(exc, doing=f"ListServiceAccountKeys {account.email}") from exc
        return [discovery.key_of(k) for k in listed.keys]

    def _roles_by_member(self) -> dict[str, list[str]]:
        try:
            policy = operations.read_policy(self.clients, self.project, self.config.timeout_s)
        except Exception as exc:
            raise translate(exc, doing="GetIamPolicy") from exc
        roles: dict[str, list[str]] = {}
        for binding in policy.bindings:
            for member in binding.members:
                held = roles.setdefault(member, [])
                if binding.role not in held:  # a role bound with and without a condition
                    held.append(binding.role)
        return roles

    def discover(self, agent: Agent, declared: Sequence[CredentialRef]) -> Discovery:
        emails = discovery.declared_emails(declared)
        with ThreadPoolExecutor(max_workers=1) as side:
            bindings = side.submit(self._roles_by_member)
            found = [
                a
                for a in self._accounts()
                if discovery.tagged(a.description, self.config.tag, agent.id) or a.email in emails
            ]
            roles = bindings.result()
        skipped = [a.name for a in found if a.email in self.config.protected_accounts]
        accounts = [a for a in found if a.name not in skipped]
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_workers, len(accounts)))) as pool:
            keys = list(pool.map(self._keys, accounts))
        credentials, grants, actions, destroy = [], [], [], []
        for account, account_keys in zip(accounts, keys, strict=True):
            member = f"serviceAccount:{account.email}"
            c, g, a, d = discovery.plan(account, account_keys, roles.get(member, []), agent.id)
            credentials += c
            grants += g
            actions += a
            destroy += d
        return Discovery(
            tuple(credentials), tuple(grants), tuple(actions), tuple(skipped), tuple(destroy)
        )

    def enumerate(self) -> Iterator[Nhi]:
        """Every service account's user-managed keys, a page of accounts at a time."""
        roles = self._roles_by_member()
        for account in self._accounts():
            privileged = any(
                r in ("roles/owner", "roles/editor")
                for r in roles.get(f"serviceAccount:{account.email}", [])
            )
            for key in self._keys(account):
                yield Nhi(
                    provider="gcp",
                    kind="gcp.service-account-key",
                    ref=key.ref,
                    principal=account.name,
                    agent_tag=discovery.agent_of(account.description, self.config.tag),
                    works=not (key.disabled or account.disabled),
                    privileged=privileged,
                    protected=account.email in self.config.protected_accounts,
                    created_at=key.created_at,
                    detail=f"{account.email}" + (" (disabled)" if account.disabled else ""),
                )

    def perform(self, action: Action, materials: Sequence[Material] = ()) -> ActionResult:
        return operations.perform(self.clients, self.project, action)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def probe(self, credential: Credential, material: Material) -> ProbeAttempt:
        return probes.probe(material, self._session(), self.config.timeout_s)

    def read_back(self, credential: Credential) -> Verdict:
        email, _, key_id = credential.ref.partition("/")
        name = f"projects/{self.project}/serviceAccounts/{email}/keys/{key_id}"
        return probes.read_back(self.clients, credential, name)

    def restore(self, record: UndoRecord) -> ActionResult:
        return operations.restore(self.clients, self.project, record.action, record.data)

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return policies.permission_policy()

    def close(self) -> None:
        self.clients.close()
