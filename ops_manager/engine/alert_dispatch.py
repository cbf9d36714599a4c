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
   ``delivered`` / ``retrying`` / ``terminal`` after, then its telemetry row is appended;
4. compare the open episodes with ``health.json``, ``profile-drift.json``,
   ``sequence-state.json`` and ``state.json``: an episode whose condition cleared gets a
   ``resolve`` with its ``dedup_key``, sent to the sinks its triggers went to;
5. write the state (the new offset) last.

A crash anywhere before step 5 re-runs the same rows next time; the outbox then says what
was already delivered (not sent again) and what was queued but not confirmed (sent again
with the same ``Idempotency-Key``): at most a duplicate, never a loss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import as_nonneg_int, dumps_compact
from ops_manager._timefmt import format_ts, parse_ts
from ops_manager.engine.alert_config import (
    LoadedConfig,
    config_path,
    env_presence,
    load_alert_config,
)
from ops_manager.engine.alert_delivery import Deliverer, DeliveryResult, HttpSender
from ops_manager.errors import OpsError
from ops_manager.reducers.alerts import (
    ERR_SEVERITY,
    INVALID_SINK_REQUEST,
    MISSING_SECRET,
    OUTBOX_DELIVERED,
    OUTBOX_GAVE_UP,
    OUTBOX_QUEUED,
    OUTBOX_RETRYING,
    OUTBOX_TERMINAL,
    OUTCOME_DELIVER,
    OUTCOME_FAIL,
    OUTCOME_SKIP,
    OUTCOME_SKIP_BLANK,
    RETRY_BUDGET_EXHAUSTED,
    ROW_INVALID,
    ROW_OK,
    SINK_DISABLED,
    SINK_NOT_CONFIGURED,
    STOPPED_STATUSES,
    Conditions,
    DeliveryPolicy,
    Episodes,
    EscalationRow,
    OutboxEntry,
    Route,
    RouteFailure,
    RunCounts,
    SinkDecision,
    SinkDef,
    SinkResult,
    build_event,
    cleared_episodes,
    close_episode,
    decide,
    dispatch_state,
    env_status,
    episode_for_trigger,
    episodes_from_json,
    event_from_json,
    event_to_json,
    is_severity,
    note_episode_sinks,
    outbox_counts,
    outbox_record,
    outbox_step,
    parse_row,
    redact_text,
    resolve_route,
    route_json,
    sink_missing_secrets,
    summary_status,
    t_delivery,
    t_invalid,
    t_nocat,
    t_routefail,
    t_skip,
    t_wrapper,
)
from ops_manager.sinks import AlertEvent, Sink
from ops_manager.store import (
    LoopPaths,
    append_line,
    append_lines,
    exclusive_lock,
    iter_records,
    read_json_or_empty,
    write_atomic,
    write_json,
)

#: records in the outbox file above which a run compacts it (delivered entries dropped)
OUTBOX_COMPACT_THRESHOLD = 2000


@attrs.frozen
class DispatchSettings:
    """Inputs of one dispatch run (the CLI resolves flags and env)."""

    repo: Path
    loop_id: str
    trace_id: str
    #: the ``--alert-config-file`` value; ``None`` → ``$OPS_MANAGER_ALERT_SINKS_FILE`` →
    #: the packaged default
    config_file: str | None = None
    escalations_file: Path | None = None
    state_file: Path | None = None
    telemetry_file: Path | None = None
    outbox_file: Path | None = None
    #: 0 = every new row
    max_escalations: int = 0


@attrs.frozen
class DispatchEffects:
    """The outside world of a run, injectable (tests pass a fake clock and sleep)."""

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random
    #: ``None`` → :class:`~ops_manager.engine.alert_delivery.RequestsSender`
    sender: HttpSender | None = None
    #: ``None`` → ``os.environ``
    environ: Mapping[str, str] | None = None


