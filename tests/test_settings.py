"""The one settings object: environment in, validated values out, secrets never shown."""

from __future__ import annotations

import pytest

from streams.settings import Settings, SettingsError, settings_doc_table

pytestmark = pytest.mark.unit


def test_reads_prefixed_variables_and_converts_types() -> None:
    s = Settings.from_env({"SKYFENCE_BROKER": "kafka://h1:1,h2:2", "SKYFENCE_PARTITIONS": "3", "HOME": "/x"})
    assert s.bootstrap_servers == ["h1:1", "h2:2"]
    assert s.partitions == 3
    assert s.topic("alerts") == "skyfence.alerts"
    assert s.redis_key("alerts", "zone", "sovereign") == "skyfence:alerts:zone:sovereign"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SKYFENCE_BROKR": "kafka://x:1"}, "unknown setting SKYFENCE_BROKR"),
        ({"SKYFENCE_PARTITIONS": "eight"}, "SKYFENCE_PARTITIONS='eight' is not a whole number"),
        ({"SKYFENCE_BROKER": "kafka://nohostport"}, "SKYFENCE_BROKER"),
        ({"SKYFENCE_REDIS_URL": "http://x"}, "SKYFENCE_REDIS_URL"),
        ({"SKYFENCE_ALERT_POLICY": "some"}, "SKYFENCE_ALERT_POLICY"),
        ({"SKYFENCE_STORE": "postgres://"}, "SKYFENCE_STORE"),
        ({"SKYFENCE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "SKYFENCE_KAFKA_SASL_MECHANISM"),
        ({"SKYFENCE_REORDER_TOLERANCE_S": "-1"}, "SKYFENCE_REORDER_TOLERANCE_S=-1.0 must be between 0 and 60"),
        ({"SKYFENCE_REORDER_TOLERANCE_S": "nan"}, "SKYFENCE_REORDER_TOLERANCE_S=nan must be between"),
        ({"SKYFENCE_REORDER_TOLERANCE_S": "two"}, "SKYFENCE_REORDER_TOLERANCE_S='two' is not a number"),
        ({"SKYFENCE_SESSION_TIMEOUT_S": "3"}, "SKYFENCE_SESSION_TIMEOUT_S=3.0 must be between 6 and 90"),
        ({"SKYFENCE_SESSION_TIMEOUT_S": "120"}, "SKYFENCE_SESSION_TIMEOUT_S=120.0 must be between 6 and 90"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle.replace("(", r"\(")):
        Settings.from_env(env)


def test_secrets_are_masked_everywhere_but_reveal() -> None:
    s = Settings.from_env(
        {
            "SKYFENCE_REDIS_PASSWORD": "hunter2",
            "SKYFENCE_KAFKA_SASL_PASSWORD": "s3cret",
            "SKYFENCE_REDIS_URL": "redis://user:pw123@localhost:6379/0",
        }
    )
    shown = repr(s) + str(s.public_items()) + f"{s.redis_password}" + settings_doc_table()
    for secret in ("hunter2", "s3cret", "pw123"):
        assert secret not in shown
    assert s.redis_password.reveal() == "hunter2"
    assert s.to_env()["SKYFENCE_KAFKA_SASL_PASSWORD"] == "s3cret"
    assert Settings.from_env(s.to_env()) == s


def test_doc_table_lists_every_setting() -> None:
    table = settings_doc_table()
    for var, _, _ in Settings().public_items():
        assert f"`{var}`" in table
