"""Mixed transient faults at a rate, on top of the fault proxy's one-kind-`count`-times.

The proxy faults the next `count` requests with one kind. To fault about `rate` of all
requests with a mix of kinds, a thread watches every proxy's request counter and arms one
fault at a time (`count=1`), rotating the kinds, each after enough clean requests have
passed. The rate it reached (faulted / requests, per proxy) is measured, never assumed:
polling only ever lets more clean requests through, so the rate seen is at most `rate`.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

MIX = ("error", "throttle", "reset", "error-html")


@dataclass
class _Armed:
    at: int = 0  # the proxy's request count when the fault was armed
    gap: int = 0  # clean requests to let through after the fault before arming the next
    faulted: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    last: str = ""


class MixedFaults:
    """A background thread arming one fault at a time on each proxy, about `rate` of requests."""

    def __init__(self, control: str, proxies: list[str], rate: float = 0.3) -> None:
        self.control = control
        self.proxies = proxies
        self.rate = rate
        self.stop_event = threading.Event()
        self.state: dict[str, _Armed] = {}
        self.base: dict[str, int] = {}
        self.kinds = itertools.cycle(MIX)
        # Clean requests between two faults, whole numbers whose mean is (1 - rate) / rate.
        self.mean = (1 - rate) / rate
        self.spent = 0.0
        self.thread = threading.Thread(target=self._run, name="mixed-faults", daemon=True)
        self.client = httpx.Client(timeout=5)

    def _describe(self) -> dict[str, dict[str, Any]]:
        described: dict[str, dict[str, Any]] = self.client.get(self.control).json()
        return described

    def _arm(self, name: str, requests: int) -> None:
        kind = next(self.kinds)
        self.client.post(f"{self.control}/{name}", json={"kind": kind, "count": 1})
        armed = self.state[name]
        self.spent += self.mean
        armed.at, armed.gap = requests, int(self.spent) - int(self.spent - self.mean)
        armed.faulted += 1
        armed.kinds[kind] = armed.kinds.get(kind, 0) + 1
        armed.last = kind

    def start(self) -> MixedFaults:
        described = self._describe()
        for name in self.proxies:
            self.base[name] = int(described[name]["requests"])
            self.state[name] = _Armed()
            self._arm(name, self.base[name])
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop_event.wait(0.005):
            try:
                described = self._describe()
                for name in self.proxies:
                    proxy, armed = described[name], self.state[name]
                    if proxy["remaining"] > 0:
                        continue  # not taken yet
                    if int(proxy["requests"]) >= armed.at + 1 + armed.gap:
                        self._arm(name, int(proxy["requests"]))
            except httpx.HTTPError:
                continue

    def stop(self) -> dict[str, Any]:
        """Stop arming, clear what is armed; what was injected, per proxy."""
        self.stop_event.set()
        self.thread.join(timeout=5)
        described = self._describe()
        seen: dict[str, Any] = {}
        for name in self.proxies:
            armed = self.state[name]
            untaken = int(described[name]["remaining"])
            self.client.post(f"{self.control}/{name}", json={"kind": "", "count": 0})
            if untaken:  # the last one armed was never hit
                armed.faulted -= 1
                armed.kinds[armed.last] -= 1
            requests = int(described[name]["requests"]) - self.base[name]
            seen[name] = {
                "requests": requests,
                "faulted": armed.faulted,
                "rate": round(armed.faulted / requests, 3) if requests else 0.0,
                "kinds": dict(armed.kinds),
            }
        self.client.close()
        return seen
