"""The demo fleet: agents with IAM users, keys, a role and its session, groups and policies.

Seeded through the real boto3 client against moto with auth enforced, using the kill
switch's own sandbox identity. The agents' secrets go to the material stores (probe material),
never to stdout or logs.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from killswitch.inventory import Inventory
from killswitch.models import Agent, AgentStatus, CredentialRef
from killswitch.sandbox import azure_fleet, gcp_fleet, saas_fleet, vault_fleet
from killswitch.secrets import MaterialStore

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ACCOUNT = "123456789012"
REGION = "us-east-1"
ADMIN_USER = "killswitch-admin"
BREAKGLASS_USER = "breakglass-admin"
DEMO_AGENT = "research-agent-7"
TAG_KEY = "agent-id"

ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
RUNTIME_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*", "sts:*"], "Resource": "*"}
    ],
}
DATA_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}],
}
GROUPS = {"agents-readonly": "agent-runtime", "agents-data": "agent-data-access"}


@dataclass(frozen=True, slots=True)
class AgentSpec:
    id: str
    owner: str
    purpose: str
    status: AgentStatus = AgentStatus.ACTIVE
    environment: str = "prod"
    users: Sequence[tuple[str, int]] = (("runtime", 2), ("ci", 1))
    role: bool = True
    groups: Sequence[str] = ("agents-readonly", "agents-data")
    vault: bool = True
    saas: bool = True
    gcp: bool = True
    azure: bool = True


FLEET: tuple[AgentSpec, ...] = (
    AgentSpec(DEMO_AGENT, "ml-research", "literature search and summaries"),
    AgentSpec("support-bot", "customer-support", "answers support tickets"),
    AgentSpec("billing-reconciler", "finance-eng", "reconciles invoices nightly"),
    AgentSpec("code-review-agent", "dev-productivity", "reviews pull requests"),
    AgentSpec("sales-assistant", "revops", "drafts CRM follow-ups", groups=("agents-readonly",)),
    AgentSpec(
        "legacy-summarizer",
        "ml-research",
        "retired summariser (its keys were never removed)",
        status=AgentStatus.DECOMMISSIONED,
    ),
)


@dataclass
class Admin:
    """The kill switch's own identity against moto."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def iam(self) -> IAMClient:
        if "iam" not in self.clients:
            self.clients["iam"] = client(
                "iam", self.endpoint_url, self.access_key_id, self.secret_access_key
            )
        return self.clients["iam"]  # type: ignore[no-any-return]


def client(
    service: str, endpoint_url: str, key_id: str, secret: str, token: str | None = None
) -> Any:
    session: Any = boto3.session.Session()
    return session.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 3}, max_pool_connections=32),
    )


