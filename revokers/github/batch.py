"""Sending revocations together: GitHub's revocation API takes up to 1,000 tokens a call
and allows 60 unauthenticated calls an hour per IP, so one call per token would spend the
hour's budget on one agent. The engine performs one action per token, in parallel: what
arrives within a short window is sent in as few calls as the 1,000-token cap allows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

MAX_TOKENS = 1000  # per POST /credentials/revoke (GitHub docs)
WINDOW_S = 0.2  # how long the first revocation waits for the others performed with it

Send = Callable[[Sequence[str]], Awaitable[None]]


def chunks(
    groups: Sequence[Sequence[str]], limit: int = MAX_TOKENS
) -> list[tuple[list[str], list[int]]]:
    """The calls for `groups` of tokens (one group per action), in order, each at most
    `limit` tokens: (its tokens, the indices of the groups it carries a token of)."""
    calls: list[tuple[list[str], list[int]]] = []
    for index, group in enumerate(groups):
        for token in group:
            if not calls or len(calls[-1][0]) >= limit:
                calls.append(([], []))
            tokens, members = calls[-1]
            tokens.append(token)
            if not members or members[-1] != index:
                members.append(index)
    return calls


class Batch:
    """Revocations waiting on the revoker's event loop for one `send`; every waiter learns
    its own outcome (the error of a call that carried one of its tokens, if any)."""

    def __init__(self, send: Send, window_s: float = WINDOW_S, limit: int = MAX_TOKENS) -> None:
        self.send, self.window_s, self.limit = send, window_s, limit
        self.waiting: list[tuple[list[str], asyncio.Future[int]]] = []
        self.timer: asyncio.TimerHandle | None = None

    async def submit(self, tokens: Sequence[str]) -> int:
        """Revoke `tokens` with whatever else arrives within the window; the size of the
        (largest) call that carried them."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self.waiting.append((list(tokens), future))
        if sum(len(t) for t, _ in self.waiting) >= self.limit:
            self._flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.window_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        entries, self.waiting = self.waiting, []
        if entries:
            asyncio.get_running_loop().create_task(self._send(entries))

    async def _send(self, entries: list[tuple[list[str], asyncio.Future[int]]]) -> None:
        errors: dict[int, BaseException] = {}
        sizes: dict[int, int] = {}
        for tokens, members in chunks([t for t, _ in entries], self.limit):
            try:
                await self.send(tokens)
            except Exception as exc:
                for index in members:
                    errors.setdefault(index, exc)
            else:
                for index in members:
                    sizes[index] = max(sizes.get(index, 0), len(tokens))
        for index, (_, future) in enumerate(entries):
            if future.done():
                continue  # its caller gave up (cancelled)
            if index in errors:
                future.set_exception(errors[index])
            else:
                future.set_result(sizes.get(index, 0))
