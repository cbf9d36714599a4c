"""Append-only JSONL streams: the one implementation of appending, resuming and tailing.

Every stream the package appends to or reads (``events.jsonl``, escalations, the outbox,
telemetry) goes through :class:`Stream`, or, for the runtime's ``EventReader`` (its own tuned
line loop on its own handle), through the handle-level functions below (:func:`check_open`,
:func:`count_newlines_in`, :func:`position_at_line_in`, :func:`read_open`);
``tests/test_stream_access.py`` checks that no other module opens one.

Line rules (``loop.md`` §2.4, ``DECISIONS.md`` Q-3/Q-5): lines are split on ``b"\\n"`` only
and numbered from 1; blank lines count as physical lines; a final line without ``\\n`` is a
write still in progress, never read, counted or consumed (it shows up only as
``torn_tail_bytes``).

A :class:`Position` is the byte just after a consumed line, the lines consumed, and a
fingerprint (sha256 + length) of that last line. :meth:`Stream.check` says in O(1) what
happened to the file since: :class:`Intact` (the same, or grown), :class:`Truncated`,
:class:`Rotated` (another file at the path: a position this process read remembers the
inode) or :class:`Rewritten` (same file, other bytes). Callers decide what each means.

Appends (the fsync policy, in one place): one ``O_APPEND`` write of whole lines under an
``flock`` of the stream, so concurrent appenders never interleave lines; no fsync. A kill
loses nothing (the page cache holds every completed write) and a pass's appends are made
durable by its commit record (:mod:`ops_manager.store._commit`), which re-applies them with
:meth:`Stream.append_bytes` ``size_before`` after a crash.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import attrs

from ops_manager._jsonfmt import as_nonneg_int, dumps_compact, json_text_bytes
from ops_manager.errors import CorruptStreamError
from ops_manager.store._atomic import fsync_dir
from ops_manager.store._tail import complete_end as _complete_end
from ops_manager.store._tail import last_complete_line, lines_reverse, tail_lines

#: chunk of the forward newline scans (bounded memory, one syscall per MiB)
_CHUNK = 1 << 20


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (_INF, -_INF):  # 1e999: valid JSON text, but no float holds it
        raise ValueError("number out of range")
    return value


_INF = float("inf")

#: ``json.loads`` without the ``NaN`` / ``Infinity`` / ``-Infinity`` extension and without
#: numbers that overflow to infinity: no writer of ours emits them and none could write a
#: projection holding one back (``allow_nan=False``), so a record with one is corrupt, as it
#: is for the event, escalation, summary and registry readers
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def fingerprint(line: bytes) -> str:
    """The sha256 hex of one physical line (with its ``\\n``), as a :class:`Position` keeps."""
    return hashlib.sha256(line).hexdigest()


def encode_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Rows as compact JSON lines, the bytes every append writes (lone surrogates kept)."""
    return json_text_bytes("".join(dumps_compact(row) + "\n" for row in rows))


@attrs.frozen
class Position:
    """A resumable position in a stream, fingerprinted by its last consumed line."""

    #: byte just after the last consumed line
    byte_offset: int = 0
    #: physical lines consumed (== a cursor's ``eventLineOffset``)
    line_offset: int = 0
    #: sha256 hex of the last consumed physical line, including its ``b"\n"``
    last_line_sha256: str | None = None
    #: length of that line including its ``b"\n"``
    last_line_bytes: int = 0
    #: ``(st_dev, st_ino)`` of the file, when this process read it. Not stored (a cursor
    #: outlives inode numbers) and not compared: it only lets :meth:`Stream.check` tell a
    #: replaced file from one rewritten in place
    file_id: tuple[int, int] | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def after(
        cls, end: int, line_offset: int, line: bytes, file_id: tuple[int, int] | None = None
    ) -> Position:
        """The position just after ``line`` (with its ``\\n``), which ends at byte ``end``."""
        return cls(end, line_offset, fingerprint(line), len(line), file_id)

    def to_json(self) -> dict[str, Any]:
        """The on-disk shape (the ``position`` key of a cursor file)."""
        return {
            "byteOffset": self.byte_offset,
            "lineOffset": self.line_offset,
            "lastLineSha256": self.last_line_sha256,
            "lastLineBytes": self.last_line_bytes,
        }

    @classmethod
    def from_json(cls, obj: object) -> Position | None:
        """Read a stored position; ``None`` if it is malformed or inconsistent.

        Tolerant by design: a bad position only costs a rescan (the caller falls back to
        the plain line offset), never a wrong read.
        """
        if not isinstance(obj, dict):
            return None
        byte_offset = as_nonneg_int(obj.get("byteOffset"))
        line_offset = as_nonneg_int(obj.get("lineOffset"))
        line_bytes = as_nonneg_int(obj.get("lastLineBytes", 0))
        sha = obj.get("lastLineSha256")
        if byte_offset is None or line_offset is None or line_bytes is None:
            return None
        # zero lines consumed <=> zero bytes consumed; a line is at least its b"\n"
        if (byte_offset == 0) != (line_offset == 0) or line_offset > byte_offset:
            return None
        if sha is None:
            return cls() if line_offset == 0 else cls(byte_offset, line_offset)
        if not isinstance(sha, str) or not _SHA256_HEX.match(sha):
            return None
        if line_offset == 0 or not 1 <= line_bytes <= byte_offset:
            return None
        return cls(byte_offset, line_offset, sha, line_bytes)


