"""The demo fleet in the GCP stand-in, through the real google-cloud-iam client: per agent two
service accounts whose description names it (`agent-id=<id>`) — a runtime one with two keys
and bindings to a role of its own and to one shared by every agent (so a containment must
remove only its member), and a CI one with one key and one binding. The key files go to the
probe-material stores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.cloud import iam_admin_v1

from killswitch.sandbox.gcp.state import PROJECT
from killswitch.sandbox.plugin import AgentSpec, Sandbox, Seeded, SweepSeeds
from killswitch.secrets import MaterialStore
from revokers.gcp.client import Clients
from revokers.gcp.operations import POLICY_VERSION, read_policy
from revokers.gcp.settings import GcpSettings

OWN_ROLE = "roles/storage.objectViewer"
SHARED_ROLE = "roles/logging.logWriter"
CI_ROLE = "roles/artifactregistry.reader"


@dataclass
class Gcp:
    """The gRPC stand-in's address and project (seeding and tests open clients on it)."""

    grpc_target: str
    project: str = PROJECT

    def clients(self) -> Clients:
        return Clients.open(GcpSettings(project=self.project, grpc_target=self.grpc_target))


def account_id(agent_id: str, suffix: str = "sa") -> str:
    """The service account id of an agent's account (GCP allows 30 characters)."""
    return f"{agent_id[: 29 - len(suffix)]}-{suffix}"


def add_key(clients: Clients, store: MaterialStore, email: str, agent_id: str) -> str:
    """A new key of the account; its key file goes to the store. Returns `<email>/<key id>`."""
    name = f"projects/{PROJECT}/serviceAccounts/{email}"
    key = clients.iam.create_service_account_key(request={"name": name})
    ref = f"{email}/{key.name.rsplit('/', 1)[-1]}"
    store.add(
        "gcp.service-account-key",
        ref,
        {"key_file": key.private_key_data.decode()},
        agent_id=agent_id,
    )
    return ref


def bind(clients: Clients, role: str, member: str) -> None:
    """Add `member` to `role` in the project's allow policy (etag read-modify-write)."""
    resource = f"projects/{PROJECT}"
    for _ in range(5):  # etag conflicts between concurrent seeders: read again
        policy = read_policy(clients, PROJECT)
        binding = next(
            (b for b in policy.bindings if b.role == role and not b.HasField("condition")), None
        )
        if binding is None:
            binding = policy.bindings.add(role=role)
        if member in binding.members:
            return
        binding.members.append(member)
        policy.version = POLICY_VERSION
        try:
            clients.projects.set_iam_policy(request={"resource": resource, "policy": policy})
            return
        except Exception as exc:  # noqa: BLE001
            if "ABORTED" not in str(exc) and "concurrent" not in str(exc):
                raise


ACCOUNTS = (("sa", 2, (OWN_ROLE, SHARED_ROLE)), ("ci", 1, (CI_ROLE,)))  # suffix, keys, roles


def seed_agent(gcp: Gcp, store: MaterialStore, agent_id: str, owner: str) -> dict[str, Any]:
    """The agent's two service accounts, their keys and bindings; account email -> key refs."""
    clients = gcp.clients()
    try:
        minted: dict[str, Any] = {}
        for suffix, keys, roles in ACCOUNTS:
            account = clients.iam.create_service_account(
                request={
                    "name": f"projects/{PROJECT}",
                    "account_id": account_id(agent_id, suffix),
                    "service_account": iam_admin_v1.ServiceAccount(
                        display_name=f"{agent_id} {suffix}",
                        description=f"agent-id={agent_id}; owner={owner}",
                    ),
                }
            )
            minted[account.email] = [
                add_key(clients, store, account.email, agent_id) for _ in range(keys)
            ]
            for role in roles:
                bind(clients, role, f"serviceAccount:{account.email}")
        return minted
    finally:
        clients.close()


@dataclass(frozen=True, slots=True)
class Seeder:
    """The GCP plug-in's seeding (the stand-in asks no caller identity)."""

    gcp: Gcp
    sandbox: Sandbox

    def seed_agent(self, spec: AgentSpec, options: Mapping[str, Any]) -> Seeded:
        """Two service accounts with keys and bindings (no options)."""
        if options:
            raise TypeError(f"no GCP seeding options: {sorted(options)}")
        seed_agent(self.gcp, self.sandbox.store, spec.id, spec.owner)
        return Seeded(
            sum(keys for _, keys, _ in ACCOUNTS), sum(len(roles) for _, _, roles in ACCOUNTS)
        )

    def seed_sweep(self) -> SweepSeeds:
        """Nothing: the sweep's GCP findings are the retired agent's accounts."""
        return SweepSeeds()

    def profile(self) -> Mapping[str, Any]:
        """`gcp`: the project and the gRPC target: the `gcp` fault relay (seeding: direct)."""
        # The stand-in applies changes at once: a short settle window keeps the rule honest.
        return {
            "gcp": {
                "project": self.gcp.project,
                "grpc_target": self.sandbox.stand_ins["gcp"].get(
                    "proxied_grpc_target", self.gcp.grpc_target
                ),
                "settle_s": 0.5,
            }
        }

    def status(self) -> Mapping[str, Any]:
        """`providers.gcp`: the stand-in's endpoints (gRPC target, token URI, project)."""
        return {"gcp": dict(self.sandbox.stand_ins["gcp"])}
