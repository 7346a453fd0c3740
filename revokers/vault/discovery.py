"""Find an agent's identity entity, its tokens, secret-ids, logins, leases and groups."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from killswitch.errors import NotFoundError, TransientError, own_copy
from killswitch.models import Action, Credential, CredentialRef, Grant, Verb
from revokers.vault.client import Clients
from revokers.vault.errors import translate

TAG = "agent-id"


@dataclass(slots=True)
class Entity:
    id: str
    name: str
    disabled: bool
    metadata: dict[str, str]
    aliases: list[dict[str, Any]]
    group_ids: list[str]
    groups: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"identity/entity/{self.name}"


def _data(response: Any) -> dict[str, Any]:
    data = response.get("data") if isinstance(response, Mapping) else None
    return dict(data or {})


def read_entity(
    clients: Clients, *, name: str | None = None, entity_id: str | None = None
) -> Entity | None:
    """identity/entity/name/:name or identity/entity/id/:id; None when there is none."""
    client = clients.reading()
    try:
        if name is not None:
            response = client.secrets.identity.read_entity_by_name(name)
        else:
            response = client.secrets.identity.read_entity(entity_id)
    except Exception as exc:
        error = translate(exc, doing=f"read entity {name or entity_id}")
        if isinstance(error, NotFoundError):
            return None
        raise error from exc
    data = _data(response)
    if not data:
        return None
    return Entity(
        id=str(data["id"]),
        name=str(data["name"]),
        disabled=bool(data.get("disabled")),
        metadata=dict(data.get("metadata") or {}),
        aliases=list(data.get("aliases") or []),
        group_ids=list(data.get("direct_group_ids") or data.get("group_ids") or []),
    )


def find_entities(
    clients: Clients, agent_id: str, declared: Sequence[CredentialRef]
) -> list[Entity]:
    """The entity named after the agent (unless its agent-id metadata names another agent),
    plus entities the inventory declares by id."""
    found: dict[str, Entity] = {}
    by_name = read_entity(clients, name=agent_id)
    if by_name is not None and by_name.metadata.get(TAG, agent_id) == agent_id:
        found[by_name.id] = by_name
    for ref in declared:
        if ref.provider == "vault" and ref.kind == "vault.entity" and ref.ref not in found:
            entity = read_entity(clients, entity_id=ref.ref)
            if entity is not None:
                found[entity.id] = entity
    return list(found.values())


def group_names(clients: Clients) -> dict[str, str]:
    """LIST identity/group/id: every group's id and name in one call."""
    try:
        listed = _data(clients.reading().adapter.list("/v1/identity/group/id"))
    except Exception as exc:
        error = translate(exc, doing="list identity groups")
        if isinstance(error, NotFoundError):
            return {}
        raise error from exc
    info = listed.get("key_info") or {}
    return {str(gid): str(meta.get("name", gid)) for gid, meta in info.items()}


def approle_secret_ids(clients: Clients, mount: str, role: str) -> tuple[str, list[str]] | None:
    """The role's role-id and its secret-id accessors (both reads at once); None: no role."""
    client = clients.reading()

    def role_id() -> str:
        return str(_data(client.auth.approle.read_role_id(role, mount_point=mount))["role_id"])

    def accessors() -> list[str]:
        listed = client.auth.approle.list_secret_id_accessors(role, mount_point=mount)
        return [str(a) for a in _data(listed).get("keys", [])]

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            # Each in a copy of this context: the discovery's deadline goes with it.
            got_id = pool.submit(copy_context().run, role_id)
            got_accessors = pool.submit(copy_context().run, accessors)
            return got_id.result(), got_accessors.result()
    except Exception as exc:
        error = translate(exc, doing=f"list secret-ids of {mount}/{role}")
        if isinstance(error, NotFoundError):
            return None
        raise error from exc


