#!/usr/bin/env python3
"""Benchmark of ``ops-manager supervise`` ticks (issue 15). Not a test: run it by hand::

    .venv/bin/python bench/supervise.py            # quick (default): smaller sizes, ~3 min
    .venv/bin/python bench/supervise.py --full     # the issue's sizes (10k idle, 1k ticks)
    .venv/bin/python bench/supervise.py | tail -n 1 > supervise-bench.json

Everything runs through the engine's :class:`~ops_manager.engine.supervise.Supervisor` in this
process (what the CLI runs each tick), with alert dispatch off (``OPS_MANAGER_ALERTS_ENABLED=
false``: no sink to deliver to) and ``--max-parallel`` P (default 4). Measurements:

1. steady tick, local: L loops (1,000), every loop already known (one warm-up tick), then
   100 of them get 10 new events and one tick is timed;
2. idle tick, local: L loops (quick 2,000, full 10,000), nothing new, one tick timed after
   a warm-up;
3. sprite_service: L loops (quick 200, full 1,000) served by K real ``ops-manager
   sprite-service`` processes on 127.0.0.1 (bench/fleet.py's fixtures), a warm tick timed;
4. memory: RSS (``VmRSS``) after 10 ticks and after T ticks (quick 200, full 1,000) over 100
   idle local loops; the growth per 1,000 ticks is printed.

Wall-clock figures are printed, never asserted. The services are always stopped and the
temp dir removed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fleet import (  # noqa: E402
    TOKEN_ENV,
    _ts,
    build_manager,
    build_runtime_repos,
    loop_name,
    write_runtime_loop,
)
from ops_manager.engine.supervise import SuperviseSettings, Supervisor  # noqa: E402
from tests.service_process import ServiceProcess  # noqa: E402


def rss_mib() -> float:
    """Current resident set size of this process (``VmRSS``), MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def local_fleet(work: Path, name: str, size: int) -> Path:
    """One repo holding ``size`` local loops and a registry listing them."""
    repo = work / name
    (repo / ".superloop").mkdir(parents=True)
    state = {"active": True, "loop_index": 0, "iteration": 1, "updated_at": _ts(3)}
    state["current_loop_id"] = loop_name(0)
    (repo / ".superloop" / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    for i in range(size):
        write_runtime_loop(repo, loop_name(i), 3)
    registry = repo / ".superloop" / "ops-manager" / "fleet" / "registry.v1.json"
    registry.parent.mkdir(parents=True)
    loops = [{"loopId": loop_name(i)} for i in range(size)]
    registry.write_text(json.dumps({"schemaVersion": "v1", "fleetId": name, "loops": loops}))
    return repo


def append_events(repo: Path, loop_id: str, count: int, start: int) -> None:
    """``count`` new ``role_end`` events at the end of the loop's log."""
    path = repo / ".superloop" / "loops" / loop_id / "events.jsonl"
    with path.open("a") as fh:
        for n in range(count):
            row = {
                "timestamp": _ts(start + n),
                "event": "role_end",
                "loop_id": loop_id,
                "run_id": "run-1",
                "iteration": 1,
                "role": "planner",
                "data": {"exit_code": 0, "status": "ok"},
            }
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")


def supervisor(repo: Path, parallel: int, env: dict[str, str]) -> Supervisor:
    """A supervisor with a long interval (ticks are driven by hand) and a generous timeout."""
    settings = SuperviseSettings(repo=repo, interval=600, max_parallel=parallel, jitter=0)
    return Supervisor(settings, env=env)


def timed_tick(sup: Supervisor) -> tuple[float, dict[str, Any]]:
    """One tick; wall seconds and its summary."""
    t0 = time.perf_counter()
    summary = sup.tick()
    return time.perf_counter() - t0, summary


def _row(label: str, loops: int, seconds: float, summary: dict[str, Any]) -> dict[str, Any]:
    row = {
        "case": label,
        "loops": loops,
        "tick_s": round(seconds, 3),
        "ms_per_loop": round(1000 * seconds / max(loops, 1), 3),
        "succeeded": summary["succeeded"],
        "failed": summary["failed"],
        "rss_mib": round(rss_mib(), 1),
    }
    print(
        f"{label:<40} loops={loops:>6} tick={seconds:8.2f}s "
        f"({row['ms_per_loop']:.2f} ms/loop) ok={row['succeeded']} failed={row['failed']} "
        f"rss={row['rss_mib']} MiB",
        flush=True,
    )
    return row


def main() -> int:
    """Run the measurements and print a table, then one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes (slow)")
    parser.add_argument("--max-parallel", type=int, default=4)
    parser.add_argument("--services", type=int, default=2, help="sprite services (default 2)")
    parser.add_argument("--tmp", help="parent dir of the temp dir (default $TMPDIR)")
    args = parser.parse_args()
    steady, idle = 1000, (10_000 if args.full else 2000)
    sprite, ticks = (1000 if args.full else 200), (1000 if args.full else 200)
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_MANAGER_")}
    env["OPS_MANAGER_ALERTS_ENABLED"] = "false"
    env[TOKEN_ENV] = token
    work = Path(tempfile.mkdtemp(prefix="supervise-bench-", dir=args.tmp))
    rows: list[dict[str, Any]] = []
    services: list[ServiceProcess] = []
    p = args.max_parallel
    try:
        # 1. steady tick: 100 of 1,000 loops with 10 new events
        repo = local_fleet(work, "steady", steady)
        sup = supervisor(repo, p, env)
        rows.append(_row("local cold tick (first sight)", steady, *timed_tick(sup)))
        for i in range(100):
            append_events(repo, loop_name(i * (steady // 100)), 10, 100)
        rows.append(_row("local steady tick (100 x 10 new events)", steady, *timed_tick(sup)))
        rows.append(_row("local idle tick", steady, *timed_tick(sup)))
        del sup
        shutil.rmtree(repo)

        # 2. idle tick over many loops
        repo = local_fleet(work, "idle", idle)
        sup = supervisor(repo, p, env)
        timed_tick(sup)
        rows.append(_row("local idle tick (large fleet)", idle, *timed_tick(sup)))
        del sup
        shutil.rmtree(repo)

        # 3. sprite_service on loopback
        runtime = build_runtime_repos(work, args.services, sprite, 3)
        for served in runtime:
            services.append(ServiceProcess(served, token=token, args=["--quiet"]).start())
        manager = build_manager(work, sprite, [s.url for s in services])
        sup = supervisor(manager, p, env)
        rows.append(_row("sprite_service cold tick", sprite, *timed_tick(sup)))
        rows.append(_row("sprite_service warm tick", sprite, *timed_tick(sup)))
        del sup

        # 4. RSS across many ticks
        repo = local_fleet(work, "rss", 100)
        sup = supervisor(repo, p, env)
        for _ in range(10):
            sup.tick()
        after10 = rss_mib()
        for _ in range(ticks - 10):
            sup.tick()
        after_many = rss_mib()
        growth = (after_many - after10) * 1000 / max(ticks - 10, 1)
        print(
            f"RSS after 10 ticks {after10:.1f} MiB, after {ticks} ticks {after_many:.1f} MiB "
            f"(100 loops; {growth:+.2f} MiB per 1,000 ticks)",
            flush=True,
        )
        rows.append(
            {
                "case": "rss",
                "ticks": ticks,
                "rss_after_10_mib": round(after10, 1),
                "rss_after_many_mib": round(after_many, 1),
                "growth_mib_per_1000_ticks": round(growth, 2),
            }
        )
    finally:
        for service in services:
            service.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"maxParallel": p, "full": args.full, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
