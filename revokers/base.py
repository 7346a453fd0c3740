"""The revoker contract: what every provider implements, and the registry that finds them.

A revoker does provider I/O only: no Prefect, no ledger, no scheduling. Every verb is
idempotent (running it twice, or after a crash halfway, ends in the same state and says so)
and raises only `killswitch.errors` types; the engine retries `TransientError` alone.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from killswitch.errors import KillSwitchError, NotFoundError
from killswitch.models import (
    Action,
    ActionResult,
    Agent,
    Credential,
    CredentialRef,
    Grant,
    Nhi,
    Outcome,
    UndoRecord,
    Verdict,
)
from killswitch.secrets import Material
from killswitch.settings import Settings
from revokers.plugin import Plugin, load
from revokers.registry import plugins

VERBS = ("discover", "contain", "detach", "probe", "restore")
_GATES = threading.Lock()


@dataclass(frozen=True, slots=True)
class Discovery:
    """What a provider holds for an agent, and the actions a containment would take."""

    credentials: tuple[Credential, ...]
    grants: tuple[Grant, ...]
    actions: tuple[Action, ...]
    protected_skipped: tuple[str, ...] = ()
    # What a decommission adds after containment: irreversible deletions, in phases.
    destroy: tuple[Action, ...] = ()


class ProbeOutcome(StrEnum):
    REJECTED = "rejected"
    ACCEPTED = "accepted"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class ProbeAttempt:
    """One try of a credential against the provider, with the provider's answer as evidence."""

    outcome: ProbeOutcome
    evidence: str
    # The provider's own code for the answer (`token_revoked`, `AADSTS7000215`…), as the
    # provider's allow-list reads it; empty when it gave none.
    code: str = ""


class Revoker(ABC):
    """One provider behind the contract; registered with `@revoker("name")`."""

    provider: ClassVar[str]
    credential_kinds: ClassVar[tuple[str, ...]]
    grant_kinds: ClassVar[tuple[str, ...]]
    # Principals the inventory may declare by name besides credentials (an IAM user).
    principal_kinds: ClassVar[tuple[str, ...]] = ()
    # Kinds probed by asking the provider directly (e.g. a lease lookup): no secret needed.
    self_probing_kinds: ClassVar[tuple[str, ...]] = ()
    # Operations that need the credential's own secret (Slack's auth.revoke is called with
    # the token it revokes): the engine passes the material to `perform`.
    material_operations: ClassVar[frozenset[str]] = frozenset()
    permissions: ClassVar[Mapping[str, tuple[str, ...]]]
    max_workers: int = 8
    # Whether `enumerate` lists every NHI the provider holds (Slack and GitHub cannot: their
    # tokens are known from the inventory only).
    enumerable: ClassVar[bool] = False
    # How long a rejection must hold, probe after probe, before it counts as `dead`:
    # eventually consistent providers set it from their settings (0: the first one counts).
    settle_s: float = 0.0
    # Operations the provider performs for many credentials in one call (GitHub's revoke API
    # takes 1,000 tokens): the engine puts all of a run's such actions in flight at once,
    # outside the per-provider gate, so that the revoker can gather them into its calls.
    batched_operations: frozenset[str] = frozenset()
    _gate: threading.BoundedSemaphore | None = None

    @property
    def gate(self) -> threading.BoundedSemaphore:
        """At most `max_workers` calls to this provider at once, across every run of the
        process (the warm service contains several agents at a time)."""
        if self._gate is None:
            with _GATES:
                if self._gate is None:
                    self._gate = threading.BoundedSemaphore(self.max_workers)
        return self._gate

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> Revoker:
        """Build the revoker with the kill switch's own identity for this provider."""

    @abstractmethod
    def discover(self, agent: Agent, declared: Sequence[CredentialRef]) -> Discovery:
        """Credentials and grants the provider holds for the agent, and the containment plan."""

    @abstractmethod
    def perform(self, action: Action, materials: Sequence[Material] = ()) -> ActionResult:
        """Carry out one planned action; `already` when it was in place. `materials` holds
        the target's secret for `material_operations`, and nothing otherwise."""

    @abstractmethod
    def probe(self, credential: Credential, material: Material) -> ProbeAttempt:
        """Try to use the credential once; the provider's rejection is the evidence of death."""

    def baseline(self, credential: Credential, material: Material) -> ProbeAttempt:
        """The control, taken before containment: REJECTED here means this probe cannot show
        a kill (the engine tries `alternative_probe`). Default: the probe itself."""
        return self.probe(credential, material)

    def alternative_probe(self, credential: Credential, material: Material) -> ProbeAttempt | None:
        """Another use of the credential, for when the baseline was already rejected; None:
        the provider has no other (the verdict is then `unverified` at best)."""
        return None

    def admit(
        self, credential: Credential, attempt: ProbeAttempt, results: Sequence[ActionResult]
    ) -> ProbeAttempt:
        """Whether a rejection after containment counts, knowing what this run did to the
        credential (`results`: its own action results). Default: as probed."""
        return attempt

    @abstractmethod
    def read_back(self, credential: Credential) -> Verdict:
        """No secret to probe with: read the control plane back (`unverified` or `unknown`)."""

    @abstractmethod
    def restore(self, record: UndoRecord) -> ActionResult:
        """Reverse one recorded change (a false positive); `already` when nothing to do."""

    @classmethod
    @abstractmethod
    def permission_policy(cls) -> dict[str, Any]:
        """The least-privilege policy the kill switch's own identity needs here."""

    def owner_of(self, identifier: str) -> str | None:
        """The agent a credential identifier (a key id, an accessor) belongs to, as the
        provider says (its tag or metadata); None when it cannot tell. Read-only."""
        return None

    def enumerate(self) -> Iterator[Nhi]:
        """Every NHI the provider holds, streamed page by page (memory stays flat however
        many there are); the kill switch's own identity is left out."""
        raise NotImplementedError(f"{self.provider} cannot list its credentials")

    def close(self) -> None:  # noqa: B027  (an optional hook, not every revoker holds pools)
        """Release clients and connection pools."""


