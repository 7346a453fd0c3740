from __future__ import annotations

import pytest
from pydantic import ValidationError

from killswitch.alerts.registry import names, plugins
from killswitch.alerts.settings import AlertSettings
from killswitch.alerts.sources.alertmanager import AlertmanagerAlertSettings
from killswitch.alerts.sources.aws.eventbridge import AwsAlertSettings
from killswitch.alerts.sources.aws.sns import SnsAlertSettings
from killswitch.alerts.sources.generic import GenericAlertSettings
from killswitch.alerts.sources.github.secret_scanning import GithubAlertSettings
from killswitch.errors import ConfigurationError
from killswitch.sandbox.senders.generic import new_generic_secret
from killswitch.settings import Settings


def test_the_five_sources_are_registered() -> None:
    assert names() == ("alertmanager", "aws", "generic", "github", "sns")
    assert all(p.summary and p.body and p.settings for p in plugins())


def test_every_source_is_off_by_default() -> None:
    alerts = Settings().alerts
    assert alerts == AlertSettings()
    assert alerts.section("aws", AwsAlertSettings).api_key is None
    assert alerts.section("github", GithubAlertSettings).webhook_secret is None
    assert alerts.section("alertmanager", AlertmanagerAlertSettings).bearer_token is None
    assert alerts.section("generic", GenericAlertSettings).secret is None
    sns = alerts.section("sns", SnsAlertSettings)
    assert not sns.enabled and sns.topic_arns == ()
    assert alerts.max_body == 256 * 1024
    assert alerts.section("alertmanager", AlertmanagerAlertSettings).agent_label == "agent_id"
    with pytest.raises(ConfigurationError):
        alerts.section("aws", GithubAlertSettings)


def test_sections_come_from_the_profile_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KILLSWITCH_ALERTS__GITHUB__WEBHOOK_SECRET", "from-env")
    alerts = Settings.model_validate({"alerts": {"aws": {"api_key": "k1"}}}).alerts
    assert alerts.section("aws", AwsAlertSettings).api_key is not None
    github = Settings().alerts.section("github", GithubAlertSettings)
    assert github.webhook_secret is not None
    assert github.webhook_secret.get_secret_value() == "from-env"


@pytest.mark.parametrize(
    "section",
    [
        {"unknown": 1},
        {"generic": {"secret": "not-whsec"}},
        {"generic": {"secret": "whsec_c2hvcnQ="}},
        {"aws": {"header": "x key"}},
        {"aws": {"unknown": 1}},
        {"sns": {"cert_hosts": ["("]}},
        {"max_body": 10},
    ],
)
def test_bad_values_are_refused(section: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AlertSettings.model_validate(section)


def test_secrets_are_not_shown_even_in_errors() -> None:
    secret = new_generic_secret()
    alerts = AlertSettings.model_validate({"generic": {"secret": secret}, "aws": {"api_key": "k1"}})
    assert secret not in repr(alerts) and "k1" not in str(alerts)
    assert alerts.section("aws", AwsAlertSettings).header == "x-killswitch-key"
    with pytest.raises(ValidationError) as raised:
        AlertSettings.model_validate({"generic": {"secret": "whsec_tooshort-secret-value"}})
    assert "tooshort-secret-value" not in str(raised.value)
