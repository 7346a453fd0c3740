"""`POST /alerts/<source>` against `killswitch serve` as its own process, on the sandbox:
a signed alert of the real shape for a leaked credential contains its agent and proves every
credential dead (the leaked one with its own value when the alert carries it); copies start
no second run; a storm is held for a human with one message; bad input changes nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from killswitch import planning
from killswitch.alerts.guard import StormBreaker
from killswitch.inventory import Inventory
from killswitch.ledger import Ledger
from killswitch.runtime import Runtime
from killswitch.sandbox import github, senders
from killswitch.settings import Settings
from tests.conftest import SeedAgent, run_cli
from tests.killswitch.slack_app.slack import Slack
from tests.killswitch.slack_app.test_app import serving

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOPIC = "arn:aws:sns:us-east-1:123456789012:killswitch-alerts"
READER = "ghp_alertsreader" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def sns_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[senders.SnsCertificateHost]:
    host = senders.SnsCertificateHost(tmp_path_factory.mktemp("sns"))
    host.start()
    yield host
    host.stop()


@pytest.fixture(autouse=True)
def calm(settings: Settings) -> None:
    """Each test starts with the storm breaker closed (an operator's resume): the module's
    tests together contain more agents than the sandbox's breaker allows."""
    guards = settings.alerts.guards
    inventory = Inventory(settings.inventory_file)
    StormBreaker(inventory, guards.storm_max_agents, guards.storm_window_s).resume("test-suite")
    inventory.close()


@pytest.fixture(scope="module")
def service(
    sandbox: dict[str, Any],
    sandbox_home: Path,
    saas_url: str,
    sns_host: senders.SnsCertificateHost,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Slack]:
    log = tmp_path_factory.mktemp("serve-alerts") / "serve.log"
    env = {
        "KILLSWITCH_ALERTS__SNS__ENABLED": "true",
        "KILLSWITCH_ALERTS__SNS__TOPIC_ARNS": f'["{TOPIC}"]',
        "KILLSWITCH_ALERTS__SNS__CERT_HOSTS": '["'
        + sns_host.host_pattern.replace("\\", "\\\\")
        + '"]',
        "KILLSWITCH_ALERTS__SNS__CERT_CA_FILE": str(sns_host.ca_path),
        # GitHub's webhook carries no secret: the receiver reads it from the REST alert.
        "KILLSWITCH_ALERTS__GITHUB__API_URL": str(sandbox["providers"]["github"]["base_url"]),
        "KILLSWITCH_ALERTS__GITHUB__API_TOKEN": READER,
    }
    with serving(sandbox, sandbox_home, saas_url, log, **env) as slack:
        yield slack


def post(service: Slack, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{service.service}/alerts/{source}", content=body, headers=headers, timeout=30
    )


def finished(settings: Settings, run_id: str, timeout: float = 90) -> dict[str, Any]:
    """The run's closing ledger entry (`contain` proven / not-proven)."""
    deadline = time.monotonic() + timeout
    ledger = Ledger(settings.ledger_file)
    try:
        while time.monotonic() < deadline:
            for row in ledger.rows(run_id=run_id):
                if row["action"] == "contain" and row["outcome"] in ("proven", "not-proven"):
                    return row
            time.sleep(0.3)
    finally:
        ledger.close()
    raise AssertionError(f"run {run_id} did not finish")


def probes(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    ledger = Ledger(settings.ledger_file)
    try:
        return [r for r in ledger.rows(run_id=run_id) if r["action"] == "probe"]
    finally:
        ledger.close()


def credentials(runtime: Runtime, agent_id: str, provider: str) -> list[str]:
    agent = runtime.inventory.get_agent(agent_id)
    assert agent is not None
    found = planning.discover(runtime, agent)[provider]
    assert not isinstance(found, Exception)
    return [c.ref for c in found.credentials]


def one_run(answer: httpx.Response) -> str:
    assert answer.status_code == 202, answer.text
    said = answer.json()
    assert said["decision"] == "contain", said
    [agent] = said["agents"]
    assert agent["decision"] == "contain" and agent["run_id"], said
    return str(agent["run_id"])


def task_runs(api: httpx.Client, flow_run_id: str, timeout: float = 15) -> list[dict[str, Any]]:
    """The flow run's task runs, once the server has recorded them (from the run's events)."""
    deadline = time.monotonic() + timeout
    while True:
        found: list[dict[str, Any]] = api.post(
            "task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}}
        ).json()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def access_key(runtime: Runtime, agent_id: str) -> str:
    return next(r for r in credentials(runtime, agent_id, "aws") if r.startswith("AKIA"))


def test_an_aws_exposed_key_event_contains_the_keys_agent(
    service: Slack,
    settings: Settings,
    runtime: Runtime,
    seed_agent: SeedAgent,
    prefect_http: httpx.Client,
) -> None:
    agent_id = seed_agent("al-aws", only=("aws",))
    event = senders.health_exposed_event(access_key(runtime, agent_id))
    body = senders.encode(event)
    key = settings.alerts.aws.api_key
    assert key is not None
    run_id = one_run(post(service, "aws", body, senders.aws_headers(key.get_secret_value())))
    closing = finished(settings, run_id)
    assert closing["outcome"] == "proven", closing
    assert {p["outcome"] for p in probes(settings, run_id)} == {"dead"}
    # Narrated in the incident channel like a Slack-started run: the board, then the report.
    replies = service.wait_for(f"containing {agent_id}", "PROVEN")
    assert replies[-1]["text"].startswith("PROVEN")
    # The flow run carries the alert's source and id as tags; its task runs carry none: a
    # tagged task run asks the server for a concurrency slot before its body runs (on
    # SQLite: `database is locked`, and the client's retry 2 s later, on every alert).
    [run] = prefect_http.post(
        "flow_runs/filter", json={"flow_runs": {"name": {"any_": [f"contain-{agent_id}"]}}}
    ).json()
    assert "alert-source:aws" in run["tags"] and any(t.startswith("alert:") for t in run["tags"])
    tasks = task_runs(prefect_http, run["id"])
    assert tasks and all(t["tags"] == [] for t in tasks), [t["tags"] for t in tasks]
    copy = post(service, "aws", body, senders.aws_headers(key.get_secret_value()))
    assert copy.status_code == 409  # EventBridge's retry of the same event id: a replay


def test_the_same_event_through_sns_is_verified_and_contains(
    service: Slack,
    settings: Settings,
    runtime: Runtime,
    seed_agent: SeedAgent,
    sns_host: senders.SnsCertificateHost,
) -> None:
    agent_id = seed_agent("al-sns", only=("aws",))
    event = senders.health_exposed_event(access_key(runtime, agent_id))
    message = sns_host.signer.notification(TOPIC, event, version="1")
    body = senders.encode(message)
    run_id = one_run(post(service, "sns", body, senders.sns_headers(message)))
    assert finished(settings, run_id)["outcome"] == "proven"


def test_a_github_secret_scanning_alert_proves_the_leaked_token_with_its_own_value(
    service: Slack,
    settings: Settings,
    runtime: Runtime,
    seed_agent: SeedAgent,
    keyring: Any,
    saas_url: str,
) -> None:
    agent_id = seed_agent("al-gh", only=("github",))
    ref = credentials(runtime, agent_id, "github")[0]
    [material] = keyring.materials(_credential(runtime, agent_id, "github", ref))
    token = next(v.reveal() for k, v in material.fields.items() if k == "token")
    number = int(time.time() * 1000) % 10**9
    # The webhook as GitHub sends it (no secret); the value is in the REST alert only.
    github.raise_scanning_alert(saas_url, "octo-org/agents", number, token, READER)
    payload = senders.secret_scanning_alert(number=number, repository="octo-org/agents")
    body = senders.encode(payload)
    assert token.encode() not in body
    secret = settings.alerts.github.webhook_secret
    assert secret is not None
    answer = post(service, "github", body, senders.github_headers(secret.get_secret_value(), body))
    run_id = one_run(answer)
    assert token not in answer.text
    assert finished(settings, run_id)["outcome"] == "proven"
    leaked = [p for p in probes(settings, run_id) if p["credential"] == ref]
    assert leaked and leaked[0]["outcome"] == "dead"
    assert "leaked value itself" in str(leaked[0]["detail"]["evidence"])


def test_alertmanager_and_generic_name_the_agent_and_copies_start_one_run(
    service: Slack, settings: Settings, seed_agent: SeedAgent
) -> None:
    agent_id = seed_agent("al-am", only=("aws",))
    webhook = senders.alertmanager_webhook(agent_id, alertname="AgentExfiltration")
    webhook["alerts"][0]["labels"]["killswitch"] = "contain"
    body = senders.encode(webhook)
    token = settings.alerts.alertmanager.bearer_token
    assert token is not None
    headers = senders.alertmanager_headers(token.get_secret_value())
    run_id = one_run(post(service, "alertmanager", body, headers))
    copy = post(service, "alertmanager", body, headers)  # Alertmanager re-sends while firing
    assert copy.status_code == 202 and copy.json()["decision"] == "duplicate"
    assert copy.json()["linked_runs"] == [run_id]
    assert finished(settings, run_id)["outcome"] == "proven"

    other = seed_agent("al-gen", only=("aws",))
    generic = senders.encode(senders.generic_alert(agent_id=other))
    secret = settings.alerts.generic.secret
    assert secret is not None
    run_id = one_run(
        post(
            service, "generic", generic, senders.generic_headers(secret.get_secret_value(), generic)
        )
    )
    assert finished(settings, run_id)["outcome"] == "proven"


def test_a_storm_contains_m_agents_and_holds_the_rest_with_one_message(
    service: Slack, settings: Settings, seed_agent: SeedAgent
) -> None:
    limit = settings.alerts.guards.storm_max_agents
    secret = settings.alerts.generic.secret
    assert secret is not None
    agents = [seed_agent("al-storm", only=("github",)) for _ in range(limit + 1)]
    before = len(told(service))
    answers = []
    for agent_id in agents:
        alert = senders.generic_alert(agent_id=agent_id, alert_id=f"storm-{uuid.uuid4().hex}")
        body = senders.encode(alert)
        headers = senders.generic_headers(secret.get_secret_value(), body)
        answers.append(post(service, "generic", body, headers).json()["agents"][0])
    assert [a["decision"] for a in answers] == ["contain"] * limit + ["held"], answers
    assert "storm breaker" in answers[-1]["why"]
    assert len(told(service)) == before + 1  # one message, with the resume button
    held = agents[-1]
    asked = [m for m in service.messages() if f"alert: contain {held}" in (m["text"] or "")]
    assert len(asked) == 1  # held for a human: a button in the incident channel
    for answer in answers[:limit]:
        assert finished(settings, answer["run_id"])["outcome"] == "proven"


def told(service: Slack) -> list[dict[str, Any]]:
    return [m for m in service.messages() if "storm breaker open" in (m["text"] or "")]


def _credential(runtime: Runtime, agent_id: str, provider: str, ref: str) -> Any:
    agent = runtime.inventory.get_agent(agent_id)
    assert agent is not None
    found = planning.discover(runtime, agent)[provider]
    assert not isinstance(found, Exception)
    return next(c for c in found.credentials if c.ref == ref)


def test_explain_traces_a_leaked_value_and_changes_nothing(
    sandbox_home: Path,
    settings: Settings,
    runtime: Runtime,
    seed_agent: SeedAgent,
    keyring: Any,
    tmp_path: Path,
) -> None:
    agent_id = seed_agent("al-explain", only=("github",))
    ref = credentials(runtime, agent_id, "github")[0]
    [material] = keyring.materials(_credential(runtime, agent_id, "github", ref))
    token = next(v.reveal() for k, v in material.fields.items() if k == "token")
    alert = senders.generic_alert(credentials=[{"provider": "github", "value": token}])
    (tmp_path / "alert.json").write_bytes(senders.encode(alert))
    ledger = Ledger(settings.ledger_file)
    before = len(list(ledger.rows()))
    done = run_cli(
        sandbox_home,
        "playbook",
        "explain",
        str(tmp_path / "alert.json"),
        "--source",
        "generic",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr
    [said] = json.loads(done.stdout)["alerts"]
    assert said["playbook"]["name"] == "generic-credential-leaked"
    assert "fingerprint" in said["traced"][0]
    [agent] = said["agents"]
    assert agent["agent"] == agent_id and agent["decision"] == "contain"
    assert "github" in agent["plan"]
    assert [key.endswith(ref) for key in agent["proven_with_leaked_value"]] == [True]
    assert len(list(ledger.rows())) == before  # nothing ledgered
    ledger.close()
    assert runtime.inventory.get_agent(agent_id).status.value == "active"  # type: ignore[union-attr]


def test_bad_and_untraceable_alerts_change_nothing_and_say_why(
    service: Slack, settings: Settings
) -> None:
    event = senders.health_exposed_event("AKIAUNKNOWN000000000")
    body = senders.encode(event)
    forged = post(service, "aws", body, senders.aws_headers("not-the-key"))
    assert forged.status_code == 401 and forged.json()["code"] == "alert-forged"
    unsigned = post(service, "aws", body, {"content-type": "application/json"})
    assert unsigned.status_code == 401
    ledger = Ledger(settings.ledger_file)
    refused = [r for r in ledger.rows() if r["action"] == "alert-request"]
    ledger.close()
    assert refused and all(r["outcome"] == "refused" for r in refused)
    key = settings.alerts.aws.api_key
    assert key is not None
    answer = post(service, "aws", body, senders.aws_headers(key.get_secret_value()))
    assert answer.status_code == 202 and answer.json()["decision"] == "unattributed"
    told = [m for m in service.messages() if "AKIAUNKNOWN000000000" in (m["text"] or "")]
    assert told and "could not be traced" in told[-1]["text"]
    assert "not declared in the inventory" in told[-1]["text"]
