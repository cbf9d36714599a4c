"""Incremental reader of a loop's ``events.jsonl`` (the runtime's append-only event log).

The reader seeks to a stored :class:`StreamPosition` and parses only what was appended since,
so a reconcile or poll costs O(new events), not O(history). A position carries a fingerprint
(sha256 + length) of the last consumed physical line; :func:`verify_position` checks it in O(1)
before resuming, so a log that was truncated or rewritten under us is detected instead of
silently mis-read.

Line rules (``loop.md`` §2.4, ``DECISIONS.md`` Q-3/Q-4/Q-5):

- lines are split on ``b"\\n"`` only (binary read), numbered from 1;
- blank (whitespace-only) lines are skipped but still count as physical lines;
- a final line without ``\\n`` is a write still in progress: it is never parsed, counted,
  emitted or consumed. It shows up only as :attr:`EventReader.torn_tail_bytes`;
- a complete line that is not a JSON object, or lacks a name or timestamp, is corruption and
  raises :class:`~ops_manager.errors.OpsError` naming the line and the absolute file path.

Hot path: the per-line loop runs over locals and costs about one ``json.loads`` per line. Only
the last emitted line is hashed (when iteration ends), and nothing is kept per event.

:meth:`EventReader.tuples` is the reconcile fold's faster way through a large range: orjson
parses each line (about 2.6x faster than the stdlib decoder), every line orjson rejects is
decided by the stdlib decoder as before, and the values that leave the fold (the last event,
and a line the caller names) are parsed by the stdlib decoder again, so every line is accepted
or rejected exactly as by iterating the reader, and nothing written anywhere changes.
:meth:`EventReader.batches` hands the same tuples over a list per read (what the reconcile
fold uses): a read is decided in C over the whole list when nothing in it is unusual, and line
by line, as :meth:`~EventReader.tuples` decides, when something is.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterator
from itertools import compress
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from ops_manager._jsonfmt import decode_strict
from ops_manager._jsonfmt import loads_json as loads_json
from ops_manager.errors import OpsError
from ops_manager.store._stream import (
    Position,
    Stream,
    count_newlines_in,
    fingerprint,
    position_at_line_in,
)

#: one event as a fold consumes it: (physical line, parsed raw object, name, timestamp)
EventTuple = tuple[int, dict[str, Any], str, str]


# the strict decoder (NaN/Infinity rejected where the data enters) is the contract's JSON
# reader, shared with the service's request bodies: ``_jsonfmt``; bound here for the hot loop
_decode = decode_strict


#: ranges shorter than this are read with the stdlib decoder alone: an incremental pass reads
#: a few lines, and importing orjson (with the uuid/datetime/dataclasses modules it imports)
#: would cost it more than the parse it saves
FAST_MIN_BYTES = 1 << 18
#: orjson nests deeper (1024) than the stdlib decoder can under Python's default recursion
#: limit (1000 less the caller's stack). A line that might nest this deep (that many opening
#: brackets; it is then at least twice as long) is parsed by the stdlib decoder, so the limit
#: it hits, and the error, stay the stdlib's
_DEEP_BRACKETS = 256


_EVENT = operator.itemgetter("event")
_TIMESTAMP = operator.itemgetter("timestamp")

#: bytes per read of :meth:`EventReader.batches` (whole lines: one list of events per read)
_BATCH_BYTES = 1 << 16


def _line_at(lines: list[bytes], base: int, size: int, first: int, line: int) -> tuple[bytes, int]:
    """Physical line ``line`` of a read (``lines``, ``size`` bytes from offset ``base``,
    starting with line ``first``): its bytes, and the offset just after it. Counted back
    from the end of the read, where the line usually is (then nothing is summed)."""
    idx = line - first
    return lines[idx], base + size - sum(map(len, lines[idx + 1 :]))


#: a resumable position in ``events.jsonl``: the store's one position type (the runtime's
#: log is read with the same fingerprint rules as every other stream)
StreamPosition = Position


@attrs.frozen
class EventLine:
    """One parsed event: its physical line number, raw object, name and timestamp."""

    #: 1-based physical line number
    line: int
    #: the parsed JSON object
    raw: dict[str, Any]
    #: ``raw["event"] // raw["type"]`` (non-empty string)
    name: str
    #: ``raw["timestamp"]`` (non-empty string)
    timestamp: str

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``(line, raw, name, timestamp)`` (the shape ``fold_events`` consumes)."""
        return iter((self.line, self.raw, self.name, self.timestamp))


