"""Fleet status sections fed by the fleet state and reconcile telemetry (PURE)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ops_manager.reducers.fleet_status._contract import (
    ARTIFACT_KEYS,
    HEALTH_BUCKETS,
    count_or,
    default_if_none,
    drop_nulls,
    unique_sorted,
)


def fleet_state_problem(fleet_state: object) -> str | None:
    """Why ``fleet_state`` cannot be read as a fleet state, or ``None`` if it can.

    It must be an object whose ``results`` (when present) is an array of objects; every
    other field is read leniently.
    """
    if not isinstance(fleet_state, dict):
        return "the fleet state must be a JSON object"
    results = fleet_state.get("results")
    if results is not None and not (
        isinstance(results, list) and all(isinstance(r, dict) for r in results)
    ):
        return "results must be an array of objects"
    return None


def fleet_results(fleet_state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``F.results // []``, keeping only objects (see :func:`fleet_state_problem`)."""
    results = fleet_state.get("results")
    if not isinstance(results, list):
        return []
    return [r for r in results if isinstance(r, dict)]


def health_rollup(results: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Loops per health status; anything but healthy/degraded/critical counts as unknown."""
    rollup = dict.fromkeys(HEALTH_BUCKETS, 0)
    for result in results:
        status = result.get("healthStatus")
        key = status if isinstance(status, str) and status in rollup else "unknown"
        rollup[key] += 1
    return rollup


def _status_count(results: Sequence[Mapping[str, Any]], status: str) -> int:
    return sum(1 for r in results if r.get("status") == status)


def fleet_reason_codes(
    fleet_state: Mapping[str, Any], failed: int, succeeded: int, rollup: Mapping[str, int]
) -> list[str]:
    """The state's reason codes plus partial-failure and health codes, unique-sorted."""
    raw = fleet_state.get("reasonCodes")
    codes: list[Any] = list(raw) if isinstance(raw, list) else []
    if failed > 0 and succeeded > 0:
        codes.append("fleet_partial_failure")
    if rollup.get("critical", 0) > 0:
        codes.append("fleet_health_critical")
    elif rollup.get("degraded", 0) > 0:
        codes.append("fleet_health_degraded")
    return unique_sorted(codes)


def fleet_section(
    fleet_state: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    rollup: Mapping[str, int],
) -> dict[str, Any]:
    """The ``fleet`` object: status, counts, timing and trace of the last fleet reconcile.

    Counts come from the state and fall back to counting ``results``; nulls are kept.
    """
    failed = count_or(fleet_state.get("failedCount"), _status_count(results, "failed"))
    succeeded = count_or(fleet_state.get("successCount"), _status_count(results, "success"))
    return {
        "status": default_if_none(fleet_state.get("status"), "unknown"),
        "reasonCodes": fleet_reason_codes(fleet_state, failed, succeeded, rollup),
        "loopCount": count_or(fleet_state.get("loopCount"), len(results)),
        "successCount": succeeded,
        "failedCount": failed,
        "skippedCount": count_or(
            fleet_state.get("skippedCount"), _status_count(results, "skipped")
        ),
        "startedAt": fleet_state.get("startedAt"),
        "updatedAt": fleet_state.get("updatedAt"),
        "durationSeconds": fleet_state.get("durationSeconds"),
        "traceId": fleet_state.get("traceId"),
        "partialFailure": failed > 0 and succeeded > 0,
    }


def exception_buckets(results: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Loop ids needing attention, each bucket unique-sorted (byte order)."""

    def ids(field: str, value: str) -> list[str]:
        return unique_sorted(r.get("loopId") for r in results if r.get(field) == value)

    return {
        "reconcileFailures": ids("status", "failed"),
        "criticalLoops": ids("healthStatus", "critical"),
        "degradedLoops": ids("healthStatus", "degraded"),
        "skippedLoops": ids("status", "skipped"),
    }


def loop_row(result: Mapping[str, Any]) -> dict[str, Any]:
    """One loop's drill-down row: outcome, health, trace and its artifact paths."""
    files = result.get("files")
    files = files if isinstance(files, dict) else {}
    return drop_nulls(
        {
            "loopId": result.get("loopId"),
            "status": default_if_none(result.get("status"), "unknown"),
            "reasonCode": result.get("reasonCode"),
            "reconcileStatus": result.get("reconcileStatus"),
            "healthStatus": default_if_none(result.get("healthStatus"), "unknown"),
            "healthReasonCodes": default_if_none(result.get("healthReasonCodes"), []),
            "transitionState": result.get("transitionState"),
            "durationSeconds": result.get("durationSeconds"),
            "traceId": result.get("traceId"),
            "transport": default_if_none(result.get("transport"), "local"),
            "sprite": default_if_none(result.get("sprite"), {}),
            "artifacts": {key: files.get(key) for key in ARTIFACT_KEYS},
        }
    )


def loop_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`loop_row` for every result, in the state's order."""
    return [loop_row(result) for result in results]


def trace_linkage(
    fleet_state: Mapping[str, Any], results: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Fleet trace id, the loops' trace ids, and the one trace they share (if any).

    ``policyTraceId`` is added by :func:`autonomy_sections`.
    """
    fleet_trace = fleet_state.get("traceId")
    loop_traces = unique_sorted(r.get("traceId") for r in results)
    non_empty = [t for t in loop_traces if t]
    shared = None
    if len(non_empty) == 1 and (not fleet_trace or fleet_trace == non_empty[0]):
        shared = non_empty[0]
    return {"fleetTraceId": fleet_trace, "loopTraceIds": loop_traces, "sharedTraceId": shared}


def latest_telemetry_section(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The last fleet reconcile telemetry row, summarised (``None`` when there is none)."""
    if row is None:
        return None
    return drop_nulls(
        {
            "timestamp": row.get("timestamp"),
            "status": row.get("status"),
            "reasonCodes": default_if_none(row.get("reasonCodes"), []),
        }
    )