@attrs.frozen
class DispatchFiles:
    """Resolved artifact paths of a run."""

    escalations: Path
    state: Path
    telemetry: Path
    outbox: Path
    lock: Path

    @classmethod
    def resolve(
        cls,
        paths: LoopPaths,
        *,
        escalations: Path | None = None,
        state: Path | None = None,
        telemetry: Path | None = None,
        outbox: Path | None = None,
    ) -> DispatchFiles:
        """Apply overrides on top of the contract defaults."""
        return cls(
            escalations=escalations or paths.escalations_file,
            state=state or paths.alert_dispatch_state_file,
            telemetry=telemetry or paths.alert_telemetry_file,
            outbox=outbox or outbox_path(paths),
            lock=lock_path(paths),
        )


def outbox_path(paths: LoopPaths) -> Path:
    """``OPS/alert-outbox.jsonl``: notifications queued, retried, kept."""
    return paths.ops("alert-outbox.jsonl")


def lock_path(paths: LoopPaths) -> Path:
    """``OPS/.alert-dispatch.lock``: serializes dispatch, replay and their outbox writes."""
    return paths.ops(".alert-dispatch.lock")


# --- reading the escalations file --------------------------------------------------------


@attrs.frozen
class _NewLines:
    line_count: int
    #: (line number, raw bytes without the newline)
    lines: list[tuple[int, bytes]]
    #: the verified position after the consumed lines (``None`` when unknown)
    position: dict[str, Any] | None


def _position(byte_offset: int, line_offset: int, last_line: bytes | None) -> dict[str, Any]:
    return {
        "byteOffset": byte_offset,
        "lineOffset": line_offset,
        "lastLineSha256": hashlib.sha256(last_line).hexdigest() if last_line else None,
        "lastLineBytes": len(last_line) if last_line else 0,
    }


def _stored_start(handle: Any, size: int, prev_offset: int, stored: object) -> int | None:
    """The byte offset of line ``prev_offset + 1`` from a stored position, if it verifies."""
    if not isinstance(stored, dict) or stored.get("lineOffset") != prev_offset:
        return None
    byte_offset = as_nonneg_int(stored.get("byteOffset"))
    length = as_nonneg_int(stored.get("lastLineBytes"))
    digest = stored.get("lastLineSha256")
    if byte_offset is None or length is None or not isinstance(digest, str):
        return None
    if byte_offset > size or length > byte_offset or length == 0:
        return None
    handle.seek(byte_offset - length)
    chunk = handle.read(length)
    if not chunk.endswith(b"\n") or hashlib.sha256(chunk).hexdigest() != digest:
        return None
    return byte_offset


def _scan_start(handle: Any, prev_offset: int) -> tuple[int, int, bytes | None]:
    """Scan from the start for the end of line ``prev_offset``.

    Returns ``(byte offset, complete lines seen, that last line)``; lines seen is less than
    ``prev_offset`` when the file is shorter.
    """
    handle.seek(0)
    seen = 0
    pos = 0
    last_start = 0
    carry = b""
    while seen < prev_offset:
        block = handle.read(1 << 16)
        if not block:
            break
        data = carry + block
        base = pos - len(carry)
        idx = 0
        while seen < prev_offset:
            nl = data.find(b"\n", idx)
            if nl < 0:
                break
            seen += 1
            last_start, idx = base + idx, nl + 1
            if seen == prev_offset:
                end = base + idx
                handle.seek(last_start)
                return end, seen, handle.read(end - last_start)
        carry = data[idx:]
        pos += len(block)
    return pos, seen, None


def _read_after(
    handle: Any, prev_offset: int, stored_position: object
) -> tuple[int, bytes, dict[str, Any] | None]:
    """``(start byte, bytes after it, position of line prev_offset)`` of an open file."""
    size = os.fstat(handle.fileno()).st_size
    position: dict[str, Any] | None = None
    start: int | None = 0 if prev_offset == 0 else None
    if start is None:
        start = _stored_start(handle, size, prev_offset, stored_position)
        if start is not None and isinstance(stored_position, dict):
            position = dict(stored_position)
    if start is None:
        start, seen, last_line = _scan_start(handle, prev_offset)
        if seen < prev_offset:
            raise OpsError(
                f"dispatch state offset is ahead of escalation file: {prev_offset} > {seen}"
            )
        position = _position(start, prev_offset, last_line) if last_line else None
    handle.seek(start)
    return start, handle.read(max(0, size - start)), position


