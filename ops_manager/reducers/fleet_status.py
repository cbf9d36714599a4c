"""Fleet status: the operator's posture view of the fleet (``fleet.md`` §2.4). PURE.

:func:`build_fleet_status` folds the normalised registry, the fleet ``state.json`` written by
fleet-reconcile and the last fleet reconcile telemetry row into the status document. Each
part is its own function (:func:`fleet_section`, :func:`health_rollup`,
:func:`exception_buckets`, :func:`loop_rows`, :func:`trace_linkage`,
:func:`latest_telemetry_section`) so other views can reuse them.

Sections fed by the policy, handoff and promotion artifacts (``policy``, ``handoff``,
``autonomous``, ``latestHandoffTelemetry``, ``traceLinkage.policyTraceId`` and their
``files.*`` entries) are not built here: they are added by composing more section builders
through ``extra_sections`` (see :data:`SectionBuilder`). :func:`build_fleet_status` merges
what each builder returns and puts every key in the contract's position
(:data:`STATUS_KEY_ORDER`, :data:`TRACE_LINKAGE_ORDER`, :data:`FILES_ORDER`), so a builder
never has to care about key order. Nothing is emitted as a placeholder ``null``.

Differences from upstream (``docs/compatibility.md``): ``fleet.partialFailure`` uses the same
counts as ``fleet.failedCount``/``successCount`` (upstream read the raw state fields, so a
state without counts could show ``fleet_partial_failure`` with ``partialFailure: false``);
``healthRollup.unknown`` counts every health status other than healthy/degraded/critical, so
the four buckets always add up to the number of loops; values of the wrong type in a
hand-edited state fall back to what the results say instead of crashing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ops_manager._jsonfmt import as_nonneg_int
from ops_manager._timefmt import format_ts

SCHEMA_VERSION = "v1"

#: every top-level key of the status document, in contract order
STATUS_KEY_ORDER = (
    "schemaVersion",
    "generatedAt",
    "source",
    "fleet",
    "healthRollup",
    "exceptions",
    "policy",
    "handoff",
    "autonomous",
    "loops",
    "traceLinkage",
    "latestTelemetry",
    "latestHandoffTelemetry",
    "files",
)
TRACE_LINKAGE_ORDER = ("fleetTraceId", "policyTraceId", "loopTraceIds", "sharedTraceId")
FILES_ORDER = (
    "registryFile",
    "fleetStateFile",
    "policyStateFile",
    "fleetTelemetryFile",
    "handoffStateFile",
    "handoffTelemetryFile",
)
#: nested objects a section builder may extend, with their key order
NESTED_ORDERS: Mapping[str, tuple[str, ...]] = {
    "traceLinkage": TRACE_LINKAGE_ORDER,
    "files": FILES_ORDER,
}
HEALTH_BUCKETS = ("healthy", "degraded", "critical", "unknown")
ARTIFACT_KEYS = ("stateFile", "healthFile", "cursorFile", "reconcileTelemetryFile")

#: A section builder gets the status document built so far (read it, do not mutate it) and
#: returns keys to add: new top-level sections (``{"policy": {...}}``) and/or entries for a
#: nested object listed in :data:`NESTED_ORDERS` (``{"files": {"policyStateFile": ...}}``,
#: merged into the existing object). Extra inputs (policy state, handoff state ...) reach the
#: builder by closure, e.g. ``functools.partial(policy_section, policy_state)``.
SectionBuilder = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def _default(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


def _drop_nulls(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if value is not None}


def _unique_sorted(values: Any) -> list[str]:
    """jq ``unique`` over the string members (byte order = code point order for UTF-8)."""
    return sorted({v for v in values if isinstance(v, str)})


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


def _count(value: Any, fallback: int) -> int:
    count = as_nonneg_int(value)
    return fallback if count is None else count


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
    return _unique_sorted(codes)


def fleet_section(
    fleet_state: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    rollup: Mapping[str, int],
) -> dict[str, Any]:
    """The ``fleet`` object: status, counts, timing and trace of the last fleet reconcile.

    Counts come from the state and fall back to counting ``results``; nulls are kept.
    """
    failed = _count(fleet_state.get("failedCount"), _status_count(results, "failed"))
    succeeded = _count(fleet_state.get("successCount"), _status_count(results, "success"))
    return {
        "status": _default(fleet_state.get("status"), "unknown"),
        "reasonCodes": fleet_reason_codes(fleet_state, failed, succeeded, rollup),
        "loopCount": _count(fleet_state.get("loopCount"), len(results)),
        "successCount": succeeded,
        "failedCount": failed,
        "skippedCount": _count(fleet_state.get("skippedCount"), _status_count(results, "skipped")),
        "startedAt": fleet_state.get("startedAt"),
        "updatedAt": fleet_state.get("updatedAt"),
        "durationSeconds": fleet_state.get("durationSeconds"),
        "traceId": fleet_state.get("traceId"),
        "partialFailure": failed > 0 and succeeded > 0,
    }


def exception_buckets(results: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Loop ids needing attention, each bucket unique-sorted (byte order)."""

    def ids(field: str, value: str) -> list[str]:
        return _unique_sorted(r.get("loopId") for r in results if r.get(field) == value)

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
    return _drop_nulls(
        {
            "loopId": result.get("loopId"),
            "status": _default(result.get("status"), "unknown"),
            "reasonCode": result.get("reasonCode"),
            "reconcileStatus": result.get("reconcileStatus"),
            "healthStatus": _default(result.get("healthStatus"), "unknown"),
            "healthReasonCodes": _default(result.get("healthReasonCodes"), []),
            "transitionState": result.get("transitionState"),
            "durationSeconds": result.get("durationSeconds"),
            "traceId": result.get("traceId"),
            "transport": _default(result.get("transport"), "local"),
            "sprite": _default(result.get("sprite"), {}),
            "artifacts": {key: files.get(key) for key in ARTIFACT_KEYS},
        }
    )


