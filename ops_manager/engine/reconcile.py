"""One reconcile pass (``loop.md`` §3.8): observe, fold, project, judge health, tune, record.

The pass is a sandwich. The shell reads everything it needs (previous projections, the
runtime through a transport, the tails of the telemetry streams), the pure reducers compute
every new projection and every record to append, and the shell writes them in an order that
keeps a crash harmless:

1. appended records (heartbeat / sequence telemetry, escalations, the reconcile row, the
   profile-drift history row, the ``profile_drift_detected`` escalation);
2. projections (``state.json``, ``health.json``, ``heartbeat.json``, ``sequence-state.json``,
   ``transport-health.json``, ``profile-drift.json``, ``stream-state.json``), each atomically;
3. ``cursor.json`` last, so the contract's cursor is committed only after the projections
   that consumed the events are saved (DECISIONS Q-44).

``stream-state.json`` records the verified byte position the projections reflect; a pass
resumes from it. A crash before step 3 therefore neither loses nor double-folds events
(the fold skips lines it has already seen). Records go first because the projections are
what the next pass compares against to decide whether to escalate: a crash after step 1
makes the next pass append them again (at worst duplicated), never lose them.

Steps 12-14 of §3.8.2 (profile drift) run on success *and* failure passes (Q-30): the
telemetry summary folds the last ``drift_summary_window`` reconcile/control rows *including
the row this pass appends* (the summary sees the tail read from disk plus that row, so
nothing is written before everything is computed), the drift reducer compares its
recommendation with the applied profile, and ``state.json`` gains ``drift`` (+ ``traceId``)
and ``tuning``. A ``profile_drift_detected`` escalation is appended when drift becomes
active; when it clears, the history row carries ``transitioned.toResolved: true`` and
``profile-drift.json`` says ``driftActive: false`` (the resolve signal alert dispatch reads).

The whole pass runs under the loop's lock: two reconciles of one loop serialize.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import alt, as_nonneg_int, dumps_compact, loads_object, strip_nulls
from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.engine._files import last_jsonl_object
from ops_manager.engine.drift import previous_drift_lenient, summary_recommendation
from ops_manager.engine.telemetry_summary import summarize_with
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
from ops_manager.reducers.escalations import (
    divergence_escalation,
    divergence_escalation_decision,
    health_escalation,
    health_escalation_decision,
    ordering_drift_escalation,
    profile_drift_escalation,
)
from ops_manager.reducers.health import HealthInputs, compute_health
from ops_manager.reducers.heartbeat import observe_heartbeat
from ops_manager.reducers.lifecycle import SnapshotView, project_lifecycle
from ops_manager.reducers.sequence import SeqBatch, evaluate_sequence, sequence_telemetry_row
from ops_manager.reducers.stream import StreamFold, fold_events
from ops_manager.reducers.thresholds import Thresholds
from ops_manager.reducers.transport import next_transport_health
from ops_manager.runtime import EventLine, StreamPosition, build_event_envelope
from ops_manager.store import (
    LoopPaths,
    append_lines,
    exclusive_lock,
    read_json_or_empty,
    write_json,
)
from ops_manager.transports import (
    EventTuple,
    IngestFailure,
    ObserveRequest,
    RuntimeView,
    Transport,
    TransportConfig,
    get_transport,
)

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


def reconcile(
    settings: ReconcileSettings, *, clock: Callable[[], int] = utc_now_epoch
) -> ReconcileResult:
    """Run one reconcile pass for one loop and persist its artifacts.

    ``clock`` is the only source of time (tests inject a fixed one). Raises
    :class:`~ops_manager.errors.OpsError` only for configuration errors; an unreachable or
    broken runtime is a *failed pass* (recorded, exit 1), not an exception.
    """
    if not settings.repo.is_dir():
        # the CLI resolves --repo first; a library caller gets the same guard, so a
        # mistyped path never makes us create a .superloop/ tree somewhere else
        raise OpsError(f"repo directory not found: {settings.repo}")
    paths = LoopPaths.for_loop(settings.repo, settings.loop_id)
    transport = get_transport(settings.transport, settings.transport_config)
    files = ReconcileFiles.resolve(paths, settings)
    paths.ops_dir.mkdir(parents=True, exist_ok=True)
    paths.telemetry_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(paths.lock_file):
        result = _Pass(settings, paths, files, transport, clock).run()
    if settings.alerts is not None:
        # after the pass and outside its lock (dispatch has its own): a slow or dead sink
        # must not hold up the next reconcile of this loop. Never raises (fail-open), and
        # runs after failed passes too, so transport outages are paged.
        from ops_manager.engine.alert_dispatch import run_dispatch_after_reconcile

        run_dispatch_after_reconcile(
            paths,
            trace_id=settings.trace_id,
            config_file=settings.alerts.config_file,
            state_file=settings.alerts.state_file,
            telemetry_file=settings.alerts.telemetry_file,
        )
    return result


class _BatchTap:
    """Watches the event stream on its way into the fold: count, first/last, last event."""

    def __init__(self) -> None:
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None
        self.last_event: EventTuple | None = None

    def wrap(self, events: Iterator[EventTuple]) -> Iterator[EventTuple]:
        count = 0
        item: EventTuple | None = None
        for item in events:
            count += 1
            if self.first is None:
                self.first = item[0]
            yield item
        self.count = count
        if item is not None:
            self.last_event = item
            self.last = item[0]

    def seq_batch(self) -> SeqBatch:
        # local sequence values are physical line numbers: strictly increasing by construction
        return SeqBatch(count=self.count, first=self.first, last=self.last)


class _Pass:
    def __init__(
        self,
        settings: ReconcileSettings,
        paths: LoopPaths,
        files: ReconcileFiles,
        transport: Transport,
        clock: Callable[[], int],
    ) -> None:
        self.s = settings
        self.paths = paths
        self.files = files
        self.transport = transport
        self.clock = clock

    # -- reading ---------------------------------------------------------------------------
    def _start_position(
        self, stream_state: dict[str, Any], cursor: dict[str, Any]
    ) -> StreamPosition:
        if self.s.from_start:
            return StreamPosition()
        stored = StreamPosition.from_json(stream_state.get("position"))
        if stored is not None:
            return stored
        from_cursor = StreamPosition.from_json(cursor.get("position"))
        if from_cursor is not None:
            return from_cursor
        # an upstream cursor: a line offset only; the transport finds its byte offset
        return StreamPosition(line_offset=_cursor_line_offset(self.files.cursor, cursor))

    def run(self) -> ReconcileResult:
        s, files = self.s, self.files
        started = self.clock()
        prev_health = read_json_or_empty(files.health)
        prev_status = alt(prev_health.get("status"), "healthy")
        prev_codes_raw = prev_health.get("reasonCodes")
        prev_codes = prev_codes_raw if isinstance(prev_codes_raw, list) else []
        cursor = read_json_or_empty(files.cursor)
        offset_before = 0 if s.from_start else (as_nonneg_int(cursor.get("eventLineOffset")) or 0)
        stream_state = read_json_or_empty(files.stream_state)
        fold = StreamFold() if s.from_start else StreamFold.from_json(stream_state.get("fold"))
        prev_state_exists = files.state.exists()
        prev_state = read_json_or_empty(files.state)

        tap = _BatchTap()
        failure: IngestFailure | None = None
        view: RuntimeView | None = None
        new_fold = fold
        extent = None
        try:
            observation = self.transport.observe(
                ObserveRequest(
                    paths=self.paths,
                    start=self._start_position(stream_state, cursor),
                    max_events=s.max_events,
                    trace_id=s.trace_id,
                    now=started,
                )
            )
            view = observation.view
            new_fold = fold_events(fold, tap.wrap(observation.events))
            extent = observation.extent()
        except IngestFailure as exc:
            failure = exc

        now = self.clock()
        ok = failure is None
        records: list[tuple[Path, dict[str, Any]]] = []
        warnings: list[str] = []

        new_state: dict[str, Any] | None = None
        sequence: dict[str, Any] | None = None
        heartbeat_state: dict[str, Any] | None = None
        if ok:
            assert view is not None and extent is not None
            last_envelope = self._last_envelope(tap, extent.total_lines, now)
            new_state = project_lifecycle(
                _snapshot_view(view, self.paths.loop_id, extent.total_lines),
                last_event_envelope=last_envelope,
                previous_state=prev_state if prev_state_exists else None,
                now=now,
                snapshot_file=None,
                events_file=None,
                # state.source is the local repo even when the runtime is remote
                repo_path=str(self.paths.repo),
            )
            if extent.torn_tail_bytes:
                warnings.append(
                    f"{self.paths.events_file} ends with an incomplete line "
                    f"({extent.torn_tail_bytes} bytes, a write in progress?); "
                    "it will be read once it is complete"
                )

        transport_health = next_transport_health(
            read_json_or_empty(files.transport_health),
            success=ok,
            failure_code=None if failure is None else failure.code,
            now=now,
            trace_id=s.trace_id,
            transport=s.transport,
        )

        if ok:
            assert view is not None and extent is not None
            hb = observe_heartbeat(
                view.heartbeat,
                now=now,
                loop_id=self.paths.loop_id,
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
                batch=tap.seq_batch(),
                now=now,
                loop_id=self.paths.loop_id,
                trace_id=s.trace_id,
                transport=s.transport,
                replay=s.from_start,
            )
            records.append((files.sequence_telemetry, sequence_telemetry_row(sequence, now)))

        last_intent = last_jsonl_object(files.intents)
        health = compute_health(
            HealthInputs(
                now=now,
                trace_id=s.trace_id,
                transport=s.transport,
                ingest_status="success" if ok else "failed",
                failure_code=None if failure is None else failure.code,
                thresholds=s.thresholds,
                state=new_state if new_state is not None else prev_state,
                heartbeat_state=heartbeat_state
                if heartbeat_state is not None
                else read_json_or_empty(files.heartbeat_state),
                sequence_state=sequence
                if sequence is not None
                else read_json_or_empty(files.sequence_state),
                transport_health=transport_health,
                last_control_status=_str_or_none(
                    last_intent.get("status") if last_intent else None
                ),
            )
        )

        # state merge (jq `+`: existing keys keep their place, new keys are appended)
        merged: dict[str, Any] | None
        if new_state is not None:
            merged = dict(new_state)
            merged["health"] = health
            merged["trace"] = {"reconcileTraceId": s.trace_id}
            merged["sequence"] = sequence
        elif prev_state_exists:
            merged = dict(prev_state)
            merged["health"] = health
            trace = prev_state.get("trace")
            merged["trace"] = {
                **(trace if isinstance(trace, dict) else {}),
                "reconcileTraceId": s.trace_id,
            }
        else:
            merged = None

        records.extend(
            (files.escalations, row)
            for row in self._escalations(
                ok=ok,
                failure=failure,
                merged=merged,
                prev_state=prev_state,
                sequence=sequence,
                health=health,
                prev_status=str(prev_status),
                prev_codes=prev_codes,
                now=now,
            )
        )

        cursor_after = (
            extent.position.line_offset
            if ok and extent is not None
            else (as_nonneg_int(cursor.get("eventLineOffset")) or 0)
        )
        finished = self.clock()
        telemetry_row = self._telemetry_row(
            started=started,
            finished=finished,
            failure=failure,
            offset_before=offset_before,
            offset_after=cursor_after,
            ingested=tap.count if ok else 0,
            transport_health=transport_health,
            sequence=sequence,
            health=health,
        )
        records.append((files.reconcile_telemetry, telemetry_row))

        # steps 12-14: summary, drift, tuning; success and failure passes alike
        drift = self._drift_step(
            telemetry_row=telemetry_row,
            health=health,
            merged=merged,
            records=records,
            warnings=warnings,
            now=finished,
        )

        # -- writing: records, then projections, then the position and the cursor ---------
        # Records first: the projections written next (health.json, state.json,
        # sequence-state.json) are the "previous" values the next pass compares against to
        # decide whether to escalate, so saving one before its escalation row is appended
        # would let a crash in between lose that escalation for good. In this order a crash
        # can only make the next pass append a record again.
        for path, group in _group_by_path(records):
            append_lines(path, group)
        if merged is not None:
            write_json(files.state, merged)
        write_json(files.health, health)
        if heartbeat_state is not None:
            write_json(files.heartbeat_state, heartbeat_state)
        if sequence is not None:
            write_json(files.sequence_state, sequence)
        write_json(files.transport_health, transport_health)
        write_json(files.drift_state, drift)
        if ok and extent is not None:
            write_json(
                files.stream_state,
                self._stream_state(
                    extent.position, extent.total_lines, extent.torn_tail_bytes, new_fold, now
                ),
            )
        if ok and extent is not None:
            write_json(
                files.cursor, self._cursor(extent.position, extent.total_lines, now), pretty=True
            )

        if ok:
            assert merged is not None
            return ReconcileResult(
                ok=True, output=merged, events_ingested=tap.count, warnings=tuple(warnings)
            )
        assert failure is not None
        return ReconcileResult(
            ok=False,
            output=health,
            failure_code=failure.code,
            failure_message=failure.message,
            warnings=tuple(warnings),
        )

    # -- steps 12-14 ---------------------------------------------------------------------------
    def _drift_step(
        self,
        *,
        telemetry_row: dict[str, Any],
        health: dict[str, Any],
        merged: dict[str, Any] | None,
        records: list[tuple[Path, dict[str, Any]]],
        warnings: list[str],
        now: int,
    ) -> dict[str, Any]:
        """Summarize telemetry, evaluate drift, merge ``drift``/``tuning`` into ``merged``
        (in place), queue the history row and the drift escalation; return the drift object.

        Reads the telemetry tails and the previous drift projection; writes nothing.
        """
        s, files = self.s, self.files
        summary: dict[str, Any] | None
        try:
            result = summarize_with(
                paths=self.paths,
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
                loop_id=self.paths.loop_id,
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
                    merged_thresholds.get("profile")
                    if isinstance(merged_thresholds, dict)
                    else None,
                )
        if transitioned_to_active(drift):
            records.append(
                (
                    files.escalations,
                    profile_drift_escalation(
                        now=now,
                        loop_id=self.paths.loop_id,
                        trace_id=s.trace_id,
                        transport=s.transport,
                        state_file=str(files.state),
                        drift_state_file=str(files.drift_state),
                        drift_history_file=str(files.drift_history),
                        drift=drift,
                    ),
                )
            )
        return drift

    # -- builders ----------------------------------------------------------------------------
    def _last_envelope(self, tap: _BatchTap, total_lines: int, now: int) -> dict[str, Any] | None:
        if tap.last_event is None:
            return None
        line, raw, name, timestamp = tap.last_event
        return build_event_envelope(
            (str(self.paths.repo), self.paths.loop_id),
            EventLine(line=line, raw=raw, name=name, timestamp=timestamp),
            total_lines=total_lines,
            now=now,
            trace_id=self.s.trace_id,
        )

    def _escalations(
        self,
        *,
        ok: bool,
        failure: IngestFailure | None,
        merged: dict[str, Any] | None,
        prev_state: dict[str, Any],
        sequence: dict[str, Any] | None,
        health: dict[str, Any],
        prev_status: str,
        prev_codes: list[Any],
        now: int,
    ) -> list[dict[str, Any]]:
        s, files = self.s, self.files
        rows: list[dict[str, Any]] = []
        if ok and merged is not None:
            prev_div = prev_state.get("divergence")
            prev_div = prev_div if isinstance(prev_div, dict) else {}
            prev_flags = prev_div.get("flags") if isinstance(prev_div.get("flags"), dict) else None
            due, _reason = divergence_escalation_decision(
                prev_flags, prev_div.get("any") is True, merged
            )
            if due:
                rows.append(
                    divergence_escalation(
                        now=now,
                        loop_id=self.paths.loop_id,
                        trace_id=s.trace_id,
                        transport=s.transport,
                        state_file=str(files.state),
                        cursor_file=str(files.cursor),
                        state=merged,
                    )
                )
        if sequence is not None:
            transition = sequence.get("transition") or {}
            if transition.get("transitionedToDrift") is True:
                rows.append(
                    ordering_drift_escalation(
                        now=now,
                        loop_id=self.paths.loop_id,
                        trace_id=s.trace_id,
                        transport=s.transport,
                        state_file=str(files.state),
                        sequence_state_file=str(files.sequence_state),
                        sequence_telemetry_file=str(files.sequence_telemetry),
                        sequence=sequence,
                    )
                )
        due, _reason = health_escalation_decision(prev_status, prev_codes, health)
        if due:
            rows.append(
                health_escalation(
                    now=now,
                    loop_id=self.paths.loop_id,
                    trace_id=s.trace_id,
                    transport=s.transport,
                    ingest_status="success" if ok else "failed",
                    failure_code=None if failure is None else failure.code,
                    state_file=str(files.state),
                    cursor_file=str(files.cursor),
                    health_file=str(files.health),
                    health=health,
                )
            )
        return rows

    def _telemetry_row(
        self,
        *,
        started: int,
        finished: int,
        failure: IngestFailure | None,
        offset_before: int,
        offset_after: int,
        ingested: int,
        transport_health: dict[str, Any],
        sequence: dict[str, Any] | None,
        health: dict[str, Any],
    ) -> dict[str, Any]:
        s = self.s
        if sequence is not None:
            seq_status = sequence.get("status")
            seq_reason = sequence.get("reasonCode")
        else:
            seq_status = "skipped_ingest_failed"
            seq_reason = None
        return strip_nulls(
            {
                "timestamp": format_ts(finished),
                "startedAt": format_ts(started),
                "loopId": self.paths.loop_id,
                "traceId": s.trace_id,
                "transport": s.transport,
                "status": "success" if failure is None else "failed",
                "failureCode": None if failure is None else failure.code,
                "failureMessage": None if failure is None else (failure.message or None),
                "cursorOffsetBefore": offset_before,
                "cursorOffsetAfter": offset_after,
                "eventsIngested": ingested,
                "maxEvents": s.max_events,
                "fromStart": s.from_start,
                "retryAttempts": s.transport_config.retry_attempts,
                "retryBackoffSeconds": s.transport_config.retry_backoff_seconds,
                "thresholdProfile": s.thresholds.profile or None,
                "durationSeconds": max(0, finished - started),
                "transportFailureStreak": transport_health.get("failureStreak", 0),
                "sequenceStatus": seq_status,
                "sequenceReasonCode": seq_reason,
                "healthStatus": health.get("status"),
                "healthReasonCodes": health.get("reasonCodes", []),
            }
        )

    def _cursor(self, position: StreamPosition, total_lines: int, now: int) -> dict[str, Any]:
        return {
            "schemaVersion": "v1",
            "repoPath": str(self.paths.repo),
            "loopId": self.paths.loop_id,
            "eventsFile": self.paths.relative(self.paths.events_file),
            "eventLineOffset": position.line_offset,
            "eventLineCount": total_lines,
            "updatedAt": format_ts(now),
            "position": position.to_json(),
        }

    def _stream_state(
        self, position: StreamPosition, total_lines: int, torn: int, fold: StreamFold, now: int
    ) -> dict[str, Any]:
        return {
            "schemaVersion": "v1",
            "updatedAt": format_ts(now),
            "loopId": self.paths.loop_id,
            "eventsFile": self.paths.relative(self.paths.events_file),
            "position": position.to_json(),
            "eventLineCount": total_lines,
            "tornTailBytes": torn,
            "fold": fold.to_json(),
        }


def _snapshot_view(view: RuntimeView, loop_id: str, total_lines: int) -> SnapshotView:
    """The lifecycle reducer's input, built from a transport's runtime view."""
    summary = view.summary if isinstance(view.summary, dict) else None
    state = view.superloop_state if isinstance(view.superloop_state, dict) else None
    approval = view.approval if isinstance(view.approval, dict) else None
    last = view.last_event if isinstance(view.last_event, dict) else None
    return SnapshotView(
        repo_path=view.repo_path,
        loop_id=loop_id,
        run_id=view.run_id,
        iteration=view.iteration,
        status=view.status,
        has_pending_approval=approval is not None and approval.get("status") == "pending",
        completion_ok=alt(summary.get("completion_ok") if summary else None, False) is True,
        active=state.get("active") if state else None,
        gates=summary.get("gates") if summary else None,
        stuck=summary.get("stuck") if summary else None,
        last_event_name=_str_or_none(alt(last.get("event"), last.get("type")) if last else None),
        last_event_at=_str_or_none(last.get("timestamp") if last else None),
        event_line_count=total_lines,
    )


def _cursor_line_offset(path: Path, cursor: dict[str, Any]) -> int:
    """The line offset of a cursor without a stored position (e.g. written upstream).

    Like the upstream poll (``loop.md`` §3.2 step 3), a cursor file that exists but cannot
    be read fails the pass (``events_unavailable``) instead of silently starting over from
    line 1: ``invalid JSON in cursor file: <path>`` / ``invalid cursor offset in <path>``.
    A missing file, or a missing/null ``eventLineOffset``, is offset 0.
    """
    if not cursor:
        if not path.exists():
            return 0
        try:
            parsed = loads_object(path.read_bytes())
        except OSError:
            parsed = None
        if parsed is None:
            raise IngestFailure("events_unavailable", f"error: invalid JSON in cursor file: {path}")
    raw = alt(cursor.get("eventLineOffset"))
    if raw is None:
        return 0
    offset = as_nonneg_int(raw)
    if offset is None:
        raise IngestFailure("events_unavailable", f"error: invalid cursor offset in {path}")
    return offset


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _group_by_path(
    records: list[tuple[Path, dict[str, Any]]],
) -> list[tuple[Path, list[dict[str, Any]]]]:
    """Group consecutive records by target file, keeping order (fewer opens, same result)."""
    groups: list[tuple[Path, list[dict[str, Any]]]] = []
    for path, row in records:
        if groups and groups[-1][0] == path:
            groups[-1][1].append(row)
        else:
            groups.append((path, [row]))
    return groups


__all__ = [
    "TRANSPORTS",
    "AlertOptions",
    "ReconcileFiles",
    "ReconcileResult",
    "ReconcileSettings",
    "reconcile",
]
