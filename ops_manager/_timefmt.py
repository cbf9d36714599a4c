"""UTC timestamps in the contract's one format, ``YYYY-MM-DDTHH:MM:SSZ``.

Reducers never read the clock: the shell calls :func:`utc_now_epoch` once and passes the
value in.
"""

from __future__ import annotations

import calendar
import re
import time

_TS = re.compile(r"^(\d{1,4})-(\d{1,2})-(\d{1,2})T(\d{1,2}):(\d{1,2}):(\d{1,2})Z$")


def format_ts(epoch: int) -> str:
    """Format whole epoch seconds as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def utc_now_epoch() -> int:
    """The current time in whole epoch seconds (shell only; never call from a reducer)."""
    return int(time.time())


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
    if day > calendar.monthrange(year, month)[1] if year >= 1 else True:
        return None
    epoch = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return epoch if epoch >= 0 else None
