"""``alert-dispatch`` and ``alert-replay``: escalations out of the files, to people.

One dispatch run (``alerts.md`` §3, DECISIONS Q-4/Q-5/Q-8/Q-19/Q-25), under the loop's
dispatch lock (``OPS/.alert-dispatch.lock``; separate from the reconcile lock, so reconcile
can call dispatch while it holds its own):

1. read ``alert-dispatch-state.json`` and the complete new lines of ``escalations.jsonl``
   after ``escalationsLineOffset`` (a final line without ``\\n`` is a write in progress:
   never consumed, BUG-3); the stored byte position lets the run seek instead of re-reading;
2. retry what the outbox (``OPS/alert-outbox.jsonl``) still holds, oldest first, BEFORE
   new rows, so notifications of one episode reach a sink in order;
3. for each new row, the pure reducer decides (route, per-sink send / ``missing_secret``);
   every notification is appended to the outbox as ``queued`` BEFORE it is sent and as
   ``delivered`` / ``retrying`` / ``terminal`` after; its telemetry row is held for step 5;
4. compare the open episodes with ``health.json``, ``profile-drift.json``,
   ``sequence-state.json`` and ``state.json``: an episode whose condition cleared gets a
   ``resolve`` with its ``dedup_key``, sent to the sinks its triggers went to;
5. commit the run's telemetry rows and its state (the new offset) as one, last
   (``OPS/.alert-dispatch-commit.json``, the same commit as a reconcile pass: ``store._commit``;
   a run with no row to append writes its state alone, durably: that rename is the commit).

A crash anywhere before step 5 re-runs the same rows next time (and records their telemetry
then, once); the outbox then says what
was already delivered (not sent again) and what was queued but not confirmed (sent again
with the same ``Idempotency-Key``): at most a duplicate, never a loss.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import as_nonneg_int
from ops_manager.engine._alert_dispatch_files import (
    DispatchEffects,
    DispatchFiles,
    DispatchSettings,
    NewLines,
    Outbox,
    lock_path,
    outbox_path,
    read_conditions,
    read_dispatch_state,
    read_new_lines,
)
from ops_manager.engine._alert_dispatch_run import (
    DispatchRun,
)
from ops_manager.engine._alert_dispatch_sending import (
    Sending,
    make_sink_result,
    retry_row,
)
from ops_manager.engine._alert_quiet import commit_run
from ops_manager.engine.alert_config import (
    LoadedConfig,
    config_path,
    load_alert_config,
)
from ops_manager.errors import OpsError
from ops_manager.reducers.alerts import (
    ALERT_CONFIG_INVALID,
    INVALID_SINK_REQUEST,
    MISSING_SECRET,
    SINK_DISABLED,
    SINK_NOT_CONFIGURED,
    STATUS_CONFIG_INVALID,
    STOPPED_STATUSES,
    OutboxEntry,
    RunCounts,
    SinkResult,
    config_error_json,
    dispatch_state,
    episodes_to_json,
    event_from_json,
    outbox_counts,
    summary_status,
    t_config_invalid,
    t_wrapper,
)
from ops_manager.store import (
    LoopPaths,
    append_line,
    apply_pending,
    exclusive_lock,
    remove_dead_temps,
)

#: records in the outbox file above which a run compacts it (delivered entries dropped)
OUTBOX_COMPACT_THRESHOLD = 2000


def _load(
    config_file: str | None, environ: Mapping[str, str]
) -> tuple[LoadedConfig | None, str | None]:
    try:
        return load_alert_config(config_path(config_file, environ)), None
    except OpsError as exc:
        return None, f"error: {exc.message}"


def dispatch(settings: DispatchSettings, effects: DispatchEffects | None = None) -> dict[str, Any]:
    """Run one dispatch for one loop; returns the state object it wrote (§3.4).

    Raises :class:`OpsError` only for the contract's error exits (invalid state JSON, offset
    ahead of the file, corrupt outbox); every delivery outcome is data.
    """
    fx = effects or DispatchEffects()
    environ = os.environ if fx.environ is None else fx.environ
    if not settings.repo.is_dir():
        raise OpsError(f"repo directory not found: {settings.repo}")
    paths = LoopPaths.for_loop(settings.repo, settings.loop_id)
    files = DispatchFiles.resolve(
        paths,
        escalations=settings.escalations_file,
        state=settings.state_file,
        telemetry=settings.telemetry_file,
        outbox=settings.outbox_file,
    )
    files.state.parent.mkdir(parents=True, exist_ok=True)
    files.telemetry.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(files.lock):
        # a run killed after its commit point is finished first (and its temps cleared)
        apply_pending(files.commit_record)
        remove_dead_temps(files.state)
        previous = read_dispatch_state(files.state)
        prev_offset = as_nonneg_int(previous.get("escalationsLineOffset")) or 0
        new = read_new_lines(
            files.escalations,
            prev_offset,
            previous.get("escalationsPosition"),
            settings.max_escalations,
        )
        config_file = config_path(settings.config_file, environ)
        loaded, config_error = _load(settings.config_file, environ)
        run = DispatchRun(settings, paths, files, fx, loaded, config_error, previous)
        run.retry_outbox()
        if loaded is None:
            # The config cannot be loaded: consume nothing. Routing every row to a failure
            # (what upstream does) would advance the offset past pages nobody received;
            # keeping it means the next run with a usable config delivers each of them,
            # once, under the same idempotency key (sequence = line number).
            return _config_invalid_run(
                settings, files, fx, run, previous, prev_offset, new, config_file, config_error
            )
        if new is None:
            status, offset, line_count, position = "no_source", prev_offset, prev_offset, None
        else:
            for line, raw in new.lines:
                run.process(line, raw)
            offset = prev_offset + len(new.lines)
            line_count, position = new.line_count, new.position
            status = summary_status(run.counts.processed, run.counts.dispatched, run.counts.failed)
        run.resolve_cleared()
        counts = attrs.evolve(run.counts, failure_codes=frozenset(run.failure_codes))
        if status == "no_new_escalations":
            # §3.4: a run with nothing new resets the counts (resolves/outbox stay in extras)
            counts = RunCounts(
                resolves=counts.resolves,
                retried=counts.retried,
                delivered_from_outbox=counts.delivered_from_outbox,
            )
        if status == "no_source":
            counts = RunCounts(
                resolves=counts.resolves,
                retried=counts.retried,
                delivered_from_outbox=counts.delivered_from_outbox,
            )
        state = dispatch_state(
            now=int(fx.clock()),
            loop_id=settings.loop_id,
            trace_id=settings.trace_id,
            escalations_file=str(files.escalations),
            telemetry_file=str(files.telemetry),
            status=status,
            counts=counts,
            offset=offset,
            line_count=line_count,
            position=position,
            outbox=outbox_counts(run.outbox.entries.values()),
            episodes=episodes_to_json(run.episodes),
        )
        _commit(files, run.held_telemetry or [], state)
        if run.outbox.records > OUTBOX_COMPACT_THRESHOLD:
            run.outbox.compact()
        return state


def _config_invalid_run(
    settings: DispatchSettings,
    files: DispatchFiles,
    fx: DispatchEffects,
    run: DispatchRun,
    previous: dict[str, Any],
    prev_offset: int,
    new: NewLines | None,
    config_file: str,
    config_error: str | None,
) -> dict[str, Any]:
    """Write (and return) the state of a run that found the sink config unusable.

    The offset and stored position stay where they were; ``configError`` says why and how
    many rows wait. One telemetry row is appended when the config becomes unusable or its
    problem changes (not on every run, so a broken config does not flood the telemetry).
    """
    now = int(fx.clock())
    message = (config_error or "error: alert sink config unavailable").removeprefix("error: ")
    line_count = new.line_count if new is not None else prev_offset
    before = previous.get("configError")
    error = config_error_json(
        now=now,
        message=message,
        config_file=config_file,
        pending=max(line_count - prev_offset, 0),
        previous=before,
    )
    rows = list(run.held_telemetry or [])  # the outbox retries' rows
    if not isinstance(before, dict) or before.get("message") != message:
        rows.append(t_config_invalid(now, settings.loop_id, settings.trace_id, error))
    state = dispatch_state(
        now=now,
        loop_id=settings.loop_id,
        trace_id=settings.trace_id,
        escalations_file=str(files.escalations),
        telemetry_file=str(files.telemetry),
        status=STATUS_CONFIG_INVALID,
        counts=RunCounts(failure_codes=frozenset({ALERT_CONFIG_INVALID})),
        offset=prev_offset,
        line_count=line_count,
        position=previous.get("escalationsPosition") if prev_offset else None,
        outbox=outbox_counts(run.outbox.entries.values()),
        episodes=episodes_to_json(run.episodes),
        config_error=error,
    )
    _commit(files, rows, state)
    return state


def _commit(files: DispatchFiles, rows: list[dict[str, Any]], state: dict[str, Any]) -> None:
    """The run's telemetry rows and its state (the new offset), durable as one.

    The outbox is not in it: it is the write-ahead log of what was sent, written around each
    send. A run killed before this point re-reads the same escalation rows next time; the
    outbox says which were delivered (not sent again), and their telemetry is recorded then,
    once.
    """
    commit_run(files.commit_record, files.telemetry, files.state, rows, state)


# --- replay ------------------------------------------------------------------------------


@attrs.frozen
class ReplaySettings:
    """Inputs of ``alert-replay``."""

    repo: Path
    loop_id: str
    trace_id: str
    config_file: str | None = None
    outbox_file: Path | None = None
    telemetry_file: Path | None = None
    sink_id: str | None = None
    #: an idempotency key, or a unique prefix of one
    key: str | None = None
    include_terminal: bool = False
    dry_run: bool = False


def _replay_item(entry: OutboxEntry) -> dict[str, Any]:
    ev = entry.event
    return {
        "idempotencyKey": entry.key,
        "sinkId": entry.sink_id,
        "sinkType": entry.sink_type,
        "action": ev.get("action"),
        "category": ev.get("category"),
        "dedupKey": ev.get("dedupKey"),
        "outboxStatusBefore": entry.status,
        "attemptsBefore": entry.attempts,
    }


def replay(settings: ReplaySettings, effects: DispatchEffects | None = None) -> dict[str, Any]:
    """Re-send kept notifications by hand, each with its original idempotency key.

    Selects pending entries (and ``terminal`` / ``gave_up`` ones with
    ``include_terminal``), optionally one sink and/or one key; oldest first. Returns a
    report; ``failedCount`` > 0 means something is still kept.
    """
    fx = effects or DispatchEffects()
    environ = os.environ if fx.environ is None else fx.environ
    if not settings.repo.is_dir():
        raise OpsError(f"repo directory not found: {settings.repo}")
    paths = LoopPaths.for_loop(settings.repo, settings.loop_id)
    files = DispatchFiles.resolve(
        paths, telemetry=settings.telemetry_file, outbox=settings.outbox_file
    )
    with exclusive_lock(files.lock):
        outbox = Outbox(files.outbox)
        statuses = ("queued", "retrying", *(STOPPED_STATUSES if settings.include_terminal else ()))
        selected = [
            e
            for e in outbox.ordered()
            if e.status in statuses
            and (settings.sink_id is None or e.sink_id == settings.sink_id)
            and (settings.key is None or e.key.startswith(settings.key))
        ]
        if settings.key is not None and len({e.key for e in selected}) > 1:
            raise OpsError(f"--key {settings.key} matches more than one notification")
        report: dict[str, Any] = {
            "schemaVersion": "v1",
            "loopId": settings.loop_id,
            "traceId": settings.trace_id,
            "dryRun": settings.dry_run,
            "selectedCount": len(selected),
            "deliveredCount": 0,
            "failedCount": 0,
            "notifications": [],
        }
        if settings.dry_run or not selected:
            report["notifications"] = [
                {**_replay_item(e), "status": "would_send"} for e in selected
            ]
            return report
        loaded = load_alert_config(config_path(settings.config_file, environ))
        sending = Sending(
            paths=paths,
            loaded=loaded,
            outbox=outbox,
            effects=fx,
            trace_id=settings.trace_id,
            telemetry=files.telemetry,
        )
        chosen = {(e.key, e.sink_id) for e in selected}
        # an earlier pending notification of the same episode and sink, not replayed now,
        # keeps its place in the queue
        for e in outbox.ordered():
            if e.pending and (e.key, e.sink_id) not in chosen:
                sending.blocked.add((e.dedup_key, e.sink_id))
        items: list[dict[str, Any]] = []
        for entry in selected:
            item = _replay_item(entry)
            result = _replay_one(sending, entry)
            item.update(
                status="delivered" if result.success else "failed",
                reasonCode=result.reason_code,
                httpStatus=result.http_status,
                attempts=result.attempts,
                outboxStatus=result.outbox_status,
                message=result.message,
            )
            items.append(item)
            if result.success:
                report["deliveredCount"] += 1
            else:
                report["failedCount"] += 1
        report["notifications"] = items
        return report


def _replay_one(sending: Sending, entry: OutboxEntry) -> SinkResult:
    assert sending.loaded is not None
    ident = (entry.dedup_key, entry.sink_id)
    sink = sending.loaded.config.sink(entry.sink_id)
    if sink is None or not sink.enabled:
        reason = SINK_NOT_CONFIGURED if sink is None else SINK_DISABLED
        return SinkResult(
            sink_id=entry.sink_id,
            sink_type=entry.sink_type,
            success=False,
            reason_code=reason,
            message=f"sink '{entry.sink_id}' is not configured and enabled",
            outbox_status=entry.status,
        )
    missing = sending.missing.get(sink.id)
    if missing:
        sending.blocked.add(ident)
        return SinkResult(
            sink_id=sink.id,
            sink_type=sink.type,
            success=False,
            reason_code=MISSING_SECRET,
            message=sink.missing_message(missing),
            outbox_status=entry.status,
        )
    plugin = sending.loaded.plugin_for(sink)
    if ident in sending.blocked or plugin is None:
        why = (
            "sink plugin not installed"
            if plugin is None
            else "an earlier notification of this episode to this sink is still pending"
        )
        return make_sink_result(sink, sending.deliverer.deferred(why))
    try:
        event = event_from_json(entry.event)
    except ValueError as exc:
        return SinkResult(
            sink_id=sink.id,
            sink_type=sink.type,
            success=False,
            reason_code=INVALID_SINK_REQUEST,
            message=str(exc)[:300],
            outbox_status=entry.status,
        )
    result = sending.send(sink, plugin, event)
    sending.record_result(entry.event, sink, result, entry.attempts, source="replay")
    if not result.success:
        sending.blocked.add(ident)
    sink_result = make_sink_result(sink, result)
    sending.telemetry_row(retry_row(sending.now(), sending.trace_id, entry, sink_result, "replay"))
    return sink_result


# --- reconcile integration ---------------------------------------------------------------


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.replace("\r", "").splitlines()[-lines:])


def run_dispatch_after_reconcile(
    paths: LoopPaths,
    *,
    trace_id: str,
    config_file: str | Path | None,
    state_file: Path | None,
    telemetry_file: Path | None,
) -> None:
    """Dispatch after a reconcile pass (``loop.md`` §3.8.2 step 15). Never raises.

    Fail-open: any error (invalid config is not one — it is recorded per row — but an
    invalid state file, an offset ahead of the file, a corrupt outbox, a bug) appends the
    T-WRAPPER row (``status: failed_command``, ``reasonCode: alert_dispatch_failed``) to the
    alert telemetry file and returns; the state file is left untouched.
    """
    try:
        dispatch(
            DispatchSettings(
                repo=paths.repo,
                loop_id=paths.loop_id,
                trace_id=trace_id,
                config_file=str(config_file) if config_file else None,
                escalations_file=paths.escalations_file,
                state_file=state_file,
                telemetry_file=telemetry_file,
            )
        )
    except Exception as exc:
        message = (
            f"error: {exc.message}"
            if isinstance(exc, OpsError)
            else f"error: internal error: {type(exc).__name__}: {exc}"
        )
        # fail-open means fail-open: even this append must never break the reconcile
        with contextlib.suppress(Exception):
            append_line(
                telemetry_file or paths.alert_telemetry_file,
                t_wrapper(int(time.time()), paths.loop_id, trace_id, _tail(message)),
            )


def iter_outbox(paths: LoopPaths, outbox_file: Path | None = None) -> Iterator[OutboxEntry]:
    """Every outbox entry of a loop, oldest first (read-only; for tooling and tests)."""
    yield from Outbox(outbox_file or outbox_path(paths)).ordered()


__all__ = [
    "STATUS_CONFIG_INVALID",
    "DispatchEffects",
    "DispatchFiles",
    "DispatchSettings",
    "Outbox",
    "ReplaySettings",
    "dispatch",
    "iter_outbox",
    "lock_path",
    "outbox_path",
    "read_conditions",
    "read_dispatch_state",
    "read_new_lines",
    "replay",
    "run_dispatch_after_reconcile",
]
