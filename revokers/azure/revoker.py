"""Azure revoker: Entra service principals (Graph over httpx), their client secrets, and their
ARM role assignments (azure-mgmt-authorization, api-version 2022-04-01); azure-identity for
the kill switch's own tokens and for the probes.

contain = `accountEnabled: false` (reversible; access tokens already issued live until they
expire — the report says so); detach = delete role assignments (recorded, re-created on
restore); destroy = `removePassword` for every secret; probe = a client-credentials token
request with the agent's secret → the AADSTS code as evidence. An agent's principals carry
the tag `agent-id=<id>`, or the inventory names them. See shared PROVIDERS.md, Azure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ClientAuthenticationError, ResourceExistsError
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

from killswitch.errors import ConfigurationError, NotFoundError
from killswitch.models import (
    Action,
    ActionResult,
    Agent,
    Credential,
    CredentialRef,
    Grant,
    Nhi,
    UndoRecord,
    Verb,
    Verdict,
    VerdictStatus,
)
from killswitch.secrets import Material
from killswitch.settings import Settings
from revokers.azure.errors import translate
from revokers.azure.graph import Graph
from revokers.azure.settings import AzureSettings
from revokers.base import Discovery, Done, ProbeAttempt, ProbeOutcome, Revoker, dispatch, revoker

DEFAULT_AUTHORITY = "login.microsoftonline.com"
# Entra access tokens live 60-90 minutes; disabling the principal does not recall them.
TOKEN_LIFETIME = timedelta(minutes=90)
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "discover": (
        "Graph Application.Read.All (service principals and their password credentials)",
        "Microsoft.Authorization/roleAssignments/read",
    ),
    "contain": ("Graph Application.ReadWrite.All (PATCH accountEnabled)",),
    "detach": ("Microsoft.Authorization/roleAssignments/delete",),
    "probe": ("the agent's own secret at the Entra token endpoint",),
    "destroy": ("Graph Application.ReadWrite.All (removePassword)",),
    "restore": (
        "Graph Application.ReadWrite.All (PATCH accountEnabled)",
        "Microsoft.Authorization/roleAssignments/write",
    ),
}

# The AADSTS codes of a token request that mean the credential is dead; any other (90024,
# 90033: service errors; 700027, 50034…) is inconclusive.
DEAD: dict[str, str] = {
    "AADSTS7000215": "invalid client secret (removed or wrong)",
    "AADSTS7000222": "client secret expired",
    "AADSTS7000112": "application disabled",
    "AADSTS700016": "application not found in the tenant",
}
AADSTS = re.compile(r"AADSTS\d+")


def classify(message: str) -> ProbeAttempt:
    """A refused client-credentials token request: an allow-listed AADSTS code rejects."""
    found = AADSTS.search(message)
    code = found.group(0) if found else ""
    said = f"token request → {_first_line(message, code)}"
    if code in DEAD:
        return ProbeAttempt(ProbeOutcome.REJECTED, f"{said} [{DEAD[code]}]", code)
    return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, f"{said} (not a dead credential)", code)


@revoker("azure")
class AzureRevoker(Revoker):
    credential_kinds = ("azure.client-secret",)
    principal_kinds = ("azure.service-principal",)
    grant_kinds = ("azure.role-assignment",)
    enumerable = True
    permissions = PERMISSIONS

    def __init__(self, config: AzureSettings) -> None:
        if not (
            config.tenant_id
            and config.subscription_id
            and config.client_id
            and config.client_secret
        ):
            raise ConfigurationError(
                "azure.tenant_id, subscription_id, client_id and client_secret are needed"
            )
        self.config = config
        self.max_workers = config.max_workers
        self.settle_s = config.settle_s
        self.verify: bool | str = config.ca_cert or True
        self.credential = self._credential(
            config.client_id, config.client_secret.get_secret_value()
        )
        self.arm = AuthorizationManagementClient(
            self.credential,
            config.subscription_id,
            base_url=config.arm_url,
            connection_verify=self.verify,
            connection_timeout=config.timeout_s,
            read_timeout=config.timeout_s,
            retry_total=0,
        )
        self.graph = Graph(config.graph_url, self.credential, self.verify, config.timeout_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureRevoker:
        return cls(settings.section("azure", AzureSettings))

    def _credential(
        self, client_id: str, secret: str, tenant: str | None = None
    ) -> ClientSecretCredential:
        custom = self.config.authority != DEFAULT_AUTHORITY
        return ClientSecretCredential(
            tenant or str(self.config.tenant_id),
            client_id,
            secret,
            authority=self.config.authority,
            disable_instance_discovery=custom,
            connection_verify=self.verify,
            retry_total=0,
        )

    @property
    def scopes(self) -> tuple[str, ...]:
        return self.config.scopes or (f"/subscriptions/{self.config.subscription_id}",)

    def _assignments(self, principal_id: str) -> list[Any]:
        """role_assignments.list_for_scope(filter=assignedTo(…)) over every scope, deduplicated."""
        found: dict[str, Any] = {}
        for scope in self.scopes:
            try:
                for assignment in self.arm.role_assignments.list_for_scope(
                    scope, filter=f"assignedTo('{principal_id}')"
                ):
                    found[str(assignment.id).lower()] = assignment
            except Exception as exc:
                raise translate(exc, doing=f"list role assignments at {scope}") from exc
        return list(found.values())

    def discover(self, agent: Agent, declared: Sequence[CredentialRef]) -> Discovery:
        wanted = {r.ref.split("/", 1)[0] for r in declared if r.provider == "azure"}
        found = {p["id"]: p for p in self.graph.tagged(f"{self.config.tag}={agent.id}")}
        for object_id in wanted - set(found):
            principal = self.graph.get(object_id)
            if principal is not None:
                found[object_id] = principal
        protected = set(self.config.protected_principals) | {str(self.config.client_id)}
        skipped = [i for i, p in found.items() if i in protected or p.get("appId") in protected]
        principals = [p for i, p in found.items() if i not in skipped]
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_workers, len(principals)))) as pool:
            assignments = list(pool.map(lambda p: self._assignments(p["id"]), principals))
        credentials: list[Credential] = []
        grants: list[Grant] = []
        actions: list[Action] = []
        destroy: list[Action] = []
        for principal, held in zip(principals, assignments, strict=True):
            object_id, ref = principal["id"], f"servicePrincipals/{principal['id']}"
            who = {"object_id": object_id, "app_id": str(principal.get("appId", ""))}
            for secret in principal.get("passwordCredentials") or []:
                credentials.append(
                    Credential(
                        "azure",
                        "azure.client-secret",
                        f"{object_id}/{secret['keyId']}",
                        ref,
                        agent.id,
                        created_at=_when(secret.get("startDateTime")),
                    )
                )
                destroy.append(
                    Action(
                        "azure",
                        Verb.DESTROY,
                        "remove-password",
                        ref,
                        f"{object_id}/{secret['keyId']}",
                        False,
                        False,
                        {**who, "key_id": str(secret["keyId"])},
                        phase=1,
                    )
                )
            actions.append(
                Action(
                    "azure",
                    Verb.CONTAIN,
                    "disable-service-principal",
                    ref,
                    ref,  # the principal: every secret of it is refused at once
                    True,
                    not principal.get("accountEnabled", True),
                    who,
                )
            )
            for assignment in held:
                grants.append(
                    Grant("azure", "azure.role-assignment", ref, str(assignment.id), agent.id)
                )
                actions.append(
                    Action(
                        "azure",
                        Verb.DETACH,
                        "delete-role-assignment",
                        ref,
                        str(assignment.id),
                        True,
                        False,
                        {
                            **who,
                            "scope": str(assignment.scope),
                            "name": str(assignment.name),
                            "role_definition_id": str(assignment.role_definition_id),
                            "principal_type": str(assignment.principal_type or "ServicePrincipal"),
                        },
                    )
                )
        return Discovery(
            tuple(credentials), tuple(grants), tuple(actions), tuple(skipped), tuple(destroy)
        )

    def enumerate(self) -> Iterator[Nhi]:
        """Every service principal's client secrets (Graph pages); the agent from its tag."""
        prefix = f"{self.config.tag}="
        for principal in self.graph.principals():
            if principal.get("appId") == self.config.client_id:
                continue  # the kill switch itself
            tags = [str(t) for t in principal.get("tags") or []]
            agent = next((t.removeprefix(prefix) for t in tags if t.startswith(prefix)), "")
            protected = {principal["id"], principal.get("appId")} & set(
                self.config.protected_principals
            )
            for secret in principal.get("passwordCredentials") or []:
                yield Nhi(
                    provider="azure",
                    kind="azure.client-secret",
                    ref=f"{principal['id']}/{secret['keyId']}",
                    principal=f"servicePrincipals/{principal['id']}",
                    agent_tag=agent,
                    works=bool(principal.get("accountEnabled", True)),
                    protected=bool(protected),
                    created_at=_when(secret.get("startDateTime")),
                    expires_at=_when(secret.get("endDateTime")),
                    detail=str(principal.get("displayName", "")),
                )

    def _disable(self, revoker_self: AzureRevoker, action: Action) -> Done:
        principal = self.graph.get(action.params["object_id"])
        if principal is None:
            raise NotFoundError(f"service principal {action.target} is gone", provider="azure")
        if not principal.get("accountEnabled", True):
            return "service principal disabled already", None
        self.graph.set_enabled(action.params["object_id"], False)
        until = datetime.now(UTC) + TOKEN_LIFETIME
        return (
            "service principal disabled; access tokens it already holds stay valid until they "
            f"expire (Continuous Access Evaluation aside): until {until:%H:%M} UTC at the latest",
            {},
        )

    def perform(self, action: Action, materials: Sequence[Material] = ()) -> ActionResult:
        def delete_assignment(_: AzureRevoker, a: Action) -> Done:
            deleted = self.arm.role_assignments.delete_by_id(a.target)
            if deleted is None:
                return "role assignment gone already", None
            return f"role assignment deleted at {a.params['scope']}", {}

        def remove_password(_: AzureRevoker, a: Action) -> Done:
            principal = self.graph.get(a.params["object_id"])
            held = {str(s["keyId"]) for s in (principal or {}).get("passwordCredentials") or []}
            if a.params["key_id"] not in held:
                return "secret removed already", None
            self.graph.remove_password(a.params["object_id"], a.params["key_id"])
            return "secret removed (irreversible)", {}

        table: dict[str, Callable[[AzureRevoker, Action], Done]] = {
            "disable-service-principal": self._disable,
            "delete-role-assignment": delete_assignment,
            "remove-password": remove_password,
        }
        return dispatch(table, self, action, translate)

    def probe(self, credential: Credential, material: Material) -> ProbeAttempt:
        client_id, secret = material.get("client_id"), material.get("client_secret")
        if not client_id or not secret:
            return ProbeAttempt(
                ProbeOutcome.INCONCLUSIVE, "probe material lacks client_id or client_secret"
            )
        attempt = self._credential(client_id, secret, material.get("tenant_id"))
        try:
            attempt.get_token(f"{self.config.arm_url.rstrip('/')}/.default")
        except ClientAuthenticationError as exc:
            return classify(str(exc.message))
        finally:
            attempt.close()
        return ProbeAttempt(
            ProbeOutcome.ACCEPTED, "token request with the agent's secret: access token issued"
        )

    def read_back(self, credential: Credential) -> Verdict:
        object_id, _, key_id = credential.ref.partition("/")
        to_prove = "put the client secret in a secret source to probe it"
        principal = self.graph.get(object_id)
        if principal is None:
            return Verdict(
                VerdictStatus.UNVERIFIED, "read back: service principal gone", to_prove=to_prove
            )
        if key_id not in {str(s["keyId"]) for s in principal.get("passwordCredentials") or []}:
            return Verdict(VerdictStatus.UNVERIFIED, "read back: secret removed", to_prove=to_prove)
        if not principal.get("accountEnabled", True):
            return Verdict(
                VerdictStatus.UNVERIFIED, "read back: service principal disabled", to_prove=to_prove
            )
        return Verdict(
            VerdictStatus.UNKNOWN, "read back: enabled, secret present", to_prove=to_prove
        )

    def restore(self, record: UndoRecord) -> ActionResult:
        def enable(_: AzureRevoker, a: Action) -> Done:
            principal = self.graph.get(a.params["object_id"])
            if principal is None:
                raise NotFoundError(f"service principal {a.target} is gone", provider="azure")
            if principal.get("accountEnabled", True):
                return "service principal enabled already", None
            self.graph.set_enabled(a.params["object_id"], True)
            return "service principal enabled", {}

        def recreate(_: AzureRevoker, a: Action) -> Done:
            p = a.params
            try:
                created = self.arm.role_assignments.create(
                    p["scope"],
                    p["name"],
                    RoleAssignmentCreateParameters(
                        role_definition_id=p["role_definition_id"],
                        principal_id=p["object_id"],
                        principal_type=p["principal_type"],
                    ),
                )
            except ResourceExistsError:  # 409 RoleAssignmentExists: never deleted, or back
                return "role assignment in place already", None
            return f"role assignment re-created at {created.scope}", {}

        table: dict[str, Callable[[AzureRevoker, Action], Done]] = {
            "disable-service-principal": enable,
            "delete-role-assignment": recreate,
        }
        return dispatch(table, self, record.action, translate)

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return {
            "graph_application_permissions": ["Application.ReadWrite.All"],
            "azure_role": {
                "Name": "killswitch",
                "Actions": [
                    "Microsoft.Authorization/roleAssignments/read",
                    "Microsoft.Authorization/roleAssignments/write",
                    "Microsoft.Authorization/roleAssignments/delete",
                ],
                "AssignableScopes": ["/subscriptions/<subscription id>"],
            },
        }

    def close(self) -> None:
        self.graph.close()
        self.arm.close()
        self.credential.close()


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def _first_line(message: Any, code: str) -> str:
    text = str(message)
    at = text.find(code) if code else 0
    return text[at:].split("\r\n")[0].split("\n")[0][:200]
