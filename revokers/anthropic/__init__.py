"""Anthropic: organisation API keys (the admin API over httpx)."""

from pydantic import Field

from revokers.plugin import HttpProviderSettings, Plugin


class AnthropicSettings(HttpProviderSettings):
    """Where the Anthropic API is (set only to reach a proxy)."""

    base_url: str = Field("https://api.anthropic.com/v1", description="the API root")


PLUGIN = Plugin(
    name="anthropic",
    settings=AnthropicSettings,
    revoker="revokers.anthropic.revoker:AnthropicRevoker",
    stand_in="killswitch.sandbox.anthropic",
)
