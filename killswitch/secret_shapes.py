"""What secret material looks like: detect-secrets' plugin regexes plus our providers' own.

Used on every string of untrusted input that must hold references only (agents.yaml). A
reference (an access key id, an accessor, a key's resource name) never matches; a secret
slipped in with a leading space, another case, a `token:` prefix, or in another field does.
Callers say *where* a secret was found, never what it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache, lru_cache
from re import Pattern
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

# Our providers' prefixes and shapes, searched anywhere in a value, any case.
OWN_SHAPES = re.compile(
    r"(?<![a-z0-9])(?:"
    r"sk-(?:proj-|ant-|svcacct-|admin-)?[a-z0-9_-]{16,}"  # OpenAI, Anthropic
    r"|xox[a-z]-[a-z0-9-]{6,}|xapp-\d-[a-z0-9-]{6,}"  # Slack
    r"|gh[pousr]_[a-z0-9]{16,}|github_pat_[a-z0-9_]{16,}"  # GitHub
    r"|hv[sbr]\.[a-z0-9_-]{16,}|s\.[a-z0-9]{20,}"  # Vault / OpenBao tokens
    r"|-----begin[a-z ]*private key|\"private_key\"|aiza[0-9a-z_-]{30,}"  # GCP
    r"|(?:iqojb3jpz2lu|fwogzxivyxdz)[a-z0-9/+=]{16,}"  # AWS STS session tokens
    r"|[a-z0-9_.-]{3}\dq~[a-z0-9_~.-]{31,34}"  # Entra client secrets
    r")",
    re.IGNORECASE,
)
# An AWS secret access key: 40 characters of base64, mixed case and digits.
AWS_SECRET = re.compile(r"(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*\d)")
TOKEN_SPLIT = re.compile(r"[\s:=,;'\"`()<>\[\]{}]+")
HIGH_ENTROPY_LIMIT = 4.5
# detect-secrets patterns that match references, not secrets: AWS access key *ids* are how
# the inventory names a key; Artifactory's `AP…` password shape matches ordinary names.
NOT_SECRETS = (
    r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}",
    r'(?:\s|=|:|"|^)AP[\dABCDEF][a-zA-Z0-9]{8,}(?:\s|"|$)',
)


_SCOPED = (("i", re.IGNORECASE), ("s", re.DOTALL), ("x", re.VERBOSE))


@cache
def _detectors() -> tuple[Pattern[str], Base64HighEntropyString]:
    """detect-secrets' regex plugins (their patterns only: no baseline, no git, no network)."""
    from detect_secrets.plugins.artifactory import ArtifactoryDetector
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.basic_auth import BasicAuthDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    plugins = (
        ArtifactoryDetector,
        AWSKeyDetector,
        AzureStorageKeyDetector,
        BasicAuthDetector,
        DiscordBotTokenDetector,
        GitHubTokenDetector,
        GitLabTokenDetector,
        JwtTokenDetector,
        MailchimpDetector,
        NpmDetector,
        OpenAIDetector,
        PrivateKeyDetector,
        PypiTokenDetector,
        SendGridDetector,
        SlackDetector,
        SquareOAuthDetector,
        StripeDetector,
        TelegramBotTokenDetector,
        TwilioKeyDetector,
    )
    alternatives: list[str] = []
    for plugin in plugins:
        denylist: Iterable[Pattern[str]] = plugin.denylist
        for pattern in denylist:
            if pattern.pattern in NOT_SECRETS:
                continue
            flags = "".join(f for f, bit in _SCOPED if pattern.flags & bit)
            alternatives.append(f"(?{flags}:{pattern.pattern})" if flags else pattern.pattern)
    # One alternation, searched once per value (thirty-odd searches cost 20 s on 5 MiB).
    combined = re.compile("|".join(f"(?:{a})" for a in alternatives))
    return combined, Base64HighEntropyString(limit=HIGH_ENTROPY_LIMIT)


@lru_cache(maxsize=8192)
def looks_secret(value: str) -> bool:
    """True when `value` holds something shaped like secret material anywhere in it."""
    if not value or not value.strip():
        return False
    if OWN_SHAPES.search(value):
        return True
    patterns, plugin = _detectors()
    charset = set(plugin.charset)
    entropy = plugin.calculate_shannon_entropy
    if patterns.search(value):
        return True
    for token in TOKEN_SPLIT.split(value):
        if len(token) == 40 and AWS_SECRET.match(token) and re.fullmatch(r"[A-Za-z0-9/+]+", token):
            return True
        if len(token) >= 32 and set(token) <= charset and entropy(token) > HIGH_ENTROPY_LIMIT:
            return True
    return False
