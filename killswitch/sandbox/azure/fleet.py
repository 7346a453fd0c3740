"""The demo fleet in the Azure stand-in: per agent a service principal tagged
`agent-id=<id>`, two client secrets (Graph `addPassword`; the secrets go to the
probe-material stores) and role assignments at two scopes (the subscription and a resource
group), created through the real azure-mgmt-authorization client. Options add secrets and
certificates on the agent's application object; `group` and `assign` build groups and
their role assignments for tests."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

from killswitch.sandbox.plugin import AgentSpec, Sandbox, Seeded, SweepSeeds
from killswitch.secrets import MaterialStore
from revokers.azure.graph import tls

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
RESOURCE_GROUP = "rg-agent-data"
SECRETS = 2
PROFILE_KEYS = (
    "tenant_id",
    "subscription_id",
    "client_id",
    "client_secret",
    "authority",
    "arm_url",
    "graph_url",
    "ca_cert",
)


@dataclass
class Azure:
    """What `sandbox status` says of the stand-in (`providers.azure`)."""

    info: dict[str, Any]

    @property
    def subscription_scope(self) -> str:
        return f"/subscriptions/{self.info['subscription_id']}"

    def role(self, role_id: str) -> str:
        return (
            f"{self.subscription_scope}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"
        )

    def credential(self) -> ClientSecretCredential:
        return ClientSecretCredential(
            self.info["tenant_id"],
            self.info["client_id"],
            self.info["client_secret"],
            authority=self.info["authority"],
            disable_instance_discovery=True,
            connection_verify=self.info["ca_cert"],
        )

    def arm(self, credential: ClientSecretCredential) -> AuthorizationManagementClient:
        return AuthorizationManagementClient(
            credential,
            self.info["subscription_id"],
            base_url=self.info["arm_url"],
            connection_verify=self.info["ca_cert"],
        )


def add_secret(
    azure: Azure, token: str, store: MaterialStore, principal: dict[str, Any], agent_id: str
) -> str:
    """Graph addPassword; the secret goes to the store. Returns `<object id>/<key id>`."""
    return _add_password(
        azure,
        token,
        store,
        principal,
        agent_id,
        ("servicePrincipals", principal["id"]),
        "azure.client-secret",
        f"{agent_id} secret",
    )


def _add_password(
    azure: Azure,
    token: str,
    store: MaterialStore,
    principal: dict[str, Any],
    agent_id: str,
    owner: tuple[str, str],
    kind: str,
    display: str,
) -> str:
    """`POST /{collection}/{id}/addPassword` (a principal or its application: Graph answers
    both alike); the secret goes to the store under `kind`. Returns `<id>/<key id>`."""
    collection, ident = owner
    created = httpx.post(
        f"{azure.info['graph_url']}/v1.0/{collection}/{ident}/addPassword",
        json={"passwordCredential": {"displayName": display}},
        headers={"Authorization": f"Bearer {token}"},
        verify=tls(azure.info["ca_cert"]),
        timeout=10,
    )
    created.raise_for_status()
    body = created.json()
    ref = f"{ident}/{body['keyId']}"
    store.add(
        kind,
        ref,
        {
            "client_id": principal["appId"],
            "client_secret": body["secretText"],
            "tenant_id": azure.info["tenant_id"],
        },
        agent_id=agent_id,
    )
    return ref


def graph_token(azure: Azure) -> str:
    """A Graph token of the kill switch's own app."""
    credential = azure.credential()
    try:
        return credential.get_token("https://graph.microsoft.com/.default").token
    finally:
        credential.close()


def application_of(azure: Azure, token: str, app_id: str) -> dict[str, Any]:
    """GET /applications?$filter=appId eq '…': the principal's application object."""
    found = httpx.get(
        f"{azure.info['graph_url']}/v1.0/applications",
        params={"$filter": f"appId eq '{app_id}'"},
        headers={"Authorization": f"Bearer {token}"},
        verify=tls(azure.info["ca_cert"]),
        timeout=10,
    )
    found.raise_for_status()
    [application] = found.json()["value"]
    return dict(application)


def add_application_secret(
    azure: Azure, token: str, store: MaterialStore, principal: dict[str, Any], agent_id: str
) -> str:
    """Graph addPassword on the principal's application object; the secret goes to the
    store. Returns `<application object id>/<key id>`."""
    application = application_of(azure, token, principal["appId"])
    return _add_password(
        azure,
        token,
        store,
        principal,
        agent_id,
        ("applications", application["id"]),
        "azure.application-secret",
        f"{agent_id} app secret",
    )


