"""One incident thread in Slack, and the live board of a run's progress in it."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from killswitch import progress
from killswitch.slack_app import blocks

log = logging.getLogger(__name__)


class Thread:
    """Post the parent message, reply in its thread, update a reply in place. A Slack error
    is logged and swallowed: the containment matters more than its narration."""

    def __init__(self, client: WebClient, channel: str, ts: str | None = None) -> None:
        self.client = client
        self.channel = channel
        self.ts = ts

    def _post(self, text: str, blocks_: blocks.Blocks, thread: bool) -> str | None:
        try:
            response = self.client.chat_postMessage(
                channel=self.channel,
                text=text,
                blocks=blocks_,
                thread_ts=self.ts if thread else None,
            )
        except SlackApiError as exc:
            log.warning("chat.postMessage failed: %s", exc.response.get("error"))
            return None
        return str(response["ts"])

    def start(self, text: str, blocks_: blocks.Blocks) -> None:
        self.ts = self._post(text, blocks_, thread=False)

    def reply(self, text: str, blocks_: blocks.Blocks) -> str | None:
        return self._post(text, blocks_, thread=True)

    def update(self, ts: str, text: str, blocks_: blocks.Blocks) -> None:
        try:
            self.client.chat_update(channel=self.channel, ts=ts, text=text, blocks=blocks_)
        except SlackApiError as exc:
            log.warning("chat.update failed: %s", exc.response.get("error"))

    def whisper(self, user: str, text: str, blocks_: blocks.Blocks | None = None) -> None:
        """An ephemeral message only `user` sees."""
        try:
            self.client.chat_postEphemeral(
                channel=self.channel, user=user, text=text, blocks=blocks_
            )
        except SlackApiError as exc:
            log.warning("chat.postEphemeral failed: %s", exc.response.get("error"))


class Board:
    """A run's progress as one thread reply, updated as providers move on (throttled)."""

    def __init__(self, thread: Thread, run_id: str, interval_s: float = 0.4) -> None:
        self.thread = thread
        self.run_id = run_id
        self.interval_s = interval_s
        self.states: dict[str, dict[str, Any]] = {}
        self.headline = "planning…"
        self._lock = threading.Lock()
        self._ts: str | None = None
        self._pushed = 0.0

    def __call__(self, event: progress.Event) -> None:
        if event.data.get("run_id") != self.run_id:
            return
        with self._lock:
            if event.kind == "plan" and "providers" in event.data:
                self.headline = event.message
                for provider in event.data["providers"]:
                    self.states.setdefault(provider, {"phase": "waiting"})
                self._push()
            elif event.kind == "provider":
                self.states[event.provider] = dict(event.data)
                if time.monotonic() - self._pushed >= self.interval_s:
                    self._push()

    def _push(self) -> None:
        text = "progress: " + ", ".join(f"{p} {s.get('phase')}" for p, s in self.states.items())
        board = blocks.board(self.headline, self.states)
        if self._ts is None:
            self._ts = self.thread.reply(text, board)
        else:
            self.thread.update(self._ts, text, board)
        self._pushed = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._push()
