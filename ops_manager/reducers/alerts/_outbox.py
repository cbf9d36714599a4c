"""The outbox fold: the pending set is a fold of ``alert-outbox.jsonl``. PURE."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ops_manager.model._json import as_nonneg_int, strip_nulls
from ops_manager.model._time import format_ts, parse_ts
from ops_manager.reducers.alerts._decide import (
    nonempty_str,
)
from ops_manager.reducers.alerts._vocab import (
    JSON,
)

# --- the outbox fold ---------------------------------------------------------------------

OUTBOX_QUEUED = "queued"
OUTBOX_RETRYING = "retrying"
OUTBOX_TERMINAL = "terminal"
OUTBOX_GAVE_UP = "gave_up"
OUTBOX_DELIVERED = "delivered"
OUTBOX_STATUSES = (
    OUTBOX_QUEUED,
    OUTBOX_RETRYING,
    OUTBOX_TERMINAL,
    OUTBOX_GAVE_UP,
    OUTBOX_DELIVERED,
)
#: retried automatically by later dispatch runs
PENDING_STATUSES = (OUTBOX_QUEUED, OUTBOX_RETRYING)
#: kept for ``alert-replay --include-terminal``
STOPPED_STATUSES = (OUTBOX_TERMINAL, OUTBOX_GAVE_UP)


@attrs.frozen
class OutboxEntry:
    """The folded state of one (idempotency key, sink) delivery."""

    key: str
    sink_id: str
    sink_type: str
    status: str
    attempts: int
    event: Mapping[str, Any]
    first_queued_at: str | None
    next_attempt_at: str | None
    #: position of its first ``queued`` record (outbox order = send order)
    order: int
    last: Mapping[str, Any]
    #: the ``queued`` record that holds the event (kept for compaction)
    queued_record: Mapping[str, Any]

    @property
    def dedup_key(self) -> str:
        """The episode key of the notification."""
        return str(self.event.get("dedupKey", ""))

    @property
    def pending(self) -> bool:
        """Retried automatically by later runs."""
        return self.status in PENDING_STATUSES

    def due(self, now: float) -> bool:
        """Whether a pending entry may be attempted at ``now``."""
        due_at = parse_ts(self.next_attempt_at) if self.next_attempt_at else None
        return due_at is None or due_at <= now


def outbox_step(
    current: OutboxEntry | None, rec: Mapping[str, Any], position: int
) -> OutboxEntry | None:
    """Apply one outbox record to the entry it belongs to (``None``: the record is ignored).

    A ``queued`` record carries the event and (re)opens the entry; later records update
    its status. Records for an entry never queued, or with an unknown status, are ignored.
    """
    key, sink_id, status = rec.get("idempotencyKey"), rec.get("sinkId"), rec.get("status")
    if not isinstance(key, str) or not isinstance(sink_id, str) or status not in OUTBOX_STATUSES:
        return None
    attempts = as_nonneg_int(rec.get("attempts"))
    if status == OUTBOX_QUEUED and isinstance(rec.get("event"), dict):
        return OutboxEntry(
            key=key,
            sink_id=sink_id,
            sink_type=str(rec.get("sinkType", "")),
            status=status,
            attempts=attempts if attempts is not None else (current.attempts if current else 0),
            event=rec["event"],
            first_queued_at=current.first_queued_at
            if current
            else nonempty_str(rec.get("timestamp")),
            next_attempt_at=nonempty_str(rec.get("nextAttemptAt")),
            order=current.order if current else position,
            last=rec,
            queued_record=rec,
        )
    if current is None:
        return None
    return attrs.evolve(
        current,
        status=status,
        attempts=attempts if attempts is not None else current.attempts,
        next_attempt_at=nonempty_str(rec.get("nextAttemptAt")),
        last=rec,
    )


def outbox_ident(rec: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (idempotency key, sink) entry a record belongs to; ``None`` when either is not a
    string (:func:`outbox_step` ignores such a record, and a list or an object there would
    not even be a dict key)."""
    key, sink_id = rec.get("idempotencyKey"), rec.get("sinkId")
    if isinstance(key, str) and isinstance(sink_id, str):
        return key, sink_id
    return None


def fold_outbox(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], OutboxEntry]:
    """Fold ``alert-outbox.jsonl`` records into one entry per (key, sink), in queue order."""
    out: dict[tuple[str, str], OutboxEntry] = {}
    for position, rec in enumerate(records):
        ident = outbox_ident(rec)
        entry = None if ident is None else outbox_step(out.get(ident), rec, position)
        if entry is not None:
            out[(entry.key, entry.sink_id)] = entry
    return out


def outbox_record(
    *,
    now: float,
    status: str,
    key: str,
    sink_id: str,
    sink_type: str,
    event: Mapping[str, Any] | None,
    attempts: int,
    trace_id: str,
    http_status: int | None = None,
    reason_code: str | None = None,
    message: str | None = None,
    retry_after_seconds: float | None = None,
    next_attempt_at: float | None = None,
    source: str | None = None,
) -> JSON:
    """One ``alert-outbox.jsonl`` record (null-filtered; the event only on ``queued``)."""
    return strip_nulls(
        {
            "timestamp": format_ts(int(now)),
            "status": status,
            "idempotencyKey": key,
            "sinkId": sink_id,
            "sinkType": sink_type,
            "loopId": event.get("loopId") if event else None,
            "action": event.get("action") if event else None,
            "category": event.get("category") if event else None,
            "dedupKey": event.get("dedupKey") if event else None,
            "attempts": attempts,
            "httpStatus": http_status,
            "reasonCode": reason_code,
            "message": message,
            "retryAfterSeconds": retry_after_seconds,
            "nextAttemptAt": format_ts(math.ceil(next_attempt_at))
            if next_attempt_at is not None
            else None,
            "traceId": trace_id,
            "source": source,
            "event": dict(event) if event is not None and status == OUTBOX_QUEUED else None,
        }
    )


def outbox_counts(entries: Iterable[OutboxEntry]) -> JSON:
    """``pendingCount`` / ``terminalCount`` / ``gaveUpCount`` of the folded outbox."""
    pending = terminal = gave_up = 0
    for entry in entries:
        if entry.pending:
            pending += 1
        elif entry.status == OUTBOX_TERMINAL:
            terminal += 1
        elif entry.status == OUTBOX_GAVE_UP:
            gave_up += 1
    return {"pendingCount": pending, "terminalCount": terminal, "gaveUpCount": gave_up}
