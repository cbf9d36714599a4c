"""Fleet status assembly: :func:`build_fleet_status` merges and orders the sections (PURE)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ops_manager.model._time import format_ts
from ops_manager.reducers.fleet_status._autonomy import autonomy_sections
from ops_manager.reducers.fleet_status._contract import (
    NESTED_ORDERS,
    SCHEMA_VERSION,
    STATUS_KEY_ORDER,
    SectionBuilder,
    default_if_none,
)
from ops_manager.reducers.fleet_status._fleet import (
    exception_buckets,
    fleet_results,
    fleet_section,
    health_rollup,
    latest_telemetry_section,
    loop_rows,
    trace_linkage,
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
    policy_state: Mapping[str, Any] | None = None,
    handoff_state: Mapping[str, Any] | None = None,
    latest_handoff_telemetry: Mapping[str, Any] | None = None,
    extra_sections: Sequence[SectionBuilder] = (),
) -> dict[str, Any]:
    """The fleet status document (``fleet.md`` §2.4) from data already read and validated.

    ``registry`` is the normalised registry, ``fleet_state`` the fleet ``state.json`` object,
    ``latest_telemetry`` the last row of the fleet reconcile telemetry (or ``None``),
    ``policy_state`` / ``handoff_state`` the ``policy-state.json`` / ``handoff-state.json``
    objects (or ``None``), ``latest_handoff_telemetry`` the last ``handoff.jsonl`` row (or
    ``None``), ``files`` the artifact paths read (keys of :data:`FILES_ORDER`), ``now`` the
    epoch seconds stamped as ``generatedAt`` and the reference of the governance posture.
    :func:`autonomy_sections` is applied first, then ``extra_sections`` in order; see
    :data:`SectionBuilder`.
    """
    results = fleet_results(fleet_state)
    rollup = health_rollup(results)
    doc: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "generatedAt": format_ts(now),
        "source": {
            "repoPath": repo_path,
            "fleetId": default_if_none(
                fleet_state.get("fleetId"), default_if_none(registry.get("fleetId"), "default")
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
    autonomy = autonomy_sections(policy_state, handoff_state, latest_handoff_telemetry, now=now)
    for builder in (autonomy, *extra_sections):
        _merge(doc, builder(doc))
    for key, order in NESTED_ORDERS.items():
        if isinstance(doc.get(key), dict):
            doc[key] = _ordered(doc[key], order)
    return _ordered(doc, STATUS_KEY_ORDER)
