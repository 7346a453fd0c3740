"""The sandbox's propagation delay (`killswitch sandbox lag`): a killed credential keeps
authenticating for a while, as at the real providers' edges, while control-plane reads show
the change at once; and `contain` still proves every credential dead, within the settle
window, reporting when each provider converged."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from killswitch.sandbox import http
from killswitch.sandbox.aws import fleet
from killswitch.secrets import KeyringFile
from tests.conftest import SeedAgent, keyring_material, run_cli

pytestmark = pytest.mark.integration
SAAS = ("slack", "github", "openai", "anthropic")
LAG_S = 3.0


@pytest.fixture
def lagging(sandbox_home: Path, sandbox: dict[str, Any]) -> Iterator[Path]:
    """Whatever a test sets, every delay is off afterwards (the sandbox is the session's)."""
    yield sandbox_home
    done = run_cli(sandbox_home, "sandbox", "lag", "*", "0", "--json")
    assert done.returncode == 0, done.stderr


def lag(home: Path, provider: str, seconds: float, *flags: str) -> dict[str, Any]:
    done = run_cli(home, "sandbox", "lag", provider, str(seconds), *flags, "--json")
    assert done.returncode == 0, done.stderr
    answered: dict[str, Any] = json.loads(done.stdout)
    return answered


def auth_test(saas_url: str, token: str) -> dict[str, Any]:
    response = httpx.post(
        f"{saas_url}/slack/api/auth.test", headers={"Authorization": f"Bearer {token}"}
    )
    answered: dict[str, Any] = response.json()
    return answered


def test_a_revoked_slack_token_keeps_working_for_the_lag(lagging: Path, saas_url: str) -> None:
    assert lag(lagging, "slack", 1.5) == {"slack": {"seconds": 1.5, "flap": False}}
    token = http.mint(saas_url, "slack", "lag-test")["secret"]
    assert auth_test(saas_url, token)["ok"]
    revoked = httpx.post(
        f"{saas_url}/slack/api/auth.revoke", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert revoked == {"ok": True, "revoked": True}
    killed = time.monotonic()
    assert auth_test(saas_url, token)["ok"]  # the edge has not heard yet
    time.sleep(max(0.0, killed + 1.6 - time.monotonic()))
    assert auth_test(saas_url, token) == {"ok": False, "error": "token_revoked"}


def test_with_flap_the_first_request_is_refused_then_accepted(
    lagging: Path, sandbox: dict[str, Any], saas_url: str
) -> None:
    assert lag(lagging, "anthropic", 1.5, "--flap") == {"anthropic": {"seconds": 1.5, "flap": True}}
    minted = http.mint(saas_url, "anthropic", "lag-test")
    api = f"{saas_url}/anthropic/v1"
    version = {"anthropic-version": "2023-06-01"}
    agent = {"x-api-key": minted["secret"], **version}
    admin = {"x-api-key": sandbox["stand_ins"]["saas"]["admin_keys"]["anthropic"], **version}
    assert httpx.get(f"{api}/models", headers=agent).status_code == 200
    httpx.post(
        f"{api}/organizations/api_keys/{minted['ref']}", headers=admin, json={"status": "inactive"}
    ).raise_for_status()
    killed = time.monotonic()
    # The admin API shows it inactive at once; authentication lags, with one early refusal.
    key = httpx.get(f"{api}/organizations/api_keys/{minted['ref']}", headers=admin).json()
    assert key["status"] == "inactive"
    assert httpx.get(f"{api}/models", headers=agent).status_code == 401  # one server knew
    assert httpx.get(f"{api}/models", headers=agent).status_code == 200  # the others not yet
    time.sleep(max(0.0, killed + 1.6 - time.monotonic()))
    assert httpx.get(f"{api}/models", headers=agent).status_code == 401


def test_a_stand_in_without_a_delay_is_refused_with_the_ones_that_have_it(
    lagging: Path,
) -> None:
    done = run_cli(lagging, "sandbox", "lag", "vault", "2")
    assert done.returncode != 0
    assert "vault" in done.stderr and "aws" in done.stderr and "slack" in done.stderr
    assert "azure" in done.stderr  # its own propagation mode, through the same command
    assert lag(lagging, "azure", 2)["azure"]["seconds"] == 2


def agent_iam(
    sandbox: dict[str, Any], keyring: KeyringFile, admin: fleet.Admin, user: str
) -> tuple[Any, str]:
    [key] = admin.iam().list_access_keys(UserName=user)["AccessKeyMetadata"]
    material = keyring_material(keyring, "aws.access-key", key["AccessKeyId"])
    endpoint = str(sandbox["providers"]["aws"]["endpoint_url"])  # through the `aws` proxy
    iam = fleet.client("iam", endpoint, material["access_key_id"], material["secret_access_key"])
    return iam, key["AccessKeyId"]


def denied(iam: Any, user: str) -> bool:
    try:
        iam.get_user(UserName=user)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDenied"
        return True
    return False


@pytest.mark.parametrize("flap", [False, True])
def test_iam_lag_keeps_a_denied_key_working_while_reads_show_the_deny(
    lagging: Path,
    sandbox: dict[str, Any],
    seed_agent: SeedAgent,
    keyring: KeyringFile,
    admin: fleet.Admin,
    flap: bool,
) -> None:
    agent_id = seed_agent(aws={"users": (("runtime", 1),), "role": False}, only=("aws",))
    user = f"{agent_id}-runtime"
    lag(lagging, "aws", 1.5, *(["--flap"] if flap else []))
    iam, _ = agent_iam(sandbox, keyring, admin, user)
    assert not denied(iam, user)  # the edge remembers this answer
    control = fleet.client(
        "iam",
        str(sandbox["providers"]["aws"]["endpoint_url"]),
        admin.access_key_id,
        admin.secret_access_key,
    )
    control.put_user_policy(
        UserName=user, PolicyName="killswitch-quarantine", PolicyDocument=json.dumps(DENY)
    )
    killed = time.monotonic()
    # The control plane shows the deny at once…
    assert "killswitch-quarantine" in control.list_user_policies(UserName=user)["PolicyNames"]
    # …the key's requests are answered as before it, for the lag.
    if flap:
        assert denied(iam, user)
    assert not denied(iam, user)
    assert not denied(iam, user)
    time.sleep(max(0.0, killed + 1.6 - time.monotonic()))
    assert denied(iam, user)


DENY = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}


def contain(home: Path, agent_id: str) -> tuple[int, dict[str, Any], str]:
    done = run_cli(
        home,
        "contain",
        agent_id,
        "--reason",
        "test: propagation",
        "--json",
        KILLSWITCH_AWS__SETTLE_S="1",
        KILLSWITCH_PROBE_DEADLINE_S="60",
        KILLSWITCH_PROBE_INTERVAL_S="0.5",
    )
    return done.returncode, json.loads(done.stdout or "{}"), done.stderr


def test_contain_with_propagation_delay_still_proves_everything_dead_and_says_when(
    lagging: Path, seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent(only=("aws", *SAAS))
    answered = lag(lagging, "*", LAG_S)
    assert {"aws", *SAAS} <= set(answered)

    code, report, stderr = contain(lagging, agent_id)

    assert code == 0, stderr
    assert report["ok"], [(c["ref"], c["evidence"]) for c in report["credentials"]]
    assert {c["verdict"] for c in report["credentials"]} == {"dead"}
    providers = report["timings"]["providers"]
    assert {"aws", *SAAS} <= set(providers)
    for name in ("aws", *SAAS):
        converged = providers[name]["converged_s"]
        # Every provider kept accepting its killed credentials for about the lag…
        assert converged is not None and LAG_S - 1.0 <= converged < 60, (name, converged)
    for credential in report["credentials"]:
        assert credential["converged_s"] <= providers[credential["provider"]]["converged_s"]
    aws_dead = [c for c in report["credentials"] if c["provider"] == "aws"]
    # …and AWS's rejection then held over its settle window before it counted.
    assert all("over the 1s settle window" in c["evidence"] for c in aws_dead)


def test_a_flap_during_propagation_is_reported_not_hidden(
    lagging: Path, seed_agent: SeedAgent
) -> None:
    sandbox_home = lagging
    agent_id = seed_agent(aws={"users": (("runtime", 1),), "role": False}, only=("aws",))
    lag(lagging, "aws", LAG_S, "--flap")

    code, report, stderr = contain(lagging, agent_id)

    assert code == 0, stderr
    [key] = report["credentials"]
    assert key["verdict"] == "dead" and key["flaps"] >= 1
    assert "accepted again at" in key["evidence"]
    assert report["timings"]["providers"]["aws"]["flaps"] >= 1
    # The ledger keeps the evidence: when it converged, and the flap.
    shown = run_cli(sandbox_home, "audit", "show", "--run", report["run_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    probes = [r for r in json.loads(shown.stdout) if r["action"] == "probe"]
    assert probes, "no probe entries in the ledger"
    assert any("flaps" in json.dumps(r) and "converged_s" in json.dumps(r) for r in probes)


def test_iam_lag_runs_from_the_containment_call_not_from_the_first_use(
    lagging: Path,
    sandbox: dict[str, Any],
    seed_agent: SeedAgent,
    keyring: KeyringFile,
    admin: fleet.Admin,
) -> None:
    agent_id = seed_agent(aws={"users": (("runtime", 1),), "role": False}, only=("aws",))
    user = f"{agent_id}-runtime"
    lag(lagging, "aws", 1.0)
    iam, key_id = agent_iam(sandbox, keyring, admin, user)
    assert not denied(iam, user)
    control = fleet.client(
        "iam",
        str(sandbox["providers"]["aws"]["endpoint_url"]),
        admin.access_key_id,
        admin.secret_access_key,
    )
    control.put_user_policy(
        UserName=user, PolicyName="killswitch-quarantine", PolicyDocument=json.dumps(DENY)
    )
    time.sleep(1.2)  # nobody used the key meanwhile: the edge has caught up all the same
    assert denied(iam, user)
    assert key_id.startswith("AKIA")
