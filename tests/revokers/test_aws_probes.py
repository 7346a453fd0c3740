"""AWS probes without the sandbox (botocore's Stubber stands in for IAM and STS): the
baseline calls an implicit AccessDenied a rejection, and the alternative probe of an access
key is sts:GetCallerIdentity."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from killswitch.models import Credential
from revokers.aws import probes as aws
from revokers.aws.policies import DENY_ALL, QUARANTINE_POLICY
from revokers.base import ProbeOutcome

REJECTED, ACCEPTED, INCONCLUSIVE = (
    ProbeOutcome.REJECTED,
    ProbeOutcome.ACCEPTED,
    ProbeOutcome.INCONCLUSIVE,
)


def _aws(service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="AKIATESTONLY",
        aws_secret_access_key="not-a-secret",  # noqa: S106
    )


AWS_KEY = Credential(
    "aws", "aws.access-key", "AKIA1", "arn:aws:iam::123456789012:user/agent-7", "agent-7"
)
USER = {
    "User": {
        "Path": "/",
        "UserName": "agent-7",
        "UserId": "AIDA1234567890EXAMPLE",
        "Arn": AWS_KEY.principal,
        "CreateDate": "2026-01-01T00:00:00Z",
    }
}


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, ACCEPTED),
        ("InvalidClientTokenId", REJECTED),
        # Before containment no quarantine exists: AccessDenied is an implicit deny, so
        # iam:GetUser cannot show a kill for this key — a rejected baseline.
        ("AccessDenied", REJECTED),
        ("ServiceUnavailable", INCONCLUSIVE),
    ],
)
def test_aws_baseline_calls_an_implicit_deny_a_rejection(
    error: str | None, outcome: ProbeOutcome
) -> None:
    client = _aws("iam")
    with Stubber(client) as stub:
        if error:
            stub.add_client_error("get_user", error, "said by IAM", 403)
        else:
            stub.add_response("get_user", USER)
        attempt = aws.baseline(client, AWS_KEY)
    assert attempt.outcome is outcome
    if error == "AccessDenied":
        assert "implicit deny" in attempt.evidence


def read_back(admin_stub: Stubber, quarantined: bool) -> None:
    """IAM's answer to the deny read-back: the quarantine deny-all, or no such policy."""
    if quarantined:
        admin_stub.add_response(
            "get_user_policy",
            {
                "UserName": "agent-7",
                "PolicyName": QUARANTINE_POLICY,
                "PolicyDocument": json.dumps(DENY_ALL),
            },
        )
    else:
        admin_stub.add_client_error("get_user_policy", "NoSuchEntity", "none", 404)


@pytest.mark.parametrize(
    ("error", "quarantined", "outcome"),
    [
        ("InvalidClientTokenId", False, REJECTED),  # deactivated or deleted key
        (None, False, ACCEPTED),  # the key authenticates, nothing denies it
        (None, True, INCONCLUSIVE),  # authenticates, but the deny-all blocks the rest
    ],
)
def test_aws_alternative_probe_is_get_caller_identity(
    error: str | None, quarantined: bool, outcome: ProbeOutcome
) -> None:
    admin, sts = _aws("iam"), _aws("sts")
    with Stubber(admin) as admin_stub, Stubber(sts) as sts_stub:
        if error:
            sts_stub.add_client_error("get_caller_identity", error, "said by STS", 403)
        else:
            sts_stub.add_response(
                "get_caller_identity",
                {"UserId": "AIDA1", "Account": "123456789012", "Arn": AWS_KEY.principal},
            )
            read_back(admin_stub, quarantined)
        attempt = aws.identity(admin, sts, AWS_KEY)
    assert attempt.outcome is outcome and "sts:GetCallerIdentity" in attempt.evidence


@pytest.mark.parametrize(
    ("quarantined", "outcome", "said"),
    [
        (True, REJECTED, f"deny-all {QUARANTINE_POLICY} read back on the principal"),
        # An implicit deny (no quarantine read back) proves nothing, read ahead or not.
        (False, INCONCLUSIVE, "no quarantine deny is in place"),
    ],
)
def test_the_deny_is_read_back_alongside_the_probe_and_judges_its_access_denied(
    quarantined: bool, outcome: ProbeOutcome, said: str
) -> None:
    admin, client = _aws("iam"), _aws("iam")
    read_backs = aws.ReadBacks(workers=1)
    with Stubber(admin) as admin_stub, Stubber(client) as stub:
        stub.add_client_error("get_user", "AccessDenied", "explicit deny", 403)
        read_back(admin_stub, quarantined)
        if not quarantined:
            admin_stub.add_response("get_user", USER)  # the principal still exists
        attempt = aws.probe(admin, client, AWS_KEY, read_backs)
        admin_stub.assert_no_pending_responses()
    read_backs.close()
    assert attempt.outcome is outcome and said in attempt.evidence
    assert read_backs.fresh(AWS_KEY.principal) is quarantined  # kept for the user's other keys
