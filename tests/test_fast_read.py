"""The reconcile fold's fast read (``EventReader.tuples``: orjson first) against the reader.

``tuples()`` must accept and reject exactly the lines iterating the reader does, stop at the
same place with the same position, counts and errors, and hand over the same names and
timestamps. Its ``raw`` is fold-grade (orjson reads an integer beyond 64 bits as a float),
except for the last event it yields and the line it is asked to keep exact, which are the
stdlib decoder's. A reconcile through either path writes byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_manager.engine.reconcile import ReconcileSettings, reconcile
from ops_manager.errors import OpsError
from ops_manager.reducers.thresholds import Thresholds
from ops_manager.runtime import EventReader, StreamPosition, _events
from tests.runtime_fixtures import (
    append_raw,
    compact,
    event,
    make_runtime_repo,
    ts,
    write_events_raw,
)

HSETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
LOOP = "demo-loop"


@pytest.fixture(autouse=True)
def fast_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the orjson path for every read, however small (the tests' logs are tiny); the
    property test varies the size of batches()' reads (restored here afterwards)."""
    monkeypatch.setattr(_events, "FAST_MIN_BYTES", 0)
    monkeypatch.setattr(_events, "_BATCH_BYTES", _events._BATCH_BYTES)


def strict(a: Any, b: Any) -> bool:
    """Equal including types (1 != 1.0 != True) and float signs; iterative (deep nesting)."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, dict):
            if list(x) != list(y):
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif isinstance(x, float):
            if repr(x) != repr(y):
                return False
        elif x != y:
            return False
    return True


def _drain(events: Iterator[Any], take: int | None) -> tuple[list[Any], str | None]:
    got: list[Any] = []
    try:
        for item in events:
            got.append(tuple(item))
            if take is not None and len(got) == take:
                events.close()  # type: ignore[attr-defined]
                break
    except OpsError as exc:
        return got, exc.message
    return got, None


def compare(
    path: Path,
    start: StreamPosition,
    max_events: int = 0,
    exact_line: int | None = None,
    take: int | None = None,
    end_offset: int | None = None,
) -> list[tuple[Any, Any]]:
    """Read both ways; assert everything but mid-stream numbers agrees; return raw pairs."""
    slow = EventReader(path, start, max_events, end_offset=end_offset)
    fast = EventReader(path, start, max_events, end_offset=end_offset)
    want, want_err = _drain(iter(slow), take)
    got, got_err = _drain(fast.tuples(exact_line), take)
    assert got_err == want_err
    assert [(g[0], g[2], g[3]) for g in got] == [(w[0], w[2], w[3]) for w in want]
    for attr in ("position", "events_emitted", "total_lines", "torn_tail_bytes"):
        assert getattr(fast, attr) == getattr(slow, attr), attr
    if got and take is None:
        assert strict(got[-1][1], want[-1][1])  # the last event leaves the fold: exact
    for g, w in zip(got, want, strict=True):
        if g[0] == exact_line:
            assert strict(g[1], w[1])
    if take is None:
        # batches(): the same tuples, raws, position, counts and error, a list at a time
        batched = EventReader(path, start, max_events, end_offset=end_offset)
        lists: list[Any] = []
        flat, flat_err = _drain(_flatten(batched.batches(exact_line), lists), None)
        assert flat_err == got_err
        assert all(lists), "no empty list is handed over"
        assert [(f[0], f[2], f[3]) for f in flat] == [(g[0], g[2], g[3]) for g in got]
        assert all(strict(f[1], g[1]) for f, g in zip(flat, got, strict=True))
        for attr in ("position", "events_emitted", "total_lines", "torn_tail_bytes"):
            assert getattr(batched, attr) == getattr(slow, attr), attr
    return [(g[1], w[1]) for g, w in zip(got, want, strict=True)]


def _flatten(batches: Iterator[list[Any]], seen: list[Any]) -> Iterator[Any]:
    for batch in batches:
        seen.append(batch)
        yield from batch


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(data)
    return path


def _line(i: int, **extra: Any) -> bytes:
    return compact(event("role_end", ts(i), iteration=i, data=extra or None)).encode()


ODD_VALUES = [
    "2**70",
    "-9223372036854775809",
    "18446744073709551616",
    "18446744073709551615",
    "1e400",
    "-1e400",
    "1e-400",
    "-0",
    "-0.0",
    "0.1000000000000000055511151231257827021181583404541015625",
    '"\\ud800"',
    '"\\udc00x"',
    '"\\ud83d\\ude00"',
    '"\\u0000"',
    "NaN",
    "Infinity",
    "-Infinity",
    "1" + "0" * 5000,
    "[" * 990 + "]" * 990,
    "[" * 1020 + "]" * 1020,
    "[" * 300 + "]" * 300,
    '"\xe9"',
]


def _odd_line(i: int, value: str) -> bytes:
    if value == "2**70":
        value = str(2**70)
    head = compact(event("role_end", ts(i), iteration=i))[:-1]
    return f'{head},"odd":{value}}}'.encode()


def test_odd_values_are_decided_as_by_the_stdlib_decoder(tmp_path: Path) -> None:
    for value in ODD_VALUES:
        data = _line(1) + b"\n" + _odd_line(2, value) + b"\n" + _line(3) + b"\n"
        compare(_write(tmp_path, data), StreamPosition())
        # and as the last line, whose raw must be exact
        compare(_write(tmp_path, _line(1) + b"\n" + _odd_line(2, value) + b"\n"), StreamPosition())


def test_nan_and_too_many_digits_are_still_invalid(tmp_path: Path) -> None:
    for value in ("NaN", "1" + "0" * 5000, "[" * 2000 + "]" * 2000):
        path = _write(tmp_path, _line(1) + b"\n" + _odd_line(2, value) + b"\n")
        with pytest.raises(OpsError, match="invalid JSON event at line 2 in "):
            list(EventReader(path, StreamPosition()).tuples())


def test_big_integer_is_exact_where_it_leaves_the_fold(tmp_path: Path) -> None:
    data = b"".join(_line(i, n=2**70) + b"\n" for i in (1, 2, 3))
    path = _write(tmp_path, data)
    pairs = compare(path, StreamPosition(), exact_line=2)
    fast = [p[0]["data"]["n"] for p in pairs]
    # line 1 went through orjson (fold-grade: a float), line 2 was asked for, line 3 is last
    assert fast == [float(2**70), 2**70, 2**70]
    assert [type(v) for v in fast] == [float, int, int]


def test_lone_surrogate_and_non_ascii_strings_are_exact(tmp_path: Path) -> None:
    data = _odd_line(1, '"\\ud800"') + b"\n" + _odd_line(2, '"café"') + b"\n" + _line(3)
    pairs = compare(_write(tmp_path, data + b"\n"), StreamPosition())
    assert pairs[0][0]["odd"] == "\ud800"
    assert pairs[1][0]["odd"] == "café"


# --- properties ----------------------------------------------------------------------------

_value = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.none(),
    st.booleans(),
)
_json_event = st.builds(
    lambda name, i, data, run: compact(event(name, ts(i), iteration=i, run_id=run, data=data)),
    st.sampled_from(["loop_start", "role_end", "loop_stop", "tests_end"]),
    st.integers(0, 10_000),
    st.none() | st.dictionaries(st.text(max_size=4), _value, max_size=4),
    st.sampled_from(["run-a", "run-b", None]),
).map(str.encode)
_line_st = st.one_of(
    _json_event,
    _json_event,
    st.sampled_from([_odd_line(7, v) for v in ODD_VALUES]),
    st.sampled_from(
        [b"", b"  ", b"\t\r", b"{}", b"[]", b"null", b"NaN", b'{"event":"x"}', b"\xc3\x28"]
    ),
    st.sampled_from(
        [
            b'{"timestamp":"t","event":null,"type":"x"}',
            b'{"timestamp":"t","event":false,"type":""}',
            b'{"timestamp":"t","event":["a"]}',
            b'{"timestamp":"t","event":{"a":1}}',
            b'{"timestamp":"t","event":true}',
            b'{"timestamp":"","event":"x"}',
            b'\xef\xbb\xbf{"timestamp":"t","event":"x"}',
            b'{"timestamp":"t","event":"x","event":"y"}',
        ]
    ),
    st.binary(max_size=30),
)


@HSETTINGS
@given(
    lines=st.lists(_line_st, max_size=20),
    tail=st.sampled_from([b"", b'{"timestamp":"2026', b"garbage"]),
    max_events=st.sampled_from([0, 0, 1, 2, 5]),
    skip=st.integers(0, 6),
    exact_line=st.none() | st.integers(1, 12),
    take=st.none() | st.integers(1, 4),
    batch_bytes=st.sampled_from([1, 40, 120, 1 << 18]),
    cut=st.none() | st.integers(0, 60),
)
def test_property_fast_read_agrees_with_the_reader(
    tmp_path: Path,
    lines: list[bytes],
    tail: bytes,
    max_events: int,
    skip: int,
    exact_line: int | None,
    take: int | None,
    batch_bytes: int,
    cut: int | None,
) -> None:
    data = b"".join(line + b"\n" for line in lines) + tail
    path = _write(tmp_path, data)
    # batches() reads this many bytes at a time (whole lines): 1 = a line per list
    _events._BATCH_BYTES = batch_bytes
    # a size sampled before the last `cut` bytes were appended (the range ends mid-read)
    end_offset = None if cut is None else max(0, len(data) - cut)
    start = StreamPosition()
    if skip:
        # resume after a few good events, as an incremental pass does
        first = EventReader(path, StreamPosition(), skip)
        try:
            for _ in first:
                pass
        except OpsError:
            pass
        start = first.position
    if end_offset is not None and end_offset < start.byte_offset:
        end_offset = None
    pairs = compare(path, start, max_events, exact_line, take, end_offset)
    for got, want in pairs:
        text = json.dumps(want)
        if not re.search(r"\d{19}", text):
            # only integers beyond 64 bits may differ mid-stream
            assert strict(got, want)


# --- a whole reconcile pass ----------------------------------------------------------------


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def ascii_json(obj: Any) -> str:
    """Compact JSON with ``\\u`` escapes (a lone surrogate cannot be written as UTF-8)."""
    return json.dumps(obj, separators=(",", ":"))


def _reconcile(repo: Path, **kw: Any) -> None:
    quiet = Thresholds(
        profile="balanced", degraded_ingest_lag_seconds=10**9, critical_ingest_lag_seconds=10**9
    )
    result = reconcile(
        ReconcileSettings(repo=repo, loop_id=LOOP, trace_id="t-fast", thresholds=quiet, **kw),
        clock=lambda: 1_900_000_000,
    )
    assert result.ok, result.failure_message


def test_reconcile_writes_the_same_bytes_either_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = {"n": 2**70, "m": -(2**65), "f": 1e300}
    # a lone surrogate mid-stream (the last event with one: the test below)
    odd = {**big, "s": "\ud800"}
    lines = [
        ascii_json(event("loop_start", ts(1), iteration=1)),
        ascii_json(event("role_end", ts(2), iteration=1, data=odd)),
        "",
        ascii_json(event("role_end", ts(3), iteration=1, run_id="run-456", data=big)),
        ascii_json(event("iteration_end", ts(4), iteration=1, run_id="run-456", data=big)),
    ]
    data = "\n".join(lines).encode() + b"\n"
    trees = {}
    repo = (tmp_path / "repo").resolve()
    ops = repo / ".superloop" / "ops-manager"
    for label, threshold in (("fast", 0), ("exact", 1 << 62)):
        # the same path both times: the files record the repo path
        shutil.rmtree(repo, ignore_errors=True)
        monkeypatch.setattr(_events, "FAST_MIN_BYTES", threshold)
        make_runtime_repo(repo, LOOP, events=[])
        write_events_raw(repo, LOOP, data)
        _reconcile(repo, max_events=3)  # lines 1, 2 and 4
        # a replay from the start fingerprints the previously last event (line 4, mid-read)
        _reconcile(repo, from_start=True)
        _reconcile(repo, from_start=True)  # line 5, the last
        _reconcile(repo)
        trees[label] = _tree(ops)
        if label == "fast":
            stream = json.loads((ops / LOOP / "stream-state.json").read_text())
            sequence = json.loads((ops / LOOP / "sequence-state.json").read_text())
    assert trees["fast"] == trees["exact"]
    assert stream["fold"]["runIdChanges"] == 1
    assert stream["fold"]["eventCount"] == 4
    assert sequence["violations"] == []  # the replays found the same log, not a rewrite


def test_a_lone_surrogate_in_the_last_event_is_written_as_its_json_escape(
    tmp_path: Path,
) -> None:
    """A runtime may write ``"\\ud800"`` (valid JSON, not encodable as UTF-8). The pass used
    to crash writing state.json; it now writes the character as the same JSON escape, so the
    projection reads back to exactly what the runtime wrote, and the next pass goes on."""
    repo = (tmp_path / "repo").resolve()
    make_runtime_repo(repo, events=[])
    last = event("role_end", ts(2), iteration=1, data={"s": "x\ud800y"})
    write_events_raw(
        repo,
        LOOP,
        (ascii_json(event("loop_start", ts(1), iteration=1)) + "\n").encode()
        + (ascii_json(last) + "\n").encode(),
    )
    _reconcile(repo)
    ops = repo / ".superloop" / "ops-manager" / LOOP
    state = (ops / "state.json").read_bytes()
    assert b"\\ud800" in state
    envelope = json.loads(state)["evidence"]["lastEventEnvelope"]["event"]
    assert envelope["raw"]["data"]["s"] == envelope["payload"]["s"] == "x\ud800y"
    append_raw(repo, LOOP, (ascii_json(event("role_end", ts(3), iteration=1)) + "\n").encode())
    _reconcile(repo)
    assert json.loads((ops / "stream-state.json").read_bytes())["fold"]["eventCount"] == 3


@pytest.mark.parametrize("batch_bytes", [1, 100, 250, 1000, 1 << 18])
def test_batches_stop_at_max_events_across_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_bytes: int
) -> None:
    """batches() with reads of a few lines each: every limit stops at the same event, with
    the same position and counts, as the reader does (the limit falls inside a read, at its
    end, and after events held from earlier reads)."""
    monkeypatch.setattr(_events, "_BATCH_BYTES", batch_bytes)
    lines = [_line(i) for i in range(1, 25)]
    lines[9] = b"   "  # a blank line counts as a line, not an event
    path = _write(tmp_path, b"".join(line + b"\n" for line in lines) + b'{"torn')
    for max_events in range(0, 26):
        for exact_line in (None, 3, 17):
            compare(path, StreamPosition(), max_events, exact_line)
    # an error after the limit is not looked at; one before it is raised after the events
    bad = [*lines[:12], b"{not json", *lines[12:]]
    path = _write(tmp_path, b"".join(line + b"\n" for line in bad))
    for max_events in (0, 5, 11, 12, 13):
        compare(path, StreamPosition(), max_events)