# --- what a check finds ------------------------------------------------------------------
# ``reason`` is the word the contract's messages use for it (``None``: nothing to report).


@attrs.frozen
class Intact:
    """The position still ends a prefix of the file, which holds ``size`` bytes now."""

    size: int
    reason: ClassVar[None] = None


@attrs.frozen
class Truncated:
    """The file is shorter than the position (or gone)."""

    size: int
    reason: ClassVar[str] = "truncated"


@attrs.frozen
class Rewritten:
    """The file is long enough, but the fingerprinted line is not where it was."""

    reason: ClassVar[str] = "rewritten"


@attrs.frozen
class Rotated:
    """Another file is at the path, and it does not continue the position.

    ``reason`` says how it looks to a message: shorter ("truncated") or other bytes.
    """

    size: int
    reason: str


Check = Intact | Truncated | Rewritten | Rotated


@attrs.frozen
class Read:
    """The complete lines after a verified position (blank ones included, no ``\\n``)."""

    start: Position
    lines: list[bytes]
    #: bytes of an unterminated final line left unread (0 when the range ends cleanly)
    torn_tail_bytes: int = 0
    file_id: tuple[int, int] | None = None

    def position_after(self, count: int) -> Position:
        """The position after the first ``count`` lines read (``start`` for 0)."""
        if count <= 0:
            return self.start
        consumed = sum(len(line) + 1 for line in self.lines[:count])
        return Position.after(
            self.start.byte_offset + consumed,
            self.start.line_offset + count,
            self.lines[count - 1] + b"\n",
            self.file_id,
        )


def _file_id(handle: BinaryIO) -> tuple[int, tuple[int, int]]:
    st = os.fstat(handle.fileno())
    return st.st_size, (st.st_dev, st.st_ino)


def check_open(handle: BinaryIO, position: Position) -> Check:
    """:meth:`Stream.check` on an open file (the runtime reader already holds one)."""
    size, file_id = _file_id(handle)
    if position.byte_offset == 0:
        return Intact(size)
    moved = position.file_id is not None and position.file_id != file_id
    if size < position.byte_offset:
        return Rotated(size, "truncated") if moved else Truncated(size)
    if position.last_line_sha256 is None:
        # no fingerprint (a hand-written position): at least insist on a line boundary
        handle.seek(position.byte_offset - 1)
        intact = handle.read(1) == b"\n"
    else:
        line_start = position.byte_offset - position.last_line_bytes
        handle.seek(max(line_start - 1, 0))
        data = handle.read(position.last_line_bytes + (1 if line_start > 0 else 0))
        # the fingerprinted line must start a line, not be the tail of a longer one
        intact = line_start == 0 or data[:1] == b"\n"
        data = data[1:] if line_start > 0 else data
        intact = intact and fingerprint(data) == position.last_line_sha256
    if intact:
        return Intact(size)
    return Rotated(size, "rewritten") if moved else Rewritten()


def count_newlines_in(handle: BinaryIO, start: int, end: int | None) -> tuple[int, int]:
    """Count ``\\n`` in ``[start, end)`` (``end=None``: to EOF) of an open file.

    Returns ``(count, bytes_after_last_newline)``; the second value is the length of an
    unterminated tail (or of the whole range when it holds no newline).
    """
    handle.seek(start)
    count = 0
    pos = last_nl_end = start
    while end is None or pos < end:
        chunk = handle.read(_CHUNK if end is None else min(_CHUNK, end - pos))
        if not chunk:
            break
        found = chunk.count(b"\n")
        if found:
            count += found
            last_nl_end = pos + chunk.rfind(b"\n") + 1
        pos += len(chunk)
    return count, pos - last_nl_end


