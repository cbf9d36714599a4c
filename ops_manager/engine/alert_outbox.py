"""Queries of a loop's alert outbox (``OPS/alert-outbox.jsonl``) for the front ends: the
console shows every notification the outbox knows without reading the stream or calling the
outbox fold itself (``docs/architecture.md``, layering)."""

from __future__ import annotations

from pathlib import Path

from ops_manager.reducers.alerts import OutboxEntry, fold_outbox
from ops_manager.store import iter_records


def outbox_entries(path: Path) -> dict[tuple[str, str], OutboxEntry]:
    """The outbox at ``path`` folded into one entry per (idempotency key, sink), in queue
    order. Raises ``OpsError`` for a stream that cannot be read as records."""
    return fold_outbox(rec for _, rec in iter_records(path))
