"""``parse_ts`` computes what ``calendar`` computed before it stopped importing it."""

from __future__ import annotations

import calendar

from hypothesis import given
from hypothesis import strategies as st

from ops_manager._timefmt import format_ts, parse_ts


def _calendar_parse(year: int, month: int, day: int, hour: int, minute: int, second: int):
    # the implementation parse_ts had, on calendar.monthrange / calendar.timegm
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    if day > calendar.monthrange(year, month)[1] if year >= 1 else True:
        return None
    epoch = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return epoch if epoch >= 0 else None


@given(
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 61),
)
def test_parse_ts_matches_calendar(y: int, m: int, d: int, h: int, mi: int, s: int) -> None:
    value = f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z"
    assert parse_ts(value) == _calendar_parse(y, m, d, h, mi, s)


def test_every_day_around_the_epoch_and_the_leap_rules() -> None:
    for year in (*range(1968, 2110), 2400, 9999):
        for month in range(1, 13):
            for day in range(1, 32):
                value = f"{year:04d}-{month:02d}-{day:02d}T23:59:60Z"
                assert parse_ts(value) == _calendar_parse(year, month, day, 23, 59, 60), value
    assert parse_ts("2000-02-29T00:00:00Z") is not None
    assert parse_ts("1900-02-29T00:00:00Z") is None
    assert parse_ts("1969-12-31T23:59:59Z") is None
    assert parse_ts(format_ts(1_800_000_000)) == 1_800_000_000
