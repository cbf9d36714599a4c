"""Fresh trace ids, without importing :mod:`uuid` on a command's start-up path."""

from __future__ import annotations

import os


def new_trace_id() -> str:
    """A random RFC 4122 version-4 UUID string, as ``str(uuid.uuid4())`` gives.

    ``uuid`` imports ``platform`` and more (~2 ms per process); a reconcile pass run every
    few seconds per loop only needs 16 random bytes formatted.
    """
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