def read_new_lines(
    path: Path, prev_offset: int, stored_position: object, max_lines: int
) -> _NewLines | None:
    """The complete lines after ``prev_offset`` (``None`` if the file does not exist).

    Raises the contract's ``dispatch state offset is ahead of escalation file: N > M``.
    """
    try:
        with open(path, "rb") as handle:
            start, rest, position = _read_after(handle, prev_offset, stored_position)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise OpsError(f"escalations file is not a regular file: {path}") from None
    complete = rest[: rest.rfind(b"\n") + 1]
    raw_lines = complete.split(b"\n")[:-1] if complete else []
    line_count = prev_offset + len(raw_lines)
    take = raw_lines[:max_lines] if max_lines > 0 else raw_lines
    if take:
        consumed = sum(len(line) + 1 for line in take)
        position = _position(start + consumed, prev_offset + len(take), take[-1] + b"\n")
    elif prev_offset == 0:
        position = None
    lines = [(prev_offset + i + 1, line) for i, line in enumerate(take)]
    return _NewLines(line_count=line_count, lines=lines, position=position)


def read_dispatch_state(path: Path) -> dict[str, Any]:
    """The previous state: missing or empty → ``{}``; not JSON → the contract's error."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise OpsError(f"invalid dispatch state JSON: {path}") from None
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise OpsError(f"invalid dispatch state JSON: {path}") from None
    return value if isinstance(value, dict) else {}


def read_conditions(paths: LoopPaths) -> Conditions:
    """What the last reconcile pass left in the projections (unknown → ``None``)."""
    health = read_json_or_empty(paths.health_file).get("status")
    drift = read_json_or_empty(paths.drift_state_file).get("driftActive")
    ordering = read_json_or_empty(paths.sequence_state_file).get("driftActive")
    divergence = read_json_or_empty(paths.state_file).get("divergence")
    div_any = divergence.get("any") if isinstance(divergence, dict) else None
    return Conditions(
        health_status=health if isinstance(health, str) else None,
        profile_drift_active=drift if isinstance(drift, bool) else None,
        ordering_drift_active=ordering if isinstance(ordering, bool) else None,
        divergence_active=div_any if isinstance(div_any, bool) else None,
    )


def _current_run_id(paths: LoopPaths) -> str | None:
    run = read_json_or_empty(paths.state_file).get("run")
    run_id = run.get("runId") if isinstance(run, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None


# --- the outbox --------------------------------------------------------------------------


class Outbox:
    """The folded outbox plus the append side (one ``write()`` per record)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[tuple[str, str], OutboxEntry] = {}
        self.records = 0
        for _, rec in iter_records(path):
            self._apply(rec)

    def _apply(self, rec: Mapping[str, Any]) -> None:
        ident = (rec.get("idempotencyKey"), rec.get("sinkId"))
        entry = outbox_step(self.entries.get(ident), rec, self.records)  # type: ignore[arg-type]
        self.records += 1
        if entry is not None:
            self.entries[(entry.key, entry.sink_id)] = entry

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records durably, then fold them in."""
        if not records:
            return
        append_lines(self.path, records)
        for rec in records:
            self._apply(rec)

    def ordered(self) -> list[OutboxEntry]:
        """Every entry in queue order."""
        return sorted(self.entries.values(), key=lambda e: e.order)

    def compact(self) -> None:
        """Rewrite the file with only the entries not delivered (atomically)."""
        kept = [e for e in self.ordered() if e.status != OUTBOX_DELIVERED]
        lines: list[str] = []
        for entry in kept:
            lines.append(dumps_compact(entry.queued_record))
            if entry.last is not entry.queued_record:
                lines.append(dumps_compact(entry.last))
        write_atomic(self.path, "".join(line + "\n" for line in lines))
        self.entries = {}
        self.records = 0
        for line in lines:
            self._apply(json.loads(line))


# --- one run -----------------------------------------------------------------------------


class _Sending:
    """What a run or a replay shares: config, env, deliverer, outbox, ordering."""

    def __init__(
        self,
        *,
        paths: LoopPaths,
        loaded: LoadedConfig | None,
        outbox: Outbox,
        effects: DispatchEffects,
        trace_id: str,
        telemetry: Path,
    ) -> None:
        self.paths = paths
        self.loaded = loaded
        self.outbox = outbox
        self.effects = effects
        self.trace_id = trace_id
        self.telemetry = telemetry
        self.environ: Mapping[str, str] = os.environ if effects.environ is None else effects.environ
        config = loaded.config if loaded else None
        policy = config.delivery if config else DeliveryPolicy()
        self.policy = policy
        self.present = env_presence(config, self.environ) if config else {}
        self.missing = sink_missing_secrets(config, self.present) if config else {}
        self.deliverer = Deliverer(
            policy,
            sender=effects.sender,
            clock=effects.clock,
            sleep=effects.sleep,
            rng=effects.rng,
        )
        #: (dedup key, sink id) with an earlier notification still pending in this run
        self.blocked: set[tuple[str, str]] = set()

    def now(self) -> float:
        return self.effects.clock()

    def _secrets(self, sink: SinkDef, url: str) -> list[str]:
        values = [self.environ.get(name, "") for name in sink.secret_envs]
        return [v for v in values if v] + [url]

    def send(self, sink: SinkDef, plugin: Sink, event: AlertEvent) -> DeliveryResult:
        """Build the sink's request and deliver it (never raises for a plugin error)."""
        try:
            request = plugin.build_request(sink.id, sink.raw, event, self.environ)
            destination = plugin.destination_key(sink.raw, self.environ)
        except Exception as exc:  # a plugin bug must not stop the run
            secrets = [self.environ.get(n, "") for n in sink.secret_envs]
            return DeliveryResult(
                success=False,
                outbox_status=OUTBOX_TERMINAL,
                attempts=0,
                reason_code=INVALID_SINK_REQUEST,
                message=redact_text(f"{type(exc).__name__}: {exc}", [s for s in secrets if s])[
                    :300
                ],
            )
        return self.deliverer.deliver(
            request,
            idempotency_key=event.idempotency_key,
            timeout=float(sink.timeout_seconds),
            destination=destination,
            min_interval=float(getattr(plugin, "min_interval_seconds", 0.0) or 0.0),
            secrets=self._secrets(sink, request.url),
        )

    def record_result(
        self,
        entry_event: Mapping[str, Any],
        sink: SinkDef,
        result: DeliveryResult,
        previous_attempts: int,
        source: str | None = None,
    ) -> None:
        """Append the outcome of an attempt (nothing when no attempt was made)."""
        if result.attempts == 0 and result.outbox_status == OUTBOX_RETRYING:
            return
        now = self.now()
        self.outbox.append(
            [
                outbox_record(
                    now=now,
                    status=result.outbox_status,
                    key=str(entry_event["idempotencyKey"]),
                    sink_id=sink.id,
                    sink_type=sink.type,
                    event=entry_event,
                    attempts=previous_attempts + result.attempts,
                    trace_id=self.trace_id,
                    http_status=result.http_status,
                    reason_code=result.reason_code,
                    message=result.message,
                    retry_after_seconds=result.retry_after_seconds,
                    next_attempt_at=now + result.retry_in_seconds
                    if result.outbox_status == OUTBOX_RETRYING
                    and result.retry_in_seconds is not None
                    else None,
                    source=source,
                )
            ]
        )

    def notify(self, event: AlertEvent, decisions: Sequence[SinkDecision]) -> list[SinkResult]:
        """Queue ``event`` for every decided sink, then send where allowed (in order)."""
        ev = event_to_json(event)
        key = event.idempotency_key
        before = {d.sink.id: self.outbox.entries.get((key, d.sink.id)) for d in decisions}
        now = self.now()
        self.outbox.append(
            [
                outbox_record(
                    now=now,
                    status=OUTBOX_QUEUED,
                    key=key,
                    sink_id=d.sink.id,
                    sink_type=d.sink.type,
                    event=ev,
                    attempts=0,
                    trace_id=self.trace_id,
                )
                for d in decisions
                if before[d.sink.id] is None
            ]
        )
        results: list[SinkResult] = []
        for d in decisions:
            sink = d.sink
            existing = before[sink.id]
            if existing is not None:
                results.append(_result_from_entry(existing))
                if existing.pending:
                    self.blocked.add((event.dedup_key, sink.id))
                continue
            ident = (event.dedup_key, sink.id)
            if not d.send:
                self.outbox.append(
                    [
                        outbox_record(
                            now=now,
                            status=OUTBOX_RETRYING,
                            key=key,
                            sink_id=sink.id,
                            sink_type=sink.type,
                            event=ev,
                            attempts=0,
                            trace_id=self.trace_id,
                            reason_code=MISSING_SECRET,
                            message=d.message,
                        )
                    ]
                )
                self.blocked.add(ident)
                results.append(
                    SinkResult(
                        sink_id=sink.id,
                        sink_type=sink.type,
                        success=False,
                        reason_code=d.reason,
                        message=d.message,
                        outbox_status=OUTBOX_RETRYING,
                    )
                )
                continue
            plugin = self.loaded.plugin_for(sink) if self.loaded else None
            if ident in self.blocked:
                result = self.deliverer.deferred(
                    "an earlier notification of this episode to this sink is still pending; "
                    "kept in the outbox"
                )
            elif plugin is None:
                result = self.deliverer.deferred("sink plugin not installed; kept in the outbox")
            else:
                result = self.send(sink, plugin, event)
            self.record_result(ev, sink, result, 0)
            if not result.success and result.outbox_status == OUTBOX_RETRYING:
                self.blocked.add(ident)
            results.append(_sink_result(sink, result))
        return results

    def telemetry_row(self, row: dict[str, Any]) -> None:
        append_line(self.telemetry, row)


