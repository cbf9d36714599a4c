"""Pure builders of a reconcile pass: the records, documents and views it derives.

Split out of :mod:`ops_manager.engine.reconcile`: nothing here reads or writes a file
except :func:`cursor_line_offset` (it validates a cursor the pass could not parse), and
nothing depends on the pass's state beyond its explicit arguments.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ops_manager._jsonfmt import alt, as_nonneg_int, json_text_bytes, loads_object, strip_nulls
from ops_manager._timefmt import format_ts
from ops_manager.engine._reconcile_types import ReconcileFiles, ReconcileSettings
from ops_manager.reducers.escalations import (
    awaiting_approval_escalation,
    awaiting_approval_escalation_decision,
    divergence_escalation,
    divergence_escalation_decision,
    health_escalation,
    health_escalation_decision,
    ordering_drift_escalation,
)
from ops_manager.reducers.lifecycle import SnapshotView
from ops_manager.reducers.posture import run_posture
from ops_manager.reducers.sequence import SeqBatch
from ops_manager.reducers.stream import StreamFold, fold_batch
from ops_manager.runtime import EventLine, StreamPosition, build_event_envelope
from ops_manager.store import LoopPaths
from ops_manager.transports import EventTuple, IngestFailure, RuntimeView


def event_digest(raw: dict[str, Any]) -> str:
    """A content fingerprint of one event: sha256 of its canonical JSON (sorted keys).

    Computed from the parsed object, not the bytes, so it is the same whichever transport
    delivered the event (the sprite service hands over the parsed ``event.raw``).
    """
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(json_text_bytes(canonical)).hexdigest()


class BatchTap:
    """Watches the event stream on its way into the fold: count, first/last, last event,
    and (on a replay) the fingerprint of the event at ``watch_line``."""

    def __init__(self, watch_line: int | None = None) -> None:
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None
        self.last_event: EventTuple | None = None
        #: the line whose event a replay compares with the one ingested before
        self.watch_line = watch_line
        self.watched_digest: str | None = None

    def fold(self, fold: StreamFold, events: Iterator[EventTuple]) -> StreamFold:
        """Fold ``events`` into ``fold``, watching them in the same loop (no extra layer)."""
        batch = fold_batch(fold, events, self.watch_line)
        self.count = batch.count
        self.first = batch.first
        if batch.watched is not None:
            self.watched_digest = event_digest(batch.watched)
        if batch.last is not None:
            self.last_event = batch.last
            self.last = batch.last[0]
        return batch.fold

    def seq_batch(self) -> SeqBatch:
        # local sequence values are physical line numbers: strictly increasing by construction
        return SeqBatch(count=self.count, first=self.first, last=self.last)


def last_envelope(
    paths: LoopPaths, trace_id: str, tap: BatchTap, total_lines: int, now: int
) -> dict[str, Any] | None:
    """The lifecycle reducer's envelope of the last event the pass folded, if any."""
    if tap.last_event is None:
        return None
    line, raw, name, timestamp = tap.last_event
    return build_event_envelope(
        (str(paths.repo), paths.loop_id),
        EventLine(line=line, raw=raw, name=name, timestamp=timestamp),
        total_lines=total_lines,
        now=now,
        trace_id=trace_id,
    )


def escalations_step(
    s: ReconcileSettings,
    paths: LoopPaths,
    files: ReconcileFiles,
    *,
    ok: bool,
    failure: IngestFailure | None,
    merged: dict[str, Any] | None,
    prev_state: dict[str, Any],
    sequence: dict[str, Any] | None,
    health: dict[str, Any],
    prev_status: str,
    prev_codes: list[Any],
    now: int,
) -> list[dict[str, Any]]:
    """The divergence / ordering-drift / awaiting-approval / health escalation rows this
    pass is due."""
    rows: list[dict[str, Any]] = []
    if ok and merged is not None:
        prev_div = prev_state.get("divergence")
        prev_div = prev_div if isinstance(prev_div, dict) else {}
        prev_flags = prev_div.get("flags") if isinstance(prev_div.get("flags"), dict) else None
        due, _reason = divergence_escalation_decision(
            prev_flags, prev_div.get("any") is True, merged
        )
        if due:
            rows.append(
                divergence_escalation(
                    now=now,
                    loop_id=paths.loop_id,
                    trace_id=s.trace_id,
                    transport=s.transport,
                    state_file=str(files.state),
                    cursor_file=str(files.cursor),
                    state=merged,
                )
            )
    if sequence is not None:
        transition = sequence.get("transition") or {}
        if transition.get("transitionedToDrift") is True:
            rows.append(
                ordering_drift_escalation(
                    now=now,
                    loop_id=paths.loop_id,
                    trace_id=s.trace_id,
                    transport=s.transport,
                    state_file=str(files.state),
                    sequence_state_file=str(files.sequence_state),
                    sequence_telemetry_file=str(files.sequence_telemetry),
                    sequence=sequence,
                )
            )
    if ok and merged is not None:
        posture = run_posture(merged)
        due, _reason = awaiting_approval_escalation_decision(
            run_posture(prev_state).kind, posture.kind
        )
        if due:
            rows.append(
                awaiting_approval_escalation(
                    now=now,
                    loop_id=paths.loop_id,
                    trace_id=s.trace_id,
                    transport=s.transport,
                    state_file=str(files.state),
                    health_file=str(files.health),
                    state=merged,
                    since=posture.since,
                )
            )
    due, _reason = health_escalation_decision(prev_status, prev_codes, health)
    if due:
        rows.append(
            health_escalation(
                now=now,
                loop_id=paths.loop_id,
                trace_id=s.trace_id,
                transport=s.transport,
                ingest_status="success" if ok else "failed",
                failure_code=None if failure is None else failure.code,
                state_file=str(files.state),
                cursor_file=str(files.cursor),
                health_file=str(files.health),
                health=health,
            )
        )
    return rows