def loop_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`loop_row` for every result, in the state's order."""
    return [loop_row(result) for result in results]


def trace_linkage(
    fleet_state: Mapping[str, Any], results: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Fleet trace id, the loops' trace ids, and the one trace they share (if any)."""
    fleet_trace = fleet_state.get("traceId")
    loop_traces = _unique_sorted(r.get("traceId") for r in results)
    non_empty = [t for t in loop_traces if t]
    shared = None
    if len(non_empty) == 1 and (not fleet_trace or fleet_trace == non_empty[0]):
        shared = non_empty[0]
    return {"fleetTraceId": fleet_trace, "loopTraceIds": loop_traces, "sharedTraceId": shared}


def latest_telemetry_section(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The last fleet reconcile telemetry row, summarised (``None`` when there is none)."""
    if row is None:
        return None
    return _drop_nulls(
        {
            "timestamp": row.get("timestamp"),
            "status": row.get("status"),
            "reasonCodes": _default(row.get("reasonCodes"), []),
        }
    )


def _merge(doc: dict[str, Any], additions: Mapping[str, Any]) -> None:
    for key, value in additions.items():
        current = doc.get(key)
        if key in NESTED_ORDERS and isinstance(current, dict) and isinstance(value, Mapping):
            doc[key] = {**current, **value}
        else:
            doc[key] = value


def _ordered(obj: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """``obj`` with the keys of ``order`` first, in that order, then any others as they came."""
    known = {key: obj[key] for key in order if key in obj}
    return {**known, **{key: value for key, value in obj.items() if key not in known}}


def build_fleet_status(
    registry: Mapping[str, Any],
    fleet_state: Mapping[str, Any],
    *,
    now: int,
    repo_path: str,
    files: Mapping[str, str],
    latest_telemetry: Mapping[str, Any] | None = None,
    extra_sections: Sequence[SectionBuilder] = (),
) -> dict[str, Any]:
    """The fleet status document (``fleet.md`` §2.4) from data already read and validated.

    ``registry`` is the normalised registry, ``fleet_state`` the fleet ``state.json`` object,
    ``latest_telemetry`` the last row of the fleet reconcile telemetry (or ``None``),
    ``files`` the artifact paths read (``registryFile``, ``fleetStateFile``,
    ``fleetTelemetryFile``), ``now`` the epoch seconds stamped as ``generatedAt``.
    ``extra_sections`` are applied in order; see :data:`SectionBuilder`.
    """
    results = fleet_results(fleet_state)
    rollup = health_rollup(results)
    doc: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "generatedAt": format_ts(now),
        "source": {
            "repoPath": repo_path,
            "fleetId": _default(
                fleet_state.get("fleetId"), _default(registry.get("fleetId"), "default")
            ),
        },
        "fleet": fleet_section(fleet_state, results, rollup),
        "healthRollup": rollup,
        "exceptions": exception_buckets(results),
        "loops": loop_rows(results),
        "traceLinkage": trace_linkage(fleet_state, results),
        "latestTelemetry": latest_telemetry_section(latest_telemetry),
        "files": dict(files),
    }
    for builder in extra_sections:
        _merge(doc, builder(doc))
    for key, order in NESTED_ORDERS.items():
        if isinstance(doc.get(key), dict):
            doc[key] = _ordered(doc[key], order)
    return _ordered(doc, STATUS_KEY_ORDER)
