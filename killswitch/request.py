"""What a trigger asks for, once parsed and before anything is touched."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class Workflow(StrEnum):
    """Which of the kill switch's workflows a run is (each is a Prefect flow of that name)."""

    CONTAIN = "contain"
    DECOMMISSION = "decommission"  # contain, then destroy for good
    RESTORE = "restore"


class Mode(StrEnum):
    """How a run executes: as a Prefect flow, break-glass (no orchestrator), or not at all."""

    FLOW = "flow"
    BREAK_GLASS = "break-glass"
    DRY_RUN = "dry-run"


@dataclass(frozen=True, slots=True)
class Request:
    """Who asked for which workflow on which agent, why, and how; `run_id` names the run
    from its first ledger entry to its last."""

    agent_id: str
    reason: str
    actor: str
    trigger: str = "cli"
    mode: Mode = Mode.FLOW
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    workflow: Workflow = Workflow.CONTAIN

    def __post_init__(self) -> None:
        # Callers may pass the plain strings ("break-glass"); inside, they are the enums.
        object.__setattr__(self, "mode", Mode(self.mode))
        object.__setattr__(self, "workflow", Workflow(self.workflow))

    @property
    def destroys(self) -> bool:
        return self.workflow is Workflow.DECOMMISSION
