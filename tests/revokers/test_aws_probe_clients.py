"""The shared AWS probe clients against moto (auth enforced): every call is signed with the
material of the probe making it, however many probes of other keys run at once, and a call
made outside a probe is signed by no one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import NoCredentialsError

from killswitch import pipeline
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime
from killswitch.secrets import Material
from revokers.aws.revoker import AwsRevoker
from revokers.base import ProbeOutcome
from tests.conftest import SeedAgent
from tests.revokers.saas import runtime_of

pytestmark = pytest.mark.integration


runtime = runtime_of("aws")


def test_probes_of_many_keys_at_once_are_each_signed_with_their_own_key(
    runtime: Runtime, seed_agent: SeedAgent
) -> None:
    one_user = {"users": (("runtime", 2),), "role": False}
    target, bystander = seed_agent(aws=one_user), seed_agent(aws=one_user)
    request = Request(target, "test", "test", mode=Mode.BREAK_GLASS)
    assert pipeline.contain(runtime, request).ok
    revoker = runtime.revokers["aws"]
    assert isinstance(revoker, AwsRevoker)

    def keys(agent_id: str) -> list[tuple[str, object, Material]]:
        agent = runtime.inventory.get_agent(agent_id)
        assert agent is not None
        found = revoker.discover(agent, []).credentials
        return [(agent_id, c, m) for c in found for m in runtime.secrets.materials(c)]

    jobs = (keys(target) + keys(bystander)) * 6  # interleaved on eight threads

    def probe(job: tuple[str, object, Material]) -> tuple[str, ProbeOutcome, str]:
        agent_id, credential, material = job
        with revoker.probe_clients.signing_with(material):
            arn = revoker.probe_clients.sts.get_caller_identity()["Arn"]
        return agent_id, revoker.probe(credential, material).outcome, arn  # type: ignore[arg-type]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(probe, jobs))
    assert len(answers) == 24
    for agent_id, outcome, arn in answers:
        assert arn.endswith(f"user/{agent_id}-runtime")  # signed as that key's own user
        expected = ProbeOutcome.REJECTED if agent_id == target else ProbeOutcome.ACCEPTED
        assert outcome is expected


def test_a_call_outside_a_probe_is_signed_by_no_one(runtime: Runtime) -> None:
    revoker = runtime.revokers["aws"]
    assert isinstance(revoker, AwsRevoker)
    with pytest.raises(NoCredentialsError):
        revoker.probe_clients.iam.get_user()
    with pytest.raises(NoCredentialsError):
        revoker.probe_clients.sts.get_caller_identity()
