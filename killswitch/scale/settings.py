"""The scaled-out shape's settings: the work pool, the per-provider concurrency limits, the
fleet guard (a profile's `scale` section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

LIMIT_PREFIX = "killswitch-provider-"


def limit_name(provider: str) -> str:
    """The Prefect global concurrency limit that bounds one provider's calls fleet-wide."""
    return f"{LIMIT_PREFIX}{provider}"


class ScaleSettings(BaseModel):
    """Fleet containment over a Prefect server with workers (`killswitch scale up`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    work_pool: str = Field("killswitch", description="the process work pool the workers poll")
    provider_limits: dict[str, int] = Field(
        default_factory=dict,
        description="containment calls in flight at once per provider, across every worker "
        "(a Prefect global concurrency limit each); a provider not named: its revoker's "
        "max_workers",
    )
    enforce_provider_limits: bool = Field(
        False,
        description="provider calls in flows hold a slot of `killswitch-provider-<name>`; a "
        "missing limit is an error (the profile `scale up` writes sets it)",
    )
    slot_timeout_s: float = Field(
        120.0, gt=0, description="how long a provider call waits for a slot before failing"
    )
    confirm_over_agents: int = Field(
        10, ge=0, description="a fleet containment of more agents asks for confirmation (--yes)"
    )
    break_glass_agents: int = Field(
        8, ge=1, description="agents contained at once in one process (--break-glass)"
    )
    runs_per_worker: int = Field(
        4, ge=1, description="flow runs one worker runs at once (each is a process of its own)"
    )
    lanes_per_worker: int = Field(
        1,
        ge=1,
        description="a fleet's lanes per online worker: one `fleet-lane` flow run (one process) "
        "each, claiming the fleet's agents one after another (more on hosts with more cores)",
    )
    agents_per_lane: int = Field(
        8, ge=1, description="agents one lane contains at once (threads in its process)"
    )
    agent_timeout_s: float = Field(
        900.0, gt=0, description="how long a fleet waits for one agent's flow run"
    )
