"""Each provider's allow-list of rejections that mean dead, fed the providers' documented
error bodies (PROVIDERS.md, and the providers' docs): everything off the list is
inconclusive, with the provider's words. No sandbox: the classification functions alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from killswitch.execution import Timing, run_provider
from killswitch.models import (
    Action,
    ActionResult,
    Agent,
    AgentStatus,
    Credential,
    CredentialRef,
    Outcome,
    Plan,
    Verb,
    Verdict,
    VerdictStatus,
)
from killswitch.secrets import MappingSource
from revokers.anthropic import revoker as anthropic
from revokers.azure import revoker as azure
from revokers.base import ProbeOutcome
from revokers.gcp import probes as gcp
from revokers.github import revoker as github
from revokers.openai import revoker as openai
from revokers.plugin import HttpProviderSettings
from revokers.slack import revoker as slack

REJECTED, ACCEPTED, INCONCLUSIVE = (
    ProbeOutcome.REJECTED,
    ProbeOutcome.ACCEPTED,
    ProbeOutcome.INCONCLUSIVE,
)


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({"ok": True, "user_id": "U1"}, ACCEPTED),
        ({"ok": False, "error": "token_revoked"}, REJECTED),
        ({"ok": False, "error": "account_inactive"}, REJECTED),
        ({"ok": False, "error": "invalid_auth"}, REJECTED),  # judged by `admit`, below
        ({"ok": False, "error": "not_authed"}, INCONCLUSIVE),  # no token was sent
        ({"ok": False, "error": "token_expired"}, INCONCLUSIVE),
        ({"ok": False, "error": "fatal_error"}, INCONCLUSIVE),
    ],
)
def test_slack_auth_test_answers(body: dict[str, Any], outcome: ProbeOutcome) -> None:
    attempt = slack.classify(body)
    assert attempt.outcome is outcome
    if not body["ok"]:
        assert body["error"] in attempt.evidence and attempt.code == body["error"]


SLACK_TOKEN = Credential("slack", "slack.bot-token", "T1/B1", "slack:agent-7", "agent-7")


def _revoke(outcome: Outcome, target: str = "T1/B1") -> ActionResult:
    action = Action("slack", Verb.CONTAIN, "revoke-token", "slack:agent-7", target, False)
    return ActionResult(action, outcome, "")


@pytest.mark.parametrize(
    ("results", "outcome"),
    [
        ([_revoke(Outcome.DONE)], REJECTED),  # auth.revoke: revoked
        ([_revoke(Outcome.ALREADY)], REJECTED),  # auth.revoke: token_revoked already
        ([_revoke(Outcome.FAILED)], INCONCLUSIVE),  # auth.revoke: invalid_auth (an IP?)
        ([], INCONCLUSIVE),  # no revoke at all
        ([_revoke(Outcome.DONE, target="T1/B2")], INCONCLUSIVE),  # another token's revoke
    ],
)
def test_slack_invalid_auth_counts_only_after_this_tokens_revoke_went_through(
    results: list[ActionResult], outcome: ProbeOutcome
) -> None:
    attempt = slack.classify({"ok": False, "error": "invalid_auth"})
    judged = slack.admit(SLACK_TOKEN, attempt, results)
    assert judged.outcome is outcome
    if outcome is INCONCLUSIVE:
        assert "allowlist" in judged.evidence and "invalid_auth" in judged.evidence


def test_slack_token_revoked_counts_whatever_the_revoke_said() -> None:
    attempt = slack.classify({"ok": False, "error": "token_revoked"})
    assert slack.admit(SLACK_TOKEN, attempt, [_revoke(Outcome.FAILED)]).outcome is REJECTED


def _openai_error(message: str, code: str | None) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {"object": "list", "data": []}, ACCEPTED),
        (
            401,
            _openai_error("Incorrect API key provided: sk-proj-****abcd.", "invalid_api_key"),
            REJECTED,
        ),
        # A restricted key missing a scope: 401 with code null (openai-openapi), or
        # "missing_scope" as some answers carry it. The key is alive.
        (
            401,
            _openai_error(
                "You have insufficient permissions for this operation. Missing scopes: model.read.",
                None,
            ),
            INCONCLUSIVE,
        ),
        (401, _openai_error("Missing scopes: model.read.", "missing_scope"), INCONCLUSIVE),
        (
            403,
            _openai_error(
                "Country, region, or territory not supported",
                "unsupported_country_region_territory",
            ),
            INCONCLUSIVE,
        ),
        (404, None, INCONCLUSIVE),
    ],
)
def test_openai_get_models_answers(status: int, body: Any, outcome: ProbeOutcome) -> None:
    attempt = openai.classify(status, body)
    assert attempt.outcome is outcome and str(status) in attempt.evidence
    assert "sk-proj" not in attempt.evidence  # the message repeats part of the key: never kept


def _anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {"data": []}, ACCEPTED),
        (401, _anthropic_error("authentication_error", "invalid x-api-key"), REJECTED),
        (
            404,
            _anthropic_error("not_found_error", "The requested resource could not be found."),
            INCONCLUSIVE,
        ),
        (
            403,
            _anthropic_error("permission_error", "Your API key does not have permission"),
            INCONCLUSIVE,
        ),
        (
            400,
            _anthropic_error("invalid_request_error", "anthropic-version header is required"),
            INCONCLUSIVE,
        ),
        (401, None, INCONCLUSIVE),  # a 401 without Anthropic's body: a proxy, not the key
    ],
)
def test_anthropic_get_models_answers(status: int, body: Any, outcome: ProbeOutcome) -> None:
    attempt = anthropic.classify(status, body)
    assert attempt.outcome is outcome and str(status) in attempt.evidence


def test_anthropic_404_is_called_a_wrong_url() -> None:
    attempt = anthropic.classify(404, _anthropic_error("not_found_error", "Not found"))
    assert "wrong URL" in attempt.evidence


@pytest.mark.parametrize(
    ("status", "headers", "body", "outcome"),
    [
        (200, {}, {"login": "agent-7"}, ACCEPTED),
        (401, {}, {"message": "Bad credentials", "status": "401"}, REJECTED),
        (
            403,
            {"x-ratelimit-remaining": "0"},
            {"message": "API rate limit exceeded for user ID 1."},
            INCONCLUSIVE,
        ),
        (403, {}, {"message": "You have exceeded a secondary rate limit."}, INCONCLUSIVE),
        (
            403,
            {},
            {"message": "Resource protected by organization SAML enforcement."},
            INCONCLUSIVE,
        ),
    ],
)
def test_github_get_user_answers(
    status: int, headers: dict[str, str], body: Any, outcome: ProbeOutcome
) -> None:
    attempt = github.classify(status, headers, body)
    assert attempt.outcome is outcome


def test_github_rate_limit_is_said_plainly() -> None:
    attempt = github.classify(403, {"x-ratelimit-remaining": "0"}, {"message": "API rate limit"})
    assert "rate limited" in attempt.evidence


def _aadsts(code: int, text: str) -> str:
    # How azure-identity words a refused token request (its message carries the body's
    # error_description: "AADSTS<code>: <text>\r\nTrace ID: …").
    return (
        "ClientSecretCredential.get_token failed: Authentication failed: "
        f"AADSTS{code}: {text}\r\nTrace ID: 0000\r\nCorrelation ID: 1111\r\n"
        "Timestamp: 2026-12-02 01:00:00Z"
    )


@pytest.mark.parametrize(
    ("code", "text", "outcome"),
    [
        (7000215, "Invalid client secret provided.", REJECTED),
        (7000222, "The provided client secret keys for app '…' are expired.", REJECTED),
        (7000112, "Application '…' is disabled.", REJECTED),
        (700016, "Application with identifier '…' was not found in the directory.", REJECTED),
        (90024, "An error occurred when we tried to process your request.", INCONCLUSIVE),
        (90033, "A transient error has occurred. Please try again.", INCONCLUSIVE),
        (50196, "The server terminated an operation because it encountered a loop.", INCONCLUSIVE),
        (700027, "Client assertion failed signature validation.", INCONCLUSIVE),
    ],
)
def test_azure_token_request_answers(code: int, text: str, outcome: ProbeOutcome) -> None:
    attempt = azure.classify(_aadsts(code, text))
    assert attempt.outcome is outcome and attempt.code == f"AADSTS{code}"
    assert f"AADSTS{code}: {text}" in attempt.evidence and "Trace ID" not in attempt.evidence


def test_azure_without_a_code_is_inconclusive() -> None:
    assert azure.classify("connection reset").outcome is INCONCLUSIVE


@pytest.mark.parametrize(
    ("detail", "outcome"),
    [
        ("invalid_grant: Invalid JWT Signature.", REJECTED),
        ("invalid_grant: Invalid grant: account not found", REJECTED),
        ("invalid_grant: Robot is disabled.", REJECTED),
        (
            "invalid_grant: Invalid JWT: Token must be a short-lived token (60 minutes) and in "
            "a reasonable timeframe. Check your iat and exp values in the JWT claim.",
            INCONCLUSIVE,
        ),
        (
            "invalid_grant: Invalid JWT: Token must be a short-lived token and in a "
            "reasonable timeframe",
            INCONCLUSIVE,
        ),
        ("invalid_scope: Invalid OAuth scope or ID token audience provided.", INCONCLUSIVE),
        ("unauthorized_client: Client is unauthorized to retrieve access tokens", INCONCLUSIVE),
    ],
)
def test_gcp_token_exchange_answers(detail: str, outcome: ProbeOutcome) -> None:
    attempt = gcp.classify(detail)
    assert attempt.outcome is outcome and detail[:60] in attempt.evidence


def test_gcp_clock_skew_is_said_not_to_be_a_dead_key() -> None:
    attempt = gcp.classify("invalid_grant: Invalid JWT: Token must be a short-lived token")
    assert "clock-skew" in attempt.evidence


def _slack_run(answers: Callable[[str, int], dict[str, Any] | int]) -> Verdict:
    """Contain one Slack token against a Slack that answers `answers(method, call number)`
    (a body, or an HTTP status), through the engine, with the real revoker over httpx."""
    calls: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        calls[method] = calls.get(method, 0) + 1
        answer = answers(method, calls[method])
        if isinstance(answer, int):
            return httpx.Response(answer, json={"ok": False, "error": "fatal_error"})
        return httpx.Response(200, json=answer)

    base = "https://slack.test/api/"
    revoker = slack.SlackRevoker(HttpProviderSettings(base_url=base, max_workers=2))
    revoker._client = httpx.AsyncClient(base_url=base, transport=httpx.MockTransport(handler))
    try:
        agent = Agent("agent-7", "team-7", AgentStatus.ACTIVE)
        found = revoker.discover(agent, [CredentialRef("slack", "slack.bot-token", "T1/B1")])
        plan = Plan(
            "run", agent, "agent-7", datetime.now(UTC), found.credentials, (), found.actions
        )
        secrets = MappingSource("test", {"slack.bot-token:T1/B1": [{"token": "xoxb-canary"}]})
        outcome = run_provider(
            revoker,
            plan,
            secrets=secrets,
            timing=Timing(action_deadline_s=1.0, probe_deadline_s=0.3, probe_interval_s=0.05),
            on_result=lambda result: None,
            on_verdict=lambda credential, verdict: None,
        )
    finally:
        revoker.close()
    [(_, verdict)] = outcome.verdicts
    assert "xoxb-canary" not in verdict.evidence + verdict.to_prove
    return verdict


def test_slack_a_revoked_token_is_dead() -> None:
    def answers(method: str, n: int) -> dict[str, Any] | int:
        if method == "auth.revoke":
            return {"ok": True, "revoked": True}
        return {"ok": True} if n == 1 else {"ok": False, "error": "token_revoked"}

    verdict = _slack_run(answers)
    assert verdict.status is VerdictStatus.DEAD and "token_revoked" in verdict.evidence


def test_slack_from_a_non_allowlisted_ip_is_never_dead() -> None:
    # Slack answers invalid_auth to everything from an IP outside the workspace's allowlist.
    verdict = _slack_run(lambda method, n: {"ok": False, "error": "invalid_auth"})
    assert verdict.status is VerdictStatus.UNKNOWN
    assert "baseline already rejected before containment" in verdict.evidence
    assert "revoke-token failed" in verdict.evidence


def test_slack_invalid_auth_after_a_failed_revoke_is_unknown() -> None:
    # The baseline could not be taken (Slack was down), so only the revoke can vouch for
    # invalid_auth — and auth.revoke itself answered invalid_auth.
    def answers(method: str, n: int) -> dict[str, Any] | int:
        if method == "auth.test" and n == 1:
            return 503
        return {"ok": False, "error": "invalid_auth"}

    verdict = _slack_run(answers)
    assert verdict.status is VerdictStatus.UNKNOWN
    assert "auth.revoke did not go through for this token" in verdict.evidence
    assert "baseline inconclusive before containment" in verdict.evidence
