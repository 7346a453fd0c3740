"""OpenAI: project API keys (the admin API over httpx)."""

from revokers.plugin import http_plugin

PLUGIN = http_plugin(
    "openai",
    "revokers.openai.revoker:OpenAIRevoker",
    base_url="https://api.openai.com/v1",
    secret_shapes=(r"sk-(?:proj-|svcacct-|admin-)?[a-z0-9_-]{16,}",),
)