class AccessorIndex:
    """Every live token accessor and what lookup-accessor said of it.

    Vault has no index from an entity to its tokens: `LIST auth/token/accessors` (sudo) and a
    lookup each — thousands of round trips in a busy Vault. What a lookup says of a token
    (its entity, name, issue time) never changes, so it is kept: for the revoker's life, and
    in a cache file across processes (a cold `killswitch contain` looks up only the tokens
    minted since). Accessors no longer listed (revoked) are dropped.

    Scans at once (a fleet's agents, discovered side by side) each list the accessors
    themselves — a scan sees every token minted before it began — but an accessor another
    scan is already looking up is waited for, not looked up again: a cold fleet of 50
    agents used to look every accessor up once per agent."""

    KEPT = ("entity_id", "display_name", "issue_time", "path")

    def __init__(self, clients: Clients, workers: int, cache: Path | None = None) -> None:
        self.clients = clients
        self.workers = workers
        self.cache = cache
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, Any]] = self._load()
        self._looking: dict[str, Future[dict[str, Any] | None]] = {}

    def _load(self) -> dict[str, dict[str, Any]]:
        if self.cache is None:
            return {}
        try:
            loaded: dict[str, dict[str, Any]] = json.loads(self.cache.read_text())
        except (OSError, ValueError):
            return {}
        return loaded

    def _save(self, known: dict[str, dict[str, Any]]) -> None:
        if self.cache is None:
            return
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache.with_name(f".{self.cache.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(known))
        os.replace(tmp, self.cache)

    def scan(self) -> dict[str, dict[str, Any]]:
        """accessor → what its lookup said, for every accessor listed now."""
        try:
            keys = [
                str(k)
                for k in _data(self.clients.reading().auth.token.list_accessors()).get("keys", [])
            ]
        except Exception as exc:
            raise translate(exc, doing="list token accessors") from exc
        listed = set(keys)
        with self._lock:
            self._known = {k: v for k, v in self._known.items() if k in listed}
            found = {k: self._known[k] for k in keys if k in self._known}
            unknown = [k for k in keys if k not in found]
            theirs = {k: self._looking[k] for k in unknown if k in self._looking}
            mine = [k for k in unknown if k not in theirs]
            for k in mine:
                self._looking[k] = Future()
        if mine:
            found.update(self._look_up(mine))
        for k, looking in theirs.items():
            try:
                answer = looking.result()
            except BaseException as exc:
                raise own_copy(exc) from None
            if answer is not None:
                found[k] = answer
        return found

    def _look_up(self, accessors: list[str]) -> dict[str, dict[str, Any]]:
        """Look up the accessors this scan took on, telling every scan that waits for one."""
        answers: dict[str, dict[str, Any] | None] = {}
        failed: BaseException | None = None
        try:
            with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(accessors)))) as pool:
                contexts = [copy_context() for _ in accessors]  # the deadline goes with each
                futures = [
                    pool.submit(c.run, self._lookup, k)
                    for c, k in zip(contexts, accessors, strict=True)
                ]
                for k, future in zip(accessors, futures, strict=True):
                    try:
                        answers[k] = future.result()
                    except Exception as exc:
                        failed = failed or exc
                        self._settle(k, error=exc)
                    else:
                        self._settle(k, answer=answers[k])
        finally:  # interrupted: whoever waits learns it, and the next scan looks them up
            for k in accessors:
                if k not in answers:
                    self._settle(k, error=failed or _interrupted())
        with self._lock:  # each answer is in it already (`_settle`)
            known = dict(self._known)
        self._save(known)
        if failed is not None:
            raise failed
        return {k: v for k, v in answers.items() if v is not None}

    def _settle(
        self,
        accessor: str,
        *,
        answer: dict[str, Any] | None = None,
        error: BaseException | None = None,
    ) -> None:
        with self._lock:
            looking = self._looking.pop(accessor, None)
            if answer is not None:
                self._known[accessor] = answer
        if looking is None or looking.done():
            return
        if error is not None:
            looking.set_exception(error)
        else:
            looking.set_result(answer)

    def _lookup(self, accessor: str) -> dict[str, Any] | None:
        """`auth/token/lookup-accessor`: None when the token is gone since the listing."""
        try:
            data = _data(self.clients.reading().auth.token.lookup_accessor(accessor))
            return {k: data.get(k) for k in self.KEPT}
        except Exception as exc:
            error = translate(exc, doing="lookup-accessor")
            if isinstance(error, NotFoundError) or getattr(error, "provider_code", "") in (
                "InvalidRequest",
            ):
                return None  # revoked since the list was taken
            raise error from exc


def _interrupted() -> TransientError:
    """What a scan waiting on another's lookup learns when that scan was cut short."""
    return TransientError(
        "lookup-accessor interrupted in a concurrent scan", provider="vault", provider_code=""
    )


def secret_id_accessors(
    clients: Clients,
    entity: Entity,
    known: Mapping[tuple[str, str], tuple[str, list[str]] | None] | None = None,
) -> list[tuple[str, str, str]]:
    """(mount, role, accessor) for each AppRole alias of the entity whose role is named after
    the agent (`known` holds what was already read, by (mount, role))."""
    found = []
    for alias in entity.aliases:
        if alias.get("mount_type") != "approle":
            continue
        mount = str(alias.get("mount_path", "auth/approle/")).removeprefix("auth/").rstrip("/")
        role = entity.name
        key = (mount, role)
        read = known[key] if known and key in known else approle_secret_ids(clients, mount, role)
        if read is None or read[0] != alias.get("name"):
            continue  # no such role, or the alias belongs to a role of another name
        found += [(mount, role, accessor) for accessor in read[1]]
    return found


