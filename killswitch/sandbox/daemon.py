"""The sandbox's background process: hosts the stand-ins on free loopback ports.

`python -m killswitch.sandbox.daemon DIR` starts moto's server (auth enforcement is switched
on by the seeding step), writes the chosen ports to DIR/stand-ins.json, and runs until
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

MARKER = "killswitch.sandbox.daemon"


def start_moto() -> tuple[Any, int]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    return server, int(port)


def main(argv: list[str]) -> int:
    root = Path(argv[1])
    logging.basicConfig(level=logging.WARNING)
    # Request lines carry no secrets, but nobody needs a line per AWS call in the log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    moto, moto_port = start_moto()
    ports = {"moto": {"url": f"http://127.0.0.1:{moto_port}", "port": moto_port}}
    tmp = root / "stand-ins.json.tmp"
    tmp.write_text(json.dumps({"pid": os.getpid(), "stand_ins": ports}))
    os.replace(tmp, root / "stand-ins.json")
    stop.wait()
    moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