def add_certificate(azure: Azure, token: str, principal: dict[str, Any]) -> str:
    """A certificate credential on the application (its public part: no probe material)."""
    application = application_of(azure, token, principal["appId"])
    created = httpx.post(
        f"{azure.info['url']}/_sandbox/azure/applications/{application['id']}/keys",
        json={"displayName": "agent certificate"},
        verify=tls(azure.info["ca_cert"]),
        timeout=10,
    )
    created.raise_for_status()
    return f"{application['id']}/{created.json()['keyId']}"


def group(azure: Azure, name: str, members: list[str]) -> str:
    """A security group with these members (principal or group object ids); its id."""
    created = httpx.post(
        f"{azure.info['url']}/_sandbox/azure/groups",
        json={"displayName": name, "members": members},
        verify=tls(azure.info["ca_cert"]),
        timeout=10,
    )
    created.raise_for_status()
    return str(created.json()["id"])


def assign(azure: Azure, scope: str, role: str, principal_id: str, principal_type: str) -> str:
    """A role assignment through azure-mgmt-authorization; its id."""
    credential = azure.credential()
    arm = azure.arm(credential)
    try:
        created = arm.role_assignments.create(
            scope,
            str(uuid.uuid4()),
            RoleAssignmentCreateParameters(
                role_definition_id=azure.role(role),
                principal_id=principal_id,
                principal_type=principal_type,
            ),
        )
        return str(created.id)
    finally:
        arm.close()
        credential.close()


OPTIONS = frozenset({"application_secrets", "certificates"})


def seed_agent(
    azure: Azure,
    store: MaterialStore,
    agent_id: str,
    owner: str,
    application_secrets: int = 0,
    certificates: int = 0,
) -> dict[str, Any]:
    """The agent's service principal, its secrets, two role assignments, and (options)
    secrets and certificates of its application; ids and refs."""
    principal = httpx.post(
        f"{azure.info['url']}/_sandbox/azure/service-principals",
        json={"displayName": f"{agent_id}-app", "tags": [f"agent-id={agent_id}", f"owner={owner}"]},
        verify=tls(azure.info["ca_cert"]),
        timeout=10,
    ).json()
    credential = azure.credential()
    arm = azure.arm(credential)
    try:
        token = credential.get_token("https://graph.microsoft.com/.default").token
        secrets = [add_secret(azure, token, store, principal, agent_id) for _ in range(SECRETS)]
        secrets += [
            add_application_secret(azure, token, store, principal, agent_id)
            for _ in range(application_secrets)
        ]
        secrets += [add_certificate(azure, token, principal) for _ in range(certificates)]
        for scope, role in (
            (azure.subscription_scope, READER),
            (f"{azure.subscription_scope}/resourceGroups/{RESOURCE_GROUP}", BLOB_READER),
        ):
            arm.role_assignments.create(
                scope,
                str(uuid.uuid4()),
                RoleAssignmentCreateParameters(
                    role_definition_id=azure.role(role),
                    principal_id=principal["id"],
                    principal_type="ServicePrincipal",
                ),
            )
        return {"object_id": principal["id"], "secrets": secrets}
    finally:
        arm.close()
        credential.close()


@dataclass(frozen=True, slots=True)
class Seeder:
    """The Azure plug-in's seeding, as the kill switch's own app."""

    azure: Azure
    sandbox: Sandbox

    def seed_agent(self, spec: AgentSpec, options: Mapping[str, Any]) -> Seeded:
        """A service principal, its client secrets, assignments at two scopes; options:
        `application_secrets`, `certificates` (how many on its application object)."""
        if set(options) - OPTIONS:
            raise TypeError(f"Azure seeding options are {sorted(OPTIONS)}: {sorted(options)}")
        extra = int(options.get("application_secrets", 0)), int(options.get("certificates", 0))
        seed_agent(self.azure, self.sandbox.store, spec.id, spec.owner, *extra)
        return Seeded(SECRETS + sum(extra), 2)

    def seed_sweep(self) -> SweepSeeds:
        """Nothing: the sweep's Azure findings are the retired agent's principal."""
        return SweepSeeds()

    def profile(self) -> Mapping[str, Any]:
        """`azure`: tenant, subscription, the kill switch's app, endpoints and the CA."""
        # The stand-in applies changes at once: a short settle window keeps the rule honest.
        # Through the `azure` fault proxy where the stand-in has one (seeding goes direct).
        info = self.azure.info
        section = {k: info.get(f"proxied_{k}", info[k]) for k in PROFILE_KEYS}
        return {"azure": {**section, "settle_s": 0.5}}

    def status(self) -> Mapping[str, Any]:
        """`providers.azure`: everything the stand-in describes of itself."""
        return {"azure": dict(self.azure.info)}
