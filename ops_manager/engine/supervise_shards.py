"""``supervise --shard K/N``: rendezvous hashing of loop ids and the shard files.

N supervisors split one fleet with no coordination: loop ``L`` belongs to the shard ``k``
(``0 <= k < N``) with the highest ``sha256("k:L")``. Every shard computes the same owner
for every loop, so the shards are disjoint and complete; when N changes only about 1/N of
the loops move.

A shard never writes the fleet's ``state.json`` (another shard would overwrite it). It
writes, under ``FLEET/shards/``:

- ``<K>-of-<N>.state.json``: the fleet state document of its own loops;
- ``<K>-of-<N>.heartbeat.json``: when it last finished a tick, its interval (a reader
  calls a shard *live* while its heartbeat is younger than 3 intervals), its pid and host,
  and when each of its loops was last reconciled.

``fleet-status`` reads them back through :func:`shard_section`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ops_manager._timefmt import format_ts, parse_ts
from ops_manager.errors import OpsError
from ops_manager.store import FleetPaths, write_json

JSON = dict[str, Any]

_SHARD = re.compile(r"^([0-9]+)/([0-9]+)$")
#: a shard is live while its heartbeat is younger than this many of its intervals
LIVE_INTERVALS = 3


@attrs.frozen
class Shard:
    """Shard ``index`` of ``count`` (0-based: a StatefulSet ordinal is used as is)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` with ``0 <= K < N``; anything else is an :class:`OpsError`."""
        match = _SHARD.match(text)
        if match is None or not 0 <= int(match.group(1)) < int(match.group(2)):
            raise OpsError("--shard must be K/N with 0 <= K < N (e.g. 0/3)")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def label(self) -> str:
        """``K/N``."""
        return f"{self.index}/{self.count}"

    @property
    def stem(self) -> str:
        """``K-of-N``: the shard's file name stem."""
        return f"{self.index}-of-{self.count}"

    def owns(self, loop_id: str) -> bool:
        """True when this shard is ``loop_id``'s rendezvous owner."""
        return owner(loop_id, self.count) == self.index


def owner(loop_id: str, count: int) -> int:
    """The rendezvous (highest random weight) owner of ``loop_id`` among ``count`` shards."""
    best, best_score = 0, b""
    for k in range(count):
        score = hashlib.sha256(f"{k}:{loop_id}".encode()).digest()
        if score > best_score:
            best, best_score = k, score
    return best


def shards_dir(paths: FleetPaths) -> Path:
    """``FLEET/shards``."""
    return paths.fleet_dir / "shards"


def write_shard_files(
    paths: FleetPaths, shard: Shard, state: Mapping[str, Any], *, interval: float, now: int
) -> None:
    """Write the shard's state, then its heartbeat (the heartbeat vouches for the state)."""
    directory = shards_dir(paths)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / f"{shard.stem}.state.json", dict(state))
    reconciled = {
        str(r.get("loopId")): r.get("timestamp")
        for r in state.get("results", [])
        # a loop this shard gave up on (timeout, backoff, still running) was not reconciled
        if isinstance(r, dict)
        and r.get("timestamp")
        and not str(r.get("reasonCode", "")).startswith("supervise_")
    }
    write_json(
        directory / f"{shard.stem}.heartbeat.json",
        {
            "schemaVersion": "v1",
            "shard": shard.label,
            "index": shard.index,
            "count": shard.count,
            "updatedAt": format_ts(now),
            "intervalSeconds": interval,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "loopCount": len(state.get("results", [])),
            "lastReconciled": reconciled,
        },
    )


def _read(path: Path) -> JSON | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def shard_section(repo: Path, registry: Mapping[str, Any], now: int) -> JSON | None:
    """The ``shards`` section of ``fleet-status``: ``None`` when no shard ever ran.

    Every heartbeat file is read; a shard is live while ``now - updatedAt`` is at most
    ``LIVE_INTERVALS`` of its interval. ``unreconciledLoops`` lists the enabled registry
    loops that no live shard reconciled within that window: the loops of a dead shard, or
    of a shard count nobody runs.
    """
    directory = shards_dir(FleetPaths.for_repo(repo))
    if not directory.is_dir():
        return None
    shards: list[JSON] = []
    fresh: set[str] = set()
    for path in sorted(directory.glob("*.heartbeat.json")):
        beat = _read(path)
        if beat is None:
            continue
        updated = parse_ts(str(beat.get("updatedAt", "")))
        interval = beat.get("intervalSeconds")
        window = LIVE_INTERVALS * (interval if isinstance(interval, int | float) else 30)
        live = updated is not None and now - updated <= window
        shards.append(
            {
                "shard": beat.get("shard"),
                "live": live,
                "updatedAt": beat.get("updatedAt"),
                "ageSeconds": None if updated is None else max(0, now - updated),
                "host": beat.get("host"),
                "pid": beat.get("pid"),
                "loopCount": beat.get("loopCount"),
            }
        )
        if not live:
            continue
        seen = beat.get("lastReconciled")
        for loop_id, at in seen.items() if isinstance(seen, dict) else []:
            stamp = parse_ts(str(at))
            if stamp is not None and now - stamp <= window:
                fresh.add(loop_id)
    if not shards:
        return None
    enabled = [
        str(loop.get("loopId"))
        for loop in registry.get("loops", [])
        if isinstance(loop, dict) and loop.get("enabled") is not False
    ]
    missing = sorted(loop_id for loop_id in enabled if loop_id not in fresh)
    return {
        "shardCount": len(shards),
        "liveShardCount": sum(1 for s in shards if s["live"]),
        "shards": shards,
        "unreconciledLoopCount": len(missing),
        "unreconciledLoops": missing,
    }


def merged_shard_state(repo: Path) -> JSON | None:
    """One fleet state document from every shard's state file (``None``: no shard files).

    Results are concatenated in shard order; the counts, status and reason codes are
    recomputed by the fleet-reconcile reducer, so the document reads like a ``state.json``
    of the whole fleet. A dead shard's last results stay in (``fleet-status`` flags those
    loops as unreconciled through the ``shards`` section).
    """
    from ops_manager.reducers.fleet_reconcile import FleetExecution, fleet_state

    directory = shards_dir(FleetPaths.for_repo(repo))
    states = [
        state
        for path in sorted(directory.glob("*.state.json"))
        if (state := _read(path)) is not None and isinstance(state.get("results"), list)
    ]
    if not states:
        return None
    results = [r for state in states for r in state["results"] if isinstance(r, dict)]
    if not results:
        return None
    started = [t for s in states if (t := parse_ts(str(s.get("startedAt", "")))) is not None]
    finished = [t for s in states if (t := parse_ts(str(s.get("updatedAt", "")))) is not None]
    merged = fleet_state(
        results,
        fleet_id=str(states[0].get("fleetId") or "default"),
        trace_id=str(states[-1].get("traceId") or ""),
        started=min(started, default=0),
        finished=max(finished, default=0),
        execution=FleetExecution(
            max_parallel=0, deterministic_order=False, from_start=False, max_events=0
        ),
    )
    merged["mergedFromShards"] = len(states)
    return merged


__all__ = [
    "LIVE_INTERVALS",
    "Shard",
    "merged_shard_state",
    "owner",
    "shard_section",
    "shards_dir",
    "write_shard_files",
]
