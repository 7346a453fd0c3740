"""Slack: bot and user tokens (auth.revoke, auth.test over httpx)."""

from revokers.plugin import http_plugin

PLUGIN = http_plugin(
    "slack",
    "revokers.slack.revoker:SlackRevoker",
    base_url="https://slack.com/api/",
    secret_shapes=(r"xox[a-z]-[a-z0-9-]{6,}", r"xapp-\d-[a-z0-9-]{6,}"),
)
