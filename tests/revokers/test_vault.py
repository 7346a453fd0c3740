"""The Vault revoker against a real OpenBao dev server, through the containment engine."""

from __future__ import annotations

import hvac
import pytest
from hvac import exceptions as hv

from killswitch import pipeline, restoration
from killswitch.models import AgentStatus, ContainmentReport, Outcome, VerdictStatus
from killswitch.request import Mode, Request, Workflow
from killswitch.runtime import Runtime
from killswitch.sandbox.vault import fleet as vault_fleet
from killswitch.secrets import KeyringFile, MappingSource
from killswitch.settings import Settings
from revokers.vault.policies import policy_hcl
from revokers.vault.revoker import VaultRevoker
from revokers.vault.settings import VaultSettings
from tests.conftest import SeedAgent, keyring_material
from tests.revokers.saas import runtime_of

pytestmark = pytest.mark.integration


vault_runtime = runtime_of("vault", name="vault_runtime")


def contain(runtime: Runtime, agent_id: str) -> ContainmentReport:
    return pipeline.contain(runtime, Request(agent_id, "test", "test", mode=Mode.BREAK_GLASS))


def tokens_of(runtime: Runtime, agent_id: str) -> dict[str, str]:
    """accessor -> token for every token of the agent the keyring holds."""
    agent = runtime.inventory.get_agent(agent_id)
    assert agent is not None
    found = runtime.revokers["vault"].discover(agent, [])
    out = {}
    for credential in found.credentials:
        for material in runtime.secrets.materials(credential):
            if credential.kind == "vault.token" and (token := material.get("token")):
                out[credential.ref] = token
    return out


def works(addr: str, token: str) -> bool:
    try:
        hvac.Client(url=addr, token=token).auth.token.lookup_self()
    except hv.Forbidden:
        return False
    return True


def memberships(vault: vault_fleet.Vault) -> dict[str, list[str]]:
    client = vault.root()
    return {
        name: sorted(client.secrets.identity.read_group_by_name(name)["data"]["member_entity_ids"])
        for name in vault_fleet.GROUPS
    }


def leases_under(vault: vault_fleet.Vault, agent_id: str) -> list[str]:
    try:
        listed = vault.root().sys.list_leases(f"pki/issue/{agent_id}/")
    except hv.InvalidPath:
        return []
    return list(listed["data"]["keys"])


def test_discovery_finds_the_entity_and_everything_hanging_off_it(
    vault_runtime: Runtime, seed_agent: SeedAgent
) -> None:
    agent_id, other = seed_agent(), seed_agent()
    agent = vault_runtime.inventory.get_agent(agent_id)
    assert agent is not None
    found = vault_runtime.revokers["vault"].discover(agent, [])
    kinds = sorted(c.kind for c in found.credentials)
    assert kinds == sorted(
        ["vault.token"] * 3 + ["vault.secret-id"] * 2 + ["vault.userpass"] + ["vault.lease"] * 2
    )
    assert {g.ref for g in found.grants} == set(vault_fleet.GROUPS)
    assert all(f"/{agent_id}/" in c.ref for c in found.credentials if c.kind == "vault.lease")
    assert not any(other in c.ref for c in found.credentials)


