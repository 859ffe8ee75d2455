"""The function's settings, read from its environment once per cold start."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from stream_processor import contract

DEFAULT_QUARANTINE_PREFIX = "quarantine/"
DEFAULT_HIGH_TEMPERATURE_C = 50.0
DEFAULT_LOW_HUMIDITY_PCT = 20.0
DEFAULT_TEMPERATURE_MIN_C = -40.0
DEFAULT_TEMPERATURE_MAX_C = 125.0
DEFAULT_HUMIDITY_MIN_PCT = 0.0
DEFAULT_HUMIDITY_MAX_PCT = 100.0
#: Readings stay queryable in the real-time table for a quarter; the lake keeps history.
DEFAULT_TTL_DAYS = 90
#: Concurrent BatchWriteItem requests. In the benchmark (5 ms round trips, 10,000 records,
#: 2 cores) 4 -> 8 -> 16 threads took 843 / 640 / 575 ms; 32 and 64 were within noise of 16:
#: from there the function is CPU-bound (botocore's per-request work holds the GIL).
DEFAULT_WRITE_CONCURRENCY = 16
#: 2000-01-01T00:00:00Z. A device whose clock was never set reports times near 1970 (or its
#: firmware's build date); no fleet this platform serves read anything before 2000.
DEFAULT_EARLIEST_TIMESTAMP = 946684800.0
#: Readings may be dated up to 15 minutes after their record reached Kinesis: NTP-synced
#: clocks differ by far less, so a larger lead means a clock running fast.
DEFAULT_MAX_CLOCK_SKEW_S = 900.0
#: 15 minutes: at one reading a minute, fifteen missed in a row. Network drops, MQTT
#: reconnects and firmware updates last seconds to a few minutes and should page no one;
#: a device gone for a quarter of an hour is worth a look the same quarter.
DEFAULT_SILENCE_WINDOW_S = 900.0
#: Hysteresis. Sensors of this class read within +-0.5 C and +-2-3 %RH: a value hovering at
#: a threshold moves by about that much, so an alert clears only once the value is back by
#: several times the sensor's error.
DEFAULT_HIGH_TEMPERATURE_CLEAR_MARGIN_C = 2.0
DEFAULT_LOW_HUMIDITY_CLEAR_MARGIN_PCT = 5.0
#: No reminders unless asked for: one RAISED and one CLEARED per alert.
DEFAULT_ALERT_REMINDER_S = 0.0
#: A device's alert state outlives its last reading by a month, then it is forgotten.
DEFAULT_ALERT_STATE_TTL_DAYS = 30


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Config:
    """Everything the stream processor needs to know about where and how to write."""

    table_name: str
    quarantine_bucket: str
    quarantine_prefix: str = DEFAULT_QUARANTINE_PREFIX
    high_temperature_c: float = DEFAULT_HIGH_TEMPERATURE_C
    low_humidity_pct: float = DEFAULT_LOW_HUMIDITY_PCT
    temperature_min_c: float = DEFAULT_TEMPERATURE_MIN_C
    temperature_max_c: float = DEFAULT_TEMPERATURE_MAX_C
    humidity_min_pct: float = DEFAULT_HUMIDITY_MIN_PCT
    humidity_max_pct: float = DEFAULT_HUMIDITY_MAX_PCT
    ttl_days: int = DEFAULT_TTL_DAYS
    write_concurrency: int = DEFAULT_WRITE_CONCURRENCY
    #: Readings dated before this (epoch seconds) are quarantined as TIMESTAMP_TOO_EARLY.
    earliest_timestamp: float = DEFAULT_EARLIEST_TIMESTAMP
    #: Readings dated more than this many seconds after their Kinesis arrival are
    #: quarantined as TIMESTAMP_IN_FUTURE.
    max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
    #: The per-device alert state table; None (with no bus) sends no notifications.
    alert_state_table: str | None = None
    #: The event bus alert events go to.
    alert_bus_name: str | None = None
    silence_window_s: float = DEFAULT_SILENCE_WINDOW_S
    high_temperature_clear_margin_c: float = DEFAULT_HIGH_TEMPERATURE_CLEAR_MARGIN_C
    low_humidity_clear_margin_pct: float = DEFAULT_LOW_HUMIDITY_CLEAR_MARGIN_PCT
    alert_reminder_s: float = DEFAULT_ALERT_REMINDER_S
    alert_state_ttl_days: int = DEFAULT_ALERT_STATE_TTL_DAYS

    @property
    def alerts_enabled(self) -> bool:
        """Whether state changes are tracked and notified (both alert settings are set)."""
        return self.alert_state_table is not None and self.alert_bus_name is not None


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"required setting {name} is not set")
    return value


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"setting {name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"setting {name}={raw!r} is not a finite number")
    return value


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"setting {name}={raw!r} is not a whole number") from None
    if value < 1:
        raise ConfigError(f"setting {name}={raw!r} must be at least 1")
    return value


def _non_negative(environ: Mapping[str, str], name: str, default: float) -> float:
    value = _number(environ, name, default)
    if value < 0:
        raise ConfigError(f"setting {name}={environ[name].strip()!r} must not be negative")
    return value


def _optional(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _positive(environ: Mapping[str, str], name: str, default: float) -> float:
    value = _number(environ, name, default)
    if value <= 0:
        raise ConfigError(f"setting {name}={environ[name].strip()!r} must be positive")
    return value


def _moment(environ: Mapping[str, str], name: str, default: float) -> float:
    """A point in time as epoch seconds, given as ISO-8601 (naive means UTC) or epoch seconds."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise ConfigError(
                f"setting {name}={raw!r} is neither an ISO-8601 time nor epoch seconds"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        value = moment.timestamp()
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"setting {name}={raw!r} must be a time after 1970-01-01")
    return value


