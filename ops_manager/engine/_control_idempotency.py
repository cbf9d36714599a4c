"""The per-loop idempotency store of control intents (``OPS/intent-idempotency.json``).
Private to :mod:`ops_manager.engine.control`, which re-exports it.

Everything here runs under the loop lock (``OPS/.lock``), and first finishes a commit record
a killed holder of that lock left (``OPS/.pass-commit.json``, :mod:`ops_manager.store._commit`):
the loop's one record, shared by a reconcile pass and a control's result, so whoever takes
the lock next finishes either. A control commits its three rows and its stored result as
one (:meth:`IdempotencyStore.commit`); the reservation before it executes is a durable write
of its own (it must be on disk before the runtime command runs).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import as_nonneg_int, nonempty_str
from ops_manager._timefmt import format_ts, parse_ts
from ops_manager.errors import OpsError
from ops_manager.store import (
    LoopPaths,
    Replace,
    apply_pending,
    commit,
    exclusive_lock,
    json_replace,
    pid_alive,
    read_json_or_empty,
    remove_dead_temps,
    rows_append,
    write_json,
)
from ops_manager.transports import ControlExecution

IDEMPOTENCY_FILE = "intent-idempotency.json"
#: stored results older than this are forgotten (a replay after that executes again)
IDEMPOTENCY_RETENTION_SECONDS = 7 * 86400
#: at most this many stored results are kept (oldest dropped first)
IDEMPOTENCY_MAX_ENTRIES = 2000
#: an ``executing`` reservation older than this is treated as interrupted
STALE_EXECUTING_SECONDS = 3600


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


class IdempotencyStore:
    """``OPS/intent-idempotency.json``: key -> reservation or stored result (under the lock)."""

    def __init__(self, paths: LoopPaths) -> None:
        self.paths = paths
        self.path = paths.ops(IDEMPOTENCY_FILE)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with exclusive_lock(self.paths.lock_file):
            # a control (or a reconcile pass) killed after its commit point is finished
            # first, and the temp of a reservation killed before its rename is removed
            apply_pending(self.paths.pass_commit_file)
            remove_dead_temps(self.path)
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
            return not pid_alive(pid)
        return False

    def commit(
        self,
        rows: Sequence[tuple[Path, Mapping[str, Any]]],
        result: tuple[str, ControlExecution, int] | None = None,
    ) -> None:
        """Append one invocation's ``rows`` (``(stream, row)``, in order) and, with
        ``result`` (key, execution, the clock value it completed at), store that result
        (forgetting results past retention): one commit under the loop lock.

        The commit record's rename is the commit point: a kill before it leaves the key
        reserved (a repeat answers ``ambiguous``), a kill after it leaves a record that the
        next holder of the lock applies (a repeat replays).
        """
        with self._locked() as store:
            replaces: list[Replace] = []
            if result is not None:
                key, execution, now = result
                record = store.get(key)
                record = dict(record) if isinstance(record, dict) else {}
                record.update(
                    state="done",
                    completedAt=format_ts(now),
                    execution=execution_to_json(execution),
                )
                store[key] = record
                replaces.append(json_replace(self.path, _pruned(store, now)))
            appends = [rows_append(path, [row]) for path, row in rows]
            commit(self.paths.pass_commit_file, appends, replaces)

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
