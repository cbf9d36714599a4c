#!/usr/bin/env python3
"""Load benchmark of the sprite service (``ops-manager sprite-service``) on loopback.

Not a test: run it by hand from the repo root, with the project's venv::

    .venv/bin/python bench/service.py                      # 8 clients, 10 s, ~1k events
    .venv/bin/python bench/service.py --clients 16 --seconds 20 --events 5000
    .venv/bin/python bench/service.py --only events-tail     # one endpoint alone

It builds a runtime repo with about ``--events`` realistic events, starts ONE real service
process on 127.0.0.1 (free port, random token, access log off), and runs ``--clients``
threads for ``--seconds``; each thread cycles through the endpoints:

- ``snapshot``: ``GET /ops/snapshot?loopId=`` (hashes the whole event log: sha256 + line
  count, as the contract's artifactRef requires);
- ``events-tail``: ``GET /ops/events?cursor=<total-10>`` (what a reconcile poller asks for:
  the last 10 events);
- ``events-all``: ``GET /ops/events?cursor=0&maxEvents=0`` (the whole log in one answer).

It prints, per endpoint and in total: requests, requests/s, p50 / p99 latency in ms, errors
(non-200 answers or connection failures). The last stdout line is one JSON object with every
figure. The load is bounded (time and client count) and only ever targets 127.0.0.1; the
service is stopped (SIGTERM) at the end, also on Ctrl-C. Clients and server share the
machine's cores, so the figures are a floor for a service whose clients run elsewhere.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from tests.runtime_fixtures import make_runtime_repo, realistic_run_events  # noqa: E402
from tests.service_process import ServiceProcess  # noqa: E402

LOOP = "bench-loop"
MAX_CLIENTS = 64
MAX_SECONDS = 120


def build_repo(root: Path, events: int) -> tuple[Path, int]:
    """A runtime repo with about ``events`` events (one run, many iterations)."""
    per_iteration = len(realistic_run_events(loop_id=LOOP, iterations=2)) // 2
    iterations = max(1, round(events / max(per_iteration, 1)))
    evs = realistic_run_events(loop_id=LOOP, iterations=iterations, outcome="died")
    repo = make_runtime_repo(root / "repo", loop_id=LOOP, events=evs).resolve()
    return repo, len(evs)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``values`` non-empty)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p * (len(ordered) - 1))))
    return ordered[index]


def run(clients: int, seconds: float, events: int, only: str | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the figures (also printed)."""
    tmp = Path(tempfile.mkdtemp(prefix="ops-bench-svc-"))
    try:
        repo, total = build_repo(tmp, events)
        size = (repo / ".superloop/loops" / LOOP / "events.jsonl").stat().st_size
        token = secrets.token_hex(24)
        endpoints = {
            "snapshot": f"/ops/snapshot?loopId={LOOP}",
            "events-tail": f"/ops/events?loopId={LOOP}&cursor={max(total - 10, 0)}&maxEvents=0",
            "events-all": f"/ops/events?loopId={LOOP}&cursor=0&maxEvents=0",
        }
        names = [only] if only else list(endpoints)
        latencies: dict[str, list[float]] = {name: [] for name in names}
        errors: dict[str, int] = dict.fromkeys(names, 0)
        lock = threading.Lock()
        with ServiceProcess(repo, token=token, args=["--quiet"]).running() as service:
            headers = {"Authorization": f"Bearer {token}"}
            stop_at = time.monotonic() + seconds
            start_gate = threading.Barrier(clients)

            def client(index: int) -> None:
                session = requests.Session()
                mine: dict[str, list[float]] = {name: [] for name in names}
                failed: dict[str, int] = dict.fromkeys(names, 0)
                turn = index
                start_gate.wait()
                while time.monotonic() < stop_at:
                    name = names[turn % len(names)]
                    turn += 1
                    began = time.perf_counter()
                    try:
                        response = session.get(
                            service.url + endpoints[name], headers=headers, timeout=30
                        )
                        response.content  # noqa: B018 - read the whole body
                        ok = response.status_code == 200
                    except requests.RequestException:
                        ok = False
                    elapsed = time.perf_counter() - began
                    if ok:
                        mine[name].append(elapsed)
                    else:
                        failed[name] += 1
                session.close()
                with lock:
                    for name in names:
                        latencies[name].extend(mine[name])
                        errors[name] += failed[name]

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            began = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(seconds + 60)
            wall = time.monotonic() - began
        figures: dict[str, Any] = {
            "clients": clients,
            "seconds": round(wall, 2),
            "events": total,
            "eventsBytes": size,
            "endpoints": {},
        }
        all_lat: list[float] = []
        for name in names:
            lat = latencies[name]
            all_lat.extend(lat)
            figures["endpoints"][name] = {
                "requests": len(lat),
                "rps": round(len(lat) / wall, 1),
                "p50Ms": round(percentile(lat, 0.5) * 1000, 2) if lat else None,
                "p99Ms": round(percentile(lat, 0.99) * 1000, 2) if lat else None,
                "meanMs": round(statistics.fmean(lat) * 1000, 2) if lat else None,
                "errors": errors[name],
            }
        figures["total"] = {
            "requests": len(all_lat),
            "rps": round(len(all_lat) / wall, 1),
            "p50Ms": round(percentile(all_lat, 0.5) * 1000, 2) if all_lat else None,
            "p99Ms": round(percentile(all_lat, 0.99) * 1000, 2) if all_lat else None,
            "errors": sum(errors.values()),
        }
        return figures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", type=int, default=8, help=f"client threads (max {MAX_CLIENTS})"
    )
    parser.add_argument("--seconds", type=float, default=10, help=f"duration (max {MAX_SECONDS})")
    parser.add_argument("--events", type=int, default=1000, help="approximate events in the log")
    parser.add_argument(
        "--only",
        choices=("snapshot", "events-tail", "events-all"),
        help="load one endpoint only (default: cycle through all three)",
    )
    args = parser.parse_args()
    clients = max(1, min(args.clients, MAX_CLIENTS))
    seconds = max(1.0, min(args.seconds, MAX_SECONDS))
    figures = run(clients, seconds, max(10, args.events), args.only)
    print(
        f"sprite service on 127.0.0.1: {figures['clients']} clients x {figures['seconds']} s, "
        f"{figures['events']} events ({figures['eventsBytes']} bytes)"
    )
    print(
        f"{'endpoint':<12} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    rows = [*figures["endpoints"].items(), ("total", figures["total"])]
    for name, f in rows:
        print(
            f"{name:<12} {f['requests']:>9} {f['rps']:>8} {f['p50Ms']!s:>8} "
            f"{f['p99Ms']!s:>8} {f['errors']:>7}"
        )
    print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
