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

This module keeps the pass itself and its write phase; the value types live in
:mod:`._reconcile_types` (re-exported here), the pure record builders in
:mod:`._reconcile_records` and the compute steps in :mod:`._reconcile_steps`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import alt, as_nonneg_int
from ops_manager._timefmt import utc_now_epoch
from ops_manager.engine._alert_quiet import try_quiet_dispatch
from ops_manager.engine._reconcile_records import (
    BatchTap,
    cursor_document,
    cursor_line_offset,
    escalations_step,
    last_event_fingerprint,
    merged_state,
    reconcile_telemetry_row,
    replay_watch_line,
    stream_state_document,
)
from ops_manager.engine._reconcile_steps import (
    Computed,
    Observed,
    Previous,
    drift_step,
    health_step,
    heartbeat_and_sequence_step,
    inputs_step,
    lifecycle_step,
)
from ops_manager.engine._reconcile_types import TRANSPORTS as TRANSPORTS
from ops_manager.engine._reconcile_types import AlertOptions as AlertOptions
from ops_manager.engine._reconcile_types import ReconcileFiles as ReconcileFiles
from ops_manager.engine._reconcile_types import ReconcileResult as ReconcileResult
from ops_manager.engine._reconcile_types import ReconcileSettings as ReconcileSettings
from ops_manager.engine.telemetry_summary import summarize_with
from ops_manager.errors import OpsError
from ops_manager.reducers.stream import StreamFold
from ops_manager.reducers.transport import next_transport_health
from ops_manager.runtime import StreamPosition
from ops_manager.store import (
    LoopPaths,
    Replace,
    apply_pending,
    commit,
    exclusive_lock,
    json_replace,
    read_json_and_bytes,
    read_json_or_empty,
    remembered_reads,
    rows_append,
)
from ops_manager.transports import (
    IngestFailure,
    ObserveRequest,
    RuntimeView,
    Transport,
    get_transport,
)
from ops_manager.transports import TransportConfig as TransportConfig


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
        # a pass killed after its commit point is finished before anything is read
        apply_pending(paths.pass_commit_file)
        # the lock keeps every projection of the pass as read: each is read once, and the
        # commit gets the bytes read (a projection the pass leaves as it was is not rewritten)
        with remembered_reads() as seen:
            result = _Pass(settings, paths, files, transport, clock, seen).run()
    if settings.alerts is not None:
        # after the pass and outside its lock (dispatch has its own): a slow or dead sink
        # must not hold up the next reconcile of this loop. Never raises (fail-open), and
        # runs after failed passes too, so transport outages are paged.
        _dispatch(paths, settings.trace_id, settings.alerts)
    return result


def _dispatch(paths: LoopPaths, trace_id: str, alerts: AlertOptions) -> None:
    # A run with nothing to send writes its state without the alert stack (about a third
    # of a CLI pass's CPU); any other run, or any doubt, is the full dispatch.
    try:
        if try_quiet_dispatch(
            paths,
            trace_id=trace_id,
            config_file=alerts.config_file,
            state_file=alerts.state_file,
            telemetry_file=alerts.telemetry_file,
        ):
            return
    except Exception:
        pass  # fail-open: the full dispatch runs, and records what went wrong
    from ops_manager.engine.alert_dispatch import run_dispatch_after_reconcile

    run_dispatch_after_reconcile(
        paths,
        trace_id=trace_id,
        config_file=alerts.config_file,
        state_file=alerts.state_file,
        telemetry_file=alerts.telemetry_file,
    )