def leases(clients: Clients, prefixes: Iterable[str]) -> list[str]:
    """sys/leases/lookup/<prefix> (LIST, sudo), one level of nesting deep."""
    out: list[str] = []
    client = clients.reading()
    for prefix in prefixes:
        try:
            keys = _data(client.sys.list_leases(prefix)).get("keys", [])
        except Exception as exc:
            error = translate(exc, doing=f"list leases under {prefix}")
            if isinstance(error, NotFoundError):
                continue
            raise error from exc
        for key in keys:
            if str(key).endswith("/"):
                out += leases(clients, [prefix + str(key)])
            else:
                out.append(prefix + str(key))
    return out


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def entity_plan(
    entity: Entity,
    tokens: Sequence[tuple[str, dict[str, Any]]],
    secret_ids: Sequence[tuple[str, str, str]],
    lease_ids: Sequence[str],
    prefixes: Sequence[str],
    agent_id: str,
) -> tuple[list[Credential], list[Grant], list[Action]]:
    """Entity off (every token and login refused at once), leases revoked, groups left."""
    principal = f"identity/entity/{entity.id}"

    def credential(kind: str, ref: str, state: str = "", **kw: Any) -> Credential:
        return Credential("vault", kind, ref, principal, agent_id, state, **kw)

    credentials = [
        credential(
            "vault.token",
            accessor,
            data.get("display_name", ""),
            created_at=_time(data.get("issue_time")),
        )
        for accessor, data in tokens
    ]
    credentials += [
        credential("vault.secret-id", accessor, f"{mount}/{role}")
        for mount, role, accessor in secret_ids
    ]
    credentials += [
        credential("vault.userpass", f"{alias['mount_path']}{alias['name']}")
        for alias in entity.aliases
        if alias.get("mount_type") == "userpass"
    ]
    credentials += [credential("vault.lease", lease_id) for lease_id in lease_ids]
    actions = [
        Action(
            "vault",
            Verb.CONTAIN,
            "disable-entity",
            principal,
            principal,
            True,
            entity.disabled,
            {"entity_id": entity.id, "entity": entity.name},
        )
    ]
    for prefix in prefixes:
        live = [lid for lid in lease_ids if lid.startswith(prefix)]
        actions.append(
            Action(
                "vault",
                Verb.CONTAIN,
                "revoke-lease-prefix",
                principal,
                prefix,
                False,
                not live,
                {"leases": str(len(live))},
            )
        )
    grants = []
    for group_id, name in entity.groups.items():
        grants.append(Grant("vault", "vault.group-membership", principal, name, agent_id))
        actions.append(
            Action(
                "vault",
                Verb.DETACH,
                "remove-from-group",
                principal,
                name,
                True,
                False,
                {"group_id": group_id, "entity_id": entity.id},
            )
        )
    return credentials, grants, actions


def destroy_plan(
    entity: Entity,
    tokens: Sequence[tuple[str, dict[str, Any]]],
    secret_ids: Sequence[tuple[str, str, str]],
) -> list[Action]:
    """Decommission, after containment: tokens revoked, secret-ids destroyed, logins and
    roles deleted (phase 1); then the entity itself, with its aliases (phase 2).
    Destroying a secret-id does not kill tokens already issued: the tokens go by accessor."""
    principal = f"identity/entity/{entity.id}"

    def destroy(operation: str, target: str, phase: int, **params: str) -> Action:
        return Action(
            "vault", Verb.DESTROY, operation, principal, target, False, False, params, phase
        )

    actions = [destroy("revoke-token", accessor, 1) for accessor, _ in tokens]
    actions += [
        destroy("destroy-secret-id", accessor, 1, mount=mount, role=role)
        for mount, role, accessor in secret_ids
    ]
    for alias in entity.aliases:
        mount = str(alias.get("mount_path", "")).removeprefix("auth/").rstrip("/")
        if alias.get("mount_type") == "userpass":
            actions.append(
                destroy(
                    "delete-userpass-user",
                    f"{alias['mount_path']}{alias['name']}",
                    1,
                    mount=mount,
                    user=str(alias["name"]),
                )
            )
        elif alias.get("mount_type") == "approle":
            roles = {role for m, role, _ in secret_ids if m == mount} or {entity.name}
            actions += [
                destroy(
                    "delete-approle-role", f"auth/{mount}/role/{role}", 2, mount=mount, role=role
                )
                for role in sorted(roles)
            ]
    actions.append(destroy("delete-entity", principal, 2, entity_id=entity.id))
    return actions