# What an operation did, and its undo data (None: nothing changed, it was so already).
Done = tuple[str, Mapping[str, Any] | None]
C = TypeVar("C")


def dispatch(
    table: Mapping[str, Callable[[C, Action], Done]],
    client: C,
    action: Action,
    translate: Callable[..., KillSwitchError],
) -> ActionResult:
    """Run `action` through a provider's operation table: SDK errors become the error tree,
    and a target that no longer exists is `already` (it cannot authenticate either)."""
    operation = table.get(action.operation)
    if operation is None:
        raise KillSwitchError(f"{action.provider}: no such operation {action.operation!r}")
    started = time.monotonic()
    try:
        detail, undo = operation(client, action)
    except KillSwitchError:
        raise
    except Exception as exc:
        error = translate(exc, doing=f"{action.operation} {action.target}")
        if isinstance(error, NotFoundError):
            return ActionResult(
                action, Outcome.ALREADY, "gone already", None, time.monotonic() - started
            )
        raise error from exc
    outcome = Outcome.DONE if undo is not None else Outcome.ALREADY
    return ActionResult(action, outcome, detail, undo, time.monotonic() - started)


R = TypeVar("R", bound=type[Revoker])


def revoker(name: str) -> Callable[[R], R]:
    """Name a revoker class after its provider (its plug-in points at it)."""

    def register(cls: R) -> R:
        cls.provider = name
        return cls

    return register


def revoker_class(plugin: Plugin) -> type[Revoker]:
    """The plug-in's revoker class, imported (with its SDK) now."""
    cls = load(plugin.revoker)
    if not (isinstance(cls, type) and issubclass(cls, Revoker)) or cls.provider != plugin.name:
        raise TypeError(f"{plugin.revoker} is not the {plugin.name!r} revoker")
    return cls


def registered() -> Mapping[str, type[Revoker]]:
    """Every registered provider's revoker class (imports every provider's SDK)."""
    return {p.name: revoker_class(p) for p in plugins()}


def build(names: Sequence[str], settings: Settings) -> dict[str, Revoker]:
    """Instantiate the named revokers from settings (only their SDKs are imported)."""
    known = {p.name: p for p in plugins()}
    unknown = [n for n in names if n not in known]
    if unknown:
        from killswitch.errors import ConfigurationError

        raise ConfigurationError(
            f"unknown provider(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return {name: revoker_class(known[name]).from_settings(settings) for name in names}