def _open_events(path: Path, buffering: int = -1) -> BinaryIO:
    try:
        return open(path, "rb", buffering=buffering)
    except FileNotFoundError:
        raise OpsError(f"required artifact missing: {os.path.abspath(path)}") from None
    except IsADirectoryError:
        raise OpsError(f"required artifact missing: {os.path.abspath(path)}") from None
    except OSError as exc:
        raise OpsError(f"cannot read {os.path.abspath(path)}: {exc.strerror}") from None


def count_newlines(path: Path, start: int = 0, end: int | None = None) -> int:
    """Number of ``\\n`` bytes of ``path`` in ``[start, end)`` (``wc -l`` of that range)."""
    with _open_events(path) as handle:
        return count_newlines_in(handle, start, end)[0]


def verify_position(path: Path, pos: StreamPosition) -> str | None:
    """Check that ``pos`` still describes a prefix of ``path``.

    ``None`` if the bytes before ``pos.byte_offset`` still end with the fingerprinted line;
    otherwise a reason: ``"truncated"`` (the file is shorter than ``byte_offset``) or
    ``"rewritten"`` (the fingerprint differs, or the offset is not at a line boundary).
    O(1) in the file length: one seek and a read of ``last_line_bytes`` (+1) bytes.
    """
    if pos.byte_offset == 0:
        return None
    try:
        return Stream(path).check(pos).reason  # a missing file is "truncated"
    except OSError as exc:
        raise OpsError(f"cannot read {os.path.abspath(path)}: {exc.strerror}") from None


def position_for_line_offset(path: Path, line_offset: int) -> StreamPosition:
    """The position just after physical line ``line_offset`` (scans from the start).

    Used when a cursor carries only a line offset (e.g. a cursor written by the upstream
    tool). Only complete lines count: raises :class:`OpsError` ``cursor offset (<n>) exceeds
    available events (<total>); reset cursor or use --from-start`` when the file has fewer.
    """
    if line_offset <= 0:
        return StreamPosition()
    with _open_events(path) as handle:
        found = position_at_line_in(handle, line_offset)
        if found is not None:
            return found
        seen = count_newlines_in(handle, 0, None)[0]
    raise OpsError(
        f"cursor offset ({line_offset}) exceeds available events ({seen}); "
        "reset cursor or use --from-start"
    )