def reconcile_telemetry_row(
    s: ReconcileSettings,
    paths: LoopPaths,
    *,
    started: int,
    finished: int,
    failure: IngestFailure | None,
    offset_before: int,
    offset_after: int,
    ingested: int,
    transport_health: dict[str, Any],
    sequence: dict[str, Any] | None,
    health: dict[str, Any],
) -> dict[str, Any]:
    """The pass's ``TEL/reconcile.jsonl`` row."""
    if sequence is not None:
        seq_status = sequence.get("status")
        seq_reason = sequence.get("reasonCode")
    else:
        seq_status = "skipped_ingest_failed"
        seq_reason = None
    return strip_nulls(
        {
            "timestamp": format_ts(finished),
            "startedAt": format_ts(started),
            "loopId": paths.loop_id,
            "traceId": s.trace_id,
            "transport": s.transport,
            "status": "success" if failure is None else "failed",
            "failureCode": None if failure is None else failure.code,
            "failureMessage": None if failure is None else (failure.message or None),
            "cursorOffsetBefore": offset_before,
            "cursorOffsetAfter": offset_after,
            "eventsIngested": ingested,
            "maxEvents": s.max_events,
            "fromStart": s.from_start,
            "retryAttempts": s.transport_config.retry_attempts,
            "retryBackoffSeconds": s.transport_config.retry_backoff_seconds,
            "thresholdProfile": s.thresholds.profile or None,
            "durationSeconds": max(0, finished - started),
            "transportFailureStreak": transport_health.get("failureStreak", 0),
            "sequenceStatus": seq_status,
            "sequenceReasonCode": seq_reason,
            "healthStatus": health.get("status"),
            "healthReasonCodes": health.get("reasonCodes", []),
        }
    )


def cursor_document(
    paths: LoopPaths, position: StreamPosition, total_lines: int, now: int
) -> dict[str, Any]:
    """The ``cursor.json`` document."""
    return {
        "schemaVersion": "v1",
        "repoPath": str(paths.repo),
        "loopId": paths.loop_id,
        "eventsFile": paths.relative(paths.events_file),
        "eventLineOffset": position.line_offset,
        "eventLineCount": total_lines,
        "updatedAt": format_ts(now),
        "position": position.to_json(),
    }