def _sink_result(sink: SinkDef, result: DeliveryResult) -> SinkResult:
    outbox_status = result.outbox_status
    if result.attempts == 0 and outbox_status == OUTBOX_RETRYING:
        outbox_status = OUTBOX_QUEUED
    return SinkResult(
        sink_id=sink.id,
        sink_type=sink.type,
        success=result.success,
        reason_code=result.reason_code,
        http_status=result.http_status,
        message=result.message,
        attempts=result.attempts,
        retry_after_seconds=result.retry_after_seconds,
        outbox_status=outbox_status,
    )


def _result_from_entry(entry: OutboxEntry) -> SinkResult:
    """A row re-processed after a crash: report what the outbox already knows."""
    last = entry.last
    http = last.get("httpStatus")
    if entry.status == OUTBOX_DELIVERED:
        return SinkResult(
            sink_id=entry.sink_id,
            sink_type=entry.sink_type,
            success=True,
            http_status=http if isinstance(http, int) else None,
            message="already delivered (outbox)",
            attempts=entry.attempts,
            outbox_status=entry.status,
        )
    reason = last.get("reasonCode")
    return SinkResult(
        sink_id=entry.sink_id,
        sink_type=entry.sink_type,
        success=False,
        reason_code=reason if isinstance(reason, str) else "delivery_deferred",
        http_status=http if isinstance(http, int) else None,
        message="already in the outbox (" + entry.status + ")",
        attempts=entry.attempts,
        outbox_status=entry.status,
    )


