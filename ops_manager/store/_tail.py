"""Reading a stream from its end: the last complete lines, in O(tail) (not O(history)).

Split out of :mod:`ops_manager.store._stream` so a reader that only wants the last row of a
few streams (``status``) imports neither ``attrs`` nor ``hashlib``: this module needs only
``os``. :class:`~ops_manager.store.Stream` reads its tail through these functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: first block of the backward reads (a last line is usually short); it doubles up to _BLOCK
_FIRST_BLOCK = 4096
#: largest block of the backward reads
_BLOCK = 64 * 1024


def complete_end(handle: BinaryIO, size: int) -> int:
    """The offset just after the last ``\\n`` before ``size`` (0 when there is none)."""
    pos, block = size, _FIRST_BLOCK
    while pos > 0:
        step = min(block, pos)
        pos -= step
        handle.seek(pos)
        idx = handle.read(step).rfind(b"\n")
        if idx >= 0:
            return pos + idx + 1
        block = min(2 * block, _BLOCK)
    return 0


def lines_reverse(path: Path) -> Iterator[bytes]:
    """The complete physical lines of ``path`` from the last to the first (without ``\\n``;
    blank lines included). A missing file yields nothing. Memory is bounded by one block
    plus the longest line, so a tail costs O(tail), not O(history)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with-block below
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return
    with handle:
        pos = complete_end(handle, handle.seek(0, os.SEEK_END))
        carry, block = b"", _FIRST_BLOCK  # carry: the (partial) first line of the last block
        while pos > 0:
            step = min(block, pos)
            pos -= step
            block = min(2 * block, _BLOCK)
            handle.seek(pos)
            # every buffer ends at a line boundary, so the split's last part is b""
            body = (handle.read(step) + carry).split(b"\n")[:-1]
            carry = body.pop(0) + b"\n" if pos > 0 else b""
            yield from reversed(body)


def last_complete_line(path: Path) -> bytes | None:
    """The last complete non-blank line of ``path`` (without ``\\n``), read from the end;
    ``None`` when there is none (or no file)."""
    return next((line for line in lines_reverse(path) if line.strip()), None)


def tail_lines(path: Path, n: int) -> list[bytes]:
    """The last ``n`` complete physical lines of ``path`` (blank ones included), oldest
    first; ``[]`` when the file is missing or ``n <= 0``."""
    out: list[bytes] = []
    if n > 0:
        for line in lines_reverse(path):
            out.append(line)
            if len(out) >= n:
                break
    out.reverse()
    return out