def stream_state_document(
    paths: LoopPaths,
    position: StreamPosition,
    total_lines: int,
    torn: int,
    fold: StreamFold,
    now: int,
    last_event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``stream-state.json`` document: the verified position, the fold, and the
    fingerprint of the last ingested event (``{line, sha256}``, see :func:`event_digest`)
    that a later ``--from-start`` replay checks to tell the same log from a rewritten one."""
    return {
        "schemaVersion": "v1",
        "updatedAt": format_ts(now),
        "loopId": paths.loop_id,
        "eventsFile": paths.relative(paths.events_file),
        "position": position.to_json(),
        "eventLineCount": total_lines,
        "tornTailBytes": torn,
        "fold": fold.to_json(),
        "lastEvent": last_event,
    }


def last_event_fingerprint(
    tap: BatchTap, previous: dict[str, Any], from_start: bool
) -> dict[str, Any] | None:
    """The ``lastEvent`` of the new stream state: this pass's last event, else (a pass that
    ingested nothing) the previous one, unless the pass replayed from the start."""
    if tap.last_event is not None:
        line, raw, _name, _ts = tap.last_event
        return {"line": line, "sha256": event_digest(raw)}
    if from_start:
        return None
    stored = previous.get("lastEvent")
    return stored if isinstance(stored, dict) else None


def replay_log_rewrite(previous: dict[str, Any], tap: BatchTap, total_lines: int) -> str | None:
    """What a replay's content check found: ``"truncated"`` (the log no longer reaches the
    previously last ingested line), ``"rewritten"`` (that line holds another event now), or
    ``None`` (same event, or nothing to check against / the replay stopped before it)."""
    stored = previous.get("lastEvent")
    line = as_nonneg_int(stored.get("line")) if isinstance(stored, dict) else None
    sha = stored.get("sha256") if isinstance(stored, dict) else None
    if not line or not isinstance(sha, str):
        return None
    if tap.watched_digest is None:
        if total_lines < line:
            return "truncated"
        # the replay read past that line, and it no longer holds an event
        return "rewritten" if tap.last is not None and tap.last > line else None
    return None if tap.watched_digest == sha else "rewritten"


def replay_watch_line(previous: dict[str, Any]) -> int | None:
    """The line a replay fingerprints (the previously last ingested one), if known."""
    stored = previous.get("lastEvent")
    return as_nonneg_int(stored.get("line")) if isinstance(stored, dict) else None


def merged_state(
    new_state: dict[str, Any] | None,
    prev_state: dict[str, Any],
    prev_state_exists: bool,
    health: dict[str, Any],
    sequence: dict[str, Any] | None,
    trace_id: str,
) -> dict[str, Any] | None:
    """The ``state.json`` to save: this pass's (or, on failure, the previous) state plus
    ``health``/``trace`` (and ``sequence``); ``None`` when there is nothing to save."""
    # state merge (jq `+`: existing keys keep their place, new keys are appended)
    merged: dict[str, Any] | None
    if new_state is not None:
        merged = dict(new_state)
        merged["health"] = health
        merged["trace"] = {"reconcileTraceId": trace_id}
        merged["sequence"] = sequence
    elif prev_state_exists:
        merged = dict(prev_state)
        merged["health"] = health
        trace = prev_state.get("trace")
        merged["trace"] = {
            **(trace if isinstance(trace, dict) else {}),
            "reconcileTraceId": trace_id,
        }
    else:
        merged = None
    return merged


def snapshot_view(view: RuntimeView, loop_id: str, total_lines: int) -> SnapshotView:
    """The lifecycle reducer's input, built from a transport's runtime view."""
    summary = view.summary if isinstance(view.summary, dict) else None
    state = view.superloop_state if isinstance(view.superloop_state, dict) else None
    approval = view.approval if isinstance(view.approval, dict) else None
    last = view.last_event if isinstance(view.last_event, dict) else None
    return SnapshotView(
        repo_path=view.repo_path,
        loop_id=loop_id,
        run_id=view.run_id,
        iteration=view.iteration,
        status=view.status,
        has_pending_approval=approval is not None and approval.get("status") == "pending",
        completion_ok=alt(summary.get("completion_ok") if summary else None, False) is True,
        active=state.get("active") if state else None,
        gates=summary.get("gates") if summary else None,
        stuck=summary.get("stuck") if summary else None,
        last_event_name=str_or_none(alt(last.get("event"), last.get("type")) if last else None),
        last_event_at=str_or_none(last.get("timestamp") if last else None),
        event_line_count=total_lines,
    )


def cursor_line_offset(path: Path, cursor: dict[str, Any]) -> int:
    """The line offset of a cursor without a stored position (e.g. written upstream).

    Like the upstream poll (``loop.md`` §3.2 step 3), a cursor file that exists but cannot
    be read fails the pass (``events_unavailable``) instead of silently starting over from
    line 1: ``invalid JSON in cursor file: <path>`` / ``invalid cursor offset in <path>``.
    A missing file, or a missing/null ``eventLineOffset``, is offset 0.
    """
    if not cursor:
        if not path.exists():
            return 0
        try:
            parsed = loads_object(path.read_bytes())
        except OSError:
            parsed = None
        if parsed is None:
            raise IngestFailure("events_unavailable", f"error: invalid JSON in cursor file: {path}")
    raw = alt(cursor.get("eventLineOffset"))
    if raw is None:
        return 0
    offset = as_nonneg_int(raw)
    if offset is None:
        raise IngestFailure("events_unavailable", f"error: invalid cursor offset in {path}")
    return offset


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value != "" else None
