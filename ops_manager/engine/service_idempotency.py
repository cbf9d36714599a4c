"""The sprite service's idempotency store: ``OPS/service-idempotency.json`` (``loop.md``
§3.12). In the engine because it is a store use case (locks, atomic writes); ``service/``
calls it and imports no store itself (``docs/architecture.md``, layering).

A JSON object ``key -> stored response`` (upstream's shape), plus reservations of keys whose
request is executing right now. Every read-modify-write happens under an exclusive ``flock``
on a dedicated lock file (``OPS/.service-idempotency.lock``; not the loop's reconcile lock,
so a control request never waits for a reconcile pass), and every write is atomic
(DECISIONS Q-25). The file survives service restarts.

Protocol of one control request carrying key ``K``:

1. :meth:`IdempotencyStore.begin` under the lock: ``K`` stored -> replay it; ``K`` reserved
   by a live request -> "in progress" (the caller answers 409 and the client retries later);
   ``K`` reserved by a service process that died -> the outcome is unknown: an *ambiguous*
   response is stored for ``K`` and replayed; otherwise reserve ``K``.
2. Execute the intent without holding the lock (confirmation can take 30 s).
3. :meth:`IdempotencyStore.finish` under the lock: store the response for ``K``.

So a key executes at most once, even for concurrent duplicates and across restarts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.store import LoopPaths, exclusive_lock, pid_alive, read_json_or_empty, write_json

#: lock file beside the store (dedicated: never the loop's reconcile lock)
LOCK_NAME = ".service-idempotency.lock"
#: stored responses kept per loop; the oldest are dropped beyond this (reservations are kept)
MAX_ENTRIES = 1000
#: key of the marker object that reserves a key while its request executes
RESERVATION = "inProgress"


@attrs.frozen
class Begin:
    """What :meth:`IdempotencyStore.begin` decided."""

    #: ``"execute"`` (reserved for us), ``"replay"`` (``stored`` is the response),
    #: ``"in_progress"`` (another request holds the key)
    action: str
    stored: dict[str, Any] | None = None


def interrupted_response(key: str, trace_id: str | None) -> dict[str, Any]:
    """The response recorded for a key whose execution was cut off by a service restart.

    The command may or may not have run: that is an *ambiguous* outcome (exit code 2), and
    it is stored so every later retry gets the same answer instead of a second execution.
    """
    response: dict[str, Any] = {
        "ok": False,
        "exitCode": 2,
        "stderr": (
            f"error: the service stopped while executing the request with idempotency key "
            f"'{key}'; whether the intent took effect is unknown: check status, then retry "
            "with a new idempotency key"
        ),
        "replayed": False,
    }
    if trace_id:
        response["traceId"] = trace_id
    return response


class IdempotencyStore:
    """The idempotency store of one loop, for one service process (``instance``)."""

    def __init__(self, paths: LoopPaths, instance: str) -> None:
        self.path = paths.service_idempotency_file
        self.lock_path: Path = paths.ops(LOCK_NAME)
        self.instance = instance

    def _reservation_is_live(self, marker: Any) -> bool:
        if not isinstance(marker, dict):
            return False
        pid = marker.get("pid")
        if marker.get("instance") == self.instance:
            return True  # this process is executing it (finish() always runs)
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return False
        if pid == os.getpid():
            return False  # an earlier service instance of this very process
        return pid_alive(pid)

    def begin(self, key: str, *, intent: str, trace_id: str | None) -> Begin:
        """Replay, report in-progress, or reserve ``key`` for this request (under the lock)."""
        with exclusive_lock(self.lock_path):
            store = read_json_or_empty(self.path)
            entry = store.get(key)
            if isinstance(entry, dict):
                if RESERVATION not in entry:
                    return Begin("replay", entry)
                marker = entry[RESERVATION]
                if self._reservation_is_live(marker):
                    return Begin("in_progress")
                stored_trace = marker.get("traceId") if isinstance(marker, dict) else None
                response = interrupted_response(
                    key, stored_trace if isinstance(stored_trace, str) else trace_id
                )
                store[key] = response
                write_json(self.path, store)
                return Begin("replay", response)
            store[key] = {
                RESERVATION: {
                    "instance": self.instance,
                    "pid": os.getpid(),
                    "intent": intent,
                    "traceId": trace_id,
                    "startedAt": format_ts(utc_now_epoch()),
                }
            }
            write_json(self.path, store)
        return Begin("execute")

    def finish(self, key: str, response: dict[str, Any]) -> None:
        """Store ``response`` for ``key`` (replacing its reservation), pruning old entries."""
        with exclusive_lock(self.lock_path):
            store = read_json_or_empty(self.path)
            store.pop(key, None)  # re-insert last: insertion order is age order
            store[key] = response
            write_json(self.path, _pruned(store))


def _pruned(store: dict[str, Any]) -> dict[str, Any]:
    done = [k for k, v in store.items() if not (isinstance(v, dict) and RESERVATION in v)]
    excess = len(done) - MAX_ENTRIES
    if excess <= 0:
        return store
    drop = set(done[:excess])
    return {k: v for k, v in store.items() if k not in drop}
