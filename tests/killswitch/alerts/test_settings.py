from __future__ import annotations

import pytest
from pydantic import ValidationError

from killswitch.alerts.settings import AlertSettings
from killswitch.sandbox.senders import new_generic_secret
from killswitch.settings import Settings


def test_every_source_is_off_by_default() -> None:
    alerts = Settings().alerts
    assert alerts == AlertSettings()
    assert alerts.aws.api_key is None and alerts.github.webhook_secret is None
    assert alerts.alertmanager.bearer_token is None and alerts.generic.secret is None
    assert not alerts.sns.enabled and alerts.sns.topic_arns == ()
    assert alerts.max_body == 256 * 1024
    assert alerts.alertmanager.agent_label == "agent_id"


@pytest.mark.parametrize(
    "section",
    [
        {"unknown": 1},
        {"generic": {"secret": "not-whsec"}},
        {"generic": {"secret": "whsec_c2hvcnQ="}},
        {"aws": {"header": "x key"}},
        {"sns": {"cert_hosts": ["("]}},
        {"max_body": 10},
    ],
)
def test_bad_values_are_refused(section: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AlertSettings.model_validate(section)


def test_secrets_are_not_shown() -> None:
    secret = new_generic_secret()
    alerts = AlertSettings.model_validate({"generic": {"secret": secret}, "aws": {"api_key": "k1"}})
    assert secret not in repr(alerts) and "k1" not in str(alerts)
    assert alerts.aws.header == "x-killswitch-key"


def test_a_refused_secret_is_not_echoed_in_the_error() -> None:
    with pytest.raises(ValidationError) as raised:
        AlertSettings.model_validate({"generic": {"secret": "whsec_tooshort-secret-value"}})
    assert "tooshort-secret-value" not in str(raised.value)
