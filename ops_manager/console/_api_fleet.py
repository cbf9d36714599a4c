"""The fleet view and the loop drill-down: one row per loop, and one loop in detail."""

from __future__ import annotations

import collections

from ops_manager._timefmt import format_ts
from ops_manager.console._api_backlog import BacklogViews
from ops_manager.console._api_common import (
    HEALTH_STATES,
    JSON,
    LAG_SAMPLES,
    RECENT_EVENTS,
    RECENT_ROWS,
    ApiResponse,
    age_seconds,
    as_number,
    as_object,
    as_str,
    as_strs,
    error,
    fleet_dir,
    read_object,
    recent_records,
)
from ops_manager.console._api_rows import (
    autonomous_summary,
    delivery_row,
    escalation_row,
    event_row,
    is_pending,
    manual_only,
    outbox_rows,
    reconcile_row,
)
from ops_manager.console._api_sources import fleet_status_object, registry_loop_ids
from ops_manager.engine.paths import loop_paths_in, validate_loop_id
from ops_manager.errors import OpsError


class FleetViews(BacklogViews):
    """``GET /api/fleet`` and ``GET /api/loops/<id>``."""

    # -- loops -----------------------------------------------------------------------------
    def _discovered_loop_ids(self) -> list[str]:
        """Loops with manager artifacts or a runtime dir on disk (sorted)."""
        found: set[str] = set()
        for base in (
            self.repo / ".superloop" / "ops-manager",
            self.repo / ".superloop" / "loops",
        ):
            try:
                children = list(base.iterdir())
            except OSError:
                continue
            for child in children:
                if not child.is_dir() or child.name == "fleet" or child.name.startswith("."):
                    continue
                try:
                    validate_loop_id(child.name)
                except OpsError:
                    continue
                if base.name == "ops-manager" and not (
                    (child / "state.json").exists() or (child / "health.json").exists()
                ):
                    continue
                found.add(child.name)
        return sorted(found)

    def _loop_status(self, loop_id: str) -> tuple[JSON | None, str | None]:
        from ops_manager.engine.status import loop_status

        try:
            paths = loop_paths_in(self.repo, loop_id)
            return loop_status(paths, summary_window=self.summary_window), None
        except OpsError as exc:
            return None, exc.message

    def _loop_row(self, loop_id: str, fleet_result: JSON | None, now: int) -> JSON:
        status, problem = self._loop_status(loop_id)
        health: JSON = (status or {}).get("health") or {}
        metrics = as_object(health.get("metrics"))
        evidence = as_object(health.get("evidence"))
        lifecycle: JSON = (status or {}).get("lifecycle") or {}
        reconcile: JSON = (status or {}).get("reconcile") or {}
        heartbeat = ((status or {}).get("visibility") or {}).get("heartbeat") or {}
        health_status = as_str(health.get("status"))
        if health_status is None and fleet_result is not None:
            health_status = as_str(fleet_result.get("healthStatus"))
        reasons = as_strs(health.get("reasonCodes"))
        if not reasons and fleet_result is not None and not health:
            reasons = as_strs(fleet_result.get("healthReasonCodes"))
        last_heartbeat_at = heartbeat.get("lastHeartbeatAt") or evidence.get("lastHeartbeatAt")
        ingest_lag = as_number(metrics.get("ingestLagSeconds"))
        if ingest_lag is not None and health.get("updatedAt"):
            self._sample_lag(loop_id, str(health["updatedAt"]), ingest_lag)
        row: JSON = {
            "loopId": loop_id,
            "lifecycleState": lifecycle.get("state"),
            "lifecycleConfidence": lifecycle.get("confidence"),
            "runId": lifecycle.get("runId"),
            "iteration": lifecycle.get("iteration"),
            "healthStatus": health_status or "unknown",
            "healthReasonCodes": reasons,
            "healthUpdatedAt": health.get("updatedAt"),
            "ingestLagSeconds": ingest_lag,
            "heartbeatLagSeconds": as_number(metrics.get("heartbeatLagSeconds")),
            "lastHeartbeatAt": last_heartbeat_at,
            "heartbeatAgeSeconds": age_seconds(now, last_heartbeat_at),
            "lastReconcileAt": reconcile.get("lastTimestamp"),
            "lastReconcileAgeSeconds": age_seconds(now, reconcile.get("lastTimestamp")),
            "lastReconcileStatus": reconcile.get("lastStatus"),
            "lastReconcileDurationSeconds": reconcile.get("lastDurationSeconds"),
            "lastReconcileFailureCode": reconcile.get("lastFailureCode"),
            "transport": reconcile.get("lastTransport")
            or (fleet_result or {}).get("transport")
            or None,
            "fleetReconcileStatus": (fleet_result or {}).get("status"),
            "fleetReasonCode": (fleet_result or {}).get("reasonCode"),
            "statusError": problem,
        }
        row["critical"] = row["healthStatus"] == "critical"
        return row

    def _sample_lag(self, loop_id: str, stamp: str, lag: float) -> None:
        with self._lag_lock:
            samples = self._lag.setdefault(loop_id, collections.deque(maxlen=LAG_SAMPLES))
            if not samples or samples[-1][0] != stamp:
                samples.append((stamp, lag))

    def fleet(self) -> ApiResponse:
        """``GET /api/fleet``: posture, exceptions and one row per loop."""
        now = self.clock()
        warnings: list[str] = []
        reg_ids, reg_fleet_id, reg_warning = registry_loop_ids(self.repo)
        if reg_warning:
            warnings.append(reg_warning)
        status, st_warning = fleet_status_object(self.repo)
        if st_warning:
            warnings.append(st_warning)
        results: dict[str, JSON] = {}
        if status is not None:
            for entry in status.get("loops") or []:
                if isinstance(entry, dict) and as_str(entry.get("loopId")):
                    results[entry["loopId"]] = entry
        order: list[str] = []
        for loop_id in [*reg_ids, *results, *self._discovered_loop_ids()]:
            if loop_id not in order:
                order.append(loop_id)
        rows = [self._loop_row(loop_id, results.get(loop_id), now) for loop_id in order]
        if status is not None:
            rollup = {k: int(status.get("healthRollup", {}).get(k, 0)) for k in HEALTH_STATES}
            exceptions = status.get("exceptions") or {}
            source = "fleet-status"
        else:
            rollup = dict.fromkeys(HEALTH_STATES, 0)
            for row in rows:
                key = row["healthStatus"] if row["healthStatus"] in rollup else "unknown"
                rollup[key] += 1
            exceptions = {
                "criticalLoops": [r["loopId"] for r in rows if r["healthStatus"] == "critical"],
                "degradedLoops": [r["loopId"] for r in rows if r["healthStatus"] == "degraded"],
                "reconcileFailures": [
                    r["loopId"] for r in rows if r["lastReconcileStatus"] == "failed"
                ],
            }
            source = "loops"
        fleet_id = ((status or {}).get("source") or {}).get("fleetId") or reg_fleet_id
        backlog = self._handoff_state()
        pending = [i for i in (backlog or {}).get("intents") or [] if is_pending(i)]
        body: JSON = {
            "generatedAt": format_ts(now),
            "repoPath": str(self.repo),
            "fleetId": fleet_id or "default",
            "source": source,
            "fleet": (status or {}).get("fleet"),
            "posture": rollup,
            "exceptions": exceptions,
            "policyMode": as_str(
                (read_object(fleet_dir(self.repo) / "policy-state.json") or {}).get("mode")
            ),
            "autonomous": autonomous_summary(status),
            "loops": rows,
            "backlog": {
                "pendingCount": len(pending),
                "manualBacklogCount": sum(1 for i in pending if manual_only(i)),
            },
            "warnings": warnings,
        }
        return ApiResponse(200, body)

    def loop(self, loop_id: str) -> ApiResponse:
        """``GET /api/loops/<id>``: status plus recent events, escalations and deliveries."""
        try:
            paths = loop_paths_in(self.repo, loop_id)
        except OpsError as exc:
            return error(400, "invalid_loop_id", exc.message)
        known = (
            paths.ops_dir.is_dir()
            or paths.loop_dir.is_dir()
            or loop_id in registry_loop_ids(self.repo)[0]
        )
        if not known:
            return error(404, "loop_not_found", f"unknown loop: {loop_id}")
        now = self.clock()
        status, problem = self._loop_status(loop_id)
        events = recent_records(paths.events_file, RECENT_EVENTS)
        events.reverse()
        escalations = recent_records(paths.escalations_file, RECENT_ROWS)
        escalations.reverse()
        deliveries = [
            delivery_row(r) for r in recent_records(paths.alert_telemetry_file, RECENT_ROWS)
        ]
        deliveries.reverse()
        reconciles = recent_records(paths.reconcile_telemetry_file, RECENT_ROWS)
        reconciles.reverse()
        body: JSON = {
            "generatedAt": format_ts(now),
            "loopId": loop_id,
            "row": self._loop_row(loop_id, None, now),
            "status": status,
            "statusError": problem,
            "events": [event_row(e) for e in events],
            "escalations": [escalation_row(e) for e in escalations],
            "deliveries": deliveries,
            "outbox": outbox_rows(paths.ops("alert-outbox.jsonl")),
            "reconciles": [reconcile_row(r) for r in reconciles],
        }
        return ApiResponse(200, body)
