"""The console's JSON API: functions from a repo's artifacts to JSON, independent of HTTP.

Every number the page shows comes from the same library calls the CLI uses:

- per loop: :func:`ops_manager.engine.status.loop_status` (what ``ops-manager status``
  prints), plus the recent rows of the loop's own streams (``events.jsonl``,
  ``OPS/escalations.jsonl``, ``TEL/alerts.jsonl``, ``OPS/alert-outbox.jsonl`` folded with
  :func:`ops_manager.reducers.alerts.fold_outbox`, ``TEL/reconcile.jsonl``), read from the
  end of each file so a long history costs nothing;
- fleet: the fleet-status object of ``fleet.md`` §2.4 built by
  :func:`ops_manager.engine.fleet_status.fleet_status`, the registry through
  :func:`ops_manager.engine.fleet_registry.load_registry`; when the fleet was never
  reconciled the posture comes from the loops' own health projections, and when the fleet
  commands fail closed (an invalid registry) from ``fleet/state.json``, with a warning;
- backlog: ``fleet/handoff-state.json`` as ``fleet-handoff`` wrote it;
- the backlog confirm action runs the same handoff path as
  ``ops-manager fleet-handoff --execute --confirm --intent-id ID --by B --note N``.

The API never writes an artifact except through that handoff call. Loop ids are checked
with :func:`~ops_manager.store.validate_loop_id` before any path is built.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ops_manager._timefmt import format_ts, parse_ts, utc_now_epoch
from ops_manager.errors import OpsError
from ops_manager.store import LoopPaths, validate_loop_id

JSON = dict[str, Any]

#: how many recent rows of each stream a drill-down shows
RECENT_EVENTS = 50
RECENT_ROWS = 25
#: how many rows of each telemetry stream the SLO charts read (per loop / fleet)
SLO_WINDOW = 120
#: ingest-lag samples kept per loop (one per reconcile pass the console has seen)
LAG_SAMPLES = 240
#: longest ``by`` / ``note`` accepted from the confirm form
MAX_BY_CHARS = 128
MAX_NOTE_CHARS = 1000
MAX_INTENT_ID_CHARS = 512
HEALTH_STATES = ("healthy", "degraded", "critical", "unknown")
PENDING = "pending_operator_confirmation"


@attrs.frozen
class ApiResponse:
    """An HTTP status and a JSON body."""

    status: int
    body: JSON


def error(status: int, code: str, message: str) -> ApiResponse:
    """A JSON error answer: ``{"error": {"code", "message"}}``."""
    return ApiResponse(status, {"error": {"code": code, "message": message}})


def fleet_dir(repo: Path) -> Path:
    """``<repo>/.superloop/ops-manager/fleet`` (``fleet.md`` §0.1)."""
    return repo / ".superloop" / "ops-manager" / "fleet"


# --- small readers ------------------------------------------------------------------------


def _read_object(path: Path) -> JSON | None:
    """A JSON object file, or ``None`` when missing or not a JSON object."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def recent_records(path: Path, n: int) -> list[JSON]:
    """The last ``n`` complete JSON-object lines of a JSONL stream, oldest first.

    Reads from the end of the file (O(n), whatever the history); a torn final line and
    lines that are not JSON objects are skipped (a console shows, it does not judge).
    """
    from ops_manager.engine.telemetry_summary import tail_lines

    out: list[JSON] = []
    for raw in tail_lines(path, n):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _obj(value: Any) -> JSON:
    """``value`` when it is a JSON object, else ``{}``."""
    return value if isinstance(value, dict) else {}


