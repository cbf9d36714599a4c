"""The compute steps of a reconcile pass (``loop.md`` §3.8.2), and the values passed
between its phases.

Split out of :mod:`ops_manager.engine.reconcile`, whose ``_Pass`` calls these in a fixed
order. They read previous projections and telemetry tails but never write: every record
they produce is queued for the pass's write phase.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import attrs

from ops_manager._jsonfmt import alt, dumps_compact
from ops_manager.engine._files import last_jsonl_object
from ops_manager.engine._reconcile_records import BatchTap as _BatchTap
from ops_manager.engine._reconcile_records import (
    event_digest,
    replay_log_rewrite,
)
from ops_manager.engine._reconcile_records import last_envelope as _last_envelope
from ops_manager.engine._reconcile_records import snapshot_view as _snapshot_view
from ops_manager.engine._reconcile_records import str_or_none as _str_or_none
from ops_manager.engine._reconcile_types import ReconcileFiles, ReconcileSettings
from ops_manager.engine.drift import previous_drift_lenient, summary_recommendation
from ops_manager.engine.telemetry_summary import SummaryResult
from ops_manager.errors import OpsError
from ops_manager.reducers.drift import (
    CONFIDENCES,
    DriftInputs,
    drift_history_row,
    evaluate_drift,
    state_drift,
    transitioned_to_active,
    tuning_block,
)
from ops_manager.reducers.escalations import profile_drift_escalation
from ops_manager.reducers.heartbeat import observe_heartbeat
from ops_manager.reducers.pass_inputs import (
    ControlCounts,
    PassInputs,
    PreviousState,
    pass_health,
    pass_lifecycle,
)
from ops_manager.reducers.posture import run_evidence
from ops_manager.reducers.sequence import evaluate_sequence, sequence_telemetry_row
from ops_manager.reducers.stream import StreamFold
from ops_manager.reducers.telemetry_summary import malformed_counts
from ops_manager.store import LoopPaths, read_json_or_empty
from ops_manager.transports import IngestFailure, ReadExtent, RuntimeView


# The three values passed between the phases of one pass are NamedTuples, not attrs
# classes: internal to the pass, never compared or evolved, and a NamedTuple costs a CLI
# process ~0.1 ms to define where an attrs class costs ~0.5 ms.
class Previous(NamedTuple):
    """What the pass read before observing: the projections it resumes from and compares
    against."""

    status: Any
    codes: list[Any]
    cursor: dict[str, Any]
    offset_before: int
    stream_state: dict[str, Any]
    fold: StreamFold
    state_exists: bool
    state: dict[str, Any]


class Observed(NamedTuple):
    """What the transport returned: the runtime view, the folded events, the read extent
    (``view``/``extent`` are ``None`` and ``failure`` is set when the ingest failed)."""

    tap: _BatchTap
    failure: IngestFailure | None
    view: RuntimeView | None
    fold: StreamFold
    extent: ReadExtent | None


class Computed(NamedTuple):
    """Everything the write phase persists, computed before anything is written."""

    #: the pass's one clock value after observing: every ``updatedAt`` it writes and its
    #: telemetry row's ``timestamp`` (so ``rebuild`` can restore projections from the rows)
    now: int
    records: list[tuple[Path, dict[str, Any]]]
    warnings: list[str]
    merged: dict[str, Any] | None
    health: dict[str, Any]
    heartbeat_state: dict[str, Any] | None
    sequence: dict[str, Any] | None
    transport_health: dict[str, Any]
    drift: dict[str, Any]


def inputs_step(
    s: ReconcileSettings, paths: LoopPaths, files: ReconcileFiles, prev: Previous, obs: Observed
) -> PassInputs:
    """What this pass's health and state derive from that no stream holds (recorded in its
    reconcile row; ``control`` is added once the telemetry summary ran, see drift_step)."""
    last_intent = last_jsonl_object(files.intents)
    inputs = PassInputs(
        thresholds=s.thresholds,
        last_control_status=_str_or_none(last_intent.get("status") if last_intent else None),
        alert_config_error=alert_config_problem(s),
        previous=PreviousState.of(prev.state) if prev.state_exists else None,
    )
    view, extent = obs.view, obs.extent
    if obs.failure is not None or view is None or extent is None:
        return inputs
    last = obs.tap.last_event
    return attrs.evolve(
        inputs,
        snapshot=_snapshot_view(view, paths.loop_id, extent.total_lines),
        runtime=run_evidence(
            active_run=view.active_run,
            active_run_known=view.active_run_known,
            approval=view.approval,
        ),
        last_event=None if last is None else {"line": last[0], "sha256": event_digest(last[1])},
    )


def lifecycle_step(
    s: ReconcileSettings,
    paths: LoopPaths,
    inputs: PassInputs,
    obs: Observed,
    now: int,
    warnings: list[str],
) -> dict[str, Any]:
    """The new lifecycle state of a successful ingest (+ a torn-tail warning)."""
    extent = obs.extent
    assert extent is not None
    last_envelope = _last_envelope(paths, s.trace_id, obs.tap, extent.total_lines, now)
    new_state = pass_lifecycle(
        inputs, last_event_envelope=last_envelope, now=now, repo_path=str(paths.repo)
    )
    if extent.torn_tail_bytes:
        warnings.append(
            f"{paths.events_file} ends with an incomplete line "
            f"({extent.torn_tail_bytes} bytes, a write in progress?); "
            "it will be read once it is complete"
        )
    return new_state


def heartbeat_and_sequence_step(
    s: ReconcileSettings,
    paths: LoopPaths,
    files: ReconcileFiles,
    prev: Previous,
    obs: Observed,
    now: int,
    records: list[tuple[Path, dict[str, Any]]],
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Heartbeat and sequence projections of a successful ingest; queues their rows."""
    view, extent = obs.view, obs.extent
    assert view is not None and extent is not None
    hb = observe_heartbeat(
        view.heartbeat,
        now=now,
        loop_id=paths.loop_id,
        trace_id=s.trace_id,
        transport=s.transport,
        degraded=s.thresholds.degraded_heartbeat_lag_seconds,
        critical=s.thresholds.critical_heartbeat_lag_seconds,
    )
    heartbeat_state = hb.state
    if hb.telemetry_row is not None:
        records.append((files.heartbeat_telemetry, hb.telemetry_row))
    sequence = evaluate_sequence(
        read_json_or_empty(files.sequence_state),
        snapshot_value=extent.total_lines,
        batch=obs.tap.seq_batch(),
        now=now,
        loop_id=paths.loop_id,
        trace_id=s.trace_id,
        transport=s.transport,
        replay=s.from_start,
        log_rewrite=replay_log_rewrite(prev.stream_state, obs.tap, extent.total_lines)
        if s.from_start
        else None,
    )
    records.append((files.sequence_telemetry, sequence_telemetry_row(sequence, now)))
    return heartbeat_state, sequence


