"""What the token-provider tests share: a runtime for one provider, contain, and probes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from killswitch import pipeline
from killswitch.models import ContainmentReport, VerdictStatus
from killswitch.request import Mode, Request
from killswitch.runtime import Runtime
from killswitch.settings import Settings
from killswitch.verdicts import check_alive


@contextmanager
def provider_runtime(settings: Settings, provider: str, **overrides: object) -> Iterator[Runtime]:
    runtime = Runtime.open(settings.model_copy(update=overrides), providers=[provider])
    try:
        yield runtime
    finally:
        runtime.close()


def runtime_of(provider: str, *, name: str = "runtime") -> object:
    """A test module's fixture `name`: a runtime for `provider` alone, closed afterwards
    (`runtime = runtime_of("aws")` at a module's top level)."""

    @pytest.fixture(name=name)
    def fixture(settings: Settings) -> Iterator[Runtime]:
        with provider_runtime(settings, provider) as opened:
            yield opened

    return fixture


def contain(runtime: Runtime, agent_id: str) -> ContainmentReport:
    return pipeline.contain(runtime, Request(agent_id, "test", "test", mode=Mode.BREAK_GLASS))


def statuses(runtime: Runtime, agent_id: str, provider: str) -> list[VerdictStatus]:
    """One probe of each of the agent's credentials at `provider`, now."""
    agent = runtime.inventory.get_agent(agent_id)
    assert agent is not None
    revoker = runtime.revokers[provider]
    found = revoker.discover(agent, runtime.inventory.declared(agent_id))
    assert found.credentials, f"{agent_id} holds nothing at {provider}"
    return [
        check_alive(revoker, c, runtime.secrets.materials(c), deadline_s=0, interval_s=0).status
        for c in found.credentials
    ]
