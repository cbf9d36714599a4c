"""The incremental events.jsonl reader: positions, torn tails, errors, and batch invariance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_manager.errors import OpsError
from ops_manager.runtime import (
    EventLine,
    EventReader,
    StreamPosition,
    count_newlines,
    position_for_line_offset,
    verify_position,
)
from tests.runtime_fixtures import compact, event, events_bytes, realistic_run_events, ts

HSETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _write(tmp_path: Path, data: bytes, name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read_all(path: Path, start: StreamPosition | None = None, max_events: int = 0):
    reader = EventReader(path, start or StreamPosition(), max_events)
    events = list(reader)
    return reader, events


def _ev(i: int) -> dict:
    return event("role_end", ts(i), iteration=i, role="tester", data={"n": i})


# --- basic reading ----------------------------------------------------------------------


def test_reads_every_event_with_line_numbers(tmp_path: Path) -> None:
    evs = realistic_run_events(outcome="complete")
    path = _write(tmp_path, events_bytes(evs))
    reader, got = _read_all(path)
    assert [e.raw for e in got] == evs
    assert [e.line for e in got] == list(range(1, len(evs) + 1))
    assert [e.name for e in got] == [e["event"] for e in evs]
    assert [e.timestamp for e in got] == [e["timestamp"] for e in evs]
    assert reader.events_emitted == len(evs)
    assert reader.total_lines == len(evs)
    assert reader.torn_tail_bytes == 0
    assert reader.position.byte_offset == path.stat().st_size
    assert reader.position.line_offset == len(evs)
    last_line = (compact(evs[-1]) + "\n").encode()
    assert reader.position.last_line_sha256 == hashlib.sha256(last_line).hexdigest()
    assert reader.position.last_line_bytes == len(last_line)


def test_event_line_unpacks_like_the_stream_fold_tuple(tmp_path: Path) -> None:
    path = _write(tmp_path, events_bytes([_ev(1)]))
    (ev,) = list(EventReader(path, StreamPosition()))
    line, raw, name, timestamp = ev
    assert (line, name, timestamp) == (1, "role_end", ts(1))
    assert raw is ev.raw


def test_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, b"")
    reader, got = _read_all(path)
    assert got == []
    assert reader.position == StreamPosition()
    assert (reader.total_lines, reader.torn_tail_bytes, reader.events_emitted) == (0, 0, 0)


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    data = (
        b"\n" + (compact(_ev(1)) + "\n").encode() + b"  \t\n\n" + (compact(_ev(2)) + "\n").encode()
    )
    data += b"\n\n"
    path = _write(tmp_path, data)
    reader, got = _read_all(path)
    assert [e.line for e in got] == [2, 5]
    assert reader.total_lines == 7
    # trailing blank lines are not consumed: the position stays at the last emitted event
    assert reader.position.line_offset == 5
    assert reader.position.byte_offset == len(data) - 2


def test_type_is_accepted_as_the_event_name(tmp_path: Path) -> None:
    lines = [
        {"timestamp": ts(1), "type": "legacy_event"},
        {"timestamp": ts(2), "event": None, "type": "from_type"},
        {"timestamp": ts(3), "event": False, "type": "false_skipped"},
    ]
    path = _write(tmp_path, events_bytes(lines))
    assert [e.name for e in EventReader(path, StreamPosition())] == [
        "legacy_event",
        "from_type",
        "false_skipped",
    ]


def test_torn_tail_is_never_parsed_counted_or_consumed(tmp_path: Path) -> None:
    complete = events_bytes([_ev(1), _ev(2)])
    torn = b'{"timestamp":"2026-02-22T10:00:09Z","event":"role_st'
    path = _write(tmp_path, complete + torn)
    reader, got = _read_all(path)
    assert [e.line for e in got] == [1, 2]
    assert reader.total_lines == 2
    assert reader.torn_tail_bytes == len(torn)
    assert reader.position.byte_offset == len(complete)
    # once the runtime finishes the line, the next read picks it up as line 3
    with open(path, "ab") as handle:
        handle.write(b'art","iteration":1}\n')
    reader2, got2 = _read_all(path, reader.position)
    assert [(e.line, e.name) for e in got2] == [(3, "role_start")]
    assert reader2.total_lines == 3 and reader2.torn_tail_bytes == 0


def test_garbage_torn_tail_is_not_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, events_bytes([_ev(1)]) + b"{not json at all")
    reader, got = _read_all(path)
    assert len(got) == 1 and reader.torn_tail_bytes == len(b"{not json at all")


def test_single_unterminated_line_yields_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path, compact(_ev(1)).encode())
    reader, got = _read_all(path)
    assert got == [] and reader.total_lines == 0 and reader.position == StreamPosition()


def test_max_events_stops_and_still_counts_every_line(tmp_path: Path) -> None:
    evs = [_ev(i) for i in range(1, 11)]
    path = _write(tmp_path, events_bytes(evs) + b"\n" + b'{"torn":')
    reader, got = _read_all(path, max_events=3)
    assert [e.line for e in got] == [1, 2, 3]
    assert reader.events_emitted == 3
    assert reader.total_lines == 11
    assert reader.torn_tail_bytes == len(b'{"torn":')
    assert reader.position.line_offset == 3


def test_resume_from_position_equals_reading_all(tmp_path: Path) -> None:
    evs = realistic_run_events(outcome="max_iterations", iterations=3)
    path = _write(tmp_path, events_bytes(evs))
    _, full = _read_all(path)
    pos = StreamPosition()
    batches: list[EventLine] = []
    while True:
        reader, got = _read_all(path, pos, max_events=4)
        if not got:
            break
        batches += got
        pos = reader.position
        assert verify_position(path, pos) is None
    assert batches == full


def test_end_offset_bounds_the_read(tmp_path: Path) -> None:
    data = events_bytes([_ev(1), _ev(2), _ev(3)])
    path = _write(tmp_path, data)
    cut = len(events_bytes([_ev(1), _ev(2)])) + 5  # inside line 3
    reader = EventReader(path, StreamPosition(), end_offset=cut)
    assert [e.line for e in reader] == [1, 2]
    assert reader.total_lines == 2
    assert reader.torn_tail_bytes == 5


def test_consumer_abandoning_the_iteration_keeps_position_truthful(tmp_path: Path) -> None:
    path = _write(tmp_path, events_bytes([_ev(1), _ev(2), _ev(3)]))
    reader = EventReader(path, StreamPosition())
    it = iter(reader)
    next(it)
    next(it)
    it.close()  # type: ignore[attr-defined]
    assert reader.position.line_offset == 2
    assert reader.events_emitted == 2


def test_reading_past_a_shrunken_file_yields_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path, events_bytes([_ev(1)]))
    start = StreamPosition(byte_offset=10_000, line_offset=50)
    reader, got = _read_all(path, start)
    assert got == [] and reader.position == start and reader.total_lines == 50


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json}", "invalid JSON event at line 2 in {path}"),
        (b"[1,2]", "invalid JSON event at line 2 in {path}"),
        (b'"just a string"', "invalid JSON event at line 2 in {path}"),
        (b'{"timestamp":"t","event":NaN}', "invalid JSON event at line 2 in {path}"),
        (b'{"timestamp":"t","event":"x","v":Infinity}', "invalid JSON event at line 2 in {path}"),
        (b"\xff\xfe{}", "invalid JSON event at line 2 in {path}"),
        (b"[" * 100_000, "invalid JSON event at line 2 in {path}"),
        (b'{"timestamp":"t"}', "missing event name at line 2 in {path}"),
        (b'{"timestamp":"t","event":""}', "missing event name at line 2 in {path}"),
        (b'{"timestamp":"t","event":5}', "missing event name at line 2 in {path}"),
        (b'{"timestamp":"t","event":false,"type":""}', "missing event name at line 2 in {path}"),
        (b'{"event":"x"}', "missing event timestamp at line 2 in {path}"),
        (b'{"event":"x","timestamp":""}', "missing event timestamp at line 2 in {path}"),
        (b'{"event":"x","timestamp":17}', "missing event timestamp at line 2 in {path}"),
    ],
)
def test_bad_lines_raise_with_line_number_and_absolute_path(
    tmp_path: Path, line: bytes, message: str
) -> None:
    path = _write(tmp_path, events_bytes([_ev(1)]) + line + b"\n" + events_bytes([_ev(3)]))
    reader = EventReader(path, StreamPosition())
    seen: list[int] = []
    with pytest.raises(OpsError) as info:
        for ev in reader:
            seen.append(ev.line)
    assert info.value.message == message.format(path=path.resolve())
    assert seen == [1]  # the good line before the bad one was emitted
    assert reader.position.line_offset == 1


def test_line_numbers_in_errors_count_from_the_resume_point(tmp_path: Path) -> None:
    good = events_bytes([_ev(1), _ev(2)])
    path = _write(tmp_path, good + b"\n" + b"oops\n")
    pos = position_for_line_offset(path, 2)
    with pytest.raises(OpsError, match=r"invalid JSON event at line 4 in "):
        list(EventReader(path, pos))


def test_relative_path_is_reported_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, b"bad\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OpsError) as info:
        list(EventReader(Path("events.jsonl"), StreamPosition()))
    assert (
        info.value.message == f"invalid JSON event at line 1 in {tmp_path.resolve()}/events.jsonl"
    )


def test_missing_file_is_the_contract_error(tmp_path: Path) -> None:
    with pytest.raises(OpsError, match="required artifact missing: "):
        list(EventReader(tmp_path / "nope.jsonl", StreamPosition()))


# --- positions -----------------------------------------------------------------------------


def test_position_json_round_trip_and_tolerance() -> None:
    pos = StreamPosition(120, 3, "a" * 64, 40)
    assert pos.to_json() == {
        "byteOffset": 120,
        "lineOffset": 3,
        "lastLineSha256": "a" * 64,
        "lastLineBytes": 40,
    }
    assert StreamPosition.from_json(pos.to_json()) == pos
    assert StreamPosition.from_json(StreamPosition().to_json()) == StreamPosition()
    assert StreamPosition.from_json({"byteOffset": 10, "lineOffset": 2}) == StreamPosition(10, 2)
    for bad in (
        None,
        [],
        "x",
        {},
        {"byteOffset": -1, "lineOffset": 0},
        {"byteOffset": 0, "lineOffset": 3},
        {"byteOffset": 10, "lineOffset": 0},
        {"byteOffset": 2, "lineOffset": 5},
        {"byteOffset": 10, "lineOffset": 1, "lastLineSha256": "XYZ", "lastLineBytes": 3},
        {"byteOffset": 10, "lineOffset": 1, "lastLineSha256": "a" * 64, "lastLineBytes": 0},
        {"byteOffset": 10, "lineOffset": 1, "lastLineSha256": "a" * 64, "lastLineBytes": 11},
        {"byteOffset": True, "lineOffset": 1},
    ):
        assert StreamPosition.from_json(bad) is None, bad


def test_position_for_line_offset_matches_the_reader(tmp_path: Path) -> None:
    evs = [_ev(i) for i in range(1, 8)]
    path = _write(tmp_path, events_bytes(evs[:3]) + b"\n" + events_bytes(evs[3:]))
    # lines 1-3 events, line 4 blank, lines 5-8 events
    for batch, line in ((1, 1), (2, 2), (3, 3), (4, 5), (7, 8)):
        reader, _ = _read_all(path, max_events=batch)
        assert reader.position.line_offset == line
        assert position_for_line_offset(path, line) == reader.position
    assert position_for_line_offset(path, 0) == StreamPosition()
    pos4 = position_for_line_offset(path, 4)  # the blank line
    assert pos4.last_line_bytes == 1 and verify_position(path, pos4) is None
    assert position_for_line_offset(path, 8).byte_offset == path.stat().st_size


def test_position_for_line_offset_beyond_complete_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, events_bytes([_ev(1), _ev(2)]) + b'{"torn"')
    with pytest.raises(OpsError) as info:
        position_for_line_offset(path, 3)
    assert info.value.message == (
        "cursor offset (3) exceeds available events (2); reset cursor or use --from-start"
    )


def test_position_for_line_offset_across_chunk_boundaries(tmp_path: Path) -> None:
    # lines long enough that the 1 MiB scan chunks split them
    evs = [event("role_end", ts(i), data={"pad": "x" * 300_000}) for i in range(8)]
    path = _write(tmp_path, events_bytes(evs))
    reader = EventReader(path, StreamPosition(), max_events=6)
    list(reader)
    assert position_for_line_offset(path, 6) == reader.position


def test_verify_position_detects_truncation_and_rewrite(tmp_path: Path) -> None:
    evs = [_ev(i) for i in range(1, 6)]
    path = _write(tmp_path, events_bytes(evs))
    reader, _ = _read_all(path, max_events=3)
    pos = reader.position
    assert verify_position(path, pos) is None
    assert verify_position(path, StreamPosition()) is None
    # appending keeps the prefix valid
    with open(path, "ab") as handle:
        handle.write(events_bytes([_ev(6)]))
    assert verify_position(path, pos) is None
    # truncation
    _write(tmp_path, events_bytes(evs[:2]))
    assert verify_position(path, pos) == "truncated"
    # same length, different content at the fingerprinted line
    other = [*evs[:2], _ev(9), *evs[3:]]
    _write(tmp_path, events_bytes(other))
    assert len(events_bytes(other)) == len(events_bytes(evs))
    assert verify_position(path, pos) == "rewritten"
    # same line content, shifted: the offset now lands inside another line
    _write(tmp_path, b"x" + events_bytes(evs))
    assert verify_position(path, pos) == "rewritten"
    assert verify_position(tmp_path / "gone.jsonl", pos) == "truncated"


def test_verify_position_without_fingerprint_checks_line_boundary(tmp_path: Path) -> None:
    data = events_bytes([_ev(1), _ev(2)])
    path = _write(tmp_path, data)
    first = len(events_bytes([_ev(1)]))
    assert verify_position(path, StreamPosition(first, 1)) is None
    assert verify_position(path, StreamPosition(first - 3, 1)) == "rewritten"


def test_count_newlines(tmp_path: Path) -> None:
    path = _write(tmp_path, b"a\n\nb\nc")
    assert count_newlines(path) == 3
    assert count_newlines(path, 2) == 2
    assert count_newlines(path, 0, 2) == 1


# --- properties ----------------------------------------------------------------------------

_names = st.sampled_from(["loop_start", "iteration_start", "role_end", "tests_end", "loop_stop"])
_event_obj = st.builds(
    lambda name, i, data: event(name, ts(i), iteration=i, data=data),
    _names,
    st.integers(0, 10_000),
    st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8)),
)
_line = st.one_of(
    _event_obj.map(lambda e: compact(e).encode()),
    st.sampled_from([b"", b"  ", b"\t", b"\r"]),
)


@HSETTINGS
@given(
    lines=st.lists(_line, max_size=25),
    tail=st.sampled_from([b"", b'{"timestamp":"2026', b"garbage"]),
    splits=st.lists(st.integers(1, 6), min_size=1, max_size=10),
)
def test_property_batches_equal_one_full_read(
    tmp_path: Path, lines: list[bytes], tail: bytes, splits: list[int]
) -> None:
    data = b"".join(line + b"\n" for line in lines) + tail
    path = _write(tmp_path, data)
    full_reader, full = _read_all(path)
    got: list[EventLine] = []
    pos = StreamPosition()
    i = 0
    while True:
        reader, batch = _read_all(path, pos, max_events=splits[i % len(splits)])
        i += 1
        assert reader.total_lines == full_reader.total_lines
        assert reader.torn_tail_bytes == len(tail)
        if not batch:
            break
        assert verify_position(path, reader.position) is None
        assert StreamPosition.from_json(json.loads(json.dumps(reader.position.to_json()))) == (
            reader.position
        )
        got += batch
        pos = reader.position
    assert got == full
    assert pos == (full_reader.position if full else StreamPosition())
    if full:
        assert position_for_line_offset(path, pos.line_offset) == pos


_mixed_line = st.one_of(
    _line,
    st.binary(max_size=40),
    st.sampled_from(
        [b"{}", b"[]", b"null", b"NaN", b'{"event":"x"}', b'{"timestamp":"t"}', b"\xc3\x28"]
    ),
)


@HSETTINGS
@given(data=st.binary(max_size=400))
def test_property_arbitrary_bytes_raise_only_ops_error(tmp_path: Path, data: bytes) -> None:
    path = _write(tmp_path, data)
    reader = EventReader(path, StreamPosition())
    try:
        for _ in reader:
            pass
    except OpsError:
        return
    assert reader.total_lines == data.count(b"\n")


@HSETTINGS
@given(lines=st.lists(_mixed_line, max_size=20), terminated=st.booleans())
def test_property_mixed_lines_raise_only_ops_error(
    tmp_path: Path, lines: list[bytes], terminated: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if terminated and lines else b"")
    path = _write(tmp_path, data)
    for max_events in (0, 2):
        reader = EventReader(path, StreamPosition(), max_events)
        try:
            list(reader)
        except OpsError as exc:
            assert " at line " in exc.message
            continue
        assert reader.total_lines == data.count(b"\n")


@HSETTINGS
@given(
    data=st.lists(
        st.sampled_from([b"\n", b" \n", b'{"event":"e","timestamp":"t"}\n', b"{"]), max_size=30
    ),
    max_events=st.integers(0, 4),
)
def test_property_total_lines_is_the_newline_count(
    tmp_path: Path, data: list[bytes], max_events: int
) -> None:
    blob = b"".join(data)
    path = _write(tmp_path, blob)
    reader = EventReader(path, StreamPosition(), max_events)
    try:
        list(reader)
    except OpsError:
        return  # a "{" in the middle became part of a bad complete line
    assert reader.total_lines == blob.count(b"\n")
    assert reader.torn_tail_bytes == len(blob) - (blob.rfind(b"\n") + 1)