def test_contain_kills_every_token_including_one_minted_just_before(
    vault_runtime: Runtime, seed_agent: SeedAgent, vault: vault_fleet.Vault, keyring: KeyringFile
) -> None:
    agent_id, bystander = seed_agent(), seed_agent()
    agent = vault_runtime.inventory.get_agent(agent_id)
    assert agent is not None
    secret_id = next(
        c
        for c in vault_runtime.revokers["vault"].discover(agent, []).credentials
        if c.kind == "vault.secret-id"
    )
    material = keyring_material(keyring, "vault.secret-id", secret_id.ref)
    fresh_accessor, fresh_token = vault_fleet.login(
        vault.addr, material["role_id"], material["secret_id"]
    )
    leaked = MappingSource("alert", {f"vault.token:{fresh_accessor}": [{"token": fresh_token}]})
    tokens = tokens_of(vault_runtime, agent_id)
    assert tokens and all(works(vault.addr, t) for t in tokens.values())

    report = contain(vault_runtime.with_secrets(leaked), agent_id)

    assert report.ok, [(c.credential.ref, c.verdict) for c in report.credentials]
    verdicts = {c.credential.ref: c.verdict for c in report.credentials}
    assert fresh_accessor in verdicts and verdicts[fresh_accessor].status is VerdictStatus.DEAD
    assert {v.status for v in verdicts.values()} == {VerdictStatus.DEAD}
    assert "permission denied" in verdicts[fresh_accessor].evidence
    assert not any(works(vault.addr, t) for t in [*tokens.values(), fresh_token])
    assert leases_under(vault, agent_id) == []
    assert all(works(vault.addr, t) for t in tokens_of(vault_runtime, bystander).values())
    assert leases_under(vault, bystander)  # another agent's leases live under its own prefix


def test_a_token_without_material_is_unverified_never_dead(
    vault_runtime: Runtime, seed_agent: SeedAgent, vault: vault_fleet.Vault, keyring: KeyringFile
) -> None:
    agent_id = seed_agent()
    agent = vault_runtime.inventory.get_agent(agent_id)
    assert agent is not None
    secret_id = next(
        c
        for c in vault_runtime.revokers["vault"].discover(agent, []).credentials
        if c.kind == "vault.secret-id"
    )
    material = keyring_material(keyring, "vault.secret-id", secret_id.ref)
    accessor, token = vault_fleet.login(vault.addr, material["role_id"], material["secret_id"])
    report = contain(vault_runtime, agent_id)
    verdict = {c.credential.ref: c.verdict for c in report.credentials}[accessor]
    assert verdict.status is VerdictStatus.UNVERIFIED and "disabled" in verdict.evidence
    assert report.ok
    assert not works(vault.addr, token)


def test_restore_makes_the_tokens_work_again_and_puts_groups_back(
    vault_runtime: Runtime, seed_agent: SeedAgent, vault: vault_fleet.Vault
) -> None:
    agent_id = seed_agent()
    before = memberships(vault)
    tokens = tokens_of(vault_runtime, agent_id)
    assert contain(vault_runtime, agent_id).ok
    assert memberships(vault) != before

    report = restoration.restore(
        vault_runtime, Request(agent_id, "fp", "test", mode=Mode.BREAK_GLASS)
    )

    assert report.ok, report
    assert memberships(vault) == before
    assert all(works(vault.addr, t) for t in tokens.values())
    assert any("irreversible" in message for message in report.refused)  # the leases
    assert vault_runtime.inventory.get_agent(agent_id).status is AgentStatus.ACTIVE  # type: ignore[union-attr]
    alive = {c.kind for c, v in report.checks if v.status is VerdictStatus.ALIVE}
    assert {"vault.token", "vault.secret-id", "vault.userpass"} <= alive


def test_contain_twice_is_a_no_op_the_second_time(
    vault_runtime: Runtime, seed_agent: SeedAgent, vault: vault_fleet.Vault
) -> None:
    agent_id = seed_agent()
    first = contain(vault_runtime, agent_id)
    assert first.ok
    after = memberships(vault)
    second = contain(vault_runtime, agent_id)
    assert second.ok
    assert all(a.in_place for a in second.plan.actions)
    assert not second.grants_detached
    results = [r for c in second.credentials for r in c.actions]
    assert results and all(r.outcome is Outcome.ALREADY for r in results)
    assert memberships(vault) == after
    # Rejected already before the second containment: the second run stands on the first
    # run's baseline, taken before that run revoked them (killswitch/carried.py).
    verdicts = [c.verdict for c in second.credentials]
    assert {v.status for v in verdicts} == {VerdictStatus.DEAD}
    carried = [v for v in verdicts if "baseline carried from run" in v.evidence]
    assert carried and all(first.run_id[:12] in v.evidence for v in carried)