class _Run(_Sending):
    def __init__(
        self,
        settings: DispatchSettings,
        paths: LoopPaths,
        files: DispatchFiles,
        effects: DispatchEffects,
        loaded: LoadedConfig | None,
        config_error: str | None,
        previous: dict[str, Any],
    ) -> None:
        super().__init__(
            paths=paths,
            loaded=loaded,
            outbox=Outbox(files.outbox),
            effects=effects,
            trace_id=settings.trace_id,
            telemetry=files.telemetry,
        )
        self.s = settings
        self.files = files
        self.config_error = config_error
        self.episodes: Episodes = episodes_from_json(previous.get("episodes"))
        self.counts = RunCounts()
        self.failure_codes: set[str] = set()
        self.repo = str(paths.repo)
        self._run_id: str | bool | None = False

    def run_id(self) -> str | None:
        if self._run_id is False:
            self._run_id = _current_run_id(self.paths)
        return self._run_id if isinstance(self._run_id, str) else None

    def _count(self, **changes: int) -> None:
        self.counts = attrs.evolve(
            self.counts, **{k: getattr(self.counts, k) + v for k, v in changes.items()}
        )

    # -- 2. the outbox, before new rows ----------------------------------------------------
    def retry_outbox(self) -> None:
        now = self.now()
        for entry in self.outbox.ordered():
            if not entry.pending:
                continue
            ident = (entry.dedup_key, entry.sink_id)
            if self.loaded is None or ident in self.blocked:
                self.blocked.add(ident)
                continue
            first = parse_ts(entry.first_queued_at) if entry.first_queued_at else None
            if first is not None and now - first >= self.policy.give_up_after_seconds:
                self._stop(entry, OUTBOX_GAVE_UP, RETRY_BUDGET_EXHAUSTED, "retry budget spent")
                continue
            sink = self.loaded.config.sink(entry.sink_id)
            if sink is None:
                self._stop(entry, OUTBOX_GAVE_UP, SINK_NOT_CONFIGURED, "sink not in the config")
                continue
            if not sink.enabled:
                self._stop(entry, OUTBOX_GAVE_UP, SINK_DISABLED, "sink is disabled")
                continue
            plugin = self.loaded.plugin_for(sink)
            if plugin is None or self.missing.get(sink.id) or not entry.due(now):
                self.blocked.add(ident)
                continue
            try:
                event = event_from_json(entry.event)
            except ValueError as exc:
                self._stop(entry, OUTBOX_TERMINAL, INVALID_SINK_REQUEST, str(exc)[:300])
                continue
            result = self.send(sink, plugin, event)
            if result.attempts == 0 and not result.success:
                self.blocked.add(ident)
                continue  # deferred (deadline / destination down): nothing happened
            self.record_result(entry.event, sink, result, entry.attempts, source="outbox")
            self._count(retried=1, delivered_from_outbox=1 if result.success else 0)
            if not result.success and result.outbox_status == OUTBOX_RETRYING:
                self.blocked.add(ident)
            self.telemetry_row(
                _retry_row(self.now(), self.trace_id, entry, _sink_result(sink, result), "outbox")
            )

    def _stop(self, entry: OutboxEntry, status: str, reason: str, message: str) -> None:
        self.outbox.append(
            [
                outbox_record(
                    now=self.now(),
                    status=status,
                    key=entry.key,
                    sink_id=entry.sink_id,
                    sink_type=entry.sink_type,
                    event=entry.event,
                    attempts=entry.attempts,
                    trace_id=self.trace_id,
                    reason_code=reason,
                    message=message,
                    source="outbox",
                )
            ]
        )

    # -- 3. new rows -----------------------------------------------------------------------
    def process(self, line: int, raw: bytes) -> None:
        self._count(processed=1)
        try:
            text = raw.decode("utf-8")
            row = parse_row(line, text)
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            row = EscalationRow(line=line, raw=text, kind=ROW_INVALID)
        now = int(self.now())
        loop_id, trace = self.s.loop_id, self.s.trace_id
        route: Route | RouteFailure | None = None
        if row.kind == ROW_OK:
            route = self._route(row)
        decision = decide(row, route, self.missing)
        if decision.outcome == OUTCOME_SKIP_BLANK:
            self._count(skipped=1)
            return
        if decision.outcome == OUTCOME_FAIL:
            self._count(failed=1)
            assert decision.reason is not None
            self.failure_codes.add(decision.reason)
            if row.kind == ROW_INVALID:
                self.telemetry_row(t_invalid(now, loop_id, trace, row.raw))
            elif row.kind != ROW_OK:
                self.telemetry_row(t_nocat(now, loop_id, trace, row.escalation))
            else:
                self.telemetry_row(t_routefail(now, loop_id, trace, row, decision.message or ""))
            return
        assert isinstance(route, Route) and self.loaded is not None and row.category
        config = self.loaded.config
        route_obj = route_json(config, route, env_status(config, self.present), False)
        self.episodes, dedup_key = episode_for_trigger(
            self.episodes, loop_id=loop_id, row=row, severity=route.event_severity
        )
        if decision.outcome == OUTCOME_SKIP:
            self._count(skipped=1)
            self.telemetry_row(
                t_skip(now, loop_id, trace, row, route, route_obj, {"dedupKey": dedup_key})
            )
            return
        assert decision.outcome == OUTCOME_DELIVER
        event = build_event(
            action="trigger",
            loop_id=row.loop_id or loop_id,
            category=row.category,
            severity=route.event_severity,
            trace_id=row.trace_id or trace,
            escalation=row.escalation,
            escalation_timestamp=row.timestamp,
            emitted_at=format_ts(now),
            dedup_key=dedup_key,
            sequence=f"L{line}",
            run_id=_str(row.escalation.get("runId")) or self.run_id(),
            repo=self.repo,
        )
        results = self.notify(event, decision.sinks)
        self.episodes = note_episode_sinks(
            self.episodes, row.category, [d.sink.id for d in decision.sinks]
        )
        self._tally(results)
        self.telemetry_row(
            t_delivery(
                int(self.now()),
                loop_id=row.loop_id or loop_id,
                trace_id=trace,
                escalation_trace_id=row.trace_id or trace,
                escalation_category=row.category,
                escalation_timestamp=row.timestamp,
                event_severity=route.event_severity,
                escalation=row.escalation,
                route_obj=route_obj,
                results=results,
                extra={
                    "action": "trigger",
                    "dedupKey": dedup_key,
                    "idempotencyKey": event.idempotency_key,
                },
            )
        )

    def _route(self, row: EscalationRow) -> Route | RouteFailure:
        if self.loaded is None:
            return RouteFailure(self.config_error or "error: alert sink config unavailable")
        if row.severity is not None and not is_severity(row.severity):
            return RouteFailure(f"error: {ERR_SEVERITY}")
        assert row.category is not None
        return resolve_route(self.loaded.config, row.category, row.severity)

    def _tally(self, results: Sequence[SinkResult]) -> None:
        ok = sum(1 for r in results if r.success)
        if ok:
            self._count(dispatched=1)
        if ok < len(results):
            self._count(failed=1)
        for r in results:
            if not r.success:
                self.failure_codes.add(r.reason_code or "sink_dispatch_failed")

    # -- 4. resolves -----------------------------------------------------------------------
    def resolve_cleared(self) -> None:
        if self.loaded is None or not self.episodes:
            return
        config = self.loaded.config
        conditions = read_conditions(self.paths)
        for episode in cleared_episodes(self.episodes, conditions):
            self.episodes = close_episode(self.episodes, episode.family)
            targets = [s for s in (config.sink(i) for i in episode.sinks) if s and s.enabled]
            if not targets:
                continue  # nobody was told about it: nothing to take back
            now = int(self.now())
            resolved = {
                "timestamp": format_ts(now),
                "loopId": self.s.loop_id,
                "traceId": self.s.trace_id,
                "category": episode.category,
                "action": "resolve",
                "dedupKey": episode.dedup_key,
                "openedAt": episode.opened_at,
                "escalationTraceId": episode.escalation_trace_id,
                "condition": _condition_json(episode.family, conditions),
            }
            event = build_event(
                action="resolve",
                loop_id=self.s.loop_id,
                category=episode.category,
                severity=episode.severity,
                trace_id=self.s.trace_id,
                escalation=resolved,
                escalation_timestamp=format_ts(now),
                emitted_at=format_ts(now),
                dedup_key=episode.dedup_key,
                sequence=f"r{episode.last_line}",
                run_id=self.run_id(),
                repo=self.repo,
            )
            decisions = [
                SinkDecision(
                    sink=s,
                    send=not self.missing.get(s.id),
                    reason=MISSING_SECRET if self.missing.get(s.id) else None,
                    message=s.missing_message(self.missing[s.id])
                    if self.missing.get(s.id)
                    else None,
                )
                for s in targets
            ]
            results = self.notify(event, decisions)
            self._count(resolves=1)
            for r in results:
                if not r.success:
                    self.failure_codes.add(r.reason_code or "sink_dispatch_failed")
            self.telemetry_row(
                t_delivery(
                    int(self.now()),
                    loop_id=self.s.loop_id,
                    trace_id=self.s.trace_id,
                    escalation_trace_id=self.s.trace_id,
                    escalation_category=episode.category,
                    escalation_timestamp=None,
                    event_severity=episode.severity,
                    escalation=resolved,
                    route_obj=None,
                    results=results,
                    extra={
                        "action": "resolve",
                        "dedupKey": episode.dedup_key,
                        "idempotencyKey": event.idempotency_key,
                    },
                )
            )