class _Pass:
    def __init__(
        self,
        settings: ReconcileSettings,
        paths: LoopPaths,
        files: ReconcileFiles,
        transport: Transport,
        clock: Callable[[], int],
        seen: dict[Path, bytes | None] | None = None,
    ) -> None:
        self.s = settings
        self.paths = paths
        self.files = files
        self.transport = transport
        self.clock = clock
        #: the bytes of the projections this pass read (store.remembered_reads)
        self.seen: dict[Path, bytes | None] = {} if seen is None else seen

    def run(self) -> ReconcileResult:
        started = self.clock()
        prev = self._read_previous()
        obs = self._observe(prev, started)
        out = self._compute(prev, obs, started)
        self._write(prev, obs, out)
        return self._result(obs, out)

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
        return StreamPosition(line_offset=cursor_line_offset(self.files.cursor, cursor))

    def _read_previous(self) -> Previous:
        s, files = self.s, self.files
        prev_health = read_json_or_empty(files.health)
        prev_status = alt(prev_health.get("status"), "healthy")
        prev_codes_raw = prev_health.get("reasonCodes")
        prev_codes = prev_codes_raw if isinstance(prev_codes_raw, list) else []
        cursor = read_json_or_empty(files.cursor)
        offset_before = 0 if s.from_start else (as_nonneg_int(cursor.get("eventLineOffset")) or 0)
        stream_state = read_json_or_empty(files.stream_state)
        fold = StreamFold() if s.from_start else StreamFold.from_json(stream_state.get("fold"))
        prev_state, state_bytes = read_json_and_bytes(files.state)
        prev_state_exists = state_bytes is not None or files.state.exists()
        return Previous(
            status=prev_status,
            codes=prev_codes,
            cursor=cursor,
            offset_before=offset_before,
            stream_state=stream_state,
            fold=fold,
            state_exists=prev_state_exists,
            state=prev_state,
        )

    def _observe(self, prev: Previous, started: int) -> Observed:
        s = self.s
        # a replay fingerprints the previously last ingested event to tell the same log
        # from a truncated or rewritten one (DECISIONS Q-12)
        tap = BatchTap(replay_watch_line(prev.stream_state) if s.from_start else None)
        failure: IngestFailure | None = None
        view: RuntimeView | None = None
        new_fold = prev.fold
        extent = None
        try:
            observation = self.transport.observe(
                ObserveRequest(
                    paths=self.paths,
                    start=self._start_position(prev.stream_state, prev.cursor),
                    max_events=s.max_events,
                    trace_id=s.trace_id,
                    now=started,
                    watch_line=tap.watch_line,
                )
            )
            view = observation.view
            new_fold = tap.fold(prev.fold, observation.events)
            extent = observation.extent()
        except IngestFailure as exc:
            failure = exc
        return Observed(tap=tap, failure=failure, view=view, fold=new_fold, extent=extent)

    # -- computing (pure but for reads of the telemetry tails and previous projections) -------
    def _compute(self, prev: Previous, obs: Observed, started: int) -> Computed:
        s, files = self.s, self.files
        failure = obs.failure
        # one clock value stamps the whole pass; its reconcile row records it (C-15c)
        now = self.clock()
        ok = failure is None
        records: list[tuple[Path, dict[str, Any]]] = []
        warnings: list[str] = []

        new_state: dict[str, Any] | None = None
        sequence: dict[str, Any] | None = None
        heartbeat_state: dict[str, Any] | None = None
        # what health and state derive from that no stream holds: recorded in this pass's
        # reconcile row, and the only source the two reducers read (C-15d; rebuild runs
        # the same reducers on the recorded value)
        inputs = inputs_step(s, self.paths, files, prev, obs)
        if ok:
            new_state = lifecycle_step(s, self.paths, inputs, obs, now, warnings)

        transport_health = next_transport_health(
            read_json_or_empty(files.transport_health),
            success=ok,
            failure_code=None if failure is None else failure.code,
            now=now,
            trace_id=s.trace_id,
            transport=s.transport,
        )

        if ok:
            heartbeat_state, sequence = heartbeat_and_sequence_step(
                s, self.paths, files, prev, obs, now, records
            )

        health = health_step(
            s, files, prev, obs, inputs, new_state, heartbeat_state, sequence, transport_health, now
        )
        merged = merged_state(
            new_state, prev.state, prev.state_exists, health, sequence, s.trace_id
        )

        records.extend(
            (files.escalations, row)
            for row in escalations_step(
                s,
                self.paths,
                files,
                ok=ok,
                failure=failure,
                merged=merged,
                prev_state=prev.state,
                sequence=sequence,
                health=health,
                prev_status=str(prev.status),
                prev_codes=prev.codes,
                now=now,
            )
        )

        extent = obs.extent
        cursor_after = (
            extent.position.line_offset
            if ok and extent is not None
            else (as_nonneg_int(prev.cursor.get("eventLineOffset")) or 0)
        )
        telemetry_row = reconcile_telemetry_row(
            s,
            self.paths,
            started=started,
            finished=now,
            failure=failure,
            offset_before=prev.offset_before,
            offset_after=cursor_after,
            ingested=obs.tap.count if ok else 0,
            transport_health=transport_health,
            sequence=sequence,
            health=health,
        )
        records.append((files.reconcile_telemetry, telemetry_row))

        # steps 12-14: summary, drift, tuning; success and failure passes alike
        drift, control = drift_step(
            s,
            self.paths,
            files,
            summarize=summarize_with,
            telemetry_row=telemetry_row,
            health=health,
            merged=merged,
            records=records,
            warnings=warnings,
            now=now,
        )
        # the summary saw the row without ``inputs`` (it reads none of it); the control
        # counts it took are known only now, so the trailing key is added last (the row is
        # written in the write phase)
        telemetry_row["inputs"] = attrs.evolve(inputs, control=control).to_json()
        return Computed(
            now=now,
            records=records,
            warnings=warnings,
            merged=merged,
            health=health,
            heartbeat_state=heartbeat_state,
            sequence=sequence,
            transport_health=transport_health,
            drift=drift,
        )

    # -- writing: one commit record, then applied (store._commit) -------------------------
    def _write(self, prev: Previous, obs: Observed, out: Computed) -> None:
        # Everything the pass changes goes into one commit record first: rows to append
        # (with each stream's size before the pass) and the new bytes of every projection.
        # A crash before the record is in place leaves the previous pass; after, the next
        # lock holder applies it. No mix of the two is ever visible to the next pass.
        files = self.files
        ok, extent, now = obs.failure is None, obs.extent, out.now
        rows: dict[Path, list[dict[str, Any]]] = {}
        for path, row in out.records:
            rows.setdefault(path, []).append(row)
        appends = [rows_append(path, group) for path, group in rows.items()]
        replaces: list[Replace] = []

        def replace(path: Path, value: dict[str, Any], pretty: bool = False) -> None:
            replaces.append(json_replace(path, value, pretty, current=self.seen.get(path)))

        if out.merged is not None:
            replace(files.state, out.merged)
        replace(files.health, out.health)
        if out.heartbeat_state is not None:
            replace(files.heartbeat_state, out.heartbeat_state)
        if out.sequence is not None:
            replace(files.sequence_state, out.sequence)
        replace(files.transport_health, out.transport_health)
        replace(files.drift_state, out.drift)
        if ok and extent is not None:
            replace(
                files.stream_state,
                stream_state_document(
                    self.paths,
                    extent.position,
                    extent.total_lines,
                    extent.torn_tail_bytes,
                    obs.fold,
                    now,
                    last_event_fingerprint(obs.tap, prev.stream_state, self.s.from_start),
                ),
            )
            replace(
                files.cursor,
                cursor_document(self.paths, extent.position, extent.total_lines, now),
                pretty=True,
            )
        commit(self.paths.pass_commit_file, appends, replaces)

    def _result(self, obs: Observed, out: Computed) -> ReconcileResult:
        failure = obs.failure
        if failure is None:
            assert out.merged is not None
            return ReconcileResult(
                ok=True,
                output=out.merged,
                events_ingested=obs.tap.count,
                warnings=tuple(out.warnings),
            )
        return ReconcileResult(
            ok=False,
            output=out.health,
            failure_code=failure.code,
            failure_message=failure.message,
            warnings=tuple(out.warnings),
        )


__all__ = [
    "TRANSPORTS",
    "AlertOptions",
    "ReconcileFiles",
    "ReconcileResult",
    "ReconcileSettings",
    "TransportConfig",
    "reconcile",
]