def _strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _age(now: int, stamp: Any) -> int | None:
    epoch = parse_ts(stamp)
    return None if epoch is None else max(0, now - epoch)


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
        registry = _read_object(path) or {}
    ids: list[str] = []
    for entry in registry.get("loops") or [] if isinstance(registry, dict) else []:
        if isinstance(entry, dict) and _str(entry.get("loopId")):
            ids.append(entry["loopId"])
    fleet_id = _str(registry.get("fleetId")) if isinstance(registry, dict) else None
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
    state = _read_object(state_path)
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
            "reasonCodes": _strs(state.get("reasonCodes")),
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
    from ops_manager.engine.fleet_handoff import HandoffSettings, fleet_handoff
    from ops_manager.reducers.fleet_handoff import MODE_MANUAL

    settings = HandoffSettings(
        repo=repo,
        mode=MODE_MANUAL,
        intent_ids=(request.intent_id,),
        by=request.by,
        note=request.note or None,
    )
    return fleet_handoff(settings).state


# --- the API -----------------------------------------------------------------------------------


def delivery_outcome(sink: Mapping[str, Any]) -> str:
    """``delivered`` | ``retrying`` | ``failed`` for one ``sinks[]`` entry of an alert row.

    A failed attempt the outbox still holds (``queued``/``retrying``) will be retried by the
    next run: that is *retrying*; a failure the outbox gave up on (or never kept) is
    *failed*.
    """
    if sink.get("status") == "success":
        return "delivered"
    if sink.get("outboxStatus") in ("queued", "retrying"):
        return "retrying"
    if sink.get("outboxStatus") == "delivered":
        return "delivered"
    return "failed"


_OUTBOX_OUTCOME = {
    "delivered": "delivered",
    "queued": "retrying",
    "retrying": "retrying",
    "terminal": "failed",
    "gave_up": "failed",
}