def health_step(
    s: ReconcileSettings,
    files: ReconcileFiles,
    prev: Previous,
    obs: Observed,
    inputs: PassInputs,
    new_state: dict[str, Any] | None,
    heartbeat_state: dict[str, Any] | None,
    sequence: dict[str, Any] | None,
    transport_health: dict[str, Any],
    now: int,
) -> dict[str, Any]:
    """The health projection (on a failed pass, from the previous projections)."""
    failure = obs.failure
    return pass_health(
        inputs,
        now=now,
        trace_id=s.trace_id,
        transport=s.transport,
        failure_code=None if failure is None else failure.code,
        ok=failure is None,
        state=new_state if new_state is not None else prev.state,
        heartbeat_state=heartbeat_state
        if heartbeat_state is not None
        else read_json_or_empty(files.heartbeat_state),
        sequence_state=sequence
        if sequence is not None
        else read_json_or_empty(files.sequence_state),
        transport_health=transport_health,
    )


def alert_config_problem(s: ReconcileSettings) -> str | None:
    """Why the alert sink config cannot be used, or ``None`` (health ``alert_config_invalid``).

    With alerts enabled the pass checks the config its own dispatch will load (same
    precedence: flag, env, packaged), so health says it in the very pass the config broke
    or was fixed. With alerts disabled, dispatch runs elsewhere: its last state says.
    """
    if s.alerts is not None:
        from ops_manager.engine._alert_quiet import config_known_ok, config_path

        flag = str(s.alerts.config_file) if s.alerts.config_file else None
        path = config_path(flag)
        if config_known_ok(path):
            return None  # loaded in an earlier process: no need to import the loader
        from ops_manager.engine.alert_config import load_alert_config

        try:
            load_alert_config(path)
        except OpsError as exc:
            return exc.message
        return None
    stored = read_json_or_empty(LoopPaths.for_loop(s.repo, s.loop_id).alert_dispatch_state_file)
    error = stored.get("configError")
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else None