def read_open(handle: BinaryIO, position: Position, end: int | None = None) -> Read | Check:
    """:meth:`Stream.read_from` on an open file."""
    found = check_open(handle, position)
    if not isinstance(found, Intact):
        return found
    stop = found.size if end is None else min(end, found.size)
    handle.seek(position.byte_offset)
    data = handle.read(max(0, stop - position.byte_offset))
    file_id = _file_id(handle)[1]
    cut = data.rfind(b"\n") + 1
    return Read(position, data[:cut].split(b"\n")[:-1], len(data) - cut, file_id)


def position_at_line_in(handle: BinaryIO, line_offset: int) -> Position | None:
    """:meth:`Stream.position_at_line` on an open file (the runtime reader holds one)."""
    if line_offset <= 0:
        return Position()
    handle.seek(0)
    seen = base = 0
    while chunk := handle.read(_CHUNK):
        found = chunk.count(b"\n")
        if seen + found >= line_offset:
            idx = -1
            for _ in range(line_offset - seen):
                idx = chunk.find(b"\n", idx + 1)
            end = base + idx + 1
            start = _complete_end(handle, end - 1)
            handle.seek(start)
            return Position.after(end, line_offset, handle.read(end - start))
        seen += found
        base += len(chunk)
    return None


class Stream:
    """One append-only JSONL file (it need not exist yet)."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    # --- appending ---------------------------------------------------------------------

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append rows as compact JSON lines (parents created), in one locked write."""
        self.append_bytes(encode_rows(rows))

    def append_bytes(self, data: bytes, size_before: int | None = None) -> None:
        """Append whole lines ``data``; the one append path (see the module docstring).

        With ``size_before`` (a commit record's stream size before its pass) the append is
        idempotent: a stream already holding ``data`` at that offset is left alone, one
        that ends with a prefix of it (a kill mid-append) gets the rest, and one another
        writer moved on meanwhile gets it at its end (a row is never lost).
        """
        if not data:
            return
        # O_APPEND: every write lands at the end, even if another writer appended since the
        # size was read (a seek-then-write could overwrite its row)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
        try:
            fd = os.open(self.path, flags, 0o644)
        except FileNotFoundError:  # parents are made only when missing (saves 2 syscalls)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, flags, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by close
            done = 0
            size = os.fstat(fd).st_size
            if size_before is not None and size > size_before:
                os.lseek(fd, size_before, os.SEEK_SET)
                there = os.read(fd, len(data))
                if there == data:
                    return  # applied before the crash (whatever was appended after it)
                if size == size_before + len(there) and data.startswith(there):
                    done = len(there)  # killed mid-append, and the file ends there
            view = memoryview(data)[done:]
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def drop_torn_tail(self) -> int:
        """Cut an unterminated final line (a crashed write) off the file, durably (the file
        and its directory fsynced); the bytes dropped (0 for a clean or missing file).

        Only for streams whose writers all hold one lock (so no write is in progress).
        """
        try:
            handle = open(self.path, "r+b")  # noqa: SIM115 - closed by the with-block below
        except (FileNotFoundError, IsADirectoryError):
            return 0
        with handle:
            size = handle.seek(0, os.SEEK_END)
            keep = _complete_end(handle, size)
            if keep == size:
                return 0
            handle.truncate(keep)
            os.fsync(handle.fileno())
        fsync_dir(self.path.parent)
        return size - keep

    # --- reading -----------------------------------------------------------------------

    def size(self) -> int:
        """The file's size in bytes (0 when it does not exist yet)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def open(self) -> BinaryIO:
        """The file open for binary reading (``OSError`` as ``open`` raises it)."""
        return open(self.path, "rb")

    def check(self, position: Position) -> Check:
        """What became of the file since ``position`` was read (O(1); a missing file is
        :class:`Truncated` unless nothing was consumed)."""
        try:
            with self.open() as handle:
                return check_open(handle, position)
        except FileNotFoundError:
            return Truncated(0) if position.byte_offset else Intact(0)

    def read_from(self, position: Position, end: int | None = None) -> Read | Check:
        """The complete lines after ``position`` (up to byte ``end``, default the size now),
        or what :meth:`check` found instead of an :class:`Intact` file. A missing file
        raises ``FileNotFoundError``."""
        with self.open() as handle:
            return read_open(handle, position, end)

    def position_at_line(self, line_offset: int) -> Position | None:
        """The position just after physical line ``line_offset``, by one scan from the start;
        ``None`` when the file has fewer complete lines (``OSError`` if it cannot be read)."""
        if line_offset <= 0:
            return Position()
        with self.open() as handle:
            return position_at_line_in(handle, line_offset)

    def position_at_end(self) -> Position:
        """The position after the last complete line (a torn one is left for later): one
        newline count over the file; the start for a missing or line-less file."""
        try:
            handle = self.open()
        except FileNotFoundError:
            return Position()
        with handle:
            count, torn = count_newlines_in(handle, 0, None)
            if not count:
                return Position()
            size, file_id = _file_id(handle)
            end = size - torn
            start = _complete_end(handle, end - 1)
            handle.seek(start)
            return Position.after(end, count, handle.read(end - start), file_id)

    def read_after_line(self, line_offset: int, hint: Position | None = None) -> Read | int:
        """The complete lines after physical line ``line_offset``, in one open of the file.

        They are read from ``hint`` when it is a fingerprinted position at that line and
        :func:`check_open` finds it :class:`Intact` (O(1)); otherwise (no hint, a rewrite,
        a truncation) the line is found by one scan from the start. When the file has fewer
        complete lines than ``line_offset``, their number is returned instead. A missing
        file raises ``FileNotFoundError``.
        """
        with self.open() as handle:
            if hint is not None and hint.line_offset == line_offset and hint.last_line_sha256:
                found = read_open(handle, hint)
                if isinstance(found, Read):
                    return found
            start = position_at_line_in(handle, line_offset)
            if start is None:
                return count_newlines_in(handle, 0, None)[0]
            found = read_open(handle, start)
            # the scan just found that line; only a truncation racing it can fail the check
            return found if isinstance(found, Read) else count_newlines_in(handle, 0, None)[0]

    def count_newlines(self, start: int = 0, end: int | None = None) -> int:
        """Number of ``\\n`` bytes in ``[start, end)`` (``wc -l`` of that range)."""
        with self.open() as handle:
            return count_newlines_in(handle, start, end)[0]

    def digest_and_count(self, want_digest: bool = True) -> tuple[str | None, int]:
        """The sha256 hex of the whole file (when asked) and its newline count, one pass."""
        digest = hashlib.sha256() if want_digest else None
        lines = 0
        with self.open() as handle:
            while chunk := handle.read(_CHUNK):
                lines += chunk.count(b"\n")
                if digest is not None:
                    digest.update(chunk)
        return (digest.hexdigest() if digest is not None else None), lines

    def records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(line_number, record)`` for each complete non-blank line, strictly.

        A missing file yields nothing; a bad complete line raises
        :class:`~ops_manager.errors.CorruptStreamError` naming file and line.
        """
        try:
            handle = self.open()
        except FileNotFoundError:
            return
        with handle:
            for number, raw in enumerate(handle, 1):
                if not raw.endswith(b"\n"):
                    return  # torn tail: a write in progress
                if not raw.strip():
                    continue
                try:
                    # what json.loads does with bytes, on the decoder without the constants
                    value = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
                except ValueError:
                    raise CorruptStreamError(str(self.path), number) from None
                if not isinstance(value, dict):
                    raise CorruptStreamError(str(self.path), number, "not a JSON object")
                yield number, value

    def torn_tail_bytes(self) -> int:
        """Length of an unterminated final line (0 when the file ends cleanly or is missing)."""
        try:
            with self.open() as handle:
                size = handle.seek(0, os.SEEK_END)
                return size - _complete_end(handle, size)
        except FileNotFoundError:
            return 0

    def lines_reverse(self) -> Iterator[bytes]:
        """The complete physical lines from the last to the first (without ``\\n``; blank
        lines included). A missing file yields nothing. Memory is bounded by one block plus
        the longest line, so a tail costs O(tail), not O(history)."""
        return lines_reverse(self.path)

    def tail(self, n: int) -> list[bytes]:
        """The last ``n`` complete physical lines (blank ones included), oldest first."""
        return tail_lines(self.path, n)

    def last(self) -> bytes | None:
        """The last complete non-blank line (without ``\\n``), read from the end; ``None``
        when there is none (or no file)."""
        return last_complete_line(self.path)


# --- the path-taking shorthands the engine's use cases call --------------------------------


def append_lines(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """:meth:`Stream.append` of ``records`` to ``path``."""
    Stream(path).append(records)


def append_line(path: Path, record: Mapping[str, Any]) -> None:
    """:meth:`Stream.append` of one record to ``path``."""
    Stream(path).append([record])


def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """:meth:`Stream.records` of ``path``."""
    return Stream(path).records()


def drop_torn_tail(path: Path) -> int:
    """:meth:`Stream.drop_torn_tail` of ``path``."""
    return Stream(path).drop_torn_tail()
