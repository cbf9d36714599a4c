"""UTC timestamps in the contract's one format, ``YYYY-MM-DDTHH:MM:SSZ``: formatting and
parsing only, pure, so the reducers may use them.

Reducers never read the clock: the shell calls :func:`ops_manager._timefmt.utc_now_epoch`
once and passes the value in. That function stays in ``_timefmt`` (which re-exports these
two), outside the model layer the reducers import.
"""

from __future__ import annotations

import re
import time

_TS = re.compile(r"^(\d{1,4})-(\d{1,2})-(\d{1,2})T(\d{1,2}):(\d{1,2}):(\d{1,2})Z$")


def format_ts(epoch: int) -> str:
    """Format whole epoch seconds as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def parse_ts(value: object) -> int | None:
    """Parse a contract timestamp into epoch seconds, or ``None`` if it does not parse.

    Like jq ``fromdateiso8601``: only ``%Y-%m-%dT%H:%M:%SZ`` (zero padding optional); no
    fractions, no offsets. Pre-1970 values count as unparseable.
    """
    if not isinstance(value, str):
        return None
    match = _TS.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    if year < 1 or day > _days_in_month(year, month):
        return None
    epoch = (_days_from_epoch(year, month, day) * 24 + hour) * 3600 + minute * 60 + second
    return epoch if epoch >= 0 else None


# calendar.monthrange / calendar.timegm by hand: importing calendar (and the datetime it
# pulls in) cost every CLI process about 2.5 ms. Proleptic Gregorian, as calendar's.
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DAYS_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
#: days from 0001-01-01 to 1970-01-01
_EPOCH_DAYS = 719162


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in_month(year: int, month: int) -> int:
    return 29 if month == 2 and _is_leap(year) else _MONTH_DAYS[month - 1]


def _days_from_epoch(year: int, month: int, day: int) -> int:
    y = year - 1
    days = y * 365 + y // 4 - y // 100 + y // 400 + _DAYS_BEFORE_MONTH[month - 1] + day - 1
    if month > 2 and _is_leap(year):
        days += 1
    return days - _EPOCH_DAYS
