"""`killswitch demo --via-slack`: the on-call path end to end against the sandbox.

Starts the service (the same Starlette + Bolt app as `killswitch serve`) in this process on
a free port, sends `/killswitch contain …` exactly as Slack would (signed, as the sandbox's
on-call engineer, in its incident channel), and reads the thread back from the Slack
stand-in until the final report arrives.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx

from killswitch.errors import SandboxError
from killswitch.runtime import Runtime
from killswitch.sandbox.serving import service_on_a_port
from killswitch.slack_app import signing


@dataclass(frozen=True, slots=True)
class SlackRun:
    ack_s: float
    ack_text: str
    thread: list[str]
    proven: bool


def _thread(messages: list[dict[str, Any]], parent_ts: str) -> list[str]:
    """The thread's replies as they read now: each one's latest text (chat.update edits)."""
    latest: dict[str, str] = {}
    for message in messages:
        if message["thread_ts"] == parent_ts or message["ts"] in latest:
            latest[message["ts"]] = message["text"] or ""
    return list(latest.values())


def drive(
    runtime: Runtime, status: dict[str, Any], agent_id: str, reason: str, timeout: float = 120
) -> SlackRun:
    """Send `/killswitch contain` as Slack would, and read the thread until the final report."""
    slack = status["providers"]["slack"]
    stand_in = str(slack["base_url"]).removesuffix("/slack/api/")
    user = slack["oncall_user_ids"][0]
    with service_on_a_port(runtime) as port:
        body = urllib.parse.urlencode(
            {
                "command": "/killswitch",
                "text": f"contain {agent_id} {reason}",
                "user_id": user,
                "user_name": "on-call",
                "channel_id": slack["channel"],
                "team_id": "T0SANDBOX",
            }
        )
        started = time.monotonic()
        ack = httpx.post(
            f"http://127.0.0.1:{port}/slack/events",
            content=body,
            headers=signing.headers(slack["signing_secret"], body),
            timeout=10,
        )
        ack_s = time.monotonic() - started
        if ack.status_code != 200:
            raise SandboxError(f"the service answered {ack.status_code}: {ack.text}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = httpx.get(f"{stand_in}/_sandbox/slack/messages", timeout=10).json()
            parents = [
                m
                for m in messages
                if not m["thread_ts"] and f"contain {agent_id}" in (m["text"] or "")
            ]
            if parents:
                thread = _thread(messages, parents[-1]["ts"])
                final = [text for text in thread if "PROVEN" in text]
                if final:
                    lines = [parents[-1]["text"], *thread]
                    return SlackRun(ack_s, ack.text, lines, final[-1].startswith("PROVEN"))
            time.sleep(0.2)
        raise SandboxError(f"no final report in the Slack thread within {timeout:.0f}s")
