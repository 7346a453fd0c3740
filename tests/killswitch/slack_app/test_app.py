"""`/killswitch` through real HTTP and real slack-bolt, against `killswitch serve`."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from killswitch.ledger import Ledger
from killswitch.models import VerdictStatus
from killswitch.settings import Settings
from tests.conftest import KILLSWITCH, SeedAgent, cli_env
from tests.killswitch.slack_app.slack import Slack
from tests.revokers.saas import provider_runtime, statuses

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ONCALL, SECOND, OUTSIDER = "U0ONCALL001", "U0ONCALL002", "U0INTERN01"
ACK_BUDGET_S = 2.5  # Slack's limit is 3 s


@contextmanager
def serving(
    sandbox: dict[str, Any], sandbox_home: Path, saas_url: str, log: Path, **env: str
) -> Iterator[Slack]:
    """`killswitch serve` as its own process, like production; stopped at the end."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with open(log, "w") as out:
        process = subprocess.Popen(  # noqa: S603
            [KILLSWITCH, "serve", "--port", str(port)],
            env=cli_env(sandbox_home, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        info = sandbox["providers"]["slack"]
        yield Slack(url, saas_url, info["signing_secret"], info["channel"])
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def slack(
    sandbox: dict[str, Any],
    sandbox_home: Path,
    saas_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Slack]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving(sandbox, sandbox_home, saas_url, log) as slack:
        yield slack


def alive(settings: Settings, agent_id: str) -> set[VerdictStatus]:
    with provider_runtime(settings, "aws") as runtime:
        return set(statuses(runtime, agent_id, "aws"))


def refusals(sandbox_home: Path, agent: str) -> list[dict[str, Any]]:
    shown = subprocess.run(
        [KILLSWITCH, "audit", "show", "--json", "--agent", agent],  # noqa: S603
        env=cli_env(sandbox_home),
        capture_output=True,
        text=True,
        check=True,
    )
    return [r for r in json.loads(shown.stdout) if r["outcome"] == "refused"]


def test_contain_acks_at_once_and_the_thread_ends_proven(
    slack: Slack, seed_agent: SeedAgent, settings: Settings
) -> None:
    agent_id = seed_agent()
    started = time.monotonic()
    response = slack.command(f"contain {agent_id} leaked key in a public repo", ONCALL)
    acked = time.monotonic() - started
    assert response.status_code == 200 and acked < ACK_BUDGET_S
    assert "accepted" in response.text
    replies = slack.wait_for(f"contain {agent_id}", "PROVEN")
    methods = [m["method"] for m in replies]
    # In order: the live board (posted, then updated as providers move on), then the report.
    assert methods[0] == "chat.postMessage" and "progress" in replies[0]["text"]
    assert "chat.update" in methods and methods[-1] == "chat.postMessage"
    assert replies[-1]["text"].startswith("PROVEN: 22 dead")
    final_blocks = slack.blocks(replies[-1])
    assert "CONTAINED AND PROVEN" in final_blocks[0]["text"]["text"]
    assert alive(settings, agent_id) == {VerdictStatus.DEAD}


@pytest.mark.parametrize("forgery", ["bad-signature", "stale", "unsigned"])
def test_forged_stale_and_unsigned_requests_get_401_and_change_nothing(
    slack: Slack, seed_agent: SeedAgent, settings: Settings, sandbox_home: Path, forgery: str
) -> None:
    agent_id = seed_agent(aws={"role": False})
    body = slack.command_body(f"contain {agent_id} forged", ONCALL)
    if forgery == "bad-signature":
        headers = slack.sign(body, secret="not-the-signing-secret")
    elif forgery == "stale":
        headers = slack.sign(body, timestamp=int(time.time()) - 301)
    else:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = slack.post(body, headers)
    assert response.status_code == 401
    time.sleep(1.0)
    assert alive(settings, agent_id) == {VerdictStatus.ALIVE}
    [refusal] = refusals(sandbox_home, agent_id)
    assert refusal["detail"]["code"] == "unverified-request"
    assert refusal["actor"] == f"slack:unverified:{ONCALL}"


def test_a_replayed_request_is_refused(
    slack: Slack, seed_agent: SeedAgent, sandbox_home: Path
) -> None:
    agent_id = seed_agent(aws={"role": False})
    body = slack.command_body(f"status {agent_id}", ONCALL)
    headers = slack.sign(body)
    assert slack.post(body, headers).status_code == 200
    replay = slack.post(body, headers)
    assert replay.status_code == 401 and "replayed" in replay.json()["error"]
    assert [r["detail"]["code"] for r in refusals(sandbox_home, agent_id)] == ["unverified-request"]


@pytest.mark.parametrize(
    ("text", "user", "code"),
    [
        ("contain {agent} not my job", OUTSIDER, "not-on-call"),
        ("contain * everything", ONCALL, "invalid-agent-id"),
        ("contain {agent}", ONCALL, "usage"),
        ("explode {agent}", ONCALL, "usage"),
    ],
)
def test_refusals_answer_why_and_revoke_nothing(
    slack: Slack,
    seed_agent: SeedAgent,
    settings: Settings,
    sandbox_home: Path,
    text: str,
    user: str,
    code: str,
) -> None:
    agent_id = seed_agent(aws={"role": False})
    response = slack.command(text.format(agent=agent_id), user)
    assert response.status_code == 200 and ":no_entry:" in response.text
    time.sleep(1.0)
    assert alive(settings, agent_id) == {VerdictStatus.ALIVE}
    agent = agent_id if "{agent}" in text else "*"
    assert code in [r["detail"]["code"] for r in refusals(sandbox_home, agent)]


def test_outside_the_incident_channel_nothing_happens(
    slack: Slack, seed_agent: SeedAgent, settings: Settings
) -> None:
    agent_id = seed_agent(aws={"role": False})
    response = slack.command(f"contain {agent_id} wrong room", ONCALL, channel="C0RANDOM")
    assert "not an incident channel" in response.text
    assert alive(settings, agent_id) == {VerdictStatus.ALIVE}


def test_restore_asks_for_a_button_only_the_requester_may_press(
    slack: Slack, seed_agent: SeedAgent, settings: Settings, sandbox_home: Path
) -> None:
    agent_id = seed_agent()
    slack.command(f"contain {agent_id} drill", ONCALL)
    slack.wait_for(f"contain {agent_id}", "PROVEN")
    assert slack.command(f"restore {agent_id} false positive", ONCALL).status_code == 200
    replies = slack.wait_for(f"restore {agent_id}", "confirm restore")
    ask = next(m for m in replies if "confirm restore" in (m["text"] or ""))
    buttons = slack.blocks(ask)[1]["elements"]
    pending = buttons[0]["value"]

    assert slack.click("killswitch_confirm", pending, SECOND, ask["ts"]).status_code == 200
    time.sleep(1.0)
    assert alive(settings, agent_id) == {VerdictStatus.DEAD}  # the other on-call was refused
    assert "confirmation-refused" in [r["detail"]["code"] for r in refusals(sandbox_home, agent_id)]

    assert slack.click("killswitch_confirm", pending, ONCALL, ask["ts"]).status_code == 200
    slack.wait_for(f"restore {agent_id}", "restored")
    assert alive(settings, agent_id) == {VerdictStatus.ALIVE}


def restore_button(slack: Slack, seed_agent: SeedAgent) -> tuple[str, str, dict[str, Any]]:
    """A contained agent and the restore button posted for it: (agent, button value, message)."""
    agent_id = seed_agent()
    slack.command(f"contain {agent_id} drill", ONCALL)
    slack.wait_for(f"contain {agent_id}", "PROVEN")
    slack.command(f"restore {agent_id} false positive", ONCALL)
    replies = slack.wait_for(f"restore {agent_id}", "confirm restore")
    ask = next(m for m in replies if "confirm restore" in (m["text"] or ""))
    return agent_id, slack.blocks(ask)[1]["elements"][0]["value"], ask


def test_a_restore_button_acts_only_on_the_state_it_was_posted_for(
    slack: Slack, seed_agent: SeedAgent, settings: Settings, sandbox_home: Path
) -> None:
    agent_id, pending, ask = restore_button(slack, seed_agent)
    # Meanwhile: restored from a terminal, then contained again (a real incident this time).
    for argv in (("restore", agent_id, "--reason", "fp"), ("contain", agent_id, "--reason", "x")):
        done = subprocess.run(  # noqa: S603
            [KILLSWITCH, *argv, "--break-glass", "--quiet"],
            env=cli_env(sandbox_home),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    # The old button must not undo the newer containment.
    assert slack.click("killswitch_confirm", pending, ONCALL, ask["ts"]).status_code == 200
    time.sleep(1.0)
    assert alive(settings, agent_id) == {VerdictStatus.DEAD}
    assert "state-moved-on" in [r["detail"]["code"] for r in refusals(sandbox_home, agent_id)]


def test_a_click_from_outside_the_incident_channels_is_refused(
    slack: Slack, seed_agent: SeedAgent, settings: Settings, sandbox_home: Path
) -> None:
    agent_id, pending, ask = restore_button(slack, seed_agent)
    slack.click("killswitch_confirm", pending, ONCALL, ask["ts"], channel="C0RANDOM01")
    time.sleep(1.0)
    assert alive(settings, agent_id) == {VerdictStatus.DEAD}
    codes = [r["detail"]["code"] for r in refusals(sandbox_home, agent_id)]
    assert "channel-not-allowed" in codes


def test_status_and_help_need_no_on_call(slack: Slack, seed_agent: SeedAgent) -> None:
    agent_id = seed_agent(aws={"role": False})
    assert "status *active*" in slack.command(f"status {agent_id}", OUTSIDER).text
    assert "/killswitch contain" in slack.command("help", OUTSIDER).text
    assert "/killswitch contain" in slack.command("", OUTSIDER).text


def test_a_large_blast_radius_needs_a_second_on_call_under_the_two_person_rule(
    sandbox: dict[str, Any],
    sandbox_home: Path,
    saas_url: str,
    tmp_path: Path,
    seed_agent: SeedAgent,
    settings: Settings,
) -> None:
    strict = {
        "KILLSWITCH_SLACK_APP__CONFIRM_OVER_CREDENTIALS": "5",
        "KILLSWITCH_SLACK_APP__TWO_PERSON_RULE": "true",
    }
    agent_id = seed_agent()
    with serving(sandbox, sandbox_home, saas_url, tmp_path / "serve.log", **strict) as slack:
        slack.command(f"contain {agent_id} big one", ONCALL)
        replies = slack.wait_for(f"contain {agent_id}", "confirm contain")
        ask = next(m for m in replies if "confirm contain" in (m["text"] or ""))
        assert "22 credentials (more than 5)" in slack.blocks(ask)[0]["text"]["text"]
        pending = slack.blocks(ask)[1]["elements"][0]["value"]
        slack.click("killswitch_confirm", pending, ONCALL, ask["ts"])  # the requester alone
        time.sleep(1.0)
        assert alive(settings, agent_id) == {VerdictStatus.ALIVE}
        slack.click("killswitch_confirm", pending, SECOND, ask["ts"])  # a second on-call
        slack.wait_for(f"contain {agent_id}", "PROVEN")
    assert alive(settings, agent_id) == {VerdictStatus.DEAD}
    # One plan, made before the button and shown on it; the run after the button is it.
    rows = list(Ledger(settings.ledger_file).rows(agent=agent_id))
    plans = [r for r in rows if r["action"] == "plan"]
    assert [p["run_id"] for p in plans] == [pending], plans
    ran = {r["run_id"] for r in rows if r["action"] in ("contain", "probe")}
    assert ran == {pending}


def test_a_fleet_from_slack_shows_its_blast_radius_then_progress_per_agent(
    slack: Slack, seed_agent: SeedAgent, settings: Settings, sandbox_home: Path
) -> None:
    """No worker polls the sandbox's Prefect server: the fleet is contained in the service's
    process, and the thread says so; each agent's line moves as it finishes."""
    agents = [seed_agent("fl", aws={"role": False}, only=("aws", "slack")) for _ in range(3)]
    response = slack.command(f"contain {','.join(agents)} shared key leaked", ONCALL)
    assert response.status_code == 200 and "accepted" in response.text
    replies = slack.wait_for(f"contain fleet {','.join(agents)}", "FLEET PROVEN", timeout=120)
    texts = [m["text"] or "" for m in replies]
    assert texts[0] == "blast radius: 3 agents"
    blast = slack.blocks(replies[0])[0]["text"]["text"]
    assert "aws" in blast and "slack" in blast and "total" in blast
    assert any("no workers: containing here" in t for t in texts)
    board = [m for m in replies if (m["text"] or "").startswith("progress:")]
    assert board[-1]["method"] == "chat.update" and board[-1]["text"] == "progress: 3/3 agents done"
    final = slack.blocks(replies[-1])
    assert "FLEET CONTAINED AND PROVEN" in final[0]["text"]["text"]
    for agent_id in agents:
        assert f"`{agent_id}` proven" in final[1]["text"]["text"]
        assert alive(settings, agent_id) == {VerdictStatus.DEAD}


@pytest.mark.parametrize(
    ("target", "code"),
    [("{a},agent-*", "invalid-agent-id"), ("{a},no-such-agent-x", "unknown-agent")],
)
def test_a_fleet_with_one_bad_id_is_refused_whole(
    slack: Slack,
    seed_agent: SeedAgent,
    settings: Settings,
    sandbox_home: Path,
    target: str,
    code: str,
) -> None:
    agent_id = seed_agent(aws={"role": False}, only=("aws",))
    response = slack.command(f"contain {target.format(a=agent_id)} drill", ONCALL)
    assert response.status_code == 200
    if code == "invalid-agent-id":  # refused as it is parsed, before the ack
        assert ":no_entry:" in response.text
    else:  # refused as the fleet is planned, in the thread
        replies = slack.wait_for(f"contain fleet {target.format(a=agent_id)}", "refused")
        assert "no-such-agent-x" in replies[-1]["text"]
    time.sleep(1.0)
    assert alive(settings, agent_id) == {VerdictStatus.ALIVE}  # nothing was contained
    # The refusal is ledgered under what the command claimed, or the unknown agent it named.
    agent = target.format(a=agent_id) if code == "invalid-agent-id" else "no-such-agent-x"
    assert code in [r["detail"]["code"] for r in refusals(sandbox_home, agent)]


def test_a_fleet_over_the_guard_waits_for_the_button(
    slack: Slack, seed_agent: SeedAgent, settings: Settings
) -> None:
    agents = [seed_agent("fb") for _ in range(2)]  # 22 credentials each: over 25 together
    slack.command(f"contain {','.join(agents)} drill", ONCALL)
    needle = f"contain fleet {','.join(agents)}"
    replies = slack.wait_for(needle, "confirm contain")
    ask = next(m for m in replies if "confirm contain" in (m["text"] or ""))
    assert "credentials (more than 25)" in slack.blocks(ask)[0]["text"]["text"]
    assert all(alive(settings, a) == {VerdictStatus.ALIVE} for a in agents)  # nothing yet
    pending = slack.blocks(ask)[1]["elements"][0]["value"]
    assert slack.click("killswitch_confirm", pending, ONCALL, ask["ts"]).status_code == 200
    slack.wait_for(needle, "FLEET PROVEN", timeout=120)
    assert all(alive(settings, a) == {VerdictStatus.DEAD} for a in agents)
