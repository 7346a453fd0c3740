"""`killswitch demo --via-alert`: the alert path end to end against the sandbox.

Starts the service (the same app as `killswitch serve`) in this process on a free port and
sends what AWS would: an AWS Health `AWS_RISK_CREDENTIALS_EXPOSED` event for one of the demo
agent's access keys, through an EventBridge API destination (the connection's API-key
header). The receiver authenticates it, the playbook `aws-exposed-key` matches, the key id
is traced to its agent, and the agent is contained in this warm process; the demo waits for
the run's report and times each step from the request's arrival.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from killswitch import planning
from killswitch.alerts.handling import AlertDesk
from killswitch.errors import KillSwitchError, SandboxError
from killswitch.models import ContainmentReport
from killswitch.runtime import Runtime
from killswitch.sandbox import senders
from killswitch.sandbox.serving import service_on_a_port


@dataclass(frozen=True, slots=True)
class AlertRun:
    sent: str
    answer: dict[str, Any]
    answered_s: float
    report: ContainmentReport
    proven_s: float


def leaked_key(runtime: Runtime, agent_id: str) -> str:
    """One of the agent's access keys (what the alert will say leaked)."""
    agent = runtime.inventory.get_agent(agent_id)
    if agent is None:
        raise SandboxError(f"{agent_id} is not in the sandbox's inventory")
    found = planning.discover(runtime, agent).get("aws")
    if found is None or isinstance(found, KillSwitchError):
        raise SandboxError(f"the sandbox's AWS could not be searched for {agent_id}: {found}")
    keys = [c.ref for c in found.credentials if c.kind == "aws.access-key"]
    if not keys:
        raise SandboxError(f"{agent_id} has no AWS access key in the sandbox")
    return keys[0]


def drive(
    runtime: Runtime, agent_id: str, *, save: Path | None = None, timeout: float = 120
) -> AlertRun:
    """Send the exposed-key event as EventBridge would; wait for the containment's report."""
    api_key = runtime.settings.alerts.aws.api_key
    if api_key is None:
        raise SandboxError("the sandbox profile has no alerts.aws.api_key (run `sandbox up`)")
    event = senders.health_exposed_event(leaked_key(runtime, agent_id))
    body = senders.encode(event)
    if save is not None:
        save.write_bytes(body)  # a key id and an account: nothing secret
    desks: list[AlertDesk] = []
    with service_on_a_port(runtime, desks=desks) as port:
        started = time.monotonic()
        answer = httpx.post(
            f"http://127.0.0.1:{port}/alerts/aws",
            content=body,
            headers=senders.aws_headers(
                api_key.get_secret_value(), runtime.settings.alerts.aws.header
            ),
            timeout=30,
        )
        answered_s = time.monotonic() - started
        if answer.status_code != 202:
            raise SandboxError(f"the receiver answered {answer.status_code}: {answer.text}")
        said: dict[str, Any] = answer.json()
        runs = [a["run_id"] for a in said.get("agents", []) if a.get("run_id")]
        if said.get("decision") != "contain" or not runs:
            raise SandboxError(f"the alert did not start a containment: {said}")
        report = desks[0].wait(runs[0], timeout)
        if report is None:
            raise SandboxError("the containment ended without a report (see the log)")
        sent = "POST /alerts/aws (AWS Health AWS_RISK_CREDENTIALS_EXPOSED)"
        return AlertRun(sent, said, answered_s, report, time.monotonic() - started)
