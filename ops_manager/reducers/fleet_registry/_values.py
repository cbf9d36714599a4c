"""Fleet registry vocabulary, defaults, the validation error, loop ids and timestamps (PURE)."""

from __future__ import annotations

import re
from typing import Any

from ops_manager.model.errors import OpsError

SCHEMA_VERSION = "v1"
DEFAULT_FLEET_ID = "default"
TRANSPORTS = ("local", "sprite_service")
POLICY_MODES = ("advisory", "guarded_auto")
CATEGORIES = ("reconcile_failed", "health_critical", "health_degraded")
INTENTS = ("cancel",)
SEVERITIES = ("critical", "warning", "info")
CONFIDENCES = ("high", "medium", "low")
#: loop ids that would make a loop's ``OPS`` directory collide with the fleet directory
RESERVED_LOOP_IDS = ("fleet",)

DEFAULT_RETRY_ATTEMPTS = 3
DEFAULT_RETRY_BACKOFF_SECONDS = 1
DEFAULT_DEDUPE_WINDOW_SECONDS = 300
DEFAULT_ALLOW_CATEGORIES = ("reconcile_failed", "health_critical")
DEFAULT_ALLOW_INTENTS = ("cancel",)
DEFAULT_MIN_SEVERITY = "critical"
DEFAULT_MIN_CONFIDENCE = "high"
DEFAULT_MAX_ACTIONS_PER_RUN = 1
DEFAULT_MAX_ACTIONS_PER_LOOP = 1
DEFAULT_COOLDOWN_SECONDS = 300
DEFAULT_CANARY_PERCENT = 100
DEFAULT_SELECTOR_SALT = "fleet-autonomous-rollout-v1"
DEFAULT_LOOKBACK_EXECUTIONS = 5
DEFAULT_MIN_SAMPLE_SIZE = 3
DEFAULT_AMBIGUITY_RATE_THRESHOLD = 0.4
DEFAULT_FAILURE_RATE_THRESHOLD = 0.4

_FLEET_TS = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})T([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})Z[ \t\n\r\f\v]*"
)


class RegistryValidationError(OpsError):
    """The registry parsed but failed validation (exit 1).

    ``str(err)`` is the contract's report: ``invalid fleet registry: <path>`` followed by one
    `` - <message>`` line per problem; ``problems`` holds the bare messages in order.
    """

    def __init__(self, source_file: str, problems: list[str]) -> None:
        lines = "".join(f"\n - {problem}" for problem in problems)
        super().__init__(f"invalid fleet registry: {source_file}{lines}")
        self.source_file = source_file
        self.problems = list(problems)


def loop_id_problem(loop_id: str) -> str | None:
    """Why ``loop_id`` cannot name a loop directory, or ``None`` if it can.

    Same rule as :func:`ops_manager.store.validate_loop_id` (single path component: no
    ``/``, ``\\``, NUL or control characters, not ``.``/``..``), plus the reserved ``fleet``.
    """
    if (
        loop_id in (".", "..")
        or any(ch in loop_id for ch in ("/", "\\"))
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in loop_id)
    ):
        return (
            "loopId must be a single path component "
            "(no '/', '\\', NUL or control characters, not '.' or '..')"
        )
    if loop_id in RESERVED_LOOP_IDS:
        return (
            f"loopId {loop_id!r} is reserved (its artifacts would collide with the fleet directory)"
        )
    return None


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year; day may overflow)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_fleet_ts(value: Any) -> int | None:
    """Epoch seconds of a fleet timestamp, or ``None`` if it is not one (``fleet.md`` §0.3).

    Only ``YYYY-MM-DDTHH:MM:SSZ`` is accepted, with upstream's (glibc ``strptime``)
    leniencies: 1-2 digit fields, trailing whitespace, a day past the month's end (rolls over,
    ``2026-02-30`` is Mar 2) and seconds up to 61. No fractions, offsets or lower-case ``t``/``z``.
    """
    if not isinstance(value, str):
        return None
    match = _FLEET_TS.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 61):
        return None
    days = _days_from_civil(year, month, 1) + day - 1
    return days * 86400 + hour * 3600 + minute * 60 + second
