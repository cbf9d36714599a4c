"""Escalation rows for ``OPS/escalations.jsonl`` (``loop.md`` §3.8.7) and the decisions
whether to append them.

Row builders take plain values (file paths already as strings) and return the row in the
contract's key order. Decisions are small ordered rule tables returning
``(escalate, reason)`` so the shell can log why a row was or was not appended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ops_manager.model._json import alt, strip_nulls
from ops_manager.model._time import format_ts

#: escalation ``category`` values (§5.7)
DIVERGENCE = "divergence_detected"
ORDERING_DRIFT = "ordering_drift_detected"
HEALTH_DEGRADED = "health_degraded"
HEALTH_CRITICAL = "health_critical"
PROFILE_DRIFT = "profile_drift_detected"
#: ours (docs/compatibility.md): a loop started waiting for an approval decision; routed
#: like any category, and off in the shipped alert-sink config (severity ``info``, its
#: route disabled)
AWAITING_APPROVAL = "awaiting_approval"


def _get(obj: object, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _or_empty(value: object) -> Any:
    """jq ``value // {}``."""
    chosen = alt(value)
    return {} if chosen is None else chosen


# --- row builders ------------------------------------------------------------------------


def divergence_escalation(
    *,
    now: int,
    loop_id: str,
    trace_id: str | None,
    transport: str,
    state_file: str,
    cursor_file: str,
    state: dict[str, Any],
) -> dict[str, Any]:
    """The ``divergence_detected`` row (not stripped: ``traceId`` is always present)."""
    return {
        "timestamp": format_ts(now),
        "loopId": loop_id,
        "traceId": trace_id or None,
        "category": DIVERGENCE,
        "transport": transport,
        "stateFile": state_file,
        "cursorFile": cursor_file,
        "divergenceFlags": _or_empty(_get(state, "divergence", "flags")),
        "state": {
            "transition": _or_empty(_get(state, "transition")),
            "projection": _or_empty(_get(state, "projection")),
            "cursor": _or_empty(_get(state, "cursor")),
        },
    }


def ordering_drift_escalation(
    *,
    now: int,
    loop_id: str,
    trace_id: str | None,
    transport: str,
    state_file: str,
    sequence_state_file: str,
    sequence_telemetry_file: str,
    sequence: dict[str, Any],
) -> dict[str, Any]:
    """The ``ordering_drift_detected`` row (**[strip]** top level)."""
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id or None,
            "category": ORDERING_DRIFT,
            "transport": transport,
            "reasonCode": alt(_get(sequence, "reasonCode"), ORDERING_DRIFT),
            "stateFile": state_file,
            "sequenceStateFile": sequence_state_file,
            "sequenceTelemetryFile": sequence_telemetry_file,
            "sequence": {
                "status": _get(sequence, "status"),
                "driftActive": _get(sequence, "driftActive"),
                "violations": _get(sequence, "violations"),
                "snapshot": _get(sequence, "snapshot"),
                "events": _get(sequence, "events"),
            },
        }
    )


def health_escalation(
    *,
    now: int,
    loop_id: str,
    trace_id: str | None,
    transport: str,
    ingest_status: str,
    failure_code: str | None,
    state_file: str,
    cursor_file: str,
    health_file: str,
    health: dict[str, Any],
) -> dict[str, Any]:
    """The ``health_<status>`` row (**[strip]**; ``failureCode`` only on failed passes)."""
    status = _get(health, "status")
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id or None,
            "category": f"health_{status}",
            "transport": transport,
            "ingestStatus": ingest_status,
            "failureCode": failure_code or None,
            "stateFile": state_file,
            "cursorFile": cursor_file,
            "healthFile": health_file,
            "healthStatus": status,
            "reasonCodes": _get(health, "reasonCodes"),
            "reasons": _get(health, "reasons"),
        }
    )


def awaiting_approval_escalation(
    *,
    now: int,
    loop_id: str,
    trace_id: str | None,
    transport: str,
    state_file: str,
    health_file: str,
    state: dict[str, Any],
    since: str | None,
) -> dict[str, Any]:
    """The ``awaiting_approval`` row (ours, **[strip]**): who waits since when."""
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id or None,
            "category": AWAITING_APPROVAL,
            "transport": transport,
            "reasonCode": "approval_pending",
            "stateFile": state_file,
            "healthFile": health_file,
            "awaitingApprovalSince": since,
            "run": _or_empty(_get(state, "run")),
        }
    )


