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


class LiveReply:
    """One thread reply, posted once and then updated in place, at most every `interval_s`
    (Slack rate-limits updates) but always at `close`; subclasses say what it shows."""

    def __init__(self, thread: Thread, interval_s: float) -> None:
        self.thread = thread
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._ts: str | None = None
        self._pushed = 0.0

    def shown(self) -> tuple[str, blocks.Blocks]:
        """The reply's text (for notifications) and blocks."""
        raise NotImplementedError

    def _push(self, *, now: bool = True) -> None:
        """Post or update (under `_lock`); `now=False`: only if the interval has passed."""
        if not now and self._ts is not None and time.monotonic() - self._pushed < self.interval_s:
            return
        text, shown = self.shown()
        if self._ts is None:
            self._ts = self.thread.reply(text, shown)
        else:
            self.thread.update(self._ts, text, shown)
        self._pushed = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._push()


class Board(LiveReply):
    """A run's progress as one thread reply, updated as providers move on (throttled)."""

    def __init__(self, thread: Thread, run_id: str, interval_s: float = 0.4) -> None:
        super().__init__(thread, interval_s)
        self.run_id = run_id
        self.states: dict[str, dict[str, Any]] = {}
        self.headline = "planning…"

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
                self._push(now=False)

    def shown(self) -> tuple[str, blocks.Blocks]:
        text = "progress: " + ", ".join(f"{p} {s.get('phase')}" for p, s in self.states.items())
        return text, blocks.board(self.headline, self.states)