class ConsoleApi:
    """The endpoints, for one repo. Thread-safe; holds only the ingest-lag samples."""

    def __init__(
        self,
        repo: Path,
        *,
        summary_window: int = 50,
        clock: Callable[[], int] = utc_now_epoch,
    ) -> None:
        self.repo = repo
        self.summary_window = summary_window
        self.clock = clock
        self._lag: dict[str, collections.deque[tuple[str, float]]] = {}
        self._lag_lock = threading.Lock()
        self._confirm_lock = threading.Lock()

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
            paths = LoopPaths.for_loop(self.repo, loop_id)
            return loop_status(paths, summary_window=self.summary_window), None
        except OpsError as exc:
            return None, exc.message

    def _loop_row(self, loop_id: str, fleet_result: JSON | None, now: int) -> JSON:
        status, problem = self._loop_status(loop_id)
        health: JSON = (status or {}).get("health") or {}
        metrics = _obj(health.get("metrics"))
        evidence = _obj(health.get("evidence"))
        lifecycle: JSON = (status or {}).get("lifecycle") or {}
        reconcile: JSON = (status or {}).get("reconcile") or {}
        heartbeat = ((status or {}).get("visibility") or {}).get("heartbeat") or {}
        health_status = _str(health.get("status"))
        if health_status is None and fleet_result is not None:
            health_status = _str(fleet_result.get("healthStatus"))
        reasons = _strs(health.get("reasonCodes"))
        if not reasons and fleet_result is not None and not health:
            reasons = _strs(fleet_result.get("healthReasonCodes"))
        last_heartbeat_at = heartbeat.get("lastHeartbeatAt") or evidence.get("lastHeartbeatAt")
        ingest_lag = _num(metrics.get("ingestLagSeconds"))
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
            "heartbeatLagSeconds": _num(metrics.get("heartbeatLagSeconds")),
            "lastHeartbeatAt": last_heartbeat_at,
            "heartbeatAgeSeconds": _age(now, last_heartbeat_at),
            "lastReconcileAt": reconcile.get("lastTimestamp"),
            "lastReconcileAgeSeconds": _age(now, reconcile.get("lastTimestamp")),
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
                if isinstance(entry, dict) and _str(entry.get("loopId")):
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
        pending = [i for i in (backlog or {}).get("intents") or [] if _is_pending(i)]
        body: JSON = {
            "generatedAt": format_ts(now),
            "repoPath": str(self.repo),
            "fleetId": fleet_id or "default",
            "source": source,
            "fleet": (status or {}).get("fleet"),
            "posture": rollup,
            "exceptions": exceptions,
            "policyMode": _str(
                (_read_object(fleet_dir(self.repo) / "policy-state.json") or {}).get("mode")
            ),
            "autonomous": _autonomous_summary(status),
            "loops": rows,
            "backlog": {
                "pendingCount": len(pending),
                "manualBacklogCount": sum(1 for i in pending if _manual_only(i)),
            },
            "warnings": warnings,
        }
        return ApiResponse(200, body)

    def loop(self, loop_id: str) -> ApiResponse:
        """``GET /api/loops/<id>``: status plus recent events, escalations and deliveries."""
        try:
            paths = LoopPaths.for_loop(self.repo, loop_id)
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
            _delivery_row(r) for r in recent_records(paths.alert_telemetry_file, RECENT_ROWS)
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
            "events": [_event_row(e) for e in events],
            "escalations": [_escalation_row(e) for e in escalations],
            "deliveries": deliveries,
            "outbox": _outbox_rows(paths.ops("alert-outbox.jsonl")),
            "reconciles": [_reconcile_row(r) for r in reconciles],
        }
        return ApiResponse(200, body)

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
            paths = LoopPaths.for_loop(self.repo, loop_id)
            points = [
                [r["timestamp"], float(r["durationSeconds"])]
                for r in recent_records(paths.reconcile_telemetry_file, SLO_WINDOW)
                if _str(r.get("timestamp")) and _num(r.get("durationSeconds")) is not None
            ]
            if points:
                latency.append({"name": loop_id, "points": points})
            hb = [
                [r["timestamp"], float(r["heartbeatLagSeconds"])]
                for r in recent_records(paths.heartbeat_telemetry_file, SLO_WINDOW)
                if _str(r.get("timestamp")) and _num(r.get("heartbeatLagSeconds")) is not None
            ]
            if hb:
                heartbeat.append({"name": loop_id, "points": hb})
            for row in recent_records(paths.alert_telemetry_file, SLO_WINDOW):
                sinks = [s for s in row.get("sinks") or [] if isinstance(s, dict)]
                if _str(row.get("timestamp")) and sinks:
                    for sink in sinks:
                        deliveries.append((row["timestamp"], loop_id, sink))
            self._loop_row_health_sample(loop_id)
        fleet_rows = recent_records(
            fleet_dir(self.repo) / "telemetry" / "reconcile.jsonl", SLO_WINDOW
        )
        fleet_points = [
            [r["timestamp"], float(r["durationSeconds"])]
            for r in fleet_rows
            if _str(r.get("timestamp")) and _num(r.get("durationSeconds")) is not None
        ]
        if fleet_points:
            latency.append({"name": "fleet reconcile", "points": fleet_points})
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
            "deliverySuccess": _delivery_success(deliveries),
            "autonomousOutcomes": _autonomous_outcomes(
                recent_records(fleet_dir(self.repo) / "telemetry" / "handoff.jsonl", SLO_WINDOW)
            ),
        }
        return ApiResponse(200, body)

    def _loop_row_health_sample(self, loop_id: str) -> None:
        """Record the loop's current ingest lag (from ``health.json``) as a sample."""
        health = _read_object(LoopPaths.for_loop(self.repo, loop_id).health_file) or {}
        metrics = _obj(health.get("metrics"))
        lag = _num(metrics.get("ingestLagSeconds"))
        if lag is not None and _str(health.get("updatedAt")):
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

    # -- backlog --------------------------------------------------------------------------------
    def _handoff_state(self) -> JSON | None:
        return _read_object(fleet_dir(self.repo) / "handoff-state.json")

    def backlog(self) -> ApiResponse:
        """``GET /api/backlog``: pending handoff intents and the last execution."""
        path = fleet_dir(self.repo) / "handoff-state.json"
        state = self._handoff_state()
        if state is None:
            body: JSON = {
                "available": False,
                "handoffStateFile": str(path),
                "message": (
                    "no handoff plan yet: run 'ops-manager fleet-policy' then "
                    "'ops-manager fleet-handoff' for this repo"
                    if not path.exists()
                    else f"invalid handoff state JSON: {path}"
                ),
                "pending": [],
                "recent": [],
            }
            return ApiResponse(200, body)
        intents = [i for i in state.get("intents") or [] if isinstance(i, dict)]
        pending = [_intent_row(i) for i in intents if _is_pending(i)]
        recent = [_intent_row(i) for i in intents if not _is_pending(i)]
        body = {
            "available": True,
            "handoffStateFile": str(path),
            "mode": state.get("mode"),
            "fleetId": state.get("fleetId"),
            "traceId": state.get("traceId"),
            "updatedAt": state.get("updatedAt"),
            "summary": state.get("summary"),
            "reasonCodes": _strs(state.get("reasonCodes")),
            "pending": pending,
            "manualBacklogCount": sum(1 for i in pending if i["manualOnly"]),
            "recent": recent,
            "lastExecution": _execution_summary(state.get("execution")),
        }
        return ApiResponse(200, body)

    def confirm(self, intent_id: str, body: Any) -> ApiResponse:
        """``POST /api/backlog/<intentId>/confirm`` with ``{"by": ..., "note": ...}``.

        400 when ``by`` is missing/empty or a field is not a string (or too long), 404 for
        an intent the handoff plan does not have, 409 when it is no longer pending. Then
        the handoff runs (one at a time) and the answer carries the intent's outcome.
        """
        if not intent_id or len(intent_id) > MAX_INTENT_ID_CHARS or not intent_id.isprintable():
            return error(400, "invalid_intent_id", "invalid intent id")
        if not isinstance(body, dict):
            return error(400, "invalid_request", "request body must be a JSON object")
        by = body.get("by")
        note = body.get("note")
        if by is None or (isinstance(by, str) and not by.strip()):
            return error(400, "missing_by", "'by' is required: who confirms this intent")
        if not isinstance(by, str) or len(by) > MAX_BY_CHARS or not by.isprintable():
            return error(
                400,
                "invalid_by",
                f"'by' must be a printable string of at most {MAX_BY_CHARS} characters",
            )
        if note is not None and (
            not isinstance(note, str) or len(note) > MAX_NOTE_CHARS or not note.isprintable()
        ):
            return error(
                400,
                "invalid_note",
                f"'note' must be a printable string of at most {MAX_NOTE_CHARS} characters",
            )
        unknown = sorted(set(body) - {"by", "note"})
        if unknown:
            return error(400, "invalid_request", f"unknown field(s): {', '.join(unknown)}")
        with self._confirm_lock:
            state = self._handoff_state()
            if state is None:
                return error(404, "no_handoff_plan", "no handoff plan (handoff-state.json) yet")
            intent = next(
                (
                    i
                    for i in state.get("intents") or []
                    if isinstance(i, dict) and i.get("intentId") == intent_id
                ),
                None,
            )
            if intent is None:
                return error(404, "intent_not_found", f"unknown intent: {intent_id}")
            if not _is_pending(intent):
                return error(
                    409,
                    "intent_not_pending",
                    f"intent {intent_id} is not pending (status {intent.get('status')})",
                )
            request = ConfirmRequest(intent_id=intent_id, by=by.strip(), note=note or None)
            try:
                new_state = run_handoff_confirm(self.repo, request)
            except OpsError as exc:
                return error(422, "handoff_failed", exc.message)
        execution = new_state.get("execution") if isinstance(new_state, dict) else None
        results = (execution or {}).get("results") if isinstance(execution, dict) else None
        outcome = next(
            (r for r in results or [] if isinstance(r, dict) and r.get("intentId") == intent_id),
            None,
        )
        updated = next(
            (
                i
                for i in new_state.get("intents") or []
                if isinstance(i, dict) and i.get("intentId") == intent_id
            ),
            None,
        )
        answer: JSON = {
            "intentId": intent_id,
            "outcome": outcome,
            "intent": _intent_row(updated) if updated else None,
            "execution": _execution_summary(execution),
            "reasonCodes": _strs(new_state.get("reasonCodes")),
            "summary": new_state.get("summary"),
        }
        return ApiResponse(200, answer)


