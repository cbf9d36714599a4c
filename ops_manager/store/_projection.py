"""Reading and writing JSON projection files."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ops_manager._jsonfmt import dumps
from ops_manager.errors import OpsError
from ops_manager.store._atomic import write_atomic


def write_json(path: Path, value: Any, pretty: bool = False) -> None:
    """Atomically write ``value`` as compact (or pretty) JSON plus a newline."""
    write_atomic(path, dumps(value, pretty) + "\n")


def read_file_bytes(path: Path) -> bytes:
    """The whole file, like :meth:`Path.read_bytes` (same ``OSError`` s), in 4 syscalls.

    ``Path.read_bytes`` goes through a buffered file object (two ``fstat``, two ``lseek``,
    an ``ioctl``, two ``read``); a pass reads a dozen small projections per loop, so the
    plain ``open``/``fstat``/``read``/``close`` matters for a fleet of a thousand loops.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        if len(data) <= size:
            return data  # a short read of a regular file is its end
        # the file grew since the fstat (or reports no size, like /proc): read to the end
        chunks = [data]
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


_reads = threading.local()


@contextlib.contextmanager
def remembered_reads() -> Iterator[dict[Path, bytes | None]]:
    """Remember, on this thread, the bytes of every projection read leniently in the block.

    For a pass that holds its loop's lock, which no other writer of those projections can
    change under it: a second read of a projection is served from memory, and the pass
    hands what it read to its commit (:attr:`ops_manager.store.Replace.current`), which so
    needs no read to tell a changed projection from an unchanged one. Yields the
    ``path -> bytes`` map (``None``: missing or unreadable).
    """
    seen: dict[Path, bytes | None] = {}
    outer = getattr(_reads, "seen", None)
    _reads.seen = seen
    try:
        yield seen
    finally:
        _reads.seen = outer


def read_json_and_bytes(path: Path) -> tuple[dict[str, Any], bytes | None]:
    """:func:`read_json_or_empty` and the bytes it parsed (``None``: unreadable or missing)."""
    seen: dict[Path, bytes | None] | None = getattr(_reads, "seen", None)
    if seen is not None and path in seen:
        data = seen[path]
    else:
        try:
            data = read_file_bytes(path)
        except OSError:
            data = None
        if seen is not None:
            seen[path] = data
    if data is None:
        return {}, None
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}, data
    return (value if isinstance(value, dict) else {}), data


def read_json_file(path: Path, error: str) -> Any:
    """Parse ``path``; ``None`` if it does not exist; :class:`OpsError` ``<error>: <path>`` if bad.

    ``error`` is the contract's prefix, e.g. ``"invalid state JSON"``.
    """
    try:
        text = read_file_bytes(path)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise OpsError(f"{error}: {path}") from None
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise OpsError(f"{error}: {path}") from None


def read_json_or_empty(path: Path) -> dict[str, Any]:
    """Parse ``path`` as an object; missing, unreadable or non-object -> ``{}`` (lenient read)."""
    return read_json_and_bytes(path)[0]
