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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

# A 40-character base64 token of mixed case and digits: the shape of a cloud secret key.
MIXED_40 = re.compile(r"(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*\d)")
TOKEN_SPLIT = re.compile(r"[\s:=,;'\"`()<>\[\]{}]+")
HIGH_ENTROPY_LIMIT = 4.5
# A detect-secrets pattern that matches ordinary names rather than secrets (Artifactory's
# `AP…` password shape). Patterns matching a provider's *identifiers* (an access key id is
# how the inventory names a key) are dropped too: each plug-in declares those.
NOT_SECRETS = (r'(?:\s|=|:|"|^)AP[\dABCDEF][a-zA-Z0-9]{8,}(?:\s|"|$)',)


@cache
def _own_shapes() -> Pattern[str]:
    """Every provider plug-in's secret shapes, searched anywhere in a value, any case."""
    from revokers.registry import plugins

    shapes = [shape for p in plugins() for shape in p.secret_shapes]
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(shapes) + ")", re.IGNORECASE)


_SCOPED = (("i", re.IGNORECASE), ("s", re.DOTALL), ("x", re.VERBOSE))


@cache
def _detectors() -> tuple[Pattern[str], Base64HighEntropyString]:
    """detect-secrets' regex plugins (their patterns only: no baseline, no git, no network)."""
    import importlib
    import pkgutil

    import detect_secrets.plugins
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    from revokers.registry import plugins as providers

    for module in pkgutil.iter_modules(detect_secrets.plugins.__path__):
        importlib.import_module(f"detect_secrets.plugins.{module.name}")
    detectors = sorted(_subclasses(RegexBasedDetector), key=lambda c: c.__name__)
    skip = set(NOT_SECRETS) | {i for p in providers() for i in p.identifier_shapes}
    alternatives: list[str] = []
    for detector in detectors:
        denylist: Iterable[Pattern[str]] = detector.denylist
        for pattern in denylist:
            if pattern.pattern in skip:
                continue
            flags = "".join(f for f, bit in _SCOPED if pattern.flags & bit)
            alternatives.append(f"(?{flags}:{pattern.pattern})" if flags else pattern.pattern)
    # One alternation, searched once per value (thirty-odd searches cost 20 s on 5 MiB).
    combined = re.compile("|".join(f"(?:{a})" for a in alternatives))
    return combined, Base64HighEntropyString(limit=HIGH_ENTROPY_LIMIT)


def _subclasses(cls: type[Any]) -> list[type[Any]]:
    """Every concrete subclass of `cls` that is loaded (detect-secrets' detectors)."""
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return [c for c in found if getattr(c, "denylist", None)]


@lru_cache(maxsize=8192)
def looks_secret(value: str) -> bool:
    """True when `value` holds something shaped like secret material anywhere in it."""
    if not value or not value.strip():
        return False
    if _own_shapes().search(value):
        return True
    patterns, plugin = _detectors()
    charset = set(plugin.charset)
    entropy = plugin.calculate_shannon_entropy
    if patterns.search(value):
        return True
    for token in TOKEN_SPLIT.split(value):
        if len(token) == 40 and MIXED_40.match(token) and re.fullmatch(r"[A-Za-z0-9/+]+", token):
            return True
        if len(token) >= 32 and set(token) <= charset and entropy(token) > HIGH_ENTROPY_LIMIT:
            return True
    return False