# --- row shapers -----------------------------------------------------------------------------


def _is_pending(intent: Any) -> bool:
    return isinstance(intent, dict) and intent.get("status") == PENDING


def _manual_only(intent: JSON) -> bool:
    auto = intent.get("autonomous")
    return bool(isinstance(auto, dict) and auto.get("manualOnly") is True)


def _intent_row(intent: JSON) -> JSON:
    auto = _obj(intent.get("autonomous"))
    return {
        "intentId": intent.get("intentId"),
        "loopId": intent.get("loopId"),
        "intent": intent.get("intent"),
        "category": intent.get("category"),
        "severity": intent.get("severity"),
        "confidence": intent.get("confidence"),
        "rationale": intent.get("rationale"),
        "status": intent.get("status"),
        "transport": intent.get("transport"),
        "manualOnly": _manual_only(intent),
        "autonomousEligible": bool(auto.get("eligible") is True),
        "autonomousReasons": _strs(auto.get("reasons")),
        "execution": intent.get("execution"),
    }


def _execution_summary(execution: Any) -> JSON | None:
    if not isinstance(execution, dict):
        return None
    keys = (
        "mode",
        "requestedBy",
        "requestedAt",
        "completedAt",
        "note",
        "requestedIntentCount",
        "executedCount",
        "ambiguousCount",
        "failedCount",
        "results",
    )
    return {k: execution.get(k) for k in keys}


