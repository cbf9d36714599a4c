"""What a reconcile pass's ``health.json`` / ``state.json`` derive from, recorded (issue 13.4).

Pure. A pass builds one :class:`PassInputs` from what it observed and read (the runtime
snapshot's fields, the intents file's last status, the alert config verdict, the previous
``state.json``'s two facts the lifecycle reducer reads, the thresholds it applied, the
control telemetry counts its summary saw), records it as the trailing ``inputs`` key of its
``telemetry/reconcile.jsonl`` row (docs/compatibility.md C-15d), and computes the lifecycle
state and the health projection from that value through :func:`pass_lifecycle` and
:func:`pass_health`. ``rebuild`` parses the row's ``inputs`` back (:meth:`PassInputs.from_json`)
and calls the same two functions, joined with the streams that already hold the rest (the
last event in ``events.jsonl``, the heartbeat / sequence / profile-drift rows, the
transport-health fold of the reconcile rows). One code path, so the live pass and the
rebuild cannot drift apart.

Only what is not already in a stream is recorded, and the reducers' *inputs* rather than
their outputs: the snapshot as the :class:`~ops_manager.reducers.lifecycle.SnapshotView`
the lifecycle reducer reads (not the runtime files themselves), the last event as its line
number and content digest (its bytes are in ``events.jsonl``).
"""

from __future__ import annotations

from typing import Any

import attrs

from ops_manager.reducers.health import HealthInputs, compute_health
from ops_manager.reducers.lifecycle import SnapshotView, project_lifecycle
from ops_manager.reducers.thresholds import Thresholds

#: ``SnapshotView`` field -> the camelCase key it is recorded under (in this order)
_SNAPSHOT_KEYS: tuple[tuple[str, str], ...] = (
    ("repo_path", "repoPath"),
    ("loop_id", "loopId"),
    ("run_id", "runId"),
    ("iteration", "iteration"),
    ("status", "status"),
    ("has_pending_approval", "hasPendingApproval"),
    ("completion_ok", "completionOk"),
    ("active", "active"),
    ("gates", "gates"),
    ("stuck", "stuck"),
    ("last_event_name", "lastEventName"),
    ("last_event_at", "lastEventAt"),
    ("event_line_count", "eventLineCount"),
    ("event_line_offset", "eventLineOffset"),
)


def _str_or_null(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"inputs: {key} must be a string or null")
    return value


def _int(obj: dict[str, Any], key: str, *, nullable: bool = False) -> Any:
    value = obj.get(key)
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"inputs: {key} must be an integer")
    return value


def _object(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"inputs: {key} must be an object or null")
    return value


def snapshot_to_json(view: SnapshotView) -> dict[str, Any]:
    """The recorded form of a :class:`SnapshotView` (camelCase, every field, nulls kept)."""
    return {key: getattr(view, field) for field, key in _SNAPSHOT_KEYS}


def snapshot_from_json(obj: object) -> SnapshotView:
    """The inverse of :func:`snapshot_to_json`; ``ValueError`` on any other shape."""
    if not isinstance(obj, dict) or list(obj) != [key for _f, key in _SNAPSHOT_KEYS]:
        raise ValueError("inputs: snapshot has other keys than a SnapshotView")
    for key in ("repoPath", "loopId", "runId", "status"):
        if not isinstance(obj[key], str):
            raise ValueError(f"inputs: snapshot.{key} must be a string")
    for key in ("hasPendingApproval", "completionOk"):
        if not isinstance(obj[key], bool):
            raise ValueError(f"inputs: snapshot.{key} must be a boolean")
    iteration = obj["iteration"]
    if isinstance(iteration, bool) or not isinstance(iteration, int | float):
        raise ValueError("inputs: snapshot.iteration must be a number")
    return SnapshotView(
        repo_path=obj["repoPath"],
        loop_id=obj["loopId"],
        run_id=obj["runId"],
        iteration=iteration,
        status=obj["status"],
        has_pending_approval=obj["hasPendingApproval"],
        completion_ok=obj["completionOk"],
        active=obj["active"],
        gates=obj["gates"],
        stuck=obj["stuck"],
        last_event_name=_str_or_null(obj, "lastEventName"),
        last_event_at=_str_or_null(obj, "lastEventAt"),
        event_line_count=_int(obj, "eventLineCount"),
        event_line_offset=_int(obj, "eventLineOffset", nullable=True),
    )