class EventReader:
    """Iterate the events appended after ``start`` (at most ``max_events``; 0 = no limit).

    After iteration finished (exhausted, or ``max_events`` reached) these are valid:

    - ``position``: just after the last *emitted* event (trailing blank lines are not
      consumed), or ``start`` when nothing was emitted;
    - ``total_lines``: the file's newline count (``wc -l``), computed incrementally as
      ``start.line_offset`` + newlines after ``start.byte_offset``;
    - ``torn_tail_bytes``: length of an unterminated final line (0 if the file ends with
      ``\\n``);
    - ``events_emitted``.

    The file size is sampled when iteration starts (or given as ``end_offset``); bytes
    appended later are left for the next read, so counts and events always agree.
    """

    def __init__(
        self,
        path: Path,
        start: StreamPosition,
        max_events: int = 0,
        *,
        end_offset: int | None = None,
    ) -> None:
        self.path = path
        self.start = start
        self.max_events = max_events
        self.end_offset = end_offset
        self.position = start
        self.total_lines = start.line_offset
        self.torn_tail_bytes = 0
        self.events_emitted = 0

    def __iter__(self) -> Iterator[EventLine]:
        return self._iterate()

    def tuples(self, exact_line: int | None = None) -> Iterator[EventTuple]:
        """Iterate as ``(line, raw, name, timestamp)`` tuples, for a fold.

        The same events, positions, counts and errors as iterating the reader, without an
        :class:`EventLine` per event. A large range is parsed by orjson, whose numbers can
        differ from the stdlib decoder's (an integer beyond 64 bits comes back as a float), so
        ``raw`` is *fold-grade*: its strings are exact, its numbers may not be. Two events
        carry an exact ``raw`` (parsed by the stdlib decoder, as iterating gives it): the last
        one this iterator yields, and the one at physical line ``exact_line``.
        """
        return self._tuples(exact_line)

    def batches(self, exact_line: int | None = None) -> Iterator[list[EventTuple]]:
        """The events of :meth:`tuples`, handed over a list at a time (a few hundred events
        per list), for a fold that consumes them all: no generator step per event.

        Drained to the end, it yields exactly the tuples :meth:`tuples` yields (the same
        fold-grade ``raw``, exact for the last event and ``exact_line``) and leaves the same
        ``position``, counts and errors (an error is raised after the list of the events
        before it). A consumer that stops early finds ``position`` after the last list it
        was given, not after the last event it looked at.
        """
        size = self._range_end()
        if size - self.start.byte_offset < FAST_MIN_BYTES:
            return self._small_batches()
        import orjson  # lazily: only a large read pays for it

        return self._batches_fast(orjson.loads, exact_line)

    def _iterate(self) -> Iterator[EventLine]:
        path_text = os.path.abspath(self.path)
        with _open_events(self.path) as handle:
            found = self._range(handle)
            if found is None:
                return
            end, offset, line_no = found
            limit = self.max_events
            emitted = 0
            last_raw: bytes | None = None
            last_end = offset
            last_line = line_no
            torn = 0
            stopped_early = False
            decode = _decode
            event_line = EventLine
            try:
                for raw in handle:
                    nxt = offset + len(raw)
                    if nxt > end or raw[-1] != 10:
                        # unterminated (as of our size sample): a write still in progress
                        torn = min(len(raw), end - offset)
                        break
                    offset = nxt
                    line_no += 1
                    if raw.isspace():
                        continue
                    try:
                        obj = decode(raw.decode("utf-8"))
                    except (ValueError, RecursionError):
                        raise OpsError(
                            f"invalid JSON event at line {line_no} in {path_text}"
                        ) from None
                    if type(obj) is not dict:
                        raise OpsError(f"invalid JSON event at line {line_no} in {path_text}")
                    name = obj.get("event")
                    if name is None or name is False:
                        name = obj.get("type")  # jq `.event // .type`
                    if type(name) is not str or not name:
                        raise OpsError(f"missing event name at line {line_no} in {path_text}")
                    timestamp = obj.get("timestamp")
                    if type(timestamp) is not str or not timestamp:
                        raise OpsError(f"missing event timestamp at line {line_no} in {path_text}")
                    emitted += 1
                    last_raw = raw
                    last_end = offset
                    last_line = line_no
                    yield event_line(line_no, obj, name, timestamp)
                    if emitted == limit:
                        stopped_early = True
                        break
            finally:
                self._settle(emitted, last_raw, last_end, last_line)
            self._count_rest(handle, stopped_early, offset, end, line_no, torn)

    def _range(self, handle: BinaryIO) -> tuple[int, int, int] | None:
        """``(end, offset, line_no)`` of the range to read, with ``handle`` seeked to
        ``offset``; ``None`` (``total_lines`` set) when there is nothing new, or the log
        shrank: callers verify the position beforehand."""
        end = self.end_offset
        if end is None:
            end = os.fstat(handle.fileno()).st_size
        offset, line_no = self.start.byte_offset, self.start.line_offset
        if offset >= end:
            self.total_lines = line_no
            return None
        handle.seek(offset)
        return end, offset, line_no

    def _settle(self, emitted: int, last_raw: bytes | None, last_end: int, last_line: int) -> None:
        """What a read loop handed over, recorded from its ``finally``: also when the
        consumer abandons the generator, so ``position`` stays truthful."""
        self.events_emitted = emitted
        if last_raw is not None:
            self.position = StreamPosition(
                last_end, last_line, fingerprint(last_raw), len(last_raw)
            )

    def _count_rest(
        self, handle: BinaryIO, stopped_early: bool, offset: int, end: int, line_no: int, torn: int
    ) -> None:
        """``total_lines`` and ``torn_tail_bytes`` once a read loop ended. After
        ``max_events`` the rest is counted without parsing it: ``total_lines`` stays exact at
        ``bytes.count`` speed."""
        if stopped_early:
            rest, torn = count_newlines_in(handle, offset, end)
            line_no += rest
        self.total_lines = line_no
        self.torn_tail_bytes = torn

    def _range_end(self) -> int:
        """The end of the range to read, as far as choosing a parser goes."""
        if self.end_offset is not None:
            return self.end_offset
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0  # _iterate reports the missing or unreadable file

    def _tuples(self, exact_line: int | None) -> Iterator[EventTuple]:
        size = self._range_end()
        if size - self.start.byte_offset < FAST_MIN_BYTES:
            return self._small_tuples()
        import orjson  # lazily: only a large read pays for it

        return self._iterate_fast(orjson.loads, exact_line)

    def _small_tuples(self) -> Iterator[EventTuple]:
        for ev in self._iterate():
            yield ev.line, ev.raw, ev.name, ev.timestamp

    def _small_batches(self) -> Iterator[list[EventTuple]]:
        # a small range (an incremental pass): one list, or the events before an error
        batch: list[EventTuple] = []
        try:
            batch.extend(self._small_tuples())
        except OpsError:
            if batch:
                yield batch
            raise
        if batch:
            yield batch

    def _iterate_fast(self, loads: Any, exact_line: int | None) -> Iterator[EventTuple]:
        # The loop of _iterate with orjson first. An event is yielded only once the next one
        # parsed (or the range ended), so the last one yielded can be re-parsed exactly.
        path_text = os.path.abspath(self.path)
        with _open_events(self.path) as handle:
            found = self._range(handle)
            if found is None:
                return
            end, offset, line_no = found
            # the held event is the max_events-th once this many were yielded (-1: no limit)
            last_but_one = self.max_events - 1
            emitted = 0
            last_raw: bytes | None = None
            last_end = offset
            last_line = line_no
            torn = 0
            stopped_early = False
            exact = _decode
            deep = _DEEP_BRACKETS
            long_line = 2 * deep
            watch = -1 if exact_line is None else exact_line
            # names already checked (non-empty strings): one set lookup per event instead of
            # the type checks; only a JSON string can equal a string in it
            names: set[str] = set()
            # the parsed event not yet yielded: (line, obj, name, timestamp), its bytes, end
            held: EventTuple | None = None
            held_raw = b""
            held_end = 0
            error: str | None = None
            try:
                for raw in handle:
                    n = len(raw)
                    nxt = offset + n
                    if nxt > end or raw[-1] != 10:
                        torn = min(n, end - offset)
                        break
                    offset = nxt
                    line_no += 1
                    try:
                        if line_no == watch or (
                            n > long_line and raw.count(b"[") + raw.count(b"{") > deep
                        ):
                            raise ValueError("parsed by the stdlib decoder")
                        obj = loads(raw)
                    except ValueError:
                        if raw.isspace():
                            continue
                        try:
                            obj = exact(raw.decode("utf-8"))
                        except (ValueError, RecursionError):
                            error = f"invalid JSON event at line {line_no} in {path_text}"
                            break
                    try:
                        name = obj.get("event")
                    except AttributeError:  # not an object: only dict has .get
                        error = f"invalid JSON event at line {line_no} in {path_text}"
                        break
                    try:
                        known = name in names
                    except TypeError:  # an array or object
                        known = False
                    if not known:
                        if name is None or name is False:
                            name = obj.get("type")  # jq `.event // .type`
                        if type(name) is not str or not name:
                            error = f"missing event name at line {line_no} in {path_text}"
                            break
                        names.add(name)
                    timestamp = obj.get("timestamp")
                    if type(timestamp) is not str or not timestamp:
                        error = f"missing event timestamp at line {line_no} in {path_text}"
                        break
                    if held is not None:
                        emitted += 1
                        last_raw = held_raw
                        last_end = held_end
                        last_line = held[0]
                        yield held
                    held = (line_no, obj, name, timestamp)
                    held_raw = raw
                    held_end = offset
                    if emitted == last_but_one:
                        stopped_early = True
                        break
                if held is not None:
                    # the last event yielded: its raw as the stdlib decoder gives it
                    line, obj, name, timestamp = held
                    if line != exact_line:
                        try:
                            obj = exact(held_raw.decode("utf-8"))
                        except (ValueError, RecursionError):
                            # orjson took a line the stdlib decoder refuses: refuse it too
                            raise OpsError(
                                f"invalid JSON event at line {line} in {path_text}"
                            ) from None
                    emitted += 1
                    last_raw = held_raw
                    last_end = held_end
                    last_line = line
                    yield line, obj, name, timestamp
                if error is not None:
                    raise OpsError(error)
            finally:
                self._settle(emitted, last_raw, last_end, last_line)
            self._count_rest(handle, stopped_early, offset, end, line_no, torn)

    def _decide_lines(
        self,
        lines: list[bytes],
        first: int,
        loads: Any,
        names: set[str],
        watch: int,
        out: list[EventTuple],
    ) -> str | None:
        """Decide a read line by line, exactly as :meth:`_iterate_fast` does; append the
        events to ``out``; return the error of the first bad line (``None``: all good)."""
        path_text = os.path.abspath(self.path)
        exact = _decode
        deep = _DEEP_BRACKETS
        long_line = 2 * deep
        for ln, raw in enumerate(lines, first):
            try:
                if ln == watch or (
                    len(raw) > long_line and raw.count(b"[") + raw.count(b"{") > deep
                ):
                    raise ValueError("parsed by the stdlib decoder")
                obj = loads(raw)
            except ValueError:
                if raw.isspace():
                    continue
                try:
                    obj = exact(raw.decode("utf-8"))
                except (ValueError, RecursionError):
                    return f"invalid JSON event at line {ln} in {path_text}"
            try:
                name = obj.get("event")
            except AttributeError:  # not an object: only dict has .get
                return f"invalid JSON event at line {ln} in {path_text}"
            try:
                known = name in names
            except TypeError:  # an array or object
                known = False
            if not known:
                if name is None or name is False:
                    name = obj.get("type")  # jq `.event // .type`
                if type(name) is not str or not name:
                    return f"missing event name at line {ln} in {path_text}"
                names.add(name)
            timestamp = obj.get("timestamp")
            if type(timestamp) is not str or not timestamp:
                return f"missing event timestamp at line {ln} in {path_text}"
            out.append((ln, obj, name, timestamp))
        return None

    def _batches_fast(self, loads: Any, exact_line: int | None) -> Iterator[list[EventTuple]]:
        # The decisions of _iterate_fast, a read of _BATCH_BYTES (whole lines) at a time. A
        # read takes the short way, decided in C over the whole list, unless something in
        # it is unusual; then the read is decided line by line exactly as _iterate_fast
        # decides (_decide_lines). Byte offsets come from tell() once per read, not from
        # each line. A list is handed over only once the next one has an event (or the
        # range ended), so the last event of the range is re-parsed exactly before it
        # leaves.
        path_text = os.path.abspath(self.path)
        # a buffer the size of a read: one read syscall per list, not one per 8 KiB
        with _open_events(self.path, max(_BATCH_BYTES, 1 << 13)) as handle:
            found = self._range(handle)
            if found is None:
                return
            end, offset, line_no = found
            limit = self.max_events
            emitted = 0  # events in the lists handed over
            last_raw: bytes | None = None
            last_end = offset
            last_line = line_no
            torn = 0
            stopped_early = False
            exact = _decode
            deep = _DEEP_BRACKETS
            long_line = 2 * deep
            watch = -1 if exact_line is None else exact_line
            names: set[str] = set()
            # the list not handed over yet, with the lines it came from: their offset and
            # first physical line number (to find an event's bytes and end offset)
            held: list[EventTuple] = []
            held_lines: list[bytes] = []
            held_base = held_size = held_first = 0
            error: str | None = None
            try:
                while error is None and not stopped_early:
                    lines = handle.readlines(_BATCH_BYTES)
                    if not lines:
                        break
                    base = offset  # offset of lines[0]
                    first = line_no + 1  # its physical line number
                    size = handle.tell() - base  # (the buffered reader's logical position)
                    last_read = False
                    if base + size > end or lines[-1][-1] != 10:
                        # the range ends in this read: keep its complete lines before `end`
                        # (an unterminated last line is a write in progress)
                        last_read = True
                        kept = whole = 0
                        for raw in lines:
                            n = len(raw)
                            if base + kept + n > end or raw[-1] != 10:
                                torn = min(n, end - base - kept)
                                break
                            kept += n
                            whole += 1
                        del lines[whole:]
                        size = kept
                    count = len(lines)
                    try:
                        # the usual read, decided in C over the whole list: every line is
                        # JSON (no blank one), every object has an already seen "event" name
                        # and a non-empty string "timestamp", no line nests deep, and the
                        # watched line is elsewhere
                        objs = list(map(loads, lines))
                        ev_names = list(map(_EVENT, objs))
                        stamps = list(map(_TIMESTAMP, objs))
                        bulk = (
                            names.issuperset(ev_names)
                            # all strings and none empty: a non-string makes the comparisons
                            # raise TypeError, and the least string is "" only if one is
                            and min(stamps) > ""
                            and not first <= watch < first + count
                            # only a long line can nest deep: pick those out in C
                            and not any(
                                raw.count(b"[") + raw.count(b"{") > deep
                                for raw in compress(lines, map(long_line.__lt__, map(len, lines)))
                            )
                        )
                    except Exception:  # a line that is not JSON, not an object, or lacks a key
                        bulk = False
                    if bulk:
                        batch = list(
                            zip(range(first, first + count), objs, ev_names, stamps, strict=True)
                        )
                    else:
                        batch = []
                        error = self._decide_lines(lines, first, loads, names, watch, batch)
                    if limit and emitted + len(held) + len(batch) >= limit:
                        # max_events reached in this read: what follows is not looked at
                        # (not even an error on a later line)
                        del batch[limit - emitted - len(held) :]
                        stopped_early = True
                        error = None
                    if batch:
                        if held:
                            emitted += len(held)
                            last_line = held[-1][0]
                            last_raw, last_end = _line_at(
                                held_lines, held_base, held_size, held_first, last_line
                            )
                            yield held
                        held, held_lines, held_base, held_size, held_first = (
                            batch,
                            lines,
                            base,
                            size,
                            first,
                        )
                    if stopped_early:
                        line_no = held[-1][0]
                        offset = _line_at(held_lines, held_base, held_size, held_first, line_no)[1]
                        break
                    offset = base + size
                    line_no = first - 1 + len(lines)
                    if last_read:
                        break
                if held:
                    # the last event handed over: its raw as the stdlib decoder gives it
                    line, obj, name, timestamp = held[-1]
                    raw, raw_end = _line_at(held_lines, held_base, held_size, held_first, line)
                    if line != exact_line:
                        try:
                            obj = exact(raw.decode("utf-8"))
                        except (ValueError, RecursionError):
                            # orjson took a line the stdlib decoder refuses: refuse it too,
                            # after the events before it (as _iterate_fast does)
                            held.pop()
                            if held:
                                emitted += len(held)
                                last_line = held[-1][0]
                                last_raw, last_end = _line_at(
                                    held_lines, held_base, held_size, held_first, last_line
                                )
                                yield held
                            raise OpsError(
                                f"invalid JSON event at line {line} in {path_text}"
                            ) from None
                        held[-1] = (line, obj, name, timestamp)
                    emitted += len(held)
                    last_raw, last_end, last_line = raw, raw_end, line
                    yield held
                if error is not None:
                    raise OpsError(error)
            finally:
                self._settle(emitted, last_raw, last_end, last_line)
            self._count_rest(handle, stopped_early, offset, end, line_no, torn)