def _autonomous_summary(status: JSON | None) -> JSON | None:
    auto = (status or {}).get("autonomous")
    if not isinstance(auto, dict):
        return None
    return {
        "mode": auto.get("mode"),
        "enabled": auto.get("enabled"),
        "outcomeRollup": auto.get("outcomeRollup"),
        "killSwitchActive": (auto.get("safetyGateDecisions") or {}).get("killSwitchActive"),
    }


def _event_row(e: JSON) -> JSON:
    return {
        "timestamp": e.get("timestamp"),
        "event": e.get("event"),
        "runId": e.get("run_id"),
        "iteration": e.get("iteration"),
        "role": e.get("role"),
        "status": e.get("status"),
        "message": e.get("message"),
    }


def _escalation_row(e: JSON) -> JSON:
    return {
        "timestamp": e.get("timestamp"),
        "category": e.get("category"),
        "healthStatus": e.get("healthStatus"),
        "reasonCodes": _strs(e.get("reasonCodes")),
        "traceId": e.get("traceId"),
        "transport": e.get("transport"),
    }


def _delivery_row(r: JSON) -> JSON:
    sinks = []
    for s in r.get("sinks") or []:
        if not isinstance(s, dict):
            continue
        sinks.append(
            {
                "id": s.get("id"),
                "type": s.get("type"),
                "outcome": delivery_outcome(s),
                "status": s.get("status"),
                "reasonCode": s.get("reasonCode"),
                "httpStatus": s.get("httpStatus"),
                "outboxStatus": s.get("outboxStatus"),
                "attempts": s.get("attempts"),
                "message": s.get("message"),
            }
        )
    return {
        "timestamp": r.get("timestamp"),
        "status": r.get("status"),
        "reasonCode": r.get("reasonCode"),
        "category": r.get("escalationCategory") or r.get("category"),
        "severity": r.get("eventSeverity"),
        "action": r.get("action"),
        "traceId": r.get("traceId"),
        "sinks": sinks,
    }


