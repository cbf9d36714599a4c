"""The value types of a reconcile pass: settings, resolved files, result (``loop.md`` §3.8).

Split out of :mod:`ops_manager.engine.reconcile`, which re-exports every public name here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ops_manager.reducers.drift import CONFIDENCES
from ops_manager.reducers.thresholds import Thresholds
from ops_manager.store import LoopPaths
from ops_manager.transports import TransportConfig

TRANSPORTS = ("local", "sprite_service")


def _at_least_one(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


@attrs.frozen
class AlertOptions:
    """Alert dispatch after a pass (``loop.md`` §3.8.2 step 15); paths ``None`` = defaults."""

    config_file: Path | None = None
    state_file: Path | None = None
    telemetry_file: Path | None = None


@attrs.frozen
class ReconcileSettings:
    """Everything one pass needs, already validated (the CLI resolves flags and env)."""

    repo: Path
    loop_id: str
    trace_id: str
    thresholds: Thresholds = attrs.field(factory=lambda: Thresholds(profile="balanced"))
    transport: str = "local"
    transport_config: TransportConfig = attrs.field(factory=TransportConfig)
    max_events: int = 0
    from_start: bool = False
    cursor_file: Path | None = None
    state_file: Path | None = None
    sequence_state_file: Path | None = None
    sequence_telemetry_file: Path | None = None
    heartbeat_state_file: Path | None = None
    heartbeat_telemetry_file: Path | None = None
    #: profile drift (§3.8.1 ``--drift-*``): recommendation confidence needed to count a
    #: mismatch, consecutive mismatches before drift is active, telemetry summary window
    drift_min_confidence: str = attrs.field(
        default="medium", validator=attrs.validators.in_(CONFIDENCES)
    )
    drift_required_streak: int = attrs.field(default=3, validator=_at_least_one)
    drift_summary_window: int = attrs.field(default=200, validator=_at_least_one)
    drift_state_file: Path | None = None
    drift_history_file: Path | None = None
    #: the catalog's profile names; a recommendation outside it is treated as none (with a
    #: warning) instead of failing every pass. ``None``: not checked.
    known_profiles: frozenset[str] | None = None
    #: dispatch new escalations to the alert sinks after the pass (fail-open); ``None``: off
    alerts: AlertOptions | None = None


@attrs.frozen
class ReconcileFiles:
    """Resolved artifact paths of one pass (defaults from :class:`LoopPaths`, or overrides)."""

    cursor: Path
    state: Path
    health: Path
    intents: Path
    escalations: Path
    sequence_state: Path
    sequence_telemetry: Path
    heartbeat_state: Path
    heartbeat_telemetry: Path
    transport_health: Path
    reconcile_telemetry: Path
    control_telemetry: Path
    drift_state: Path
    drift_history: Path
    stream_state: Path

    @classmethod
    def resolve(cls, paths: LoopPaths, s: ReconcileSettings) -> ReconcileFiles:
        """Apply the settings' path overrides on top of the contract defaults."""
        return cls(
            cursor=s.cursor_file or paths.cursor_file,
            state=s.state_file or paths.state_file,
            health=paths.health_file,
            intents=paths.intents_file,
            escalations=paths.escalations_file,
            sequence_state=s.sequence_state_file or paths.sequence_state_file,
            sequence_telemetry=s.sequence_telemetry_file or paths.sequence_telemetry_file,
            heartbeat_state=s.heartbeat_state_file or paths.heartbeat_state_file,
            heartbeat_telemetry=s.heartbeat_telemetry_file or paths.heartbeat_telemetry_file,
            transport_health=paths.transport_health_file,
            reconcile_telemetry=paths.reconcile_telemetry_file,
            control_telemetry=paths.control_telemetry_file,
            drift_state=s.drift_state_file or paths.drift_state_file,
            drift_history=s.drift_history_file or paths.drift_history_file,
            stream_state=paths.stream_state_file,
        )


@attrs.frozen
class ReconcileResult:
    """The outcome of a pass: what to print and the exit code (0 success, 1 failure)."""

    ok: bool
    #: the merged state on success, the health projection on failure (``loop.md`` §3.8.2)
    output: dict[str, Any]
    failure_code: str | None = None
    failure_message: str | None = None
    events_ingested: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 when ingest and projection succeeded, whatever the health; else 1."""
        return 0 if self.ok else 1


__all__ = [
    "TRANSPORTS",
    "AlertOptions",
    "ReconcileFiles",
    "ReconcileResult",
    "ReconcileSettings",
]
