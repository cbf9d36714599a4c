"""``store.Stream``: typed results of a position check, resuming, tails."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager.store import (
    Intact,
    Position,
    Read,
    Rewritten,
    Rotated,
    Stream,
    Truncated,
)


def _rows(n: int) -> list[dict[str, object]]:
    return [{"event": "e", "timestamp": "2026-01-01T00:00:00Z", "i": i} for i in range(n)]


def _read(stream: Stream, position: Position) -> Read:
    found = stream.read_from(position)
    assert isinstance(found, Read), found
    return found


def test_growth_and_partial_last_line(tmp_path: Path) -> None:
    stream = Stream(tmp_path / "s.jsonl")
    stream.append(_rows(2))
    first = _read(stream, Position())
    assert [json.loads(line)["i"] for line in first.lines] == [0, 1]
    end = first.position_after(2)
    assert end.line_offset == 2 and end.byte_offset == stream.size()
    stream.append(_rows(1))
    with open(stream.path, "ab") as handle:
        handle.write(b'{"i": 9')  # a write in progress
    more = _read(stream, end)
    assert [json.loads(line)["i"] for line in more.lines] == [0]
    assert more.torn_tail_bytes == len(b'{"i": 9')
    assert isinstance(stream.check(end), Intact)


def test_truncation_rewrite_and_rotation_are_typed(tmp_path: Path) -> None:
    stream = Stream(tmp_path / "s.jsonl")
    stream.append(_rows(3))
    pos = _read(stream, Position()).position_after(3)
    data = stream.path.read_bytes()
    # truncated in place
    stream.path.write_bytes(data[:-5])
    assert stream.check(pos) == Truncated(len(data) - 5)
    assert stream.check(pos).reason == "truncated"
    # rewritten in place: same size, other bytes in the fingerprinted line
    stream.path.write_bytes(data.replace(b'"i":2', b'"i":7'))
    assert isinstance(stream.read_from(pos), Rewritten)
    # rotated: another file at the path (same length, other bytes)
    other = tmp_path / "new.jsonl"
    other.write_bytes(data.replace(b'"i":2', b'"i":8'))
    os.replace(other, stream.path)
    assert stream.check(pos) == Rotated(len(data), "rewritten")
    # a position read from JSON has no inode: the same file is a rewrite to it
    assert isinstance(stream.check(Position.from_json(pos.to_json()) or pos), Rewritten)
    stream.path.unlink()
    assert stream.check(pos) == Truncated(0)
    assert isinstance(stream.check(Position()), Intact)


def test_position_at_line_matches_the_read(tmp_path: Path) -> None:
    stream = Stream(tmp_path / "s.jsonl")
    stream.append(_rows(5))
    read = _read(stream, Position())
    for k in range(6):
        assert stream.position_at_line(k) == read.position_after(k)
    assert stream.position_at_line(6) is None


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=6))),
    blanks=st.sets(st.integers(0, 20)),
    split=st.integers(0, 30),
)
def test_read_from_p_then_on_equals_reading_all(
    tmp_path_factory: object, rows: list[dict[str, object]], blanks: set[int], split: int
) -> None:
    path = Path(str(tmp_path_factory.mktemp("p"))) / "s.jsonl"  # type: ignore[attr-defined]
    stream = Stream(path)
    path.write_bytes(b"")
    for i, row in enumerate(rows):
        stream.append([row])
        if i in blanks:
            with open(path, "ab") as handle:
                handle.write(b"  \n")
    whole = _read(stream, Position())
    k = min(split, len(whole.lines))
    rest = _read(stream, whole.position_after(k))
    assert whole.lines[:k] + rest.lines == whole.lines
    assert rest.position_after(len(rest.lines)) == whole.position_after(len(whole.lines))
    naive = path.read_bytes().split(b"\n")[:-1]
    assert whole.lines == naive
    for n in (0, 1, 3, len(naive) + 1):
        assert stream.tail(n) == (naive[-n:] if n else [])
    nonblank = [line for line in naive if line.strip()]
    assert stream.last() == (nonblank[-1] if nonblank else None)


def test_append_bytes_with_size_before_is_idempotent(tmp_path: Path) -> None:
    stream = Stream(tmp_path / "s.jsonl")
    stream.append(_rows(1))
    before = stream.size()
    data = b'{"a":1}\n{"a":2}\n'
    stream.append_bytes(data[:5], before)  # a kill mid-append
    stream.append_bytes(data, before)
    stream.append_bytes(data, before)  # applied again after a crash: left alone
    assert stream.path.read_bytes().endswith(b"}\n" + data)
    assert len(stream.path.read_bytes().split(b"\n")) == 4


def test_read_after_line_uses_a_good_hint_and_rescans_a_bad_one(tmp_path: Path) -> None:
    stream = Stream(tmp_path / "s.jsonl")
    stream.append(_rows(4))
    whole = _read(stream, Position())
    hint = whole.position_after(2)
    after = stream.read_after_line(2, hint)
    assert isinstance(after, Read) and after.start == hint and after.lines == whole.lines[2:]
    # a hint at another line, without a fingerprint, or no longer matching: one rescan,
    # which finds the same line boundary
    for bad in (
        whole.position_after(1),
        Position(hint.byte_offset, 2),
        attrs.evolve(hint, last_line_sha256="0" * 64),
        None,
    ):
        again = stream.read_after_line(2, bad)
        assert isinstance(again, Read) and again.start == hint and again.lines == after.lines
    # rewritten before the hint (line 2 is now longer): the scan finds the new line 2
    data = stream.path.read_bytes()
    stream.path.write_bytes(data.replace(b'"i":1', b'"i":1111'))
    moved = stream.read_after_line(2, hint)
    assert isinstance(moved, Read) and moved.start.byte_offset == hint.byte_offset + 3
    assert moved.lines == whole.lines[2:]
    # fewer complete lines than asked (a torn line does not count): their number
    stream.path.write_bytes(data[: whole.position_after(3).byte_offset] + b'{"i":')
    assert stream.read_after_line(5, hint) == 3
    assert stream.read_after_line(0) == Read(Position(), whole.lines[:3], 5, after.file_id)


def test_empty_missing_and_torn_only_streams(tmp_path: Path) -> None:
    missing = Stream(tmp_path / "none.jsonl")
    assert missing.tail(3) == [] and missing.last() is None and missing.size() == 0
    assert list(missing.records()) == [] and missing.torn_tail_bytes() == 0
    assert isinstance(missing.check(Position()), Intact)
    empty = Stream(tmp_path / "empty.jsonl")
    empty.path.write_bytes(b"")
    assert empty.tail(3) == [] and empty.last() is None
    assert empty.position_at_line(1) is None and empty.read_after_line(1) == 0
    assert empty.digest_and_count() == (hashlib.sha256(b"").hexdigest(), 0)
    torn = Stream(tmp_path / "torn.jsonl")
    torn.path.write_bytes(b'{"a":1}')
    assert torn.tail(3) == [] and torn.last() is None and torn.torn_tail_bytes() == 7
    assert torn.digest_and_count(want_digest=False) == (None, 0)
    assert missing.position_at_end() == torn.position_at_end() == Position()
    torn.path.write_bytes(b'{"a":1}\n\n{"a":2}\n{"a":')
    end = torn.position_at_end()
    assert end.line_offset == 3 and end == torn.position_at_line(3)
    # CRLF: split on b"\n" only, the b"\r" stays part of the line (JSON whitespace)
    crlf = Stream(tmp_path / "crlf.jsonl")
    crlf.path.write_bytes(b'{"a":1}\r\n\r\n{"a":2}\r\n')
    assert crlf.tail(2) == [b"\r", b'{"a":2}\r'] and crlf.last() == b'{"a":2}\r'
    assert [row for _, row in crlf.records()] == [{"a": 1}, {"a": 2}]


def test_drop_torn_tail(tmp_path: Path) -> None:
    stream = Stream(tmp_path / "s.jsonl")
    assert stream.drop_torn_tail() == 0 and not stream.path.exists()  # missing: untouched
    assert Stream(tmp_path).drop_torn_tail() == 0  # a directory: nothing to cut
    stream.path.write_bytes(b'{"a":1}\n')
    assert stream.drop_torn_tail() == 0 and stream.path.read_bytes() == b'{"a":1}\n'
    stream.path.write_bytes(b'{"a":1}\n' + b"x" * 70_000)  # a torn line longer than a block
    assert stream.drop_torn_tail() == 70_000 and stream.path.read_bytes() == b'{"a":1}\n'
    stream.path.write_bytes(b'{"a":')  # nothing but a torn line
    assert stream.drop_torn_tail() == 5 and stream.path.read_bytes() == b""
