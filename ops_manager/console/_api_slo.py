"""The SLO series: reconcile latency, ingest and heartbeat lag, delivery and autonomous
outcomes."""

from __future__ import annotations

from ops_manager._timefmt import format_ts
from ops_manager.console._api_common import (
    JSON,
    SLO_WINDOW,
    ApiResponse,
    as_number,
    as_object,
    as_str,
    fleet_dir,
    read_object,
    recent_records,
)
from ops_manager.console._api_fleet import FleetViews
from ops_manager.console._api_rows import autonomous_outcomes, delivery_success
from ops_manager.console._api_sources import registry_loop_ids
from ops_manager.engine.paths import loop_paths_in, validate_loop_id
from ops_manager.errors import OpsError


class SloViews(FleetViews):
    """``GET /api/slo``."""

    # -- SLO ------------------------------------------------------------------------------------
    def slo(self) -> ApiResponse:
        """``GET /api/slo``: reconcile latency, ingest lag, delivery success, autonomous
        outcomes, as time series ``[[timestamp, value], ...]`` (oldest first)."""
        now = self.clock()
        loop_ids = self._all_loop_ids()
        latency: list[JSON] = []
        heartbeat: list[JSON] = []
        deliveries: list[tuple[str, str, JSON]] = []
        for loop_id in loop_ids:
            paths = loop_paths_in(self.repo, loop_id)
            points = [
                [r["timestamp"], float(r["durationSeconds"])]
                for r in recent_records(paths.reconcile_telemetry_file, SLO_WINDOW)
                if as_str(r.get("timestamp")) and as_number(r.get("durationSeconds")) is not None
            ]
            if points:
                latency.append({"name": loop_id, "points": points})
            hb = [
                [r["timestamp"], float(r["heartbeatLagSeconds"])]
                for r in recent_records(paths.heartbeat_telemetry_file, SLO_WINDOW)
                if as_str(r.get("timestamp"))
                and as_number(r.get("heartbeatLagSeconds")) is not None
            ]
            if hb:
                heartbeat.append({"name": loop_id, "points": hb})
            for row in recent_records(paths.alert_telemetry_file, SLO_WINDOW):
                sinks = [s for s in row.get("sinks") or [] if isinstance(s, dict)]
                if as_str(row.get("timestamp")) and sinks:
                    for sink in sinks:
                        deliveries.append((row["timestamp"], loop_id, sink))
            self._loop_row_health_sample(loop_id)
        fleet_rows = recent_records(
            fleet_dir(self.repo) / "telemetry" / "reconcile.jsonl", SLO_WINDOW
        )
        fleet_points = [
            [r["timestamp"], float(r["durationSeconds"])]
            for r in fleet_rows
            if as_str(r.get("timestamp")) and as_number(r.get("durationSeconds")) is not None
        ]
        if fleet_points:
            latency.append({"name": "fleet reconcile", "points": fleet_points})
        lag, ticks = self._supervise_series()
        if ticks:
            latency.append({"name": "supervise tick", "points": ticks})
        if not lag:
            # no supervisor has written its telemetry stream: the samples this console saw
            with self._lag_lock:
                lag = [
                    {"name": loop_id, "points": [[t, v] for t, v in samples]}
                    for loop_id, samples in sorted(self._lag.items())
                    if samples
                ]
        body: JSON = {
            "generatedAt": format_ts(now),
            "reconcileLatency": {"unit": "seconds", "series": latency},
            "ingestLag": {"unit": "seconds", "series": lag},
            "heartbeatLag": {"unit": "seconds", "series": heartbeat},
            "deliverySuccess": delivery_success(deliveries),
            "autonomousOutcomes": autonomous_outcomes(
                recent_records(fleet_dir(self.repo) / "telemetry" / "handoff.jsonl", SLO_WINDOW)
            ),
        }
        return ApiResponse(200, body)

    def _supervise_series(self) -> tuple[list[JSON], list[list[object]]]:
        """Ingest lag per loop and tick durations from ``supervise*.jsonl`` (issue 15):
        persisted by ``ops-manager supervise``, so the charts survive a console restart."""
        per_loop: dict[str, list[list[object]]] = {}
        ticks: list[list[object]] = []
        directory = fleet_dir(self.repo) / "telemetry"
        for path in sorted(directory.glob("supervise*.jsonl")):
            for row in recent_records(path, SLO_WINDOW):
                stamp = as_str(row.get("timestamp"))
                if stamp is None:
                    continue
                duration = as_number(row.get("tickDurationSeconds"))
                if duration is not None:
                    ticks.append([stamp, duration])
                for loop_id, value in as_object(row.get("ingestLagSeconds")).items():
                    lag = as_number(value)
                    if lag is not None:
                        per_loop.setdefault(str(loop_id), []).append([stamp, lag])
        series = [
            {"name": loop_id, "points": sorted(points, key=lambda p: str(p[0]))}
            for loop_id, points in sorted(per_loop.items())
        ]
        return series, sorted(ticks, key=lambda p: str(p[0]))

    def _loop_row_health_sample(self, loop_id: str) -> None:
        """Record the loop's current ingest lag (from ``health.json``) as a sample."""
        health = read_object(loop_paths_in(self.repo, loop_id).health_file) or {}
        metrics = as_object(health.get("metrics"))
        lag = as_number(metrics.get("ingestLagSeconds"))
        if lag is not None and as_str(health.get("updatedAt")):
            self._sample_lag(loop_id, health["updatedAt"], lag)

    def _all_loop_ids(self) -> list[str]:
        order: list[str] = []
        for loop_id in [*registry_loop_ids(self.repo)[0], *self._discovered_loop_ids()]:
            try:
                validate_loop_id(loop_id)
            except OpsError:
                continue
            if loop_id not in order:
                order.append(loop_id)
        return order
