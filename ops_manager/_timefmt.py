"""UTC timestamps in the contract's one format, ``YYYY-MM-DDTHH:MM:SSZ``, and the clock.

:func:`format_ts` and :func:`parse_ts` are pure and live in :mod:`ops_manager.model._time`
(re-exported here, the same objects). :func:`utc_now_epoch` reads the clock, so it stays here
on the shell side: reducers never read the clock; the shell calls it once and passes the
value in.
"""

from __future__ import annotations

import time

from ops_manager.model._time import format_ts, parse_ts

__all__ = ["format_ts", "parse_ts", "utc_now_epoch"]


def utc_now_epoch() -> int:
    """The current time in whole epoch seconds (shell only; never call from a reducer)."""
    return int(time.time())