def awaiting_approval_escalation_decision(prev_kind: str, kind: str) -> Decision:
    """Whether to append an ``awaiting_approval`` row: once when the wait starts (edge
    triggered like Q-18), never again while it lasts."""
    if kind != AWAITING_APPROVAL:
        return (False, "not_awaiting_approval")
    if prev_kind == AWAITING_APPROVAL:
        return (False, "unchanged")
    return (True, "approval_wait_started")


def profile_drift_escalation(
    *,
    now: int,
    loop_id: str,
    trace_id: str | None,
    transport: str,
    state_file: str,
    drift_state_file: str,
    drift_history_file: str,
    drift: dict[str, Any],
) -> dict[str, Any]:
    """The ``profile_drift_detected`` row (**[strip]** top level; inner nulls kept)."""
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id or None,
            "category": PROFILE_DRIFT,
            "transport": transport,
            "stateFile": state_file,
            "driftStateFile": drift_state_file,
            "driftHistoryFile": drift_history_file,
            "reasonCode": alt(_get(drift, "reasonCode"), PROFILE_DRIFT),
            "drift": {
                "status": alt(_get(drift, "status"), "unknown"),
                "appliedProfile": alt(_get(drift, "appliedProfile")),
                "recommendedProfile": alt(_get(drift, "recommendedProfile")),
                "recommendationConfidence": alt(_get(drift, "recommendationConfidence")),
                "mismatchStreak": alt(_get(drift, "mismatchStreak"), 0),
                "requiredStreak": alt(_get(drift, "requiredStreak"), 0),
                "action": alt(_get(drift, "action")),
                "rationale": alt(_get(drift, "rationale")),
            },
        }
    )


# --- decisions ---------------------------------------------------------------------------

Decision = tuple[bool, str]


def health_escalation_decision(
    prev_status: str, prev_codes: list[str], health: dict[str, Any]
) -> Decision:
    """Whether to append a health escalation, with the named reason.

    First matching rule wins: ``status_healthy`` (never escalate a healthy pass) ->
    ``status_changed`` -> ``reason_codes_changed`` (the sorted code lists differ)
    -> ``unchanged``. A severity change within the same codes and status does not re-fire
    (Q-19, kept).
    """
    status = _get(health, "status")
    codes = _get(health, "reasonCodes")
    rules: tuple[tuple[Callable[[], bool], Decision], ...] = (
        (lambda: status == "healthy", (False, "status_healthy")),
        (lambda: status != prev_status, (True, "status_changed")),
        (lambda: codes != prev_codes, (True, "reason_codes_changed")),
    )
    for applies, decision in rules:
        if applies():
            return decision
    return (False, "unchanged")


def _raised(flags: object) -> frozenset[str]:
    """The names of the flags that are ``true``."""
    if not isinstance(flags, dict):
        return frozenset()
    return frozenset(name for name, value in flags.items() if value is True)


def divergence_escalation_decision(
    prev_flags: dict[str, Any] | None, prev_any: bool, state: dict[str, Any]
) -> Decision:
    """Whether to append a divergence escalation (DECISIONS Q-18: edge-triggered).

    ``prev_flags``/``prev_any`` are the previous state's ``divergence.flags`` / ``.any``.
    First matching rule wins:

    - ``no_divergence``: nothing diverges now -> no row;
    - ``divergence_started``: the previous state did not diverge -> row;
    - ``flags_changed``: a flag is raised that was not raised before -> row;
    - ``flags_cleared``: some flags cleared, none newly raised -> no row. ``activeMismatch``
      only looks at the last event of the pass, so it clears on every pass that ingests no
      events; paging on that would re-page the same problem;
    - ``unchanged`` -> no row.

    Upstream appended a row on every pass while divergence persisted.
    """
    now_any = _get(state, "divergence", "any") is True
    raised, before = _raised(_get(state, "divergence", "flags")), _raised(prev_flags)
    rules: tuple[tuple[Callable[[], bool], Decision], ...] = (
        (lambda: not now_any, (False, "no_divergence")),
        (lambda: prev_any is not True, (True, "divergence_started")),
        (lambda: bool(raised - before), (True, "flags_changed")),
        (lambda: raised != before, (False, "flags_cleared")),
    )
    for applies, decision in rules:
        if applies():
            return decision
    return (False, "unchanged")
