"""Control intents (``loop.md`` §3.9, §3.10): execute cancel / approve / reject through a
transport, confirm from fresh runtime evidence, and record what happened.

Two use cases:

- :func:`confirm_intent` polls the runtime until an intent's effect is visible or a timeout
  passes (``ops-manager confirm-intent``; also called by the local transport);
- :func:`run_control` executes one intent through :func:`~ops_manager.transports.get_transport`
  and appends the three records of §3.10.4 (``intents.jsonl``, ``telemetry/control.jsonl``,
  ``telemetry/control-invocations.jsonl``).

Idempotency: a caller-supplied idempotency key is executed at most once per loop (a
generated ``<intent>-<epoch>-<pid>`` key is recorded but not stored: nobody repeats it on
purpose). ``OPS/intent-idempotency.json`` maps key ->
``{"state": "executing" | "done" | "interrupted", ...}``. The key is reserved under the loop
lock (the one reconcile holds for a pass), the intent is executed and confirmed *without* the
lock (confirmation can take its whole timeout; reconciles must not wait for it), and the
result is stored under the lock again. A repeat of a stored key replays the stored result
(nothing executes; ``execution.replayed: true``; records appended again with the caller's
trace id). A repeat while the first call is still executing, or after it was interrupted,
answers ``ambiguous`` without executing. Transports whose remote side already
deduplicates by key (``sprite_service``: the service's own store, §3.12) bypass this store, so
the service's replay answer is what gets recorded.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import as_nonneg_int, nonempty_str, strip_nulls
from ops_manager._timefmt import format_ts, parse_ts, utc_now_epoch
from ops_manager.errors import OpsError
from ops_manager.reducers.confirm import Observation, confirm_outcome, confirm_predicate
from ops_manager.reducers.run_status import event_name
from ops_manager.store import (
    LoopPaths,
    append_line,
    exclusive_lock,
    read_json_or_empty,
    write_json,
)
from ops_manager.transports import (
    CONTROL_INTENTS,
    ControlExecution,
    ControlRequest,
    Transport,
    TransportConfig,
    get_transport,
)

INTENT_ERROR = "intent must be one of: cancel, approve, reject"
IDEMPOTENCY_FILE = "intent-idempotency.json"
#: stored results older than this are forgotten (a replay after that executes again)
IDEMPOTENCY_RETENTION_SECONDS = 7 * 86400
#: at most this many stored results are kept (oldest dropped first)
IDEMPOTENCY_MAX_ENTRIES = 2000
#: an ``executing`` reservation older than this is treated as interrupted
STALE_EXECUTING_SECONDS = 3600
#: transports whose remote side deduplicates by idempotency key itself
REMOTE_DEDUP_TRANSPORTS = frozenset({"sprite_service"})

Snapshot = Callable[[LoopPaths], Any]


# --- confirmation --------------------------------------------------------------------------


@attrs.frozen
class ConfirmTiming:
    """Where confirmation gets time from: elapsed ``clock``, ``sleep``, and ``wall`` (epoch)."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    wall: Callable[[], int] = utc_now_epoch


#: timing used by :func:`confirm_intent` when it is not given explicitly; :func:`run_control`
#: sets it for the duration of a transport call so an injected clock reaches the confirmation
#: the transport runs (the Transport protocol carries no clock).
_TIMING: ContextVar[ConfirmTiming | None] = ContextVar("ops_manager_confirm_timing", default=None)


def observe_runtime(paths: LoopPaths) -> dict[str, Any]:
    """A snapshot-shaped dict with the fields confirmation reads (raises OpsError).

    Same derivations as ``loop-run-snapshot`` (run status truth table, last event name,
    runtime files) but without hashing the event log: the cost of an attempt does not grow
    with the log.
    """
    from ops_manager.transports.local import read_runtime_view

    view = read_runtime_view(paths)
    return {
        "run": {"status": view.status, "summary": view.summary},
        "runtime": {"superloopState": view.superloop_state, "approval": view.approval},
        "health": {"lastEventName": event_name(view.last_event)},
    }