def set_auth(endpoint_url: str, enforce: bool) -> None:
    """moto: `POST /moto-api/reset-auth` — `inf` turns auth off, `0` enforces it from now on."""
    request = urllib.request.Request(  # noqa: S310  (loopback URL we started ourselves)
        f"{endpoint_url}/moto-api/reset-auth",
        data=b"0" if enforce else b"inf",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def reset(endpoint_url: str) -> None:
    """moto: `POST /moto-api/reset` forgets every resource."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", data=b"", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def bootstrap(endpoint_url: str, store: MaterialStore) -> Admin:
    """Create the kill switch's own admin (auth off), then switch moto's auth enforcement on."""
    set_auth(endpoint_url, enforce=False)
    boot = client("iam", endpoint_url, "AKIAIOSFODNN7EXAMPLE", "bootstrap")
    for user in (ADMIN_USER, BREAKGLASS_USER):
        tags = [{"Key": TAG_KEY, "Value": "breakglass"}] if user == BREAKGLASS_USER else []
        boot.create_user(UserName=user, Tags=tags)
        boot.put_user_policy(
            UserName=user, PolicyName="admin", PolicyDocument=json.dumps(ALLOW_ALL)
        )
    key = boot.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    breakglass = boot.create_access_key(UserName=BREAKGLASS_USER)["AccessKey"]
    store.add(
        "aws.access-key",
        breakglass["AccessKeyId"],
        {
            "access_key_id": breakglass["AccessKeyId"],
            "secret_access_key": breakglass["SecretAccessKey"],
        },
        agent_id="breakglass",
    )
    set_auth(endpoint_url, enforce=True)
    admin = Admin(endpoint_url, key["AccessKeyId"], key["SecretAccessKey"])
    iam = admin.iam()
    for group, policy_name in GROUPS.items():
        document = RUNTIME_POLICY if policy_name == "agent-runtime" else DATA_POLICY
        iam.create_policy(PolicyName=policy_name, PolicyDocument=json.dumps(document))
        iam.create_group(GroupName=group)
        iam.attach_group_policy(GroupName=group, PolicyArn=policy_arn(policy_name))
    return admin


def policy_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy/{name}"


def add_key(
    admin: Admin, store: MaterialStore, user: str, *, agent_id: str = "", remember: bool = True
) -> dict[str, str]:
    """A new access key for `user`; its secret goes to the store unless `remember` is off."""
    key = admin.iam().create_access_key(UserName=user)["AccessKey"]
    material = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    if remember:
        store.add("aws.access-key", key["AccessKeyId"], material, agent_id=agent_id)
    return material


def seed_agent(
    admin: Admin,
    inventory: Inventory,
    store: MaterialStore,
    spec: AgentSpec,
    vault: vault_fleet.Vault | None = None,
    saas_url: str | None = None,
    gcp: gcp_fleet.Gcp | None = None,
    azure: azure_fleet.Azure | None = None,
) -> None:
    """One agent: IAM users (tagged), keys, groups, policies, a role and one live session;
    its Vault entity with everything hanging off it; its GCP service account, keys and
    bindings; its Slack, GitHub, OpenAI and Anthropic tokens."""
    iam = admin.iam()
    inventory.upsert_agent(Agent(spec.id, spec.owner, spec.status, spec.purpose, spec.environment))
    tags: list[Any] = [{"Key": TAG_KEY, "Value": spec.id}, {"Key": "owner", "Value": spec.owner}]
    runtime_key: dict[str, str] | None = None
    first_user = ""
    for suffix, key_count in spec.users:
        user = f"{spec.id}-{suffix}"
        first_user = first_user or user
        iam.create_user(UserName=user, Tags=tags)
        for group in spec.groups:
            iam.add_user_to_group(UserName=user, GroupName=group)
        iam.attach_user_policy(UserName=user, PolicyArn=policy_arn("agent-runtime"))
        iam.put_user_policy(
            UserName=user,
            PolicyName=f"{spec.id}-scratch-bucket",
            PolicyDocument=json.dumps(DATA_POLICY),
        )
        for _ in range(key_count):
            material = add_key(admin, store, user, agent_id=spec.id)
            ref = CredentialRef("aws", "aws.access-key", material["access_key_id"])
            inventory.declare(spec.id, ref)
            runtime_key = runtime_key or material
    if spec.role and runtime_key is not None:
        _seed_role(admin, store, spec, tags, first_user, runtime_key)
    if spec.vault and vault is not None:
        vault_fleet.seed_agent(vault, store, spec.id, spec.owner)
    if spec.gcp and gcp is not None:
        gcp_fleet.seed_agent(gcp, store, spec.id, spec.owner)
    if spec.azure and azure is not None:
        azure_fleet.seed_agent(azure, store, spec.id, spec.owner)
    if spec.saas and saas_url is not None:
        saas_fleet.seed_agent(saas_url, store, inventory, spec.id)


def _seed_role(
    admin: Admin,
    store: MaterialStore,
    spec: AgentSpec,
    tags: list[Any],
    user: str,
    key: dict[str, str],
) -> None:
    iam = admin.iam()
    role = f"{spec.id}-role"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user}"},
            }
        ],
    }
    arn = iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(trust),
        Tags=tags,
        MaxSessionDuration=43200,
    )["Role"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=policy_arn("agent-runtime"))
    iam.put_role_policy(
        RoleName=role, PolicyName=f"{spec.id}-role-data", PolicyDocument=json.dumps(DATA_POLICY)
    )
    sts = client("sts", admin.endpoint_url, key["access_key_id"], key["secret_access_key"])
    creds = sts.assume_role(
        RoleArn=arn, RoleSessionName=f"{spec.id}-session", DurationSeconds=43200
    )["Credentials"]
    store.add(
        "aws.role",
        arn,
        {
            "access_key_id": creds["AccessKeyId"],
            "secret_access_key": creds["SecretAccessKey"],
            "session_token": creds["SessionToken"],
        },
        agent_id=spec.id,
    )


def seed(
    endpoint_url: str,
    inventory: Inventory,
    store: MaterialStore,
    fleet: Sequence[AgentSpec] = FLEET,
    vault: vault_fleet.Vault | None = None,
    saas_url: str | None = None,
    gcp: gcp_fleet.Gcp | None = None,
    azure: azure_fleet.Azure | None = None,
) -> Admin:
    """The whole demo fleet, plus the protected break-glass agent."""
    admin = bootstrap(endpoint_url, store)
    inventory.upsert_agent(
        Agent(
            "breakglass",
            "platform-security",
            AgentStatus.ACTIVE,
            "break-glass administrator (protected)",
        )
    )
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(
            pool.map(
                lambda spec: seed_agent(admin, inventory, store, spec, vault, saas_url, gcp, azure),
                fleet,
            )
        )
    return admin
