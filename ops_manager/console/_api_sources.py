"""Where the console's fleet data comes from: the fleet engine, with a fallback to the
artifacts, and the handoff confirm call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from ops_manager.console._api_common import (
    HEALTH_STATES,
    JSON,
    as_str,
    as_strs,
    fleet_dir,
    read_object,
)
from ops_manager.errors import OpsError

# --- the fleet engine, with a fallback to the artifacts ---------------------------------------


def registry_loop_ids(repo: Path) -> tuple[list[str], str | None, str | None]:
    """The registry's loop ids, its fleet id, and a warning (``None`` when all is well).

    Uses :func:`ops_manager.engine.fleet_registry.load_registry`, the validator every fleet
    command runs. A registry it rejects (say, an expired governance ``reviewBy``) makes
    every fleet command fail closed; the console says so in a warning and still lists the
    ``loopId`` s the file names, so the loops stay visible.
    """
    from ops_manager.engine.fleet_registry import load_registry

    path = fleet_dir(repo) / "registry.v1.json"
    if not path.exists():
        return [], None, None
    warning: str | None = None
    try:
        registry: Any = load_registry(repo)
    except OpsError as exc:
        warning = "fleet registry: " + exc.message.replace("\n", " ")
        registry = read_object(path) or {}
    ids: list[str] = []
    for entry in registry.get("loops") or [] if isinstance(registry, dict) else []:
        if isinstance(entry, dict) and as_str(entry.get("loopId")):
            ids.append(entry["loopId"])
    fleet_id = as_str(registry.get("fleetId")) if isinstance(registry, dict) else None
    return ids, fleet_id, warning


def fleet_status_object(repo: Path) -> tuple[JSON | None, str | None]:
    """The fleet-status object (``fleet.md`` §2.4) and a warning.

    ``(None, None)`` when the fleet was never reconciled (no ``fleet/state.json``).
    Built by :func:`ops_manager.engine.fleet_status.fleet_status`, exactly what
    ``ops-manager fleet-status`` prints. When that fails closed (an invalid registry), the
    warning carries its message and the posture parts the page shows (``fleet``,
    ``healthRollup``, ``exceptions``, ``loops``) are read from ``fleet/state.json`` as
    fleet-reconcile wrote it.
    """
    from ops_manager.engine.fleet_status import fleet_status

    state_path = fleet_dir(repo) / "state.json"
    if not state_path.exists():
        return None, None
    try:
        return fleet_status(repo), None
    except OpsError as exc:
        warning = "fleet status: " + exc.message.replace("\n", " ")
    state = read_object(state_path)
    if state is None:
        return None, warning
    return _status_from_state(state), warning


def _status_from_state(state: JSON) -> JSON:
    """The §2.4 ``fleet`` / ``healthRollup`` / ``exceptions`` parts from a fleet state."""
    results = [r for r in state.get("results") or [] if isinstance(r, dict)]
    rollup = dict.fromkeys(HEALTH_STATES, 0)
    for r in results:
        health = r.get("healthStatus") or "unknown"
        rollup[health if health in rollup else "unknown"] += 1

    def ids(pred: Callable[[JSON], bool]) -> list[str]:
        return sorted({str(r.get("loopId")) for r in results if pred(r)})

    return {
        "schemaVersion": "v1",
        "source": {"fleetId": state.get("fleetId") or "default"},
        "fleet": {
            "status": state.get("status") or "unknown",
            "reasonCodes": as_strs(state.get("reasonCodes")),
            "loopCount": state.get("loopCount", len(results)),
            "successCount": state.get("successCount"),
            "failedCount": state.get("failedCount"),
            "skippedCount": state.get("skippedCount"),
            "startedAt": state.get("startedAt"),
            "updatedAt": state.get("updatedAt"),
            "durationSeconds": state.get("durationSeconds"),
            "traceId": state.get("traceId"),
        },
        "healthRollup": rollup,
        "exceptions": {
            "reconcileFailures": ids(lambda r: r.get("status") == "failed"),
            "criticalLoops": ids(lambda r: r.get("healthStatus") == "critical"),
            "degradedLoops": ids(lambda r: r.get("healthStatus") == "degraded"),
            "skippedLoops": ids(lambda r: r.get("status") == "skipped"),
        },
        "loops": results,
    }


@attrs.frozen
class ConfirmRequest:
    """One operator confirmation of one pending handoff intent."""

    intent_id: str
    by: str
    note: str | None


def run_handoff_confirm(repo: Path, request: ConfirmRequest) -> JSON:
    """Execute one intent exactly as ``ops-manager fleet-handoff --execute --confirm
    --intent-id ID --by B [--note N]`` does, and return the new handoff state.

    The same engine call the command makes
    (:func:`ops_manager.engine.fleet_handoff.fleet_handoff`, manual mode, one intent
    filter): it re-plans from the policy state, runs the intent through the loop-level
    control, appends the plan and execute rows to ``telemetry/handoff.jsonl`` and rewrites
    ``handoff-state.json``. Raises :class:`OpsError` with the command's message.
    """
    from ops_manager.engine.fleet_handoff import MODE_MANUAL, HandoffSettings, fleet_handoff

    settings = HandoffSettings(
        repo=repo,
        mode=MODE_MANUAL,
        intent_ids=(request.intent_id,),
        by=request.by,
        note=request.note or None,
    )
    return fleet_handoff(settings).state
