"""The sandbox's background process: hosts every plug-in's stand-in on free loopback ports.

`python -m killswitch.sandbox.daemon DIR [LATENCY_MS]` starts the shared HTTP app and its
fault proxy, lets each plug-in start its stand-in (and add routes to the app), writes the
endpoints to DIR/stand-ins.json (0600: it holds the stand-ins' admin keys), and runs until
SIGTERM. Started and stopped by `killswitch sandbox up` / `down`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from killswitch.sandbox import http
from killswitch.sandbox.plugin import Host, Hosted
from killswitch.sandbox.plugins import loaded
from killswitch.sandbox.proxy import Proxies
from killswitch.sandbox.tokens import Tokens

MARKER = "killswitch.sandbox.daemon"


def merge(into: dict[str, Any], more: Mapping[str, Any]) -> None:
    """Merge `more` into `into`, mappings key by key (plug-ins share the app's entry)."""
    for key, value in more.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _write(root: Path, stand_ins: dict[str, Any], hosted: Mapping[str, Hosted]) -> None:
    children = {n: dict(p) for h in hosted.values() for n, p in h.processes().items()}
    tmp = root / "stand-ins.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"pid": os.getpid(), "stand_ins": stand_ins, "processes": children}, handle)
    os.replace(tmp, root / "stand-ins.json")


def main(argv: list[str]) -> int:
    """Start everything, publish the endpoints, wait for SIGTERM, stop everything."""
    root = Path(argv[1])
    latency_ms = float(argv[2]) if len(argv) > 2 else 0.0
    logging.basicConfig(level=logging.WARNING)
    # Request lines carry no secrets, but nobody needs a line per provider call in the log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    proxies = Proxies()
    tokens = Tokens()
    server = http.Server("shared-http-stand-ins")
    # The kill switch reaches every stand-in through a fault proxy; seeding goes direct.
    proxied = f"http://127.0.0.1:{proxies.add(http.PROXY, server.port, latency_ms)}"
    host = Host(root, server.url, proxied, tokens, proxies, latency_ms)
    hosted: dict[str, Hosted] = {}
    try:
        for name, plugin in loaded().items():
            hosted[name] = plugin.serve(host)
        stand_ins: dict[str, Any] = {
            http.PROXY: {"url": server.url, "proxied": proxied, "admin_keys": {}},
            "proxy": {"control": f"{server.url}/_sandbox/proxies", "latency_ms": latency_ms},
        }
        for started in hosted.values():
            merge(stand_ins, started.stand_ins)
        # A reset may restart child processes: publish their pids again.
        server.start(http.build(tokens, proxies, hosted, lambda: _write(root, stand_ins, hosted)))
        _write(root, stand_ins, hosted)
        stop.wait()
    finally:
        proxies.stop()
        for started in hosted.values():
            started.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
