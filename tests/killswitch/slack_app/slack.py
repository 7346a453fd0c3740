"""Acting as Slack in tests: sign requests like Slack does, read what the stand-in received."""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx

from killswitch.slack_app import signing


@dataclass
class Slack:
    service: str  # the killswitch service's base URL
    stand_in: str  # the Slack stand-in's root (for the messages it received)
    signing_secret: str
    channel: str

    def sign(
        self, body: str, timestamp: int | None = None, secret: str | None = None
    ) -> dict[str, str]:
        return signing.headers(secret or self.signing_secret, body, timestamp)

    def command_body(self, text: str, user: str, channel: str | None = None) -> str:
        return urllib.parse.urlencode(
            {
                "command": "/killswitch",
                "text": text,
                "user_id": user,
                "user_name": user.lower(),
                "channel_id": channel or self.channel,
                "team_id": "T0SANDBOX",
                "response_url": "http://127.0.0.1:9/unused",
                "trigger_id": "1.2.3",
            }
        )

    def post(self, body: str, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.service}/slack/events", content=body, headers=headers, timeout=10)

    def command(self, text: str, user: str, channel: str | None = None) -> httpx.Response:
        body = self.command_body(text, user, channel)
        return self.post(body, self.sign(body))

    def click(
        self, action_id: str, value: str, user: str, message_ts: str, channel: str | None = None
    ) -> httpx.Response:
        payload = {
            "type": "block_actions",
            "team": {"id": "T0SANDBOX"},
            "api_app_id": "A0KILLSWITCH",
            "user": {"id": user},
            "channel": {"id": channel or self.channel},
            "message": {"ts": message_ts},
            "container": {"type": "message", "message_ts": message_ts},
            "trigger_id": "1.2.3",
            "response_url": "http://127.0.0.1:9/unused",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "killswitch_confirm",
                    "value": value,
                    "action_ts": str(time.time()),
                }
            ],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self.post(body, self.sign(body))

    @staticmethod
    def blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
        """A message's blocks (slack-sdk sends them as JSON, or as a form field string)."""
        raw = message.get("blocks") or []
        return list(json.loads(raw) if isinstance(raw, str) else raw)

    def messages(self) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = httpx.get(
            f"{self.stand_in}/_sandbox/slack/messages", timeout=10
        ).json()
        return received

    def thread_of(self, needle: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The parent message whose text has `needle`, and every message in its thread."""
        messages = self.messages()
        parent = next(
            m
            for m in messages
            if needle in (m["text"] or "")
            and not m["thread_ts"]
            and m["method"] == "chat.postMessage"
        )
        replies = [
            m
            for m in messages
            if m["thread_ts"] == parent["ts"]
            or (
                m["method"] == "chat.update"
                and m["ts"] in {r["ts"] for r in messages if r["thread_ts"] == parent["ts"]}
            )
        ]
        return parent, replies

    def wait_for(self, needle: str, final: str, timeout: float = 60) -> list[dict[str, Any]]:
        """The thread of `needle` once a reply containing `final` has arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                _, replies = self.thread_of(needle)
            except StopIteration:
                replies = []
            if any(final in (m["text"] or "") for m in replies):
                return replies
            time.sleep(0.2)
        raise AssertionError(f"no {final!r} in the thread of {needle!r}: {self.messages()}")