def load_config(environ: Mapping[str, str]) -> Config:
    """Build the configuration from an environment mapping (normally `os.environ`).

    Raises ConfigError naming the variable when a required setting is missing or a
    value is not a valid number or time, or when a pair of bounds is inverted.
    """
    config = Config(
        table_name=_required(environ, contract.ENV_TABLE_NAME),
        quarantine_bucket=_required(environ, contract.ENV_QUARANTINE_BUCKET),
        quarantine_prefix=environ.get(contract.ENV_QUARANTINE_PREFIX, DEFAULT_QUARANTINE_PREFIX),
        high_temperature_c=_number(
            environ, contract.ENV_HIGH_TEMPERATURE_C, DEFAULT_HIGH_TEMPERATURE_C
        ),
        low_humidity_pct=_number(environ, contract.ENV_LOW_HUMIDITY_PCT, DEFAULT_LOW_HUMIDITY_PCT),
        temperature_min_c=_number(
            environ, contract.ENV_TEMPERATURE_MIN_C, DEFAULT_TEMPERATURE_MIN_C
        ),
        temperature_max_c=_number(
            environ, contract.ENV_TEMPERATURE_MAX_C, DEFAULT_TEMPERATURE_MAX_C
        ),
        humidity_min_pct=_number(environ, contract.ENV_HUMIDITY_MIN_PCT, DEFAULT_HUMIDITY_MIN_PCT),
        humidity_max_pct=_number(environ, contract.ENV_HUMIDITY_MAX_PCT, DEFAULT_HUMIDITY_MAX_PCT),
        ttl_days=_positive_int(environ, contract.ENV_TTL_DAYS, DEFAULT_TTL_DAYS),
        write_concurrency=_positive_int(
            environ, contract.ENV_WRITE_CONCURRENCY, DEFAULT_WRITE_CONCURRENCY
        ),
        earliest_timestamp=_moment(
            environ, contract.ENV_EARLIEST_TIMESTAMP, DEFAULT_EARLIEST_TIMESTAMP
        ),
        max_clock_skew_s=_non_negative(
            environ, contract.ENV_MAX_CLOCK_SKEW_SECONDS, DEFAULT_MAX_CLOCK_SKEW_S
        ),
        alert_state_table=_optional(environ, contract.ENV_ALERT_STATE_TABLE),
        alert_bus_name=_optional(environ, contract.ENV_ALERT_BUS_NAME),
        silence_window_s=_positive(
            environ, contract.ENV_SILENCE_WINDOW_SECONDS, DEFAULT_SILENCE_WINDOW_S
        ),
        high_temperature_clear_margin_c=_non_negative(
            environ,
            contract.ENV_HIGH_TEMPERATURE_CLEAR_MARGIN_C,
            DEFAULT_HIGH_TEMPERATURE_CLEAR_MARGIN_C,
        ),
        low_humidity_clear_margin_pct=_non_negative(
            environ,
            contract.ENV_LOW_HUMIDITY_CLEAR_MARGIN_PCT,
            DEFAULT_LOW_HUMIDITY_CLEAR_MARGIN_PCT,
        ),
        alert_reminder_s=_non_negative(
            environ, contract.ENV_ALERT_REMINDER_SECONDS, DEFAULT_ALERT_REMINDER_S
        ),
        alert_state_ttl_days=_positive_int(
            environ, contract.ENV_ALERT_STATE_TTL_DAYS, DEFAULT_ALERT_STATE_TTL_DAYS
        ),
    )
    if (config.alert_state_table is None) != (config.alert_bus_name is None):
        raise ConfigError(
            f"{contract.ENV_ALERT_STATE_TABLE} and {contract.ENV_ALERT_BUS_NAME} go together: "
            "set both to send notifications, or neither"
        )
    if config.temperature_min_c > config.temperature_max_c:
        raise ConfigError(
            f"{contract.ENV_TEMPERATURE_MIN_C} is above {contract.ENV_TEMPERATURE_MAX_C}"
        )
    if config.humidity_min_pct > config.humidity_max_pct:
        raise ConfigError(
            f"{contract.ENV_HUMIDITY_MIN_PCT} is above {contract.ENV_HUMIDITY_MAX_PCT}"
        )
    return config