def _condition_json(family: str, c: Conditions) -> dict[str, Any]:
    if family == "health":
        return {"healthStatus": c.health_status}
    if family == "drift":
        return {"profileDriftActive": c.profile_drift_active}
    if family == "ordering":
        return {"orderingDriftActive": c.ordering_drift_active}
    return {"divergenceActive": c.divergence_active}


def _retry_row(
    now: float, trace_id: str, entry: OutboxEntry, result: SinkResult, source: str
) -> dict[str, Any]:
    ev = entry.event
    return t_delivery(
        int(now),
        loop_id=str(ev.get("loopId", "")),
        trace_id=trace_id,
        escalation_trace_id=str(ev.get("traceId") or trace_id),
        escalation_category=str(ev.get("category", "")),
        escalation_timestamp=_str(ev.get("escalationTimestamp")),
        event_severity=str(ev.get("severity", "")),
        escalation=ev.get("escalation"),
        route_obj=None,
        results=[result],
        extra={
            "action": ev.get("action"),
            "dedupKey": ev.get("dedupKey"),
            "idempotencyKey": entry.key,
            "source": source,
        },
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


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
        previous = read_dispatch_state(files.state)
        prev_offset = as_nonneg_int(previous.get("escalationsLineOffset")) or 0
        new = read_new_lines(
            files.escalations,
            prev_offset,
            previous.get("escalationsPosition"),
            settings.max_escalations,
        )
        loaded, config_error = _load(settings.config_file, environ)
        run = _Run(settings, paths, files, fx, loaded, config_error, previous)
        run.retry_outbox()
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
            episodes=run.episodes,
        )
        write_json(files.state, state)
        if run.outbox.records > OUTBOX_COMPACT_THRESHOLD:
            run.outbox.compact()
        return state


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
        sending = _Sending(
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


def _replay_one(sending: _Sending, entry: OutboxEntry) -> SinkResult:
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
        return _sink_result(sink, sending.deliverer.deferred(why))
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
    sink_result = _sink_result(sink, result)
    sending.telemetry_row(_retry_row(sending.now(), sending.trace_id, entry, sink_result, "replay"))
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
