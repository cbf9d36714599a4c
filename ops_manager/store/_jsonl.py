"""Append-only JSONL streams.

Appends are one ``write()`` of a whole line on an ``O_APPEND`` descriptor, so concurrent
appenders never interleave inside a line. Readers treat a final line without ``\\n`` as a
write still in progress (ignored, reported through :class:`StreamRead`); a bad complete line
is corruption and raises :class:`~ops_manager.errors.CorruptStreamError` naming file and line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import dumps_compact, json_text_bytes
from ops_manager.errors import CorruptStreamError


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one record as a compact JSON line (parents created)."""
    append_lines(path, [record])


def append_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records, each as its own single ``write()`` of one full line."""
    lines = [json_text_bytes(dumps_compact(r) + "\n") for r in records]
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for line in lines:
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
    finally:
        os.close(fd)


@attrs.frozen
class StreamRead:
    """What a full read of a stream found."""

    records: list[dict[str, Any]]
    #: bytes of an unterminated final line that was ignored (0 when the file ends cleanly)
    torn_tail_bytes: int = 0


def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each complete non-blank line of ``path``.

    A missing file yields nothing. The unterminated final line, if any, is skipped.
    """
    if not path.exists():
        return
    with open(path, "rb") as handle:
        number = 0
        for raw in handle:
            number += 1
            if not raw.endswith(b"\n"):
                return  # torn tail: a write in progress
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except ValueError:
                raise CorruptStreamError(str(path), number) from None
            if not isinstance(value, dict):
                raise CorruptStreamError(str(path), number, "not a JSON object")
            yield number, value


def read_stream(path: Path) -> StreamRead:
    """Read every complete record of ``path`` and report a torn final line."""
    records = [rec for _, rec in iter_records(path)]
    torn = 0
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return StreamRead(records=records)
    if size:
        with open(path, "rb") as handle:
            tail = _tail_after_last_newline(handle, size)
        torn = len(tail)
    return StreamRead(records=records, torn_tail_bytes=torn)


def last_complete_line(path: Path) -> bytes | None:
    """The last complete non-blank line of ``path`` (without ``\\n``), read from the end.

    Cost is independent of the file's length. ``None`` when there is none.
    """
    try:
        with open(path, "rb") as handle:
            return _last_line(handle)
    except FileNotFoundError:
        return None


def _last_line(handle: Any) -> bytes | None:
    size = handle.seek(0, os.SEEK_END)
    # an unterminated tail is a write in progress: start before it
    end = size - len(_tail_after_last_newline(handle, size))
    return _last_nonblank_before(handle, end)


def _tail_after_last_newline(handle: Any, size: int) -> bytes:
    block = 4096
    pos = size
    chunks: list[bytes] = []
    while pos > 0:
        step = min(block, pos)
        pos -= step
        handle.seek(pos)
        chunk = handle.read(step)
        idx = chunk.rfind(b"\n")
        if idx >= 0:
            chunks.append(chunk[idx + 1 :])
            break
        chunks.append(chunk)
    return b"".join(reversed(chunks))


def _last_nonblank_before(handle: Any, end: int) -> bytes | None:
    """Scan backwards from ``end`` (just after a ``\\n``) for the last non-blank line."""
    block = 8192
    pos = end
    buf = b""
    while pos > 0 or buf:
        if pos > 0:
            step = min(block, pos)
            pos -= step
            handle.seek(pos)
            buf = handle.read(step) + buf
        lines = buf.split(b"\n")
        # lines[-1] is b"" (buf ends with \n) unless buf was cut; the first element may be
        # a partial line unless we reached the start of the file.
        complete = lines[1:] if pos > 0 else lines
        for line in reversed(complete):
            if line.strip():
                return line
        if pos == 0:
            return None
        buf = lines[0]
    return None
