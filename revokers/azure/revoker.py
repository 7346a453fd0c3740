"""Azure revoker: Entra service principals (Graph over httpx), their client secrets and their
application objects' secrets and certificates, and their ARM role assignments
(azure-mgmt-authorization, api-version 2022-04-01); azure-identity for the kill switch's own
tokens; the probes' token requests go straight to the tenant's token endpoint (`probes.py`).

contain = `accountEnabled: false` on the principal (reversible; it refuses a token to every
secret of the principal and of its application; access tokens already issued live until
they expire — the report says so); detach = delete the principal's own role assignments
(recorded, re-created on restore) and remove it from the groups through which it holds
others (`discovery.py` says why); destroy = `removePassword` on the principal and on the
application, certificates dropped from the application's `keyCredentials`; probe = a
client-credentials token request with the agent's secret (`POST /{tenant}/oauth2/v2.0/token`)
→ the AADSTS code as evidence. An
agent's principals carry the tag `agent-id=<id>`, or the inventory names them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

from killswitch.errors import ConfigurationError, NotFoundError, ProviderError
from killswitch.models import (
    Action,
    ActionResult,
    Agent,
    Credential,
    CredentialRef,
    Nhi,
    UndoRecord,
    Verdict,
    VerdictStatus,
)
from killswitch.retry import retrying_call
from killswitch.secrets import Material
from killswitch.settings import Settings
from revokers.azure import discovery
from revokers.azure.errors import translate
from revokers.azure.graph import Graph
from revokers.azure.probes import TokenRequests
from revokers.azure.probes import classify as classify
from revokers.azure.settings import AzureSettings
from revokers.base import Discovery, Done, ProbeAttempt, ProbeOutcome, Revoker, dispatch, revoker

# azure-identity logs a WARNING ("ClientSecretCredential.get_token failed: …") for every
# refused token request before it raises, and a probe of a revoked secret is refused by
# design: on the CLI that printed Entra's whole refusal on stderr per probe. The exception
# carries the same text to the revoker, which says what it means (or pages for our own
# identity), so the library's own warning is dropped.
logging.getLogger("azure.identity").setLevel(logging.ERROR)

DEFAULT_AUTHORITY = "login.microsoftonline.com"
# Entra access tokens live 60-90 minutes; disabling the principal does not recall them.
TOKEN_LIFETIME = timedelta(minutes=90)
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "discover": (
        "Graph Application.Read.All (service principals, applications and their credentials)",
        "Graph GroupMember.Read.All (memberOf, transitiveMemberOf, group members)",
        "Microsoft.Authorization/roleAssignments/read",
    ),
    "contain": ("Graph Application.ReadWrite.All (PATCH accountEnabled)",),
    "detach": (
        "Microsoft.Authorization/roleAssignments/delete",
        "Graph GroupMember.ReadWrite.All (DELETE /groups/{id}/members/{id}/$ref)",
    ),
    "probe": ("the agent's own secret at the Entra token endpoint",),
    "destroy": (
        "Graph Application.ReadWrite.All (removePassword on the principal and the "
        "application; PATCH the application's keyCredentials)",
    ),
    "restore": (
        "Graph Application.ReadWrite.All (PATCH accountEnabled)",
        "Graph GroupMember.ReadWrite.All (POST /groups/{id}/members/$ref)",
        "Microsoft.Authorization/roleAssignments/write",
    ),
}


@revoker("azure")
class AzureRevoker(Revoker):
    credential_kinds = (discovery.OWN_KIND, discovery.APP_KIND, discovery.CERT_KIND)
    principal_kinds = ("azure.service-principal",)
    grant_kinds = (
        "azure.role-assignment",
        "azure.group-membership",
        "azure.group-role-assignment",
    )
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
        self.tokens = TokenRequests(config.authority, self.verify, config.timeout_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureRevoker:
        return cls(settings.section("azure", AzureSettings))

    def _credential(self, client_id: str, secret: str) -> ClientSecretCredential:
        """The kill switch's own identity (the probes send their token requests themselves)."""
        custom = self.config.authority != DEFAULT_AUTHORITY
        return ClientSecretCredential(
            str(self.config.tenant_id),
            client_id,
            secret,
            authority=self.config.authority,
            disable_instance_discovery=custom,
            connection_verify=self.verify,
            retry_total=0,
            # azure-core waits 300 s for an answer by default: a silent Entra holds no call.
            connection_timeout=self.config.timeout_s,
            read_timeout=self.config.timeout_s,
        )

    @property
    def scopes(self) -> tuple[str, ...]:
        return self.config.scopes or (f"/subscriptions/{self.config.subscription_id}",)

    def _assignments(self, principal_id: str) -> list[Any]:
        """role_assignments.list_for_scope(filter=assignedTo(…)) over every scope, deduplicated."""
        found: dict[str, Any] = {}

        def listed(scope: str) -> list[Any]:
            try:
                return list(
                    self.arm.role_assignments.list_for_scope(
                        scope, filter=f"assignedTo('{principal_id}')"
                    )
                )
            except Exception as exc:
                raise translate(exc, doing=f"list role assignments at {scope}") from exc

        for scope in self.scopes:
            # A read, retried by itself on a transient answer (the client's own retries are
            # off: retry_total=0), within the discovery's deadline.
            for assignment in retrying_call()(listed, scope):
                found[str(assignment.id).lower()] = assignment
        return list(found.values())

    def _groups(self, object_id: str) -> dict[str, tuple[str, set[str]]]:
        """The groups the principal is a direct member of: name, and every group each reaches."""
        direct = self.graph.member_of(object_id)
        return {
            str(g["id"]): (
                str(g.get("displayName", "")),
                {str(g["id"])} | {str(n["id"]) for n in self.graph.group_member_of(str(g["id"]))},
            )
            for g in direct
        }

    def _principal_plan(self, principal: dict[str, Any], agent_id: str) -> discovery.Found:
        object_id = principal["id"]
        return discovery.plan(
            principal,
            self.graph.application(str(principal.get("appId", ""))),
            [discovery.held(a) for a in self._assignments(object_id)],
            lambda: self._groups(object_id),
            agent_id,
            self.config.detach_group_memberships,
        )

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
            # Each in a copy of this context: the discovery's deadline goes with it.
            contexts = [copy_context() for _ in principals]
            plans = list(
                pool.map(
                    lambda c, p: c.run(self._principal_plan, p, agent.id), contexts, principals
                )
            )
        return Discovery(
            tuple(c for f in plans for c in f.credentials),
            tuple(g for f in plans for g in f.grants),
            tuple(a for f in plans for a in f.actions),
            tuple(skipped),
            tuple(a for f in plans for a in f.destroy),
        )

    def enumerate(self) -> Iterator[Nhi]:
        """Every service principal's client secrets, and its application's secrets and
        certificates (Graph pages); the agent from the principal's tag."""
        prefix = f"{self.config.tag}="
        applications = {str(a.get("appId")): a for a in self.graph.applications()}
        for principal in self.graph.principals():
            if principal.get("appId") == self.config.client_id:
                continue  # the kill switch itself
            tags = [str(t) for t in principal.get("tags") or []]
            agent = next((t.removeprefix(prefix) for t in tags if t.startswith(prefix)), "")
            protected = {principal["id"], principal.get("appId")} & set(
                self.config.protected_principals
            )
            application = applications.get(str(principal.get("appId")), {})
            held = [
                (discovery.OWN_KIND, str(principal["id"]), s)
                for s in principal.get("passwordCredentials") or []
            ]
            held += [
                (discovery.APP_KIND, str(application["id"]), s)
                for s in application.get("passwordCredentials") or []
            ]
            held += [
                (discovery.CERT_KIND, str(application["id"]), k)
                for k in application.get("keyCredentials") or []
            ]
            for kind, owner, secret in held:
                yield Nhi(
                    provider="azure",
                    kind=kind,
                    ref=f"{owner}/{secret['keyId']}",
                    principal=f"servicePrincipals/{principal['id']}",
                    agent_tag=agent,
                    works=bool(principal.get("accountEnabled", True)),
                    protected=bool(protected),
                    created_at=discovery.when(secret.get("startDateTime")),
                    expires_at=discovery.when(secret.get("endDateTime")),
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

        def remove_member(_: AzureRevoker, a: Action) -> Done:
            group, object_id = a.params["group_id"], a.params["object_id"]
            try:  # one call however large the group: a non-member answers 404
                self.graph.remove_member(group, object_id)
            except NotFoundError:
                return f"not a member of group {a.params['group']} already", None
            return (
                f"removed from group {a.params['group']} ({group}); what it held through the "
                f"group ({a.params['held']}) stays the group's: its other members keep it",
                {},
            )

        def remove_password(_: AzureRevoker, a: Action) -> Done:
            principal = self.graph.get(a.params["object_id"])
            held = {str(s["keyId"]) for s in (principal or {}).get("passwordCredentials") or []}
            if a.params["key_id"] not in held:
                return "secret removed already", None
            self.graph.remove_password(a.params["object_id"], a.params["key_id"])
            return "secret removed (irreversible)", {}

        def remove_application_credential(_: AzureRevoker, a: Action) -> Done:
            application = self.graph.application_by_id(a.params["application_id"]) or {}
            field = (
                "keyCredentials"
                if a.operation == "remove-application-certificate"
                else "passwordCredentials"
            )
            held = list(application.get(field) or [])
            if a.params["key_id"] not in {str(k["keyId"]) for k in held}:
                return "removed from the application already", None
            if field == "passwordCredentials":
                self.graph.remove_application_password(
                    a.params["application_id"], a.params["key_id"]
                )
                return "application secret removed (irreversible)", {}
            kept = [k for k in held if str(k["keyId"]) != a.params["key_id"]]
            self.graph.set_application_keys(a.params["application_id"], kept)
            return "application certificate removed (irreversible)", {}

        table: dict[str, Callable[[AzureRevoker, Action], Done]] = {
            "disable-service-principal": self._disable,
            "delete-role-assignment": delete_assignment,
            "remove-group-member": remove_member,
            "remove-password": remove_password,
            "remove-application-password": remove_application_credential,
            "remove-application-certificate": remove_application_credential,
        }
        return dispatch(table, self, action, translate)

    def probe(self, credential: Credential, material: Material) -> ProbeAttempt:
        client_id, secret = material.get("client_id"), material.get("client_secret")
        if not client_id or not secret:
            return ProbeAttempt(
                ProbeOutcome.INCONCLUSIVE, "probe material lacks client_id or client_secret"
            )
        tenant = material.get("tenant_id") or str(self.config.tenant_id)
        scope = f"{self.config.arm_url.rstrip('/')}/.default"
        return self.tokens.probe(tenant, client_id, secret, scope)

    def read_back(self, credential: Credential) -> Verdict:
        owner, _, key_id = credential.ref.partition("/")
        to_prove = "put the client secret in a secret source to probe it"
        if credential.kind == discovery.CERT_KIND:
            to_prove = "a certificate cannot be probed without its private key: read back only"
        principal = self.graph.get(credential.principal.removeprefix("servicePrincipals/"))
        if credential.kind == discovery.OWN_KIND:
            held = (principal or {}).get("passwordCredentials") or []
        else:
            application = self.graph.application_by_id(owner) or {}
            field = "keyCredentials" if credential.kind == discovery.CERT_KIND else None
            held = application.get(field or "passwordCredentials") or []
        if principal is None:
            return Verdict(
                VerdictStatus.UNVERIFIED, "read back: service principal gone", to_prove=to_prove
            )
        if key_id not in {str(s["keyId"]) for s in held}:
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

        def add_member(_: AzureRevoker, a: Action) -> Done:
            group, object_id = a.params["group_id"], a.params["object_id"]
            try:
                self.graph.add_member(group, object_id)
            except ProviderError as exc:
                if "already exist" not in exc.message:
                    raise
                return f"a member of group {a.params['group']} already", None
            return f"back in group {a.params['group']} ({group})", {}

        table: dict[str, Callable[[AzureRevoker, Action], Done]] = {
            "disable-service-principal": enable,
            "delete-role-assignment": recreate,
            "remove-group-member": add_member,
        }
        return dispatch(table, self, record.action, translate)

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return {
            "graph_application_permissions": [
                "Application.ReadWrite.All",
                "GroupMember.ReadWrite.All",
            ],
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
        self.tokens.close()
        self.graph.close()
        self.arm.close()
        self.credential.close()
