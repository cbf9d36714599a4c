"""``ops-manager supervise``: the always-on reconcile loop (issue 15), the shell.

One :class:`Supervisor` lives for the whole process. Each :meth:`Supervisor.tick`:

1. reloads the registry and the loop defaults if SIGHUP asked for it (a bad registry keeps
   the previous one and the tick log says why);
2. reconciles every registry loop of this shard in process, on a long-lived pool of
   ``max_parallel`` daemon threads (:mod:`._supervise_pool`), with the per-loop code of
   ``fleet-reconcile`` (:func:`ops_manager.engine.fleet_reconcile.run_loop`). The loop
   reconcile already runs alert dispatch after each pass, and dispatch retries every outbox
   entry whose ``nextAttemptAt`` (set from ``Retry-After``) has come, so due retries go out
   on the first tick after their time, across ticks and restarts alike;
3. a loop past ``loop_timeout`` is given up on for this tick (result ``failed`` /
   ``supervise_loop_timeout``); a loop that failed ``n`` ticks in a row sits out
   ``min(2**(n-1) - 1, 31)`` ticks (``supervise_loop_backoff``). Either way its last
   result is carried into the fleet state so ``state.json`` always lists every loop;
4. writes ``state.json`` and the ``reconcile.jsonl`` row exactly as ``fleet-reconcile``
   does (a shard writes its own files instead, :mod:`.supervise_shards`);
5. runs the fleet policy and, only when the policy mode is ``guarded_auto``, the handoff
   in autonomous mode (what ``fleet-handoff --autonomous-execute`` does); then fleet status;
6. updates the metrics, appends one row to ``FLEET/telemetry/supervise.jsonl`` and returns
   the tick summary (the CLI prints it as one JSON line on stderr).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.engine._supervise_pool import ABANDONED, TIMED_OUT, LoopPool
from ops_manager.engine.fleet_reconcile import (
    FleetReconcileSettings,
    LoopContext,
    LoopDefaults,
    commit_fleet_state,
    loop_defaults_from_env,
    run_loop,
    warm_up,
)
from ops_manager.engine.reconcile import ReconcileResult, reconcile
from ops_manager.engine.supervise_metrics import SuperviseMetrics
from ops_manager.engine.supervise_shards import Shard, write_shard_files
from ops_manager.errors import OpsError
from ops_manager.reducers.fleet_reconcile import (
    FAILED,
    SUCCESS,
    FleetExecution,
    LoopRun,
    fleet_state,
    loop_result,
)
from ops_manager.store import FleetPaths, LoopPaths, Position, Read, Stream, append_line

JSON = dict[str, Any]

LOOP_TIMEOUT = "supervise_loop_timeout"
LOOP_BACKOFF = "supervise_loop_backoff"
LOOP_BUSY = "supervise_loop_still_running"
LOOP_ABANDONED = "supervise_tick_abandoned"
_MAX_BACKOFF_TICKS = 31
#: seconds after which an unchanged fleet outcome still gets a ``reconcile.jsonl`` row
RECONCILE_ROW_EVERY = 300


def supervise_telemetry_file(repo: Path, shard: Shard | None = None) -> Path:
    """``FLEET/telemetry/supervise.jsonl`` (a shard: ``supervise-K-of-N.jsonl``, so shards on
    different hosts never interleave their appends): one row per tick (lags, durations)."""
    name = f"supervise-{shard.stem}.jsonl" if shard is not None else "supervise.jsonl"
    return FleetPaths.for_repo(repo).telemetry_dir / name


@attrs.frozen
class SuperviseSettings:
    """The flags of one supervisor, validated by the CLI."""

    repo: Path
    interval: float = 30.0
    max_parallel: int = 2
    #: ``None``: the interval
    loop_timeout: float | None = None
    shard: Shard | None = None
    registry_file: Path | None = None
    #: the next tick starts up to this fraction of the interval late (spreads N supervisors)
    jitter: float = 0.1

    @property
    def effective_loop_timeout(self) -> float:
        """The per-loop deadline in seconds."""
        return self.loop_timeout if self.loop_timeout is not None else self.interval


@attrs.define
class _LoopMemory:
    """What the supervisor remembers about one loop between ticks."""

    last_result: JSON | None = None
    failures: int = 0
    skip_ticks: int = 0
    #: where the alert telemetry stream was last read (``None``: not looked at yet)
    alert_position: Position | None = None
    outbox_pending: int = 0


class Supervisor:
    """The state of one supervisor process; :meth:`tick` is one pass over the fleet."""

    def __init__(
        self,
        settings: SuperviseSettings,
        *,
        metrics: SuperviseMetrics | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], int] = utc_now_epoch,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or SuperviseMetrics()
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.clock = clock
        self.ticks = 0
        self.last_tick_finished: float | None = None  # monotonic
        self.pool = LoopPool(settings.max_parallel)
        self._memory: dict[str, _LoopMemory] = {}
        self._lags: dict[str, float] = {}
        self._registry: JSON = {}
        self._defaults = LoopDefaults()
        self._reload_error: str | None = None
        self._last_row_key: tuple[str, ...] = ()
        self._last_row_at = 0
        self.reload()
        if self._reload_error is not None:
            raise OpsError(self._reload_error)

    # -- configuration ----------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the registry and the loop defaults; on error keep the previous ones."""
        from ops_manager.engine.fleet_registry import load_registry

        try:
            registry = load_registry(self.settings.repo, self.settings.registry_file)
            defaults = loop_defaults_from_env(self.env)
        except OpsError as exc:
            self._reload_error = exc.message
            return
        self._registry, self._defaults, self._reload_error = registry, defaults, None

    def loops(self) -> list[JSON]:
        """This shard's registry loops, in registry order."""
        found = [loop for loop in self._registry.get("loops", []) if isinstance(loop, dict)]
        shard = self.settings.shard
        if shard is None:
            return found
        return [loop for loop in found if shard.owns(str(loop.get("loopId", "")))]

    # -- one tick ---------------------------------------------------------------------------
    def tick(
        self,
        stop: threading.Event | None = None,
        *,
        reload: bool = False,
        progress: Callable[[int, int, int], None] | None = None,
    ) -> JSON:
        """One pass over the fleet; returns the tick summary (also the stderr log line).

        ``progress(done, total, failed)`` is called as each loop's reconcile ends (the CLI
        passes a terminal progress line for ``--once``; see ``cli/_progress.py``).
        """
        stop = stop or threading.Event()
        began = time.monotonic()
        if reload:
            self.reload()
        loops = self.loops()
        trace_id = str(uuid.uuid4())
        started = self.clock()
        warm_up(loops)
        ctx = LoopContext(
            repo=self.settings.repo,
            fleet_trace_id=trace_id,
            settings=FleetReconcileSettings(
                repo=self.settings.repo,
                registry_file=self.settings.registry_file,
                max_parallel=self.settings.max_parallel,
            ),
            defaults=self._defaults,
            env=self.env,
            clock=self.clock,
            reconcile_fn=self._reconcile_fn,
        )
        busy = self.pool.busy
        jobs: list[tuple[str, Callable[[], Any]]] = []
        held: dict[str, str] = {}
        for loop in loops:
            loop_id = str(loop.get("loopId", ""))
            memory = self._memory.setdefault(loop_id, _LoopMemory())
            if loop_id in busy:
                held[loop_id] = LOOP_BUSY
            elif memory.skip_ticks > 0:
                memory.skip_ticks -= 1
                held[loop_id] = LOOP_BACKOFF
            else:
                jobs.append((loop_id, _bind(self._run_one, loop, ctx)))
        counts = [0, 0]  # done, failed

        def _ended(key: object, outcome: Any) -> None:
            counts[0] += 1
            if isinstance(outcome, BaseException) or not isinstance(outcome, dict):
                counts[1] += 1  # an exception, a timeout or an abandoned loop
            elif outcome.get("status") == FAILED:
                counts[1] += 1
            if progress is not None:
                progress(counts[0], len(jobs), counts[1])

        outcomes = self.pool.run(
            jobs,
            timeout=self.settings.effective_loop_timeout,
            stop=stop,
            on_result=_ended if progress is not None else None,
        )
        results: list[JSON] = []
        timed_out = abandoned = 0
        for loop in loops:
            loop_id = str(loop.get("loopId", ""))
            memory = self._memory[loop_id]
            if loop_id in held:
                results.append(self._carried(loop, memory, held[loop_id], trace_id))
                continue
            outcome = outcomes.get(loop_id, ABANDONED)
            if outcome is TIMED_OUT or outcome is ABANDONED or isinstance(outcome, BaseException):
                code = LOOP_TIMEOUT if outcome is TIMED_OUT else LOOP_ABANDONED
                if outcome is TIMED_OUT:
                    timed_out += 1
                elif outcome is ABANDONED:
                    abandoned += 1
                result = self._carried(loop, memory, code, trace_id)
                if outcome is TIMED_OUT:
                    self._failed(memory)
            else:
                result = outcome
                memory.last_result = result
                if result.get("status") == FAILED:
                    self._failed(memory)
                else:
                    memory.failures = 0
            results.append(result)
        finished = self.clock()
        state = self._write_state(results, trace_id, started, finished)
        posture = self._policy_and_status(stop)
        self._forget_removed({str(loop.get("loopId", "")) for loop in loops})
        duration = time.monotonic() - began
        self.ticks += 1
        self.last_tick_finished = time.monotonic()
        summary = self._summary(state, duration, timed_out, abandoned, held, posture)
        self._record(summary, results, duration)
        return summary

    def _reconcile_fn(self, settings: Any, **kwargs: Any) -> ReconcileResult:
        """The loop reconcile, timed, remembering the ingest lag it computed."""
        began = time.monotonic()
        try:
            result = reconcile(settings, **kwargs)
        finally:
            self.metrics.reconcile_duration.observe(time.monotonic() - began)
        output = result.output if isinstance(result.output, dict) else {}
        health = output.get("health") if isinstance(output.get("health"), dict) else output
        metrics = health.get("metrics") if isinstance(health, dict) else None
        lag = metrics.get("ingestLagSeconds") if isinstance(metrics, dict) else None
        if isinstance(lag, int | float) and not isinstance(lag, bool):
            self._lags[settings.loop_id] = float(lag)
        return result

    def _run_one(self, loop: JSON, ctx: LoopContext) -> JSON:
        """A worker's job: the loop's fleet result, then its new alert outcomes."""
        loop_id = str(loop.get("loopId", ""))
        memory = self._memory[loop_id]
        paths = LoopPaths.for_loop(self.settings.repo, loop_id)
        alerts = Stream(paths.alert_telemetry_file)
        if memory.alert_position is None:
            # first sight: count from here, so this first pass's notifications are included
            memory.alert_position = alerts.position_at_end()
        result = run_loop(loop, ctx)
        memory.alert_position = self._count_notifications(alerts, memory.alert_position)
        memory.outbox_pending = _outbox_pending(paths.alert_dispatch_state_file)
        return result

    def _count_notifications(self, alerts: Stream, position: Position) -> Position:
        """Count the sink outcomes appended to ``alerts`` after ``position``; the new position.

        The counter is "since this supervisor started", as Prometheus counters are: the
        first look only records where the stream's complete lines end. Lines are split on
        ``b"\\n"`` only (a CRLF's ``\\r`` is JSON whitespace) and a torn last line waits for
        its ``\\n`` (one torn at the first look is counted once completed; a byte offset
        taken at the first look used to drop it as a fragment); a line that is not JSON is
        skipped. A stream truncated, rewritten or replaced since is not re-counted: counting
        starts again at its end (a byte offset used to carry on into the new bytes).
        """
        try:
            found = alerts.read_from(position)
        except OSError:
            return position  # gone or unreadable for now: look again next tick
        if not isinstance(found, Read):
            return alerts.position_at_end()
        for line in found.lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            sinks = row.get("sinks") if isinstance(row, dict) else None
            for sink in sinks if isinstance(sinks, list) else []:
                if isinstance(sink, dict):
                    self.metrics.notifications.labels(
                        sink=str(sink.get("id", "")), outcome=str(sink.get("status", ""))
                    ).inc()
        return found.position_after(len(found.lines))

    def _failed(self, memory: _LoopMemory) -> None:
        memory.failures += 1
        memory.skip_ticks = min(2 ** (memory.failures - 1) - 1, _MAX_BACKOFF_TICKS)

    def _carried(self, loop: JSON, memory: _LoopMemory, code: str, trace_id: str) -> JSON:
        """The loop's last result (it was not reconciled this tick), or a failed stand-in.

        A timed-out or abandoned loop is always reported ``failed`` with ``code``; a loop
        sitting out its backoff, or still running from an earlier tick, keeps its last
        result (so a flapping sprite does not flap the fleet state every tick).
        """
        if code in (LOOP_BACKOFF, LOOP_BUSY) and memory.last_result is not None:
            return memory.last_result
        now = self.clock()
        return loop_result(
            loop,
            LoopRun(status=FAILED, reason_code=code, output_text=f"error: {code}"),
            repo_path=str(self.settings.repo),
            trace_id=trace_id,
            started=now,
            finished=now,
        )

    def _write_state(self, results: list[JSON], trace_id: str, started: int, finished: int) -> JSON:
        fleet_id = self._registry.get("fleetId")
        paths = FleetPaths.for_repo(self.settings.repo)
        if not results:
            # a shard that owns no loop still proves it is alive
            empty: JSON = {"loopCount": 0, "results": [], "status": "success"}
            if self.settings.shard is not None:
                write_shard_files(
                    paths, self.settings.shard, empty, interval=self.settings.interval, now=finished
                )
            return empty
        state = fleet_state(
            results,
            fleet_id=fleet_id if isinstance(fleet_id, str) and fleet_id else "default",
            trace_id=trace_id,
            started=started,
            finished=finished,
            execution=FleetExecution(
                max_parallel=self.settings.max_parallel,
                deterministic_order=False,
                from_start=False,
                max_events=0,
            ),
        )
        if self.settings.shard is not None:
            write_shard_files(
                paths,
                self.settings.shard,
                state,
                interval=self.settings.interval,
                now=finished,
            )
            return state
        paths.telemetry_dir.mkdir(parents=True, exist_ok=True)
        row = self._reconcile_row_due(state, finished)
        commit_fleet_state(
            paths.lock_file,
            paths.commit_record_file,
            paths.state_file,
            paths.reconcile_telemetry_file if row else None,
            state,
        )
        return state

    def _reconcile_row_due(self, state: JSON, now: int) -> bool:
        """Append the ``reconcile.jsonl`` row (which carries every loop's result) only when
        the fleet's outcome changed or ``RECONCILE_ROW_EVERY`` seconds passed: one row per
        tick would grow the stream by the whole fleet every 30 s."""
        key = tuple(
            json.dumps(state.get(k), sort_keys=True)
            for k in ("status", "reasonCodes", "loopCount", "successCount", "failedCount")
        )
        if key == self._last_row_key and now - self._last_row_at < RECONCILE_ROW_EVERY:
            return False
        self._last_row_key, self._last_row_at = key, now
        return True

    def _policy_and_status(self, stop: threading.Event) -> JSON:
        """Fleet policy, autonomous handoff where the policy allows it, fleet status.

        A shard skips this step: the policy needs the whole fleet's state, which no single
        shard writes (``fleet-status`` merges the shards for reading).
        """
        if self.settings.shard is not None or stop.is_set():
            return {}
        from ops_manager.engine.fleet_handoff import HandoffSettings, fleet_handoff
        from ops_manager.engine.fleet_policy import fleet_policy
        from ops_manager.engine.fleet_status import fleet_status
        from ops_manager.reducers.fleet_handoff import MODE_AUTONOMOUS

        out: JSON = {}
        repo = self.settings.repo
        try:
            evaluation = fleet_policy(repo, env=self.env)
            out["policyMode"] = evaluation.state.get("mode")
            out["candidateCount"] = len(evaluation.candidates)
            if evaluation.state.get("mode") == "guarded_auto":
                handoff = fleet_handoff(
                    HandoffSettings(
                        repo=repo, mode=MODE_AUTONOMOUS, registry_file=self.settings.registry_file
                    ),
                    env=self.env,
                )
                execution = handoff.state.get("execution")
                out["handoff"] = (
                    execution.get("status") if isinstance(execution, dict) else "planned"
                )
        except OpsError as exc:
            out["policyError"] = exc.message
        try:
            status = fleet_status(repo)
            fleet = status.get("fleet")
            out["fleetStatus"] = fleet.get("status") if isinstance(fleet, dict) else None
        except OpsError as exc:
            out["statusError"] = exc.message
        return out

    def _forget_removed(self, supervised: set[str]) -> None:
        """Drop what is remembered about loops removed from the registry (bounded memory)."""
        for loop_id in [k for k in self._memory if k not in supervised]:
            del self._memory[loop_id]
        for loop_id in [k for k in self._lags if k not in supervised]:
            del self._lags[loop_id]

    def _summary(
        self,
        state: JSON,
        duration: float,
        timed_out: int,
        abandoned: int,
        held: Mapping[str, str],
        posture: JSON,
    ) -> JSON:
        health: dict[str, int] = {}
        for result in state.get("results", []):
            value = str(result.get("healthStatus", "unknown"))
            health[value] = health.get(value, 0) + 1
        summary: JSON = {
            "event": "supervise_tick",
            "timestamp": format_ts(self.clock()),
            "tick": self.ticks,
            "durationSeconds": round(duration, 3),
            "loops": state.get("loopCount", 0),
            "succeeded": state.get("successCount", 0),
            "failed": state.get("failedCount", 0),
            "skipped": state.get("skippedCount", 0),
            "timedOut": timed_out,
            "abandoned": abandoned,
            "backoff": sum(1 for code in held.values() if code == LOOP_BACKOFF),
            "stillRunning": sum(1 for code in held.values() if code == LOOP_BUSY),
            "health": dict(sorted(health.items())),
            "outboxPending": sum(m.outbox_pending for m in self._memory.values()),
            **posture,
        }
        if self.settings.shard is not None:
            summary["shard"] = self.settings.shard.label
        if self._reload_error is not None:
            summary["reloadError"] = self._reload_error
        return summary

    def _record(self, summary: JSON, results: list[JSON], duration: float) -> None:
        """Metrics and the fleet telemetry stream."""
        m = self.metrics
        m.ticks.inc()
        m.tick_duration.observe(duration)
        m.set_loops(summary["health"])
        supervised = {str(r.get("loopId", "")) for r in results}
        m.set_ingest_lags(self._lags, supervised)
        m.outbox_pending.set(summary["outboxPending"])
        m.last_success.set(time.time())
        lags = {k: self._lags[k] for k in sorted(self._lags) if k in supervised}
        row: JSON = {
            "timestamp": summary["timestamp"],
            "category": "supervise_tick",
            "tick": summary["tick"],
            "tickDurationSeconds": summary["durationSeconds"],
            "loopCount": summary["loops"],
            "failedCount": summary["failed"],
            "maxIngestLagSeconds": max(lags.values()) if lags else None,
            "ingestLagSeconds": lags,
        }
        if self.settings.shard is not None:
            row["shard"] = self.settings.shard.label
        append_line(supervise_telemetry_file(self.settings.repo, self.settings.shard), row)

    # -- the service loop --------------------------------------------------------------------
    def next_delay(self, tick_seconds: float) -> float:
        """Seconds to wait before the next tick: the rest of the interval (0 after an
        overrun, which shifts the schedule instead of stacking ticks) plus jitter."""
        rest = max(0.0, self.settings.interval - tick_seconds)
        return rest + random.uniform(0, self.settings.jitter * self.settings.interval)


def _bind(
    fn: Callable[[JSON, LoopContext], JSON], loop: JSON, ctx: LoopContext
) -> Callable[[], JSON]:
    return lambda: fn(loop, ctx)


def _outbox_pending(path: Path) -> int:
    """``outbox.pendingCount`` of a loop's ``alert-dispatch-state.json`` (0 if unreadable)."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    outbox = state.get("outbox") if isinstance(state, dict) else None
    pending = outbox.get("pendingCount") if isinstance(outbox, dict) else None
    return pending if isinstance(pending, int) and not isinstance(pending, bool) else 0


__all__ = [
    "LOOP_ABANDONED",
    "LOOP_BACKOFF",
    "LOOP_BUSY",
    "LOOP_TIMEOUT",
    "SUCCESS",
    "SuperviseSettings",
    "Supervisor",
    "supervise_telemetry_file",
]
