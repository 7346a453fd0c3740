"""Anthropic: organisation API keys (the admin API over httpx)."""

from revokers.plugin import http_plugin

PLUGIN = http_plugin(
    "anthropic",
    "revokers.anthropic.revoker:AnthropicRevoker",
    base_url="https://api.anthropic.com/v1",
    secret_shapes=(r"sk-ant-[a-z0-9_-]{16,}",),
)