def confirm_intent(
    paths: LoopPaths,
    intent: str,
    *,
    timeout_seconds: int = 30,
    interval_seconds: int = 2,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    wall: Callable[[], int] | None = None,
    snapshot: Snapshot = observe_runtime,
) -> tuple[dict[str, Any], int]:
    """Poll the runtime until ``intent`` is confirmed or ``timeout_seconds`` have passed.

    Each attempt takes a fresh snapshot; a failed snapshot keeps the previous observation
    (and cannot confirm: only fresh evidence confirms). The loop stops when confirmed, or
    when ``clock() - start >= timeout_seconds`` checked after the attempt (timeout 0 = one
    attempt); otherwise it sleeps ``interval_seconds`` (0 counts as 1). Returns the §3.9
    outcome object and the exit code (0 confirmed, 1 not). ``clock``/``sleep``/``wall``
    default to the ambient :class:`ConfirmTiming` (real time unless :func:`run_control` was
    given a clock).
    """
    if intent not in CONTROL_INTENTS:
        raise OpsError(INTENT_ERROR)
    ambient = _TIMING.get() or ConfirmTiming()
    clock = clock or ambient.clock
    sleep = sleep or ambient.sleep
    wall = wall or ambient.wall
    interval = interval_seconds if interval_seconds > 0 else 1
    start = clock()
    attempts = 0
    obs = Observation()
    reason: str | None = None
    while True:
        attempts += 1
        try:
            snap = snapshot(paths)
        except (OpsError, OSError):
            pass  # adapter failure: keep the previous observation
        else:
            obs = Observation.from_snapshot(snap)
            reason = confirm_predicate(intent, obs)
        if reason is not None or clock() - start >= timeout_seconds:
            break
        sleep(interval)
    outcome = confirm_outcome(
        intent=intent,
        reason=reason,
        attempts=attempts,
        timeout_seconds=timeout_seconds,
        obs=obs,
        observed_at=format_ts(wall()),
    )
    return outcome, 0 if reason is not None else 1


# --- control -------------------------------------------------------------------------------


@attrs.frozen
class ControlSettings:
    """One control invocation, validated (the CLI resolves flags and env)."""

    repo: Path
    loop_id: str
    intent: str
    transport: str = "local"
    transport_config: TransportConfig = attrs.field(factory=TransportConfig)
    #: ``None`` -> ``<intent>-<epoch seconds>-<pid>``
    idempotency_key: str | None = None
    #: ``None`` -> ``$OPS_MANAGER_TRACE_ID``, else a uuid4
    trace_id: str | None = None
    #: ``None`` -> ``$USER``, else ``unknown``
    by: str | None = None
    note: str | None = None
    timeout_seconds: int = 30
    interval_seconds: int = 2
    confirm: bool = True


@attrs.frozen
class ControlResult:
    """The three records one invocation appended, and the process exit code."""

    entry: dict[str, Any]
    control_row: dict[str, Any]
    invocation: dict[str, Any]
    exit_code: int

    @property
    def status(self) -> str:
        """``confirmed | executed_unconfirmed | ambiguous | failed_command`` (| ``executed``)."""
        return str(self.entry["status"])

    @property
    def replayed(self) -> bool:
        """True when the result came from an idempotency store, not a new execution."""
        return bool(self.invocation["execution"].get("replayed"))


def exit_code_for(status: str) -> int:
    """0 for ``confirmed`` / ``executed_unconfirmed``, 2 for ``ambiguous``, else 1 (Q-15)."""
    if status in ("confirmed", "executed_unconfirmed"):
        return 0
    if status == "ambiguous":
        return 2
    return 1


def reason_code_for(status: str) -> str | None:
    """``control_ambiguous`` / ``control_failed_command`` / ``None`` (§5.5)."""
    return {"ambiguous": "control_ambiguous", "failed_command": "control_failed_command"}.get(
        status
    )


def default_idempotency_key(intent: str, epoch: int) -> str:
    """``<intent>-<epoch seconds>-<pid>`` (A-4)."""
    return f"{intent}-{epoch}-{os.getpid()}"


