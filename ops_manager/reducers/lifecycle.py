"""The lifecycle projection (``loop.md`` §3.3): snapshot + last event envelope -> ``state.json``.

Pure. :class:`SnapshotView` is the part of a ``loop_run_snapshot`` envelope the projection
reads, extracted once with jq ``//`` semantics; :func:`project_lifecycle` builds the state
object in the contract's key order.
"""

from __future__ import annotations

from typing import Any

import attrs

from ops_manager.model._json import alt, as_nonneg_int, coerce_number, nonempty_str
from ops_manager.model._time import format_ts
from ops_manager.model.errors import OpsError
from ops_manager.reducers.run_status import ACTIVE_PHASE_EVENTS

SNAPSHOT_ENVELOPE_ERROR = "snapshot envelope is invalid or loop id mismatch"
EVENT_ENVELOPE_ERROR = "event envelope is invalid or loop id mismatch"


def _get(obj: object, *keys: str) -> Any:
    """``obj.k1.k2...`` with jq's null-propagation (never raises on odd shapes)."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _alt_str(value: object, default: str) -> str:
    """jq ``value // default`` for a field the contract types as a string."""
    chosen = alt(value, default)
    return chosen if isinstance(chosen, str) else default


def _as_count(value: object) -> int:
    """A cursor number from a snapshot: ``// 0``; anything that is not a number is 0.

    Negative integers pass through (they are reported, but never compared; see
    :func:`project_lifecycle`).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float):
        return int(value) if value.is_integer() else 0
    return value


@attrs.frozen
class SnapshotView:
    """What the lifecycle projection reads from a snapshot envelope."""

    repo_path: str
    loop_id: str
    run_id: str
    iteration: int | float
    status: str
    has_pending_approval: bool
    completion_ok: bool
    #: the raw ``runtime.superloopState.active`` value (``None`` when absent)
    active: Any
    gates: Any
    stuck: Any
    last_event_name: str | None
    last_event_at: str | None
    #: the snapshot's ``cursor.eventLineCount`` (total newline count of events.jsonl)
    event_line_count: int
    #: the snapshot's ``cursor.eventLineOffset``; ``None`` means "same as the count"
    event_line_offset: int | None = None

    @property
    def cursor_offset(self) -> int:
        """``cursor.eventLineOffset`` (defaults to the line count)."""
        return self.event_line_count if self.event_line_offset is None else self.event_line_offset

    @classmethod
    def from_envelope(cls, snapshot: dict[str, Any]) -> SnapshotView:
        """Extract the view from a ``loop_run_snapshot`` envelope (§3.3 derivations)."""
        return cls(
            repo_path=_alt_str(_get(snapshot, "source", "repoPath"), ""),
            loop_id=_alt_str(_get(snapshot, "source", "loopId"), ""),
            run_id=_alt_str(_get(snapshot, "run", "runId"), "unknown"),
            iteration=coerce_number(_get(snapshot, "run", "iteration")),
            status=_alt_str(_get(snapshot, "run", "status"), "unknown"),
            has_pending_approval=_get(snapshot, "runtime", "approval", "status") == "pending",
            completion_ok=_get(snapshot, "run", "summary", "completion_ok") is True,
            active=_get(snapshot, "runtime", "superloopState", "active"),
            gates=alt(_get(snapshot, "health", "gates")),
            stuck=alt(_get(snapshot, "health", "stuck")),
            last_event_name=nonempty_str(_get(snapshot, "health", "lastEventName")),
            last_event_at=nonempty_str(_get(snapshot, "health", "lastEventAt")),
            event_line_count=_as_count(_get(snapshot, "cursor", "eventLineCount")),
            event_line_offset=_as_count(_get(snapshot, "cursor", "eventLineOffset")),
        )


def _is_envelope(obj: object, envelope_type: str, loop_id: str) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("schemaVersion") == "v1"
        and obj.get("envelopeType") == envelope_type
        and _get(obj, "source", "loopId") == loop_id
    )


def validate_snapshot_envelope(obj: object, loop_id: str) -> None:
    """Raise ``snapshot envelope is invalid or loop id mismatch`` unless ``obj`` is a v1
    ``loop_run_snapshot`` of ``loop_id``."""
    if not _is_envelope(obj, "loop_run_snapshot", loop_id):
        raise OpsError(SNAPSHOT_ENVELOPE_ERROR)


def validate_event_envelope(obj: object, loop_id: str) -> None:
    """Raise ``event envelope is invalid or loop id mismatch`` unless ``obj`` is a v1
    ``loop_run_event`` of ``loop_id`` with a non-empty ``event.name``."""
    if not _is_envelope(obj, "loop_run_event", loop_id) or not nonempty_str(
        _get(obj, "event", "name")
    ):
        raise OpsError(EVENT_ENVELOPE_ERROR)


def divergence_flags(
    view: SnapshotView, last_event_name: str | None, previous_cursor_offset: object
) -> dict[str, bool]:
    """The three divergence flags, in contract order.

    - ``activeMismatch``: the runtime is not active, yet the last polled event is one that
      only happens mid-iteration (only the last event envelope counts; none -> False).
    - ``approvalCompletionConflict``: an approval is pending on a run that reports completion.
    - ``cursorRegression``: the event log's line count went backwards since the last
      projection (both offsets must be non-negative integers).
    """
    previous = as_nonneg_int(previous_cursor_offset)
    current = as_nonneg_int(view.cursor_offset)
    return {
        "activeMismatch": view.active is not True
        and last_event_name is not None
        and last_event_name in ACTIVE_PHASE_EVENTS,
        "approvalCompletionConflict": view.has_pending_approval and view.completion_ok,
        "cursorRegression": previous is not None and current is not None and previous > current,
    }


def confidence(any_divergence: bool, has_event: bool) -> str:
    """``low`` on any divergence; else ``medium`` without an event envelope; else ``high``."""
    if any_divergence:
        return "low"
    return "high" if has_event else "medium"


def project_lifecycle(
    view: SnapshotView,
    *,
    last_event_envelope: dict[str, Any] | None,
    previous_state: dict[str, Any] | None,
    now: int,
    snapshot_file: str | None,
    events_file: str | None,
    repo_path: str | None = None,
) -> dict[str, Any]:
    """The lifecycle state object (``OPS/state.json`` before reconcile's merges), §3.3 order.

    ``previous_state`` is the existing state file's object (``None``/``{}`` when absent or
    unparseable). ``repo_path`` overrides ``source.repoPath`` (reconcile passes the local
    repo: over sprite_service the snapshot carries the service's path, Q-36).
    """
    previous = previous_state if isinstance(previous_state, dict) else {}
    previous_status = _alt_str(_get(previous, "transition", "currentState"), "none")
    previous_offset = alt(_get(previous, "cursor", "eventLineOffset"), 0)

    has_event = last_event_envelope is not None
    event_name = nonempty_str(_get(last_event_envelope, "event", "name")) if has_event else None
    flags = divergence_flags(view, event_name, previous_offset)
    any_divergence = any(flags.values())
    trigger = f"event:{event_name or ''}" if has_event else f"snapshot_status:{view.status}"

    return {
        "schemaVersion": "v1",
        "generatedAt": format_ts(now),
        "source": {
            "repoPath": view.repo_path if repo_path is None else repo_path,
            "loopId": view.loop_id,
        },
        "run": {"runId": view.run_id, "iteration": view.iteration},
        "transition": {
            "previousState": previous_status,
            "triggeringSignal": trigger,
            "currentState": view.status,
            "confidence": confidence(any_divergence, has_event),
        },
        "projection": {
            "status": view.status,
            "hasPendingApproval": view.has_pending_approval,
            "completionOk": view.completion_ok,
            "gates": view.gates,
            "stuck": view.stuck,
            # DECISIONS rule 3 / Q-6: real booleans; upstream's `// null` turned false into null
            "active": view.active,
            "lastEventName": view.last_event_name,
            "lastEventAt": view.last_event_at,
        },
        "cursor": {
            "eventLineOffset": view.cursor_offset,
            "eventLineCount": view.event_line_count,
        },
        "divergence": {"any": any_divergence, "flags": flags},
        "evidence": {
            "snapshotFile": snapshot_file,
            "eventsFile": events_file,
            "snapshotEnvelope": {
                "runStatus": view.status,
                "lastEventName": view.last_event_name,
                "hasPendingApproval": view.has_pending_approval,
            },
            "lastEventEnvelope": last_event_envelope,
        },
    }
