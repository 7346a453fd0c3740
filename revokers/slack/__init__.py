"""Slack: bot and user tokens (auth.revoke, auth.test over httpx)."""

from pydantic import Field

from revokers.plugin import HttpProviderSettings, Plugin


class SlackSettings(HttpProviderSettings):
    """Where the Slack API is (set only to reach a proxy)."""

    base_url: str = Field("https://slack.com/api/", description="the API root")


PLUGIN = Plugin(
    name="slack",
    settings=SlackSettings,
    revoker="revokers.slack.revoker:SlackRevoker",
    stand_in="killswitch.sandbox.slack",
)