@attrs.frozen
class PreviousState:
    """The facts of the previous ``state.json`` a pass depends on: the two the lifecycle
    reducer reads, and its ``generatedAt`` (a failed pass keeps the previous state, so
    ``rebuild`` checks it is the one the last successful pass wrote, not another writer's)."""

    current_state: Any
    event_line_offset: Any
    generated_at: Any

    @classmethod
    def of(cls, state: dict[str, Any]) -> PreviousState:
        """Pick the facts out of a parsed ``state.json`` (odd shapes -> ``None`` facts)."""
        transition = state.get("transition")
        cursor = state.get("cursor")
        return cls(
            current_state=transition.get("currentState") if isinstance(transition, dict) else None,
            event_line_offset=cursor.get("eventLineOffset") if isinstance(cursor, dict) else None,
            generated_at=state.get("generatedAt"),
        )

    def as_state(self) -> dict[str, Any]:
        """A minimal state object the lifecycle reducer reads exactly these facts from."""
        return {
            "transition": {"currentState": self.current_state},
            "cursor": {"eventLineOffset": self.event_line_offset},
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "currentState": self.current_state,
            "eventLineOffset": self.event_line_offset,
            "generatedAt": self.generated_at,
        }

    @classmethod
    def from_json(cls, obj: object) -> PreviousState:
        if not isinstance(obj, dict) or list(obj) != [
            "currentState",
            "eventLineOffset",
            "generatedAt",
        ]:
            raise ValueError("inputs: previous is not {currentState, eventLineOffset, generatedAt}")
        return cls(obj["currentState"], obj["eventLineOffset"], obj["generatedAt"])


@attrs.frozen
class ControlCounts:
    """What the pass's telemetry summary took from ``telemetry/control.jsonl``: its window,
    the ambiguous and the malformed rows in it (the summary reads nothing else there)."""

    window: int
    ambiguous: int
    malformed: int

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window, "ambiguous": self.ambiguous, "malformed": self.malformed}

    @classmethod
    def from_json(cls, obj: object) -> ControlCounts:
        if not isinstance(obj, dict) or list(obj) != ["window", "ambiguous", "malformed"]:
            raise ValueError("inputs: control is not {window, ambiguous, malformed}")
        return cls(_int(obj, "window"), _int(obj, "ambiguous"), _int(obj, "malformed"))