def run_control(
    settings: ControlSettings,
    *,
    clock: Callable[[], int] = utc_now_epoch,
    sleep: Callable[[float], None] | None = None,
) -> ControlResult:
    """Execute one intent (at most once per idempotency key) and record it (§3.10.4).

    ``clock`` stamps the records; when it (or ``sleep``) is injected, the confirmation the
    transport runs uses them too, so tests never wait. Raises :class:`OpsError` for invalid
    settings or an unavailable transport; a failing runtime command is a recorded
    ``failed_command``, not an exception. Takes the loop lock (``OPS/.lock``) briefly around
    the idempotency store: do not call it while holding that lock (``flock`` would block).
    """
    if settings.intent not in CONTROL_INTENTS:
        raise OpsError(INTENT_ERROR)
    paths = LoopPaths.for_loop(settings.repo, settings.loop_id)
    transport = get_transport(settings.transport, settings.transport_config)
    paths.ops_dir.mkdir(parents=True, exist_ok=True)
    paths.telemetry_dir.mkdir(parents=True, exist_ok=True)

    started = clock()
    explicit_key = bool(settings.idempotency_key)
    key = settings.idempotency_key or default_idempotency_key(settings.intent, started)
    trace_id = settings.trace_id or os.environ.get("OPS_MANAGER_TRACE_ID") or str(uuid.uuid4())
    by = settings.by or os.environ.get("USER") or "unknown"
    note = nonempty_str(settings.note)
    request = ControlRequest(
        paths=paths,
        intent=settings.intent,
        by=by,
        note=note,
        trace_id=trace_id,
        idempotency_key=key,
        confirm=settings.confirm,
        timeout_seconds=settings.timeout_seconds,
        interval_seconds=settings.interval_seconds,
    )
    timing = ConfirmTiming(
        clock=time.monotonic if clock is utc_now_epoch else clock,
        sleep=sleep or time.sleep,
        wall=clock,
    )

    if not explicit_key or _remote_dedup(transport):
        # a generated key is never repeated (and may collide within one second in one
        # process), so only caller-supplied keys go through the store
        execution = _execute(transport, request, timing)
    else:
        store = _IdempotencyStore(paths)
        answer = store.reserve(key, settings.intent, trace_id, clock)
        if answer is not None:
            execution = answer
        else:
            try:
                execution = _execute(transport, request, timing)
            except BaseException:
                with contextlib.suppress(Exception):
                    store.mark_interrupted(key)
                raise
            store.complete(key, execution, clock)

    completed = clock()
    entry, row, invocation = build_control_records(
        request=request,
        transport=settings.transport,
        config=settings.transport_config,
        execution=execution,
        started=started,
        completed=completed,
    )
    append_line(paths.intents_file, entry)
    append_line(paths.control_telemetry_file, row)
    append_line(paths.control_invocations_file, invocation)
    return ControlResult(
        entry=entry,
        control_row=row,
        invocation=invocation,
        exit_code=exit_code_for(execution.status),
    )


def _remote_dedup(transport: Transport) -> bool:
    declared = getattr(transport, "deduplicates_intents", None)
    if isinstance(declared, bool):
        return declared
    return transport.name in REMOTE_DEDUP_TRANSPORTS


def _execute(
    transport: Transport, request: ControlRequest, timing: ConfirmTiming
) -> ControlExecution:
    token = _TIMING.set(timing)
    try:
        return transport.control(request)
    finally:
        _TIMING.reset(token)


