"""``status``: read a loop's artifacts and build the operator view (writes nothing).

Besides the projections and the last line of each stream, status folds the telemetry
summary over the last ``summary_window`` rows of ``TEL/reconcile.jsonl`` / ``TEL/control.jsonl``
(O(window) reads from the end of each file), which fills ``tuning.recommendedProfile``,
``confidence``, ``rationale`` and ``telemetrySummary``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from ops_manager._timefmt import utc_now_epoch
from ops_manager.engine._files import last_jsonl_object
from ops_manager.engine.telemetry_summary import summarize_with
from ops_manager.errors import OpsError
from ops_manager.reducers.status import StatusInputs, build_status
from ops_manager.store import LoopPaths, read_json_file


class StatusFiles(NamedTuple):
    """Every file status reads; ``None`` fields take the contract default under ``OPS/``.

    A named tuple rather than an ``attrs`` class: ``status`` imports no ``attrs`` at all
    (it would cost the command about a third of a bare Python start).
    """

    state: Path | None = None
    cursor: Path | None = None
    health: Path | None = None
    intents: Path | None = None
    heartbeat_state: Path | None = None
    heartbeat_telemetry: Path | None = None
    sequence_state: Path | None = None
    sequence_telemetry: Path | None = None
    control_invocations: Path | None = None
    drift_state: Path | None = None
    drift_history: Path | None = None
    alert_dispatch_state: Path | None = None
    alert_dispatch_telemetry: Path | None = None

    def resolve(self, p: LoopPaths) -> dict[str, Path]:
        """Resolved paths keyed by their ``files.*`` name in the status output."""
        return {
            "stateFile": self.state or p.state_file,
            "cursorFile": self.cursor or p.cursor_file,
            "healthFile": self.health or p.health_file,
            "intentsFile": self.intents or p.intents_file,
            "heartbeatStateFile": self.heartbeat_state or p.heartbeat_state_file,
            "heartbeatTelemetryFile": self.heartbeat_telemetry or p.heartbeat_telemetry_file,
            "sequenceStateFile": self.sequence_state or p.sequence_state_file,
            "sequenceTelemetryFile": self.sequence_telemetry or p.sequence_telemetry_file,
            "controlInvocationsFile": self.control_invocations or p.control_invocations_file,
            "driftStateFile": self.drift_state or p.drift_state_file,
            "driftHistoryFile": self.drift_history or p.drift_history_file,
            "alertDispatchStateFile": self.alert_dispatch_state or p.alert_dispatch_state_file,
            "alertDispatchTelemetryFile": self.alert_dispatch_telemetry or p.alert_telemetry_file,
            "reconcileTelemetryFile": p.reconcile_telemetry_file,
            "controlTelemetryFile": p.control_telemetry_file,
        }


def _object(path: Path, error: str) -> dict[str, Any] | None:
    value = read_json_file(path, error)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise OpsError(f"{error}: {path}")
    return value


def loop_status(
    paths: LoopPaths,
    *,
    files: StatusFiles | None = None,
    summary_window: int = 200,
    now: int | None = None,
) -> dict[str, Any]:
    """The status object of ``loop.md`` §3.13.2 for one loop.

    Raises :class:`OpsError` when the loop has neither a state nor a health projection
    (``no status artifacts found for loop: <loop>``) or a projection file is not valid JSON.
    """
    resolved = (files or StatusFiles()).resolve(paths)
    state_path, health_path = resolved["stateFile"], resolved["healthFile"]
    if not state_path.exists() and not health_path.exists():
        raise OpsError(f"no status artifacts found for loop: {paths.loop_id}")
    at = utc_now_epoch() if now is None else now
    inputs = StatusInputs(
        now=at,
        repo_path=str(paths.repo),
        loop_id=paths.loop_id,
        summary_window=summary_window,
        files={key: str(path) for key, path in resolved.items()},
        state=_object(state_path, "invalid state JSON"),
        cursor=_object(resolved["cursorFile"], "invalid cursor JSON"),
        health_file=_object(health_path, "invalid health JSON"),
        heartbeat_state=_object(resolved["heartbeatStateFile"], "invalid heartbeat state JSON"),
        sequence_state=_object(resolved["sequenceStateFile"], "invalid sequence state JSON"),
        drift_state=_object(resolved["driftStateFile"], "invalid drift JSON"),
        dispatch_state=_object(
            resolved["alertDispatchStateFile"], "invalid alert dispatch state JSON"
        ),
        last_intent=last_jsonl_object(resolved["intentsFile"]),
        last_reconcile=last_jsonl_object(resolved["reconcileTelemetryFile"]),
        last_control=last_jsonl_object(resolved["controlTelemetryFile"]),
        last_heartbeat=last_jsonl_object(resolved["heartbeatTelemetryFile"]),
        last_sequence=last_jsonl_object(resolved["sequenceTelemetryFile"]),
        last_invocation=last_jsonl_object(resolved["controlInvocationsFile"]),
        last_alert=last_jsonl_object(resolved["alertDispatchTelemetryFile"]),
        summary=_summary(paths, resolved, summary_window, at),
    )
    return build_status(inputs)


def _summary(
    paths: LoopPaths, resolved: dict[str, Path], window: int, now: int
) -> dict[str, Any] | None:
    """The telemetry summary when ``TEL/reconcile.jsonl`` exists (else ``None``).

    Malformed rows do not void it (they are counted in ``observed.malformedRows``); an
    unreadable file does (``None``, as upstream's "errors -> null").
    """
    reconcile_file = resolved["reconcileTelemetryFile"]
    if not reconcile_file.is_file():
        return None
    try:
        return summarize_with(
            paths=paths,
            reconcile_file=reconcile_file,
            control_file=resolved["controlTelemetryFile"],
            window=window,
            now=now,
        ).summary
    except OSError:
        return None
