"""OpenAI: project API keys (the admin API over httpx)."""

from pydantic import Field

from revokers.plugin import HttpProviderSettings, Plugin


class OpenAISettings(HttpProviderSettings):
    """Where the OpenAI API is (set only to reach a proxy)."""

    base_url: str = Field("https://api.openai.com/v1", description="the API root")


PLUGIN = Plugin(
    name="openai",
    settings=OpenAISettings,
    revoker="revokers.openai.revoker:OpenAIRevoker",
    stand_in="killswitch.sandbox.openai",
)