def build_control_records(
    *,
    request: ControlRequest,
    transport: str,
    config: TransportConfig,
    execution: ControlExecution,
    started: int,
    completed: int,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The ``intents.jsonl`` entry, ``control.jsonl`` row and ``control-invocations.jsonl``
    record of one invocation, keys in contract order, **[strip]** applied (§3.10.4)."""
    status = execution.status
    reason_code = reason_code_for(status)
    completed_at = format_ts(completed)
    started_at = format_ts(started)
    duration = max(completed - started, 0)
    note = nonempty_str(request.note)
    loop_id = request.paths.loop_id
    entry = strip_nulls(
        {
            "timestamp": completed_at,
            "loopId": loop_id,
            "intent": request.intent,
            "traceId": request.trace_id,
            "requestedBy": request.by,
            "note": note,
            "transport": transport,
            "status": status,
            "command": execution.command,
            "idempotencyKey": request.idempotency_key,
            "exitCode": execution.exit_code,
            "confirmExitCode": execution.confirm_exit_code,
            "confirmed": execution.confirmed,
            "commandOutput": nonempty_str(execution.command_output),
            "confirm": execution.confirm,
        }
    )
    row = strip_nulls(
        {
            "timestamp": completed_at,
            "startedAt": started_at,
            "loopId": loop_id,
            "intent": request.intent,
            "traceId": request.trace_id,
            "transport": transport,
            "status": status,
            "reasonCode": reason_code,
            "idempotencyKey": request.idempotency_key,
            "requestedBy": request.by,
            "exitCode": execution.exit_code,
            "confirmExitCode": execution.confirm_exit_code,
            "confirmed": execution.confirmed,
            "durationSeconds": duration,
            "retryAttempts": config.retry_attempts,
            "retryBackoffSeconds": config.retry_backoff_seconds,
        }
    )
    invocation = strip_nulls(
        {
            "schemaVersion": "v1",
            "timestamp": completed_at,
            "startedAt": started_at,
            "loopId": loop_id,
            "intent": request.intent,
            "traceId": request.trace_id,
            "transport": transport,
            "requestedBy": request.by,
            "note": note,
            "idempotencyKey": request.idempotency_key,
            "request": {
                "doConfirm": request.confirm,
                "timeoutSeconds": request.timeout_seconds,
                "intervalSeconds": request.interval_seconds,
                "retryAttempts": config.retry_attempts,
                "retryBackoffSeconds": config.retry_backoff_seconds,
            },
            "execution": strip_nulls(
                {
                    "status": execution.execution_status,
                    "exitCode": execution.exit_code,
                    "command": execution.command,
                    "output": nonempty_str(execution.command_output),
                    "replayed": execution.replayed,
                }
            ),
            "confirmation": strip_nulls(
                {
                    "attempted": execution.confirmation_attempted,
                    "status": execution.confirmation_status,
                    "exitCode": execution.confirm_exit_code,
                    "outcome": execution.confirm,
                }
            ),
            "outcome": strip_nulls(
                {
                    "status": status,
                    "confirmed": execution.confirmed,
                    "reasonCode": reason_code,
                    "durationSeconds": duration,
                }
            ),
        }
    )
    return entry, row, invocation


# --- the per-loop idempotency store ----------------------------------------------------------


def execution_to_json(execution: ControlExecution) -> dict[str, Any]:
    """A :class:`ControlExecution` as stored in ``intent-idempotency.json`` (camelCase)."""
    return {
        "status": execution.status,
        "command": execution.command,
        "exitCode": execution.exit_code,
        "confirmExitCode": execution.confirm_exit_code,
        "confirmed": execution.confirmed,
        "executionStatus": execution.execution_status,
        "confirmationStatus": execution.confirmation_status,
        "confirmationAttempted": execution.confirmation_attempted,
        "commandOutput": execution.command_output,
        "confirm": execution.confirm,
        "replayed": execution.replayed,
    }


def execution_from_json(value: Any) -> ControlExecution | None:
    """Inverse of :func:`execution_to_json`; ``None`` when ``value`` is not a stored result."""
    if not isinstance(value, dict) or not isinstance(value.get("status"), str):
        return None

    def text(key: str, default: str) -> str:
        item = value.get(key)
        return item if isinstance(item, str) else default

    confirm = value.get("confirm")
    return ControlExecution(
        status=value["status"],
        command=text("command", ""),
        exit_code=_int(value.get("exitCode")),
        confirm_exit_code=_int(value.get("confirmExitCode")),
        confirmed=value.get("confirmed") is True,
        execution_status=text("executionStatus", "succeeded"),
        confirmation_status=text("confirmationStatus", "not_attempted"),
        confirmation_attempted=value.get("confirmationAttempted") is True,
        command_output=nonempty_str(value.get("commandOutput")),
        confirm=confirm if isinstance(confirm, dict) else None,
        replayed=value.get("replayed") is True,
    )


def _int(value: Any) -> int:
    number = as_nonneg_int(value)
    return number if number is not None else 0


def _not_executed(key: str, message: str) -> ControlExecution:
    """The answer for a key that must not execute now: ``ambiguous``, nothing run."""
    return ControlExecution(
        status="ambiguous",
        command="",
        exit_code=2,
        confirm_exit_code=0,
        confirmed=False,
        execution_status="not_started",
        confirmation_status="not_attempted",
        confirmation_attempted=False,
        command_output=message,
        confirm=None,
        replayed=False,
    )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class _IdempotencyStore:
    """``OPS/intent-idempotency.json``: key -> reservation or stored result (under the lock)."""

    def __init__(self, paths: LoopPaths) -> None:
        self.paths = paths
        self.path = paths.ops(IDEMPOTENCY_FILE)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with exclusive_lock(self.paths.lock_file):
            yield read_json_or_empty(self.path)

    def reserve(
        self, key: str, intent: str, trace_id: str, clock: Callable[[], int]
    ) -> ControlExecution | None:
        """Reserve ``key`` for this process (``None``: go ahead and execute), or return
        the answer without executing: the stored result (replay) or ``ambiguous``."""
        with self._locked() as store:
            record = store.get(key)
            if isinstance(record, dict):
                stored_intent = record.get("intent")
                if isinstance(stored_intent, str) and stored_intent != intent:
                    raise OpsError(
                        f"idempotency key {key} was already used for intent {stored_intent}"
                    )
                state = record.get("state")
                if state == "done":
                    stored = execution_from_json(record.get("execution"))
                    if stored is not None:
                        return attrs.evolve(stored, replayed=True)
                if state == "executing" and not self._abandoned(record, clock()):
                    return _not_executed(
                        key, f"intent with idempotency key {key} is still executing"
                    )
                return _not_executed(
                    key,
                    f"intent with idempotency key {key} was interrupted while executing; "
                    "whether it took effect is unknown: check status, then retry with a new key",
                )
            store[key] = {
                "state": "executing",
                "intent": intent,
                "traceId": trace_id,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "startedAt": format_ts(clock()),
            }
            write_json(self.path, store)
        return None

    @staticmethod
    def _abandoned(record: dict[str, Any], now: int) -> bool:
        started = parse_ts(record.get("startedAt"))
        if started is not None and now - started > STALE_EXECUTING_SECONDS:
            return True
        pid = record.get("pid")
        if record.get("host") == socket.gethostname() and isinstance(pid, int) and pid > 0:
            return not _process_alive(pid)
        return False

    def complete(self, key: str, execution: ControlExecution, clock: Callable[[], int]) -> None:
        """Store the result of ``key`` (and forget results past retention)."""
        now = clock()
        with self._locked() as store:
            record = store.get(key)
            record = dict(record) if isinstance(record, dict) else {}
            record.update(
                state="done", completedAt=format_ts(now), execution=execution_to_json(execution)
            )
            store[key] = record
            write_json(self.path, _pruned(store, now))

    def mark_interrupted(self, key: str) -> None:
        """The execution of ``key`` raised: never execute it again, answer ``ambiguous``."""
        with self._locked() as store:
            record = store.get(key)
            if isinstance(record, dict) and record.get("state") == "executing":
                store[key] = {**record, "state": "interrupted"}
                write_json(self.path, store)


def _pruned(store: dict[str, Any], now: int) -> dict[str, Any]:
    """Drop stored results past retention, then the oldest beyond the size cap.

    Reservations (``executing`` / ``interrupted``) are kept.
    """
    done: list[tuple[int, str]] = []
    for key, record in store.items():
        if isinstance(record, dict) and record.get("state") == "done":
            done.append((parse_ts(record.get("completedAt")) or 0, key))
    drop = {key for at, key in done if now - at > IDEMPOTENCY_RETENTION_SECONDS}
    kept = sorted((item for item in done if item[1] not in drop), reverse=True)
    drop.update(key for _, key in kept[IDEMPOTENCY_MAX_ENTRIES:])
    return {key: record for key, record in store.items() if key not in drop}
