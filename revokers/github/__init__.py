"""GitHub: personal access and OAuth tokens (credentials/revoke over httpx)."""

from pydantic import Field

from revokers.plugin import HttpProviderSettings, Plugin


class GitHubSettings(HttpProviderSettings):
    """Where the GitHub API is (set only to reach a proxy)."""

    base_url: str = Field("https://api.github.com", description="the API root")


PLUGIN = Plugin(
    name="github",
    settings=GitHubSettings,
    revoker="revokers.github.revoker:GitHubRevoker",
    stand_in="killswitch.sandbox.github",
)