@attrs.frozen
class PassInputs:
    """Everything ``health.json`` / ``state.json`` of one pass derive from that no stream
    holds otherwise. ``snapshot``/``runtime``/``last_event`` are ``None`` on a failed pass
    (it observed nothing); ``previous`` is ``None`` when there was no ``state.json``;
    ``control`` is ``None`` when the telemetry summary was unavailable (no tuning)."""

    thresholds: Thresholds
    last_control_status: str | None
    alert_config_error: str | None
    previous: PreviousState | None
    snapshot: SnapshotView | None = None
    #: ``state.evidence.runtime`` (reducers.posture.run_evidence of the snapshot's files)
    runtime: dict[str, Any] | None = None
    #: ``{line, sha256}`` of the last event the pass folded (its bytes are in events.jsonl)
    last_event: dict[str, Any] | None = None
    control: ControlCounts | None = None

    def to_json(self) -> dict[str, Any]:
        """The row's ``inputs`` (fixed key order, nulls kept; the failed-pass form has no
        ``snapshot``/``runtime``/``lastEvent``)."""
        out: dict[str, Any] = {
            "thresholds": self.thresholds.to_json(),
            "lastControlStatus": self.last_control_status,
            "alertConfigError": self.alert_config_error,
            "previous": None if self.previous is None else self.previous.to_json(),
        }
        if self.snapshot is not None:
            out["snapshot"] = snapshot_to_json(self.snapshot)
            out["runtime"] = self.runtime
            out["lastEvent"] = self.last_event
        out["control"] = None if self.control is None else self.control.to_json()
        return out

    @classmethod
    def from_json(cls, obj: object) -> PassInputs:
        """Parse a row's ``inputs``; ``ValueError`` when it is not what :meth:`to_json` writes."""
        if not isinstance(obj, dict):
            raise ValueError("inputs: not an object")
        success_keys = [
            "thresholds",
            "lastControlStatus",
            "alertConfigError",
            "previous",
            "snapshot",
            "runtime",
            "lastEvent",
            "control",
        ]
        failed_keys = [k for k in success_keys if k not in ("snapshot", "runtime", "lastEvent")]
        if list(obj) not in (success_keys, failed_keys):
            raise ValueError("inputs: unexpected keys")
        previous = obj["previous"]
        control = obj["control"]
        snapshot = obj.get("snapshot")
        last_event = _object(obj, "lastEvent")
        if last_event is not None and (
            list(last_event) != ["line", "sha256"]
            or _int(last_event, "line") < 1
            or not isinstance(last_event["sha256"], str)
        ):
            raise ValueError("inputs: lastEvent is not {line, sha256}")
        return cls(
            thresholds=Thresholds.from_json(obj["thresholds"]),
            last_control_status=_str_or_null(obj, "lastControlStatus"),
            alert_config_error=_str_or_null(obj, "alertConfigError"),
            previous=None if previous is None else PreviousState.from_json(previous),
            snapshot=None if "snapshot" not in obj else snapshot_from_json(snapshot),
            runtime=_object(obj, "runtime"),
            last_event=last_event,
            control=None if control is None else ControlCounts.from_json(control),
        )


def pass_lifecycle(
    inputs: PassInputs,
    *,
    last_event_envelope: dict[str, Any] | None,
    now: int,
    repo_path: str,
) -> dict[str, Any]:
    """The lifecycle state of a successful pass (``state.json`` before reconcile's merges),
    with the runtime evidence the run posture needs in ``evidence.runtime``."""
    assert inputs.snapshot is not None, "a failed pass has no lifecycle state"
    state = project_lifecycle(
        inputs.snapshot,
        last_event_envelope=last_event_envelope,
        previous_state=None if inputs.previous is None else inputs.previous.as_state(),
        now=now,
        snapshot_file=None,
        events_file=None,
        # state.source is the local repo even when the runtime is remote
        repo_path=repo_path,
    )
    # ours: the runtime facts the run posture needs (reducers/posture.py), kept with the
    # rest of the projection's evidence so the contract's top-level keys stay as they are
    evidence = state.get("evidence")
    if isinstance(evidence, dict) and inputs.runtime is not None:
        evidence["runtime"] = inputs.runtime
    return state


def pass_health(
    inputs: PassInputs,
    *,
    now: int,
    trace_id: str | None,
    transport: str,
    failure_code: str | None,
    ok: bool,
    state: dict[str, Any],
    heartbeat_state: dict[str, Any],
    sequence_state: dict[str, Any],
    transport_health: dict[str, Any],
) -> dict[str, Any]:
    """The pass's ``health.json``: :func:`~ops_manager.reducers.health.compute_health` of
    the recorded inputs and the projections of the same pass (``state`` is the lifecycle
    state of a successful pass, the previous ``state.json`` of a failed one)."""
    return compute_health(
        HealthInputs(
            now=now,
            trace_id=trace_id,
            transport=transport,
            ingest_status="success" if ok else "failed",
            failure_code=failure_code,
            thresholds=inputs.thresholds,
            state=state,
            heartbeat_state=heartbeat_state,
            sequence_state=sequence_state,
            transport_health=transport_health,
            last_control_status=inputs.last_control_status,
            alert_config_error=inputs.alert_config_error,
        )
    )


__all__ = [
    "ControlCounts",
    "PassInputs",
    "PreviousState",
    "pass_health",
    "pass_lifecycle",
    "snapshot_from_json",
    "snapshot_to_json",
]
