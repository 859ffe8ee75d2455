"""The function's settings: defaults, and loud failures that name the variable."""

from __future__ import annotations

import pytest

from stream_processor import contract
from stream_processor import handler as handler_module
from stream_processor.config import Config, ConfigError, load_config

REQUIRED = {contract.ENV_TABLE_NAME: "readings", contract.ENV_QUARANTINE_BUCKET: "quarantine"}


def test_defaults_apply_when_only_required_settings_are_given() -> None:
    """GIVEN only the table and the quarantine bucket
    WHEN the configuration is loaded
    THEN the documented thresholds, prefix, retention and concurrency apply.
    """
    config = load_config(REQUIRED)

    assert config == Config(table_name="readings", quarantine_bucket="quarantine")
    assert (config.high_temperature_c, config.low_humidity_pct) == (50, 20)
    assert (config.temperature_min_c, config.temperature_max_c) == (-40, 125)
    assert (config.humidity_min_pct, config.humidity_max_pct) == (0, 100)
    assert (config.quarantine_prefix, config.ttl_days) == ("quarantine/", 90)
    assert config.earliest_timestamp == 946684800  # 2000-01-01T00:00:00Z
    assert config.max_clock_skew_s == 900


def test_every_setting_is_read_from_its_variable() -> None:
    """GIVEN every variable set
    WHEN the configuration is loaded
    THEN each value is taken from its variable.
    """
    environ = {
        **REQUIRED,
        contract.ENV_QUARANTINE_PREFIX: "bad/",
        contract.ENV_HIGH_TEMPERATURE_C: "40.5",
        contract.ENV_LOW_HUMIDITY_PCT: "15",
        contract.ENV_TEMPERATURE_MIN_C: "-20",
        contract.ENV_TEMPERATURE_MAX_C: "80",
        contract.ENV_HUMIDITY_MIN_PCT: "1",
        contract.ENV_HUMIDITY_MAX_PCT: "99",
        contract.ENV_TTL_DAYS: "7",
        contract.ENV_WRITE_CONCURRENCY: "4",
        contract.ENV_EARLIEST_TIMESTAMP: "1577836800",
        contract.ENV_MAX_CLOCK_SKEW_SECONDS: "60",
    }

    assert load_config(environ) == Config(
        "readings", "quarantine", "bad/", 40.5, 15, -20, 80, 1, 99, 7, 4, 1577836800, 60
    )


@pytest.mark.parametrize(
    "value",
    ["2020-01-01", "2020-01-01T00:00:00", "2020-01-01T00:00:00Z", "2020-01-01T10:00:00+10:00"],
)
def test_earliest_timestamp_may_be_an_iso_time(value: str) -> None:
    """GIVEN EARLIEST_TIMESTAMP as an ISO-8601 date or time (naive means UTC)
    WHEN the configuration is loaded
    THEN it is that moment in epoch seconds.
    """
    config = load_config({**REQUIRED, contract.ENV_EARLIEST_TIMESTAMP: value})

    assert config.earliest_timestamp == 1577836800


@pytest.mark.parametrize("missing", [contract.ENV_TABLE_NAME, contract.ENV_QUARANTINE_BUCKET])
def test_missing_required_setting_fails_naming_it(missing: str) -> None:
    """GIVEN an environment without a required setting
    WHEN the configuration is loaded
    THEN it fails and the message names the variable.
    """
    environ = {k: v for k, v in REQUIRED.items() if k != missing}

    with pytest.raises(ConfigError, match=missing):
        load_config(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (contract.ENV_HIGH_TEMPERATURE_C, "hot"),
        (contract.ENV_LOW_HUMIDITY_PCT, "nan"),
        (contract.ENV_TEMPERATURE_MAX_C, "1e999"),
        (contract.ENV_TTL_DAYS, "ninety"),
        (contract.ENV_TTL_DAYS, "0"),
        (contract.ENV_WRITE_CONCURRENCY, "2.5"),
        (contract.ENV_EARLIEST_TIMESTAMP, "the year 2000"),
        (contract.ENV_EARLIEST_TIMESTAMP, "-1"),
        (contract.ENV_EARLIEST_TIMESTAMP, "inf"),
        (contract.ENV_MAX_CLOCK_SKEW_SECONDS, "a while"),
        (contract.ENV_MAX_CLOCK_SKEW_SECONDS, "-60"),
    ],
)
def test_invalid_number_fails_naming_the_variable(name: str, value: str) -> None:
    """GIVEN a setting that is not a valid number (or time)
    WHEN the configuration is loaded
    THEN it fails and the message names the variable.
    """
    with pytest.raises(ConfigError, match=name):
        load_config({**REQUIRED, name: value})


def test_handler_cold_start_without_table_fails_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN a function deployed without TABLE_NAME
    WHEN Lambda invokes the handler for the first time
    THEN the invocation fails with an error naming TABLE_NAME (and no record is touched).
    """
    monkeypatch.setattr(handler_module, "_processor", None)
    monkeypatch.delenv(contract.ENV_TABLE_NAME, raising=False)
    monkeypatch.setenv(contract.ENV_QUARANTINE_BUCKET, "quarantine")

    with pytest.raises(ConfigError, match=contract.ENV_TABLE_NAME):
        handler_module.handler({"Records": []}, None)
