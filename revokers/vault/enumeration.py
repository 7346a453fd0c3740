"""Every live Vault token, streamed for the sweep: `LIST auth/token/accessors` (sudo) and
`lookup-accessor` for each, a bounded batch at a time; each token's entity read once for its
`agent-id` metadata. Vault lists accessors in one response (no paging), but lookups and
what is yielded stay bounded by the batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from killswitch.errors import NotFoundError
from killswitch.models import Nhi
from revokers.vault.client import Clients
from revokers.vault.discovery import TAG, Entity, _data, read_entity
from revokers.vault.errors import translate

BATCH = 256


def enumerate_tokens(
    clients: Clients,
    *,
    workers: int,
    own_accessor: str,
    protected: Callable[[str, Entity | None], bool],
) -> Iterator[Nhi]:
    try:
        listed = _data(clients.own().auth.token.list_accessors()).get("keys", [])
    except Exception as exc:
        raise translate(exc, doing="list token accessors (enumerate)") from exc
    accessors = [str(a) for a in listed if str(a) != own_accessor]
    entities: dict[str, Entity | None] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(accessors), BATCH):
            batch = accessors[start : start + BATCH]
            for accessor, data in zip(
                batch, pool.map(lambda a: _lookup(clients, a), batch), strict=True
            ):
                if data is None:
                    continue  # revoked since the list was taken
                entity_id = str(data.get("entity_id") or "")
                if entity_id and entity_id not in entities:
                    entities[entity_id] = read_entity(clients, entity_id=entity_id)
                entity = entities.get(entity_id) if entity_id else None
                yield _token_nhi(accessor, data, entity, protected(accessor, entity))


def _lookup(clients: Clients, accessor: str) -> dict[str, Any] | None:
    try:
        return _data(clients.own().auth.token.lookup_accessor(accessor))
    except Exception as exc:
        error = translate(exc, doing="lookup-accessor (enumerate)")
        if (
            isinstance(error, NotFoundError)
            or getattr(error, "provider_code", "") == "InvalidRequest"
        ):
            return None
        raise error from exc


def _when(value: Any) -> datetime | None:
    if value in (None, "", 0):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _token_nhi(
    accessor: str, data: Mapping[str, Any], entity: Entity | None, protected: bool
) -> Nhi:
    policies = [str(p) for p in data.get("policies") or []]
    agent = ""
    if entity is not None:
        agent = entity.metadata.get(TAG, "") or entity.name
    meta = data.get("meta") or {}
    agent = agent or str(meta.get(TAG, ""))
    created = _when(data.get("issue_time")) or _when(data.get("creation_time"))
    renewed = _when(data.get("last_renewal_time")) or _when(data.get("last_renewal"))
    principal = f"identity/entity/{entity.id}" if entity else str(data.get("path", ""))
    return Nhi(
        provider="vault",
        kind="vault.token",
        ref=accessor,
        principal=principal,
        agent_tag=agent,
        works=not (entity is not None and entity.disabled),
        privileged="root" in policies,
        protected=protected,
        created_at=created,
        # Vault records renewals, not use: the last renewal (or the issue) is the best sign.
        last_used_at=renewed or created,
        expires_at=_when(data.get("expire_time")),
        detail=f"{data.get('display_name', '')} via {data.get('path', '')}; policies "
        + ",".join(policies),
    )
