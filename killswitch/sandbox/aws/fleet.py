"""The demo fleet in moto: IAM users, keys, a role and its session, groups and policies.

Seeded through the real boto3 client against moto with auth enforced, using the kill
switch's own sandbox identity. The agents' secrets go to the material stores (probe material),
never to stdout or logs.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from killswitch.inventory import Inventory
from killswitch.models import CredentialRef
from killswitch.sandbox.http import PROXY
from killswitch.sandbox.plugin import AgentSpec, Sandbox, Seeded, SweepSeeds
from killswitch.secrets import MaterialStore

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ACCOUNT = "123456789012"
REGION = "us-east-1"
ADMIN_USER = "killswitch-admin"
BREAKGLASS_USER = "breakglass-admin"
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
class Options:
    """An agent's AWS seeding: IAM users (name suffix, key count), a role assumed from the
    first user's first key, and the groups every user joins."""

    users: Sequence[tuple[str, int]] = (("runtime", 2), ("ci", 1))
    role: bool = True
    groups: Sequence[str] = tuple(GROUPS)
    # Every other way in on each user (console password, SSH key, signing certificate, MFA,
    # a CodeCommit Git credential and a Bedrock key): what DeleteUser conflicts with.
    sign_in: bool = False

    def seeded(self) -> Seeded:
        """What discovery finds: the keys and the role; per user its groups, the attached
        policy and the inline one; on the role its attached and inline policies."""
        keys = sum(count for _, count in self.users)
        role = self.role and keys > 0
        per_user = len(self.groups) + 2
        return Seeded(keys + int(role), per_user * len(self.users) + 2 * int(role))


# The demo fleet's AWS particulars, by agent id (every other agent gets the defaults).
DEMO = {"sales-assistant": Options(groups=("agents-readonly",))}


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
    """A boto3 client of `service` against moto, with these credentials."""
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
    """The ARN of a customer-managed policy in the sandbox account."""
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


def add_sign_in(iam: IAMClient, user: str) -> None:
    """Everything but access keys a user can sign in or authenticate with (no secret of it
    is kept: nothing probes them; destroy must remove them before DeleteUser)."""
    from killswitch.sandbox.aws.material import certificate_pem, ssh_public_key

    iam.create_login_profile(UserName=user, Password=secrets.token_urlsafe(24) + "aA1!")
    iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody=ssh_public_key())
    iam.upload_signing_certificate(UserName=user, CertificateBody=certificate_pem(user))
    for service in ("codecommit.amazonaws.com", "bedrock.amazonaws.com"):
        iam.create_service_specific_credential(UserName=user, ServiceName=service)
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{user}-mfa")["VirtualMFADevice"][
        "SerialNumber"
    ]
    iam.enable_mfa_device(
        UserName=user,
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )


def seed_agent(
    admin: Admin, inventory: Inventory, store: MaterialStore, spec: AgentSpec, options: Options
) -> Seeded:
    """One agent: IAM users (tagged), keys, groups, policies, a role and one live session."""
    iam = admin.iam()
    tags: list[Any] = [{"Key": TAG_KEY, "Value": spec.id}, {"Key": "owner", "Value": spec.owner}]
    runtime_key: dict[str, str] | None = None
    first_user = ""
    for suffix, key_count in options.users:
        user = f"{spec.id}-{suffix}"
        first_user = first_user or user
        iam.create_user(UserName=user, Tags=tags)
        for group in options.groups:
            iam.add_user_to_group(UserName=user, GroupName=group)
        iam.attach_user_policy(UserName=user, PolicyArn=policy_arn("agent-runtime"))
        iam.put_user_policy(
            UserName=user,
            PolicyName=f"{spec.id}-scratch-bucket",
            PolicyDocument=json.dumps(DATA_POLICY),
        )
        if options.sign_in:
            add_sign_in(iam, user)
        for _ in range(key_count):
            material = add_key(admin, store, user, agent_id=spec.id)
            ref = CredentialRef("aws", "aws.access-key", material["access_key_id"])
            inventory.declare(spec.id, ref)
            runtime_key = runtime_key or material
    if options.role and runtime_key is not None:
        _seed_role(admin, store, spec, tags, first_user, runtime_key)
    return options.seeded()


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


@dataclass(frozen=True, slots=True)
class Seeder:
    """The AWS plug-in's seeding, as the kill switch's own sandbox identity."""

    admin: Admin
    sandbox: Sandbox

    def seed_agent(self, spec: AgentSpec, options: Mapping[str, Any]) -> Seeded:
        """The agent's IAM users, keys, groups, policies and role (`Options` fields)."""
        chosen = Options(**options) if options else DEMO.get(spec.id, Options())
        return seed_agent(self.admin, self.sandbox.inventory, self.sandbox.store, spec, chosen)

    def seed_sweep(self) -> SweepSeeds:
        """Stale, long-lived, expired, orphaned and reused access keys."""
        from killswitch.sandbox.aws import sweep

        http = str(self.sandbox.stand_ins[PROXY]["url"])
        return sweep.seed(self.admin, self.sandbox.inventory, self.sandbox.store, http)

    def _identity(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.sandbox.stand_ins["moto"]["proxied"],
            "region": REGION,
            "access_key_id": self.admin.access_key_id,
            "secret_access_key": self.admin.secret_access_key,
        }

    def profile(self) -> Mapping[str, Any]:
        """`aws`: the proxied endpoint, the kill switch's identity, the protected users."""
        # moto applies every change at once: a short settle window still holds the verdict
        # to the rule (rejections held over a window), without minutes per run.
        return {
            "aws": {
                **self._identity(),
                "protected_principals": [ADMIN_USER, BREAKGLASS_USER],
                "settle_s": 0.5,
            }
        }

    def status(self) -> Mapping[str, Any]:
        """`providers.aws`: the proxied endpoint, region and the kill switch's identity."""
        return {"aws": self._identity()}