# -- steps 12-14 ----------------------------------------------------------------------------
def drift_step(
    s: ReconcileSettings,
    paths: LoopPaths,
    files: ReconcileFiles,
    *,
    summarize: Callable[..., SummaryResult],
    telemetry_row: dict[str, Any],
    health: dict[str, Any],
    merged: dict[str, Any] | None,
    records: list[tuple[Path, dict[str, Any]]],
    warnings: list[str],
    now: int,
) -> tuple[dict[str, Any], ControlCounts | None]:
    """Summarize telemetry, evaluate drift, merge ``drift``/``tuning`` into ``merged``
    (in place), queue the history row and the drift escalation; return the drift object
    and what the summary took from the control stream (``None``: no summary).

    Reads the telemetry tails (through ``summarize``: the pass passes
    :func:`ops_manager.engine.reconcile.summarize_with`, looked up at call time) and the
    previous drift projection; writes nothing.
    """
    summary: dict[str, Any] | None
    try:
        result = summarize(
            paths=paths,
            reconcile_file=files.reconcile_telemetry,
            control_file=files.control_telemetry,
            window=s.drift_summary_window,
            now=now,
            extra_reconcile_lines=[dumps_compact(telemetry_row).encode("utf-8")],
        )
    except OSError as exc:
        # upstream: a summary failure means no summary (no recommendation, no tuning)
        warnings.append(f"telemetry summary unavailable: {exc}")
        summary = None
    else:
        warnings.extend(result.warnings)
        summary = result.summary
    previous, problem = previous_drift_lenient(files.drift_state, files.drift_history)
    if problem is not None:
        warnings.append(problem)
    recommended, confidence, rationale = summary_recommendation(summary)
    if s.known_profiles is not None and recommended and recommended not in s.known_profiles:
        warnings.append(
            f"recommended profile {recommended!r} is not in the threshold catalog; "
            "drift evaluated without a recommendation"
        )
        recommended = ""
    thresholds = health.get("thresholds")
    applied = s.thresholds.profile or alt(
        thresholds.get("profile") if isinstance(thresholds, dict) else None
    )
    drift = evaluate_drift(
        previous,
        DriftInputs(
            loop_id=paths.loop_id,
            now=now,
            applied_profile=applied if isinstance(applied, str) else "",
            recommended_profile=recommended,
            recommendation_confidence=confidence if confidence in CONFIDENCES else "low",
            min_confidence=s.drift_min_confidence,
            required_streak=s.drift_required_streak,
            summary_window=s.drift_summary_window,
            rationale=rationale,
        ),
    )
    records.append((files.drift_history, drift_history_row(drift, now)))
    if merged is not None:
        merged["drift"] = state_drift(drift, s.trace_id)
        if summary is not None:
            merged_health = merged.get("health")
            merged_thresholds = (
                merged_health.get("thresholds") if isinstance(merged_health, dict) else None
            )
            merged["tuning"] = tuning_block(
                summary,
                merged_thresholds.get("profile") if isinstance(merged_thresholds, dict) else None,
            )
    if transitioned_to_active(drift):
        records.append(
            (
                files.escalations,
                profile_drift_escalation(
                    now=now,
                    loop_id=paths.loop_id,
                    trace_id=s.trace_id,
                    transport=s.transport,
                    state_file=str(files.state),
                    drift_state_file=str(files.drift_state),
                    drift_history_file=str(files.drift_history),
                    drift=drift,
                ),
            )
        )
    return drift, None if summary is None else summary_control_counts(summary)


def summary_control_counts(summary: dict[str, Any]) -> ControlCounts:
    """The control-stream part of a summary (its window, ambiguous and malformed rows): the
    summary's only inputs that are not reconcile rows, recorded in the row's ``inputs``."""
    observed = summary.get("observed")
    observed = observed if isinstance(observed, dict) else {}
    control = observed.get("control")
    ambiguous = control.get("ambiguousCount") if isinstance(control, dict) else 0
    _rec, malformed = malformed_counts(summary)
    source = summary.get("source")
    window = source.get("window") if isinstance(source, dict) else 0
    return ControlCounts(
        window=window if isinstance(window, int) else 0,
        ambiguous=ambiguous if isinstance(ambiguous, int) else 0,
        malformed=malformed,
    )
