"""The sandbox's background process: hosts the stand-ins on free loopback ports.

`python -m killswitch.sandbox.daemon DIR` starts moto's server (auth enforcement is switched
on by the seeding step), the GCP gRPC stand-in and the Slack/GitHub/OpenAI/Anthropic
stand-ins, writes the chosen
ports to DIR/stand-ins.json (0600: it holds the stand-ins' admin keys), and runs until
SIGTERM. Started and stopped by `killswitch sandbox up` / `down`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from killswitch.sandbox.azure import AzureServer, AzureState
from killswitch.sandbox.gcp import PROJECT, GcpServer, GcpState
from killswitch.sandbox.proxy import Proxies
from killswitch.sandbox.saas import Server

MARKER = "killswitch.sandbox.daemon"


def start_moto() -> tuple[Any, int]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    return server, int(port)


def main(argv: list[str]) -> int:
    root = Path(argv[1])
    latency_ms = float(argv[2]) if len(argv) > 2 else 0.0
    logging.basicConfig(level=logging.WARNING)
    # Request lines carry no secrets, but nobody needs a line per AWS call in the log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    moto, moto_port = start_moto()
    proxies = Proxies()
    gcp_state = GcpState()
    saas = Server(proxies=proxies, gcp=gcp_state)
    saas.start()
    gcp = GcpServer(gcp_state)
    gcp.start()
    azure = AzureServer(AzureState(), root)
    azure.start()
    # The kill switch reaches every stand-in through a fault proxy; seeding goes direct.
    aws_port = proxies.add("aws", moto_port, latency_ms)
    saas_port = proxies.add("saas", saas.port, latency_ms)
    # Key files name this token endpoint (through the fault proxy, like every HTTP call);
    # gRPC goes direct: the fault proxy speaks HTTP/1.1 only.
    gcp_state.token_uri = f"http://127.0.0.1:{saas_port}/gcp/token"
    stand_ins = {
        "moto": {"url": f"http://127.0.0.1:{moto_port}", "proxied": f"http://127.0.0.1:{aws_port}"},
        "saas": {
            "url": saas.url,
            "proxied": f"http://127.0.0.1:{saas_port}",
            "admin_keys": saas.state.admin_keys,
        },
        "gcp": {
            "grpc_target": f"127.0.0.1:{gcp.port}",
            "token_uri": gcp_state.token_uri,
            "project": PROJECT,
        },
        # HTTPS, direct: the fault proxy speaks plain HTTP/1.1.
        "azure": azure.describe(),
        "proxy": {"control": f"{saas.url}/_sandbox/proxies", "latency_ms": latency_ms},
    }
    tmp = root / "stand-ins.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"pid": os.getpid(), "stand_ins": stand_ins}, handle)
    os.replace(tmp, root / "stand-ins.json")
    stop.wait()
    proxies.stop()
    gcp.stop()
    azure.stop()
    saas.stop()
    moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
