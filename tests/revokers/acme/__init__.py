"""A ninth provider that exists only in the tests: `acme`, whose tokens live in memory.

It proves the plug-in contract: registered by one line (the test adds its package to the
registry), it gets a settings section, a secret source, a place in every plan, a task in
every run and a row in every report — and no module of the core changes for it.
"""

from pydantic import Field, SecretStr

from revokers.plugin import Plugin, ProviderSettings


class AcmeSettings(ProviderSettings):
    """Where the (imaginary) Acme API is."""

    base_url: str = Field("https://api.acme.invalid", description="the API root")
    admin_key: SecretStr | None = None
    protected_tokens: tuple[str, ...] = ()
    settle_s: float = Field(0.0, ge=0, description="how long a rejection must hold")
    whoami: bool = Field(False, description="offer the alternative probe (GET /whoami)")


PLUGIN = Plugin(
    name="acme",
    settings=AcmeSettings,
    revoker="tests.revokers.acme.revoker:AcmeRevoker",
    stand_in="tests.revokers.acme.stand_in",
    identifier_fields=frozenset({"token_id"}),
)