def _outbox_rows(path: Path) -> list[JSON]:
    """The current state of every notification the outbox knows, newest first."""
    if not path.exists():
        return []
    from ops_manager.reducers.alerts import fold_outbox
    from ops_manager.store import iter_records

    try:
        entries = fold_outbox(rec for _, rec in iter_records(path))
    except OpsError:
        return []
    rows = []
    for entry in sorted(entries.values(), key=lambda e: e.order, reverse=True)[:RECENT_ROWS]:
        event = entry.event if isinstance(entry.event, Mapping) else {}
        rows.append(
            {
                "sinkId": entry.sink_id,
                "sinkType": entry.sink_type,
                "outcome": _OUTBOX_OUTCOME.get(entry.status, entry.status),
                "outboxStatus": entry.status,
                "attempts": entry.attempts,
                "firstQueuedAt": entry.first_queued_at,
                "nextAttemptAt": entry.next_attempt_at,
                "category": event.get("category"),
                "action": event.get("action"),
                "reasonCode": entry.last.get("reasonCode"),
                "httpStatus": entry.last.get("httpStatus"),
            }
        )
    return rows


def _reconcile_row(r: JSON) -> JSON:
    return {
        "timestamp": r.get("timestamp"),
        "status": r.get("status"),
        "transport": r.get("transport"),
        "eventsIngested": r.get("eventsIngested"),
        "durationSeconds": r.get("durationSeconds"),
        "healthStatus": r.get("healthStatus"),
        "failureCode": r.get("failureCode"),
        "traceId": r.get("traceId"),
    }


def _delivery_success(deliveries: list[tuple[str, str, JSON]]) -> JSON:
    """Per-sink delivery outcomes over time: a success-rate point per dispatch timestamp
    (fraction of that timestamp's sink attempts delivered) and totals by outcome/sink."""
    deliveries.sort(key=lambda d: parse_ts(d[0]) or 0)
    by_time: dict[str, list[str]] = {}
    totals = {"delivered": 0, "retrying": 0, "failed": 0}
    by_sink: dict[str, JSON] = {}
    for stamp, _loop, sink in deliveries:
        outcome = delivery_outcome(sink)
        by_time.setdefault(stamp, []).append(outcome)
        totals[outcome] += 1
        sid = str(sink.get("id") or "?")
        entry = by_sink.setdefault(
            sid, {"id": sid, "type": sink.get("type"), "delivered": 0, "retrying": 0, "failed": 0}
        )
        entry[outcome] += 1
    points = [[t, outs.count("delivered") / len(outs)] for t, outs in by_time.items()]
    attempts = sum(totals.values())
    return {
        "unit": "ratio",
        "series": [{"name": "delivered / attempted", "points": points}] if points else [],
        "totals": totals,
        "rate": (totals["delivered"] / attempts) if attempts else None,
        "bySink": list(by_sink.values()),
    }


def _autonomous_outcomes(rows: list[JSON]) -> JSON:
    """Outcome rates of handoff executions over time (``fleet_handoff_execute`` rows)."""
    series: dict[str, list[list[Any]]] = {"executed": [], "ambiguous": [], "failed": []}
    totals = {"attempted": 0, "executed": 0, "ambiguous": 0, "failed": 0}
    manual = {"attempted": 0, "executed": 0, "ambiguous": 0, "failed": 0}
    for row in rows:
        execution = row.get("execution")
        if row.get("category") != "fleet_handoff_execute" or not isinstance(execution, dict):
            continue
        attempted = int(_num(execution.get("requestedIntentCount")) or 0)
        counts = {
            k: int(_num(execution.get(f"{k}Count")) or 0)
            for k in ("executed", "ambiguous", "failed")
        }
        bucket = totals if execution.get("mode") == "autonomous" else manual
        bucket["attempted"] += attempted
        for k, v in counts.items():
            bucket[k] += v
        if (
            execution.get("mode") != "autonomous"
            or attempted == 0
            or not _str(row.get("timestamp"))
        ):
            continue
        for k, v in counts.items():
            series[k].append([row["timestamp"], v / attempted])
    return {
        "unit": "ratio",
        "series": [{"name": k, "points": v} for k, v in series.items() if v],
        "totals": totals,
        "manualTotals": manual,
    }
