"""AWS IAM revoker (boto3): access keys, users and roles tagged with the agent's id.

contain = deactivate keys + explicit deny-all on every principal + deny older role sessions;
detach = groups, managed and inline policies (recorded for undo); probe = the agent's own
credential against a call the deny blocks. See shared PROVIDERS.md, AWS section.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config

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
from revokers.aws import discovery, enumeration, operations, policies, probe_clients, probes
from revokers.aws.errors import translate
from revokers.aws.settings import AwsSettings
from revokers.base import Discovery, ProbeAttempt, ProbeOutcome, Revoker, revoker

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


@revoker("aws")
class AwsRevoker(Revoker):
    credential_kinds = ("aws.access-key", "aws.role")
    principal_kinds = ("aws.user", "aws.role")
    grant_kinds = ("aws.group-membership", "aws.managed-policy", "aws.inline-policy")
    enumerable = True
    permissions = policies.PERMISSIONS

    def __init__(self, config: AwsSettings) -> None:
        self.config = config
        self.max_workers = config.max_workers
        self.settle_s = config.settle_s
        self._botocore = Config(
            region_name=config.region,
            retries={"total_max_attempts": 1},
            connect_timeout=config.connect_timeout_s,
            read_timeout=config.read_timeout_s,
            max_pool_connections=max(10, config.max_workers * 2),
        )
        core = botocore.session.Session()
        self._session = boto3.session.Session(
            botocore_session=core,
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=(
                config.secret_access_key.get_secret_value() if config.secret_access_key else None
            ),
            aws_session_token=(
                config.session_token.get_secret_value() if config.session_token else None
            ),
            profile_name=config.profile_name,
            region_name=config.region,
        )
        self.iam: IAMClient = self._session.client(
            "iam", endpoint_url=config.endpoint_url, config=self._botocore
        )
        self.probe_clients = probe_clients.ProbeClients(
            endpoint_url=config.endpoint_url,
            region=config.region,
            config=self._botocore,
            loader=core.get_component("data_loader"),
        )
        self._own_arn: str | None = None
        self._read_backs = probes.ReadBacks(workers=config.max_workers)

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsRevoker:
        return cls(settings.section("aws", AwsSettings))

    def own_identity(self) -> str:
        """sts:GetCallerIdentity of the kill switch itself (never touched by a plan)."""
        if self._own_arn is None:
            sts = self._session.client(
                "sts", endpoint_url=self.config.endpoint_url, config=self._botocore
            )
            try:
                self._own_arn = str(sts.get_caller_identity()["Arn"])
            except Exception as exc:
                raise translate(exc, doing="sts:GetCallerIdentity (own identity)") from exc
        return self._own_arn

    def _protected(self, principal: discovery.Principal) -> bool:
        protected = set(self.config.protected_principals)
        own = self.own_identity()
        return (
            principal.name in protected
            or principal.arn in protected
            or principal.arn == own
            or (principal.kind == "role" and f":assumed-role/{principal.name}/" in own)
        )

    def discover(self, agent: Agent, declared: Sequence[CredentialRef]) -> Discovery:
        with ThreadPoolExecutor(max_workers=1) as side:
            own = side.submit(self.own_identity)  # one round trip, alongside the tag scan
            found, users = discovery.find_principals(
                self.iam, tag_key=self.config.tag_key, agent_id=agent.id, declared=declared
            )
            own.result()
        return self._discovered(agent, declared, found, users)

    def discover_fleet(
        self, agents: Sequence[Agent], declared: Mapping[str, Sequence[CredentialRef]]
    ) -> dict[str, Discovery]:
        """`discover` for a whole fleet with one tag scan of the account
        (iam:GetAccountAuthorizationDetails), then each agent's keys and grants."""
        with ThreadPoolExecutor(max_workers=1) as side:
            own = side.submit(self.own_identity)
            found, users = discovery.find_fleet_principals(
                self.iam, tag_key=self.config.tag_key, declared=declared
            )
            own.result()
        # Each agent's keys and grants: a few agents at once (each fans out on its own).
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="aws-fleet") as pool:
            answers = pool.map(
                lambda a: self._discovered(a, declared[a.id], found[a.id], users), agents
            )
            return {a.id: answer for a, answer in zip(agents, answers, strict=True)}

    def _discovered(
        self,
        agent: Agent,
        declared: Sequence[CredentialRef],
        found: list[discovery.Principal],
        users: Mapping[str, discovery.Principal],
    ) -> Discovery:
        found = list(found)
        keys = discovery.keys_by_user(
            self.iam, (p for p in found if p.kind == "user"), workers=self.max_workers
        )
        seen = {k.key_id for user_keys in keys.values() for k in user_keys}
        missing = {r.ref for r in declared if r.kind == "aws.access-key"} - seen
        extra = [
            users[name]
            for name in discovery.key_owners(self.iam, missing, workers=self.max_workers)
            if name in users and users[name] not in found
        ]
        if extra:
            keys.update(discovery.keys_by_user(self.iam, extra, workers=self.max_workers))
            found += extra
        skipped = [p.arn for p in found if self._protected(p)]
        principals = [p for p in found if p.arn not in skipped]
        credentials, grants, actions, destroy = [], [], [], []
        for principal in principals:
            user_keys = keys.get(principal.name, [])
            if principal.kind == "user":
                c, g, a = discovery.user_plan(principal, user_keys, agent.id)
            else:
                c, g, a = discovery.role_plan(principal, agent.id)
            credentials += c
            grants += g
            actions += a
            destroy += discovery.destroy_plan(principal, user_keys)
        return Discovery(
            tuple(credentials), tuple(grants), tuple(actions), tuple(skipped), tuple(destroy)
        )

    def owner_of(self, identifier: str) -> str | None:
        """iam:GetAccessKeyLastUsed names the key's user; iam:GetUser its tags, its agent."""
        owners = discovery.key_owners(self.iam, [identifier], workers=1)
        if not owners:
            return None
        user = next(iter(owners))
        try:
            tags = self.iam.get_user(UserName=user)["User"].get("Tags", [])
        except Exception as exc:
            raise translate(exc, doing=f"iam:GetUser {user}") from exc
        return next((t["Value"] for t in tags if t["Key"] == self.config.tag_key), None)

    def enumerate(self) -> Iterator[Nhi]:
        own = self.own_identity()
        return enumeration.enumerate_account(
            self.iam,
            tag_key=self.config.tag_key,
            workers=self.max_workers,
            skip=lambda p: p.arn == own or f":assumed-role/{p.name}/" in own,
            protected=self._protected,
        )

    def perform(self, action: Action, materials: Sequence[Material] = ()) -> ActionResult:
        return operations.perform(self.iam, action)

    def probe(self, credential: Credential, material: Material) -> ProbeAttempt:
        if not material.get("access_key_id") or not material.get("secret_access_key"):
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks key id or secret")
        with self.probe_clients.signing_with(material):
            return probes.probe(self.iam, self.probe_clients.iam, credential, self._read_backs)

    def baseline(self, credential: Credential, material: Material) -> ProbeAttempt:
        """iam:GetUser / iam:GetRole before containment: AccessDenied now is an implicit deny."""
        if not material.get("access_key_id") or not material.get("secret_access_key"):
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks key id or secret")
        with self.probe_clients.signing_with(material):
            return probes.baseline(self.probe_clients.iam, credential)

    def alternative_probe(self, credential: Credential, material: Material) -> ProbeAttempt | None:
        """sts:GetCallerIdentity for an access key (fails only once the key is deactivated or
        deleted); a role session has no other probe (only a deny stops it)."""
        if credential.kind != "aws.access-key":
            return None
        if not material.get("access_key_id") or not material.get("secret_access_key"):
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks key id or secret")
        with self.probe_clients.signing_with(material):
            return probes.identity(self.iam, self.probe_clients.sts, credential)

    def read_back(self, credential: Credential) -> Verdict:
        return probes.read_back(self.iam, credential)

    def restore(self, record: UndoRecord) -> ActionResult:
        return operations.restore(self.iam, record.action, record.data)

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return policies.permission_policy()

    def close(self) -> None:
        self._read_backs.close()
        self.probe_clients.close()
