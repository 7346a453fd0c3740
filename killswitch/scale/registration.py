"""What the Prefect server of the scaled-out shape holds for the kill switch: the process work
pool, the deployments `prefect.yaml` declares, and one global concurrency limit per provider.
Registered through the API (idempotent: a second bring-up updates in place), offline and in
about a second; imported only once PREFECT_API_URL points at the server."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from killswitch.errors import ConfigurationError
from killswitch.scale.settings import limit_name

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """One deployment of `prefect.yaml`."""

    name: str
    entrypoint: str
    work_pool: str
    work_queue: str
    description: str
    tags: tuple[str, ...]


def deployments(path: Path = PREFECT_YAML, *, work_pool: str | None = None) -> list[DeploymentSpec]:
    """The deployments `prefect.yaml` declares (`work_pool` overrides the file's pool)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    specs = []
    for item in data.get("deployments") or []:
        pool = item.get("work_pool") or {}
        specs.append(
            DeploymentSpec(
                name=str(item["name"]),
                entrypoint=str(item["entrypoint"]),
                work_pool=work_pool or str(pool.get("name") or "killswitch"),
                work_queue=str(pool.get("work_queue_name") or "default"),
                description=str(item.get("description") or ""),
                tags=tuple(str(t) for t in item.get("tags") or ()),
            )
        )
    if not specs:
        raise ConfigurationError(f"{path} declares no deployments")
    return specs


def register(
    *, work_pool: str, limits: Mapping[str, int], path: Path = PREFECT_YAML
) -> dict[str, Any]:
    """Create or update the work pool, the deployments and the provider limits; what is
    there now (deployment full names, limits by name)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
        WorkPoolCreate,
    )
    from prefect.exceptions import ObjectNotFound
    from prefect.flows import Flow, load_flow_from_entrypoint
    from prefect.workers.process import ProcessWorker

    specs = deployments(path, work_pool=work_pool)
    registered: list[str] = []
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(work_pool)
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=work_pool,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                )
            )
        for spec in specs:
            flow: Flow[..., Any] = load_flow_from_entrypoint(
                spec.entrypoint, use_placeholder_flow=False
            )
            flow_id = client.create_flow(flow)
            client.create_deployment(
                flow_id=flow_id,
                name=spec.name,
                entrypoint=spec.entrypoint,
                work_pool_name=spec.work_pool,
                work_queue_name=spec.work_queue,
                description=spec.description,
                tags=list(spec.tags),
                parameter_openapi_schema=flow.parameters.model_dump(mode="json"),
                # Module entry points: the installed package is imported, nothing copied.
                pull_steps=[],
                enforce_parameter_schema=True,
            )
            registered.append(f"{flow.name}/{spec.name}")
        for provider, limit in sorted(limits.items()):
            name = limit_name(provider)
            try:
                client.read_global_concurrency_limit_by_name(name)
                client.update_global_concurrency_limit(
                    name, GlobalConcurrencyLimitUpdate(limit=limit, active=True)
                )
            except ObjectNotFound:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit, active=True)
                )
    return {
        "work_pool": work_pool,
        "deployments": registered,
        "limits": {limit_name(p): n for p, n in sorted(limits.items())},
    }


def online_workers(work_pool: str) -> list[str]:
    """The names of the pool's workers the server sees online (a recent heartbeat)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            workers = client.read_workers_for_work_pool(work_pool)
        except ObjectNotFound:
            return []
    return sorted(w.name for w in workers if str(getattr(w.status, "value", w.status)) == "ONLINE")