def test_protected_entity_is_never_touched(
    vault_runtime: Runtime, vault: vault_fleet.Vault, seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent()
    protected = vault_runtime.settings.model_copy(
        update={
            "vault": vault_runtime.settings.vault.model_copy(
                update={"protected_entities": (agent_id,)}
            )
        }
    )
    runtime = Runtime.open(protected, providers=["vault"])
    try:
        report = contain(runtime, agent_id)
    finally:
        runtime.close()
    assert report.plan.protected_skipped and not report.plan.actions
    assert not vault.root().secrets.identity.read_entity_by_name(agent_id)["data"]["disabled"]


def test_aws_probes_read_their_material_from_vault(
    settings: Settings, seed_agent: SeedAgent
) -> None:
    """Production keeps agents' secrets in Vault KV: the AWS probes find them there."""
    agent_id = seed_agent()
    vault_only = settings.model_copy(update={"secret_sources": ("vault",)})
    runtime = Runtime.open(vault_only, providers=["aws"])
    try:
        report = contain(runtime, agent_id)
    finally:
        runtime.close()
    assert report.ok and len(report.credentials) == 4
    assert {c.verdict.status for c in report.credentials} == {VerdictStatus.DEAD}


def test_aws_and_vault_run_at_the_same_time(runtime: Runtime, seed_agent: SeedAgent) -> None:
    agent_id = seed_agent()
    report = contain(runtime, agent_id)
    assert report.ok
    spans = {p.provider: p for p in report.timings.providers}
    aws, vault_ = spans["aws"], spans["vault"]
    assert aws.start_s < vault_.end_s and vault_.start_s < aws.end_s  # the spans overlap
    serial = sum(p.end_s - p.start_s for p in spans.values())
    assert report.timings.total_s < report.timings.plan_s + serial


def test_vault_down_is_unknown_not_dead(settings: Settings, seed_agent: SeedAgent) -> None:
    agent_id = seed_agent()
    down = settings.model_copy(
        update={
            "action_deadline_s": 1.0,
            "vault": settings.vault.model_copy(update={"addr": "http://127.0.0.1:9"}),
        }
    )
    runtime = Runtime.open(down, providers=["vault"])
    try:
        report = contain(runtime, agent_id)
    finally:
        runtime.close()
    assert not report.ok
    # Transient (the retries ran out inside the deadline) or silent (the deadline came first,
    # as on a busy machine): either way Vault did not answer, and nothing is called dead.
    said = ("vault: discovery failed: transient", "vault: discovery failed: provider-silent")
    assert any(e.startswith(said) for e in report.errors), report.errors
    assert not report.count(VerdictStatus.DEAD)


def test_decommission_destroys_everything_and_leaves_no_lease(
    vault_runtime: Runtime, seed_agent: SeedAgent, vault: vault_fleet.Vault
) -> None:
    agent_id = seed_agent()
    tokens = tokens_of(vault_runtime, agent_id)
    # A contained-and-restored agent issues fresh certificates again: destroy must find them.
    assert contain(vault_runtime, agent_id).ok
    restoration.restore(vault_runtime, Request(agent_id, "fp", "test", mode=Mode.BREAK_GLASS))
    hvac.Client(url=vault.addr, token=next(iter(tokens.values()))).secrets.pki.generate_certificate(
        agent_id, f"{agent_id}.again.local", mount_point="pki"
    )
    assert leases_under(vault, agent_id)

    report = pipeline.contain(
        vault_runtime,
        Request(agent_id, "retired", "test", mode=Mode.BREAK_GLASS, workflow=Workflow.DECOMMISSION),
    )

    assert report.ok, [(c.credential.ref, c.verdict) for c in report.credentials]
    assert report.workflow == "decommission"
    assert {c.verdict.status for c in report.credentials} == {VerdictStatus.DEAD}
    assert leases_under(vault, agent_id) == []
    with pytest.raises(hv.InvalidPath):
        vault.root().secrets.identity.read_entity_by_name(agent_id)
    assert not any(works(vault.addr, t) for t in tokens.values())
    destroyed = [
        r for c in report.credentials for r in c.actions if r.action.verb.value == "destroy"
    ]
    assert destroyed and all(not r.action.reversible for r in destroyed)
    assert vault_runtime.inventory.get_agent(agent_id).status is AgentStatus.DECOMMISSIONED  # type: ignore[union-attr]
    from killswitch.errors import DecommissionedError

    with pytest.raises(DecommissionedError):
        restoration.restore(
            vault_runtime, Request(agent_id, "undo?", "test", mode=Mode.BREAK_GLASS)
        )


def own_client(settings: Settings, vault: vault_fleet.Vault) -> hvac.Client:
    """The kill switch's own token, as the sandbox's profile gives it (the exact policy that
    `killswitch permissions vault` prints)."""
    token = settings.section("vault", VaultSettings).token
    assert token is not None
    return hvac.Client(url=vault.addr, token=token.get_secret_value(), timeout=10)


def test_the_kill_switch_token_cannot_rewrite_policies_or_revoke_auth(
    settings: Settings, seed_agent: SeedAgent, vault: vault_fleet.Vault
) -> None:
    agent_id = seed_agent(only=("vault",))
    client = vault.root()
    entity_id = client.secrets.identity.read_entity_by_name(agent_id)["data"]["id"]
    group_id = client.secrets.identity.read_group_by_name("agents-readers")["data"]["id"]
    own = own_client(settings, vault)
    own_entity = own.auth.token.lookup_self()["data"].get("entity_id")

    # What containment sends is allowed: `disabled` alone, `member_entity_ids` alone.
    own.adapter.post(f"/v1/identity/entity/id/{entity_id}", json={"disabled": False})
    members = client.secrets.identity.read_group(group_id)["data"]["member_entity_ids"]
    own.adapter.post(f"/v1/identity/group/id/{group_id}", json={"member_entity_ids": members})

    with pytest.raises(hv.Forbidden):
        own.adapter.post(f"/v1/identity/entity/id/{entity_id}", json={"policies": ["root"]})
    with pytest.raises(hv.Forbidden):
        own.adapter.post(
            f"/v1/identity/entity/id/{entity_id}", json={"disabled": False, "policies": ["root"]}
        )
    with pytest.raises(hv.Forbidden):
        own.adapter.post(f"/v1/identity/group/id/{group_id}", json={"policies": ["root"]})
    if own_entity:  # its own entity, were it to have one, is no different
        with pytest.raises(hv.Forbidden):
            own.adapter.post(f"/v1/identity/entity/id/{own_entity}", json={"policies": ["root"]})
    for prefix in ("auth/", "auth/approle/login", "pki/", "sys/"):
        with pytest.raises(hv.Forbidden):
            own.adapter.put(f"/v1/sys/leases/revoke-prefix/{prefix}", json={"sync": True})
    # The agent's own prefix is allowed (and `sync` with it).
    own.adapter.put(f"/v1/sys/leases/revoke-prefix/pki/issue/{agent_id}", json={"sync": True})
    assert leases_under(vault, agent_id) == []
    assert client.secrets.identity.read_entity(entity_id)["data"]["policies"] in (None, [])


def test_the_sandbox_token_has_exactly_the_printed_policy(
    settings: Settings, vault: vault_fleet.Vault
) -> None:
    own = own_client(settings, vault)
    assert own.auth.token.lookup_self()["data"]["policies"] == ["killswitch"]
    stored = vault.root().sys.read_policy("killswitch")["data"]["rules"]
    assert stored == policy_hcl(kv_prefix=vault_fleet.KV_PREFIX)
    printed = VaultRevoker.permission_policy()
    assert 'allowed_parameters = { "disabled" = [] }' in printed["hcl"]
    assert 'path "sys/leases/revoke-prefix/pki/issue/+"' in printed["hcl"]
    assert "sys/leases/revoke-prefix/*" not in printed["hcl"]
