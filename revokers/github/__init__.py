"""GitHub: personal access and OAuth tokens (credentials/revoke over httpx)."""

from revokers.plugin import http_plugin

PLUGIN = http_plugin(
    "github",
    "revokers.github.revoker:GitHubRevoker",
    base_url="https://api.github.com",
    secret_shapes=(r"gh[pousr]_[a-z0-9]{16,}", r"github_pat_[a-z0-9_]{16,}"),
)
