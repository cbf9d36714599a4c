#!/usr/bin/env python3
"""Benchmark of ``fleet-reconcile`` over real sprite services (DESIGN "Beyond one machine").

Not a test: run it by hand from the repo root, with the project's venv::

    .venv/bin/python bench/fleet.py              # full: L = 100, 1k, 10k (~10 min on 2 cores)
    .venv/bin/python bench/fleet.py --quick      # L = 100, 1k (~2 min)
    .venv/bin/python bench/fleet.py --profile    # only: cProfile of one pass (hot spots)
    .venv/bin/python bench/fleet.py | tail -n 1 > fleet-bench.json   # all figures as JSON

Setup: K (``--services``, default 4) real ``ops-manager sprite-service`` processes on
127.0.0.1 (free ports, random token, access log off), each serving its own runtime repo that
holds 1/K of the loops (the service maps ``loopId`` to ``.superloop/loops/<id>/`` in its repo,
so one repo holds many loops). Every loop is small: a ``run-summary.json`` and a few events
(``--events``, default 3). The manager side is a separate repo per fleet size with a registry
of L loops, all ``transport: sprite_service``, spread round-robin over the services, the
token read from ``service.tokenEnv``.

Measurements (each in a fresh child process, so its peak RSS is its own ``VmHWM``):

1. size sweep at ``--max-parallel`` P (default 8): for L in 100 / 1,000 / 10,000:
   a cold pass (no manager state yet: every loop creates its artifacts), a warm pass (the
   steady state of a periodic fleet reconcile: every loop already known, no new events),
   both through the engine in process (:func:`fleet_reconcile`), then one warm pass through
   the CLI (``ops-manager fleet-reconcile`` in a child interpreter, startup included);
2. parallelism sweep at L = 1,000: warm passes at max-parallel 1, 2, 4, 8, 16, 32;
3. at L = 1,000 and P, one warm pass with alert dispatch off (``OPS_MANAGER_ALERTS_ENABLED=
   false``), to show what the default per-loop dispatch costs;
4. the floor, in the same run: the same two GETs per loop (snapshot, events after the warm
   cursor) over bare ``http.client`` keep-alive connections from P threads, no manager work
   (``floor bare http`` rows: after each size at P, and at L = 1,000 for P = 1, 2, 4).

Reported per run: wall seconds (inside the child, around the engine call; the CLI row is
the whole child process), loops/s, ms per loop, peak RSS (MiB), and the fleet's success /
failed counts (every loop must succeed, or the row is marked). The summary checks the
targets: 1,000 loops over sprite_service in under 30 s, and time linear in L (seconds per
loop at 10k within 1.5x of that at 1k), and issue 14's: the best warm pass at 1,000 loops in
at most 5 s, printed with its ratio to the fastest bare-HTTP floor.

The services are always stopped (SIGTERM, SIGKILL after a timeout), also on Ctrl-C, and the
temp dir is removed at the end. Everything binds to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.service_process import ServiceProcess  # noqa: E402

TOKEN_ENV = "OPS_FLEET_BENCH_TOKEN"
#: events are stamped long ago: every pass sees the same (stale) health, so cold and warm
#: passes compare like with like (no health transitions halfway through the bench)
BASE_EPOCH = 1_771_754_400  # 2026-02-22T10:00:00Z
#: the longest any one child may run before it is killed
CHILD_TIMEOUT = 1800
PARALLEL_SWEEP = (1, 2, 4, 8, 16, 32)


# --------------------------------------------------------------------------------------------
# fixtures: runtime repos (served) and manager repos (registry)
# --------------------------------------------------------------------------------------------
def _ts(offset: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(BASE_EPOCH + offset))


def loop_name(i: int) -> str:
    return f"loop-{i:05d}"


def write_runtime_loop(repo: Path, loop_id: str, events: int) -> None:
    """One small loop: ``run-summary.json`` + ``events``-many events (``loop_start`` first)."""
    ldir = repo / ".superloop" / "loops" / loop_id
    ldir.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "timestamp": _ts(0),
            "event": "loop_start",
            "loop_id": loop_id,
            "run_id": "run-1",
            "iteration": 0,
        }
    ]
    for n in range(1, events):
        name = "iteration_start" if n == 1 else "role_end"
        row: dict[str, Any] = {
            "timestamp": _ts(n),
            "event": name,
            "loop_id": loop_id,
            "run_id": "run-1",
            "iteration": 1,
        }
        if name == "role_end":
            row["role"] = "planner"
            row["data"] = {"exit_code": 0, "status": "ok"}
        rows.append(row)
    (ldir / "events.jsonl").write_text(
        "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
    )
    summary = {
        "version": 1,
        "loop_id": loop_id,
        "updated_at": _ts(events),
        "entries": [
            {
                "run_id": "run-1",
                "iteration": 1,
                "started_at": _ts(1),
                "ended_at": _ts(events),
                "gates": {"tests": "passed", "checklist": "ok"},
                "completion_ok": False,
            }
        ],
    }
    (ldir / "run-summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def build_runtime_repos(work: Path, services: int, total: int, events: int) -> list[Path]:
    """K runtime repos; loop i lives in repo ``i % K``."""
    repos = [work / f"sprite-{k}" for k in range(services)]
    for k, repo in enumerate(repos):
        (repo / ".superloop").mkdir(parents=True)
        state = {"active": True, "loop_index": 0, "iteration": 1, "updated_at": _ts(events)}
        state["current_loop_id"] = loop_name(k)
        (repo / ".superloop" / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    for i in range(total):
        write_runtime_loop(repos[i % services], loop_name(i), events)
    return repos


def build_manager(work: Path, size: int, urls: list[str]) -> Path:
    """A manager repo whose registry holds ``size`` sprite_service loops (round-robin)."""
    repo = work / f"manager-{size}"
    registry = repo / ".superloop" / "ops-manager" / "fleet" / "registry.v1.json"
    registry.parent.mkdir(parents=True)
    loops = [
        {
            "loopId": loop_name(i),
            "transport": "sprite_service",
            "sprite": {"id": f"sprite-{i % len(urls)}"},
            "service": {"baseUrl": urls[i % len(urls)], "tokenEnv": TOKEN_ENV},
        }
        for i in range(size)
    ]
    registry.write_text(
        json.dumps({"schemaVersion": "v1", "fleetId": f"bench-{size}", "loops": loops})
    )
    return repo


def reset_manager(repo: Path) -> None:
    """Remove every per-loop artifact and the fleet outputs; keep the registry (cold start)."""
    ops = repo / ".superloop" / "ops-manager"
    for child in ops.iterdir():
        if child.name != "fleet":
            shutil.rmtree(child)
    fleet = ops / "fleet"
    for child in fleet.iterdir():
        if child.name != "registry.v1.json":
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()


# --------------------------------------------------------------------------------------------
# children: one measured run each
# --------------------------------------------------------------------------------------------
_VMHWM = r"""
def _vmhwm():
    try:
        with open("/proc/self/status") as fh:
            for row in fh:
                if row.startswith("VmHWM:"):
                    return int(row.split()[1])
    except OSError:
        pass
    return None
"""

#: the engine in process: timed around the fleet_reconcile() call
_ENGINE_CHILD = (
    _VMHWM
    + r"""
import json, os, sys, time
from pathlib import Path
from ops_manager.engine.fleet_reconcile import FleetReconcileSettings, fleet_reconcile
repo, parallel = sys.argv[1], int(sys.argv[2])
c0 = os.times()
t0 = time.perf_counter()
result = fleet_reconcile(
    FleetReconcileSettings(repo=Path(repo), max_parallel=parallel, trace_id="bench")
)
seconds = time.perf_counter() - t0
c1 = os.times()
s = result.state
print(json.dumps({
    "seconds": seconds,
    "cpu_user_s": c1.user - c0.user,
    "cpu_sys_s": c1.system - c0.system,
    "loops": s["loopCount"],
    "success": s["successCount"],
    "failed": s["failedCount"],
    "peak_rss_kb": _vmhwm(),
    "first_failure": next((r for r in s["results"] if r["status"] != "success"), None),
}))
"""
)

#: the CLI: exactly what `ops-manager fleet-reconcile` runs; peak RSS on stderr's last line
_CLI_CHILD = (
    _VMHWM
    + r"""
import sys
from ops_manager.cli import main
code = main(["fleet-reconcile", "--repo", sys.argv[1], "--max-parallel", sys.argv[2], "--quiet"])
sys.stdout.flush()
sys.stderr.write("\nVMHWM %s\n" % _vmhwm())
sys.exit(code)
"""
)


#: the floor: the same two GETs per loop (snapshot, then events after the warm cursor) over
#: bare ``http.client`` keep-alive connections, ``P`` threads, no manager work at all
_FLOOR_CHILD = (
    _VMHWM
    + r"""
import http.client, json, os, sys, threading, time
from urllib.parse import urlsplit
urls, size, parallel = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
events, token = int(sys.argv[4]), os.environ[sys.argv[5]]
headers = {"Accept": "application/json", "Authorization": "Bearer " + token,
           "X-Ops-Token": token, "Connection": "keep-alive"}
failed = []
def work(indices):
    conns = {}
    for i in indices:
        url = urls[i % len(urls)]
        conn = conns.get(url)
        if conn is None:
            parts = urlsplit(url)
            conn = conns[url] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        loop = "loop-%05d" % i
        for path in ("/ops/snapshot?loopId=" + loop,
                     "/ops/events?loopId=%s&cursor=%d&maxEvents=2000" % (loop, events)):
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                failed.append(i)
c0 = os.times()
t0 = time.perf_counter()
threads = [threading.Thread(target=work, args=(range(k, size, parallel),)) for k in range(parallel)]
for t in threads: t.start()
for t in threads: t.join()
seconds = time.perf_counter() - t0
c1 = os.times()
print(json.dumps({"seconds": seconds, "cpu_user_s": c1.user - c0.user,
                  "cpu_sys_s": c1.system - c0.system, "loops": size,
                  "success": size - len(set(failed)), "failed": len(set(failed)),
                  "peak_rss_kb": _vmhwm()}))
"""
)


def child_env(work: Path, token: str, inherit: bool, alerts: bool = True) -> dict[str, str]:
    """The children's environment: the token under ``service.tokenEnv``; by default a
    bytecode cache outside the source tree (as in bench/reconcile.py)."""
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("OPS_MANAGER_"):
            del env[key]
    if not inherit:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    env[TOKEN_ENV] = token
    if not alerts:
        env["OPS_MANAGER_ALERTS_ENABLED"] = "false"
    return env


def _run_child(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(ROOT)
    )
    try:
        out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise SystemExit(f"child timed out after {CHILD_TIMEOUT}s: {argv[:4]}") from None
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


#: pids of the running sprite services (their CPU time is read around every run)
SERVICE_PIDS: list[int] = []


def services_cpu_seconds() -> float:
    """User + system CPU seconds used so far by the sprite service processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in SERVICE_PIDS:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / ticks


def run_engine(repo: Path, parallel: int, env: dict[str, str]) -> dict[str, Any]:
    before = services_cpu_seconds()
    proc = _run_child([sys.executable, "-c", _ENGINE_CHILD, str(repo), str(parallel)], env)
    if proc.returncode != 0:
        raise SystemExit(f"engine child failed: {proc.stderr.decode()[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    out["services_cpu_s"] = services_cpu_seconds() - before
    return out


def run_floor(
    urls: list[str], size: int, parallel: int, events: int, env: dict[str, str]
) -> dict[str, Any]:
    """The bare-HTTP floor of a warm pass over the same services (see ``_FLOOR_CHILD``)."""
    before = services_cpu_seconds()
    argv = [sys.executable, "-c", _FLOOR_CHILD, ",".join(urls), str(size), str(parallel)]
    proc = _run_child([*argv, str(events), TOKEN_ENV], env)
    if proc.returncode != 0:
        raise SystemExit(f"floor child failed: {proc.stderr.decode()[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    out["services_cpu_s"] = services_cpu_seconds() - before
    return out


def run_cli(repo: Path, parallel: int, env: dict[str, str]) -> dict[str, Any]:
    before = services_cpu_seconds()
    t0 = time.perf_counter()
    proc = _run_child([sys.executable, "-c", _CLI_CHILD, str(repo), str(parallel)], env)
    seconds = time.perf_counter() - t0
    services_cpu = services_cpu_seconds() - before
    if proc.returncode != 0:
        raise SystemExit(f"CLI child failed: {proc.stderr.decode()[-3000:]}")
    state = json.loads(proc.stdout)
    peak: int | None = None
    for line in proc.stderr.decode().splitlines():
        if line.startswith("VMHWM "):
            value = line.split()[1]
            peak = int(value) if value.isdigit() else None
    return {
        "seconds": seconds,
        "services_cpu_s": services_cpu,
        "loops": state["loopCount"],
        "success": state["successCount"],
        "failed": state["failedCount"],
        "peak_rss_kb": peak,
        "first_failure": next((r for r in state["results"] if r["status"] != "success"), None),
    }


# --------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------
def _row(label: str, size: int, parallel: int, out: dict[str, Any]) -> dict[str, Any]:
    seconds = float(out["seconds"])
    row = {
        "run": label,
        "loops": size,
        "max_parallel": parallel,
        "seconds": round(seconds, 3),
        "loops_per_s": round(size / seconds, 1) if seconds > 0 else None,
        "ms_per_loop": round(1000 * seconds / size, 2),
        "peak_rss_mib": round(out["peak_rss_kb"] / 1024, 1) if out.get("peak_rss_kb") else None,
        "success": out["success"],
        "failed": out["failed"],
        "manager_cpu_s": (
            round(out["cpu_user_s"] + out["cpu_sys_s"], 2) if "cpu_user_s" in out else None
        ),
        "manager_cpu_sys_s": round(out["cpu_sys_s"], 2) if "cpu_sys_s" in out else None,
        "services_cpu_s": round(out.get("services_cpu_s", 0.0), 2),
    }
    cpu = (
        f" cpu mgr {row['manager_cpu_s']:.1f}s svc {row['services_cpu_s']:.1f}s"
        if row["manager_cpu_s"] is not None
        else f" cpu svc {row['services_cpu_s']:.1f}s"
    )
    flag = "" if out["failed"] == 0 and out["success"] == size else "  <-- NOT ALL SUCCEEDED"
    print(
        f"  {label:<16} L={size:<6} P={parallel:<3} {row['seconds']:>8.2f} s "
        f"{row['loops_per_s']:>7} loops/s {row['ms_per_loop']:>7.2f} ms/loop "
        f"peak {row['peak_rss_mib']} MiB{cpu}  ok {out['success']}/{size}{flag}",
        flush=True,
    )
    if flag and out.get("first_failure"):
        print(f"    first failure: {json.dumps(out['first_failure'])[:600]}", flush=True)
    return row


# --------------------------------------------------------------------------------------------
# profile mode
# --------------------------------------------------------------------------------------------
def profile(work: Path, services: list[ServiceProcess], token: str, size: int) -> str:
    """cProfile of one warm in-process pass (max-parallel 1, so the profile sees the work)."""
    from ops_manager.engine.fleet_reconcile import FleetReconcileSettings, fleet_reconcile

    repo = build_manager(work, size, [s.url for s in services])
    os.environ[TOKEN_ENV] = token
    settings = FleetReconcileSettings(repo=repo, max_parallel=1, trace_id="bench")
    fleet_reconcile(settings)  # cold pass: creates the per-loop state
    prof = cProfile.Profile()
    prof.enable()
    fleet_reconcile(settings)
    prof.disable()
    buf = io.StringIO()
    buf.write(f"=== cProfile: one warm in-process fleet pass, {size} loops, max-parallel 1 ===\n")
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="L = 100 and 1,000 only")
    parser.add_argument("--services", type=int, default=4, help="sprite services (default 4)")
    parser.add_argument("--max-parallel", type=int, default=8, help="for the size sweep")
    parser.add_argument("--events", type=int, default=3, help="events per loop (default 3)")
    parser.add_argument("--sizes", help="comma-separated fleet sizes (overrides the mode)")
    parser.add_argument("--profile", action="store_true", help="only a cProfile of one pass")
    parser.add_argument("--tmp", help="parent dir of the temp dir (default $TMPDIR)")
    parser.add_argument("--inherit-env", action="store_true", help="children use your env as is")
    args = parser.parse_args()
    if not 1 <= args.services <= 32:
        parser.error("--services must be between 1 and 32")
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else [100, 1000]
        if args.quick
        else [100, 1000, 10_000]
    )
    sweep_size = 1000 if 1000 in sizes else sizes[-1]
    work = Path(tempfile.mkdtemp(prefix="ops-bench-fleet-", dir=args.tmp))
    token = secrets.token_hex(24)
    services: list[ServiceProcess] = []
    figures: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count()},
        "services": args.services,
        "events_per_loop": args.events,
        "sizes": sizes,
        "runs": [],
    }
    try:
        total = 200 if args.profile else max(sizes)
        t0 = time.perf_counter()
        repos = build_runtime_repos(work, args.services, total, args.events)
        print(
            f"built {total} loops in {len(repos)} runtime repos in "
            f"{time.perf_counter() - t0:.1f}s; starting {args.services} sprite services",
            flush=True,
        )
        for repo in repos:
            services.append(ServiceProcess(repo, token=token, args=["--quiet"]).start())
            assert services[-1].proc is not None
            SERVICE_PIDS.append(services[-1].proc.pid)
        urls = [s.url for s in services]
        print(f"services: {', '.join(urls)}", flush=True)
        if args.profile:
            print(profile(work, services, token, total))
            return 0

        env = child_env(work, token, args.inherit_env)
        p = args.max_parallel
        print(f"\n== size sweep (max-parallel {p}) ==", flush=True)
        for size in sizes:
            repo = build_manager(work, size, urls)
            figures["runs"].append(_row("engine cold", size, p, run_engine(repo, p, env)))
            figures["runs"].append(_row("engine warm", size, p, run_engine(repo, p, env)))
            figures["runs"].append(_row("cli warm", size, p, run_cli(repo, p, env)))
            floor = run_floor(urls, size, p, args.events, env)
            figures["runs"].append(_row("floor bare http", size, p, floor))

        print(f"\n== parallelism sweep (L = {sweep_size}, warm) ==", flush=True)
        repo = work / f"manager-{sweep_size}"
        for parallel in PARALLEL_SWEEP:
            figures["runs"].append(
                _row("engine warm", sweep_size, parallel, run_engine(repo, parallel, env))
            )
        for parallel in (1, 2, 4):
            floor = run_floor(urls, sweep_size, parallel, args.events, env)
            figures["runs"].append(_row("floor bare http", sweep_size, parallel, floor))
        print(f"\n== alerts off (L = {sweep_size}, P = {p}, warm) ==", flush=True)
        quiet_env = child_env(work, token, args.inherit_env, alerts=False)
        figures["runs"].append(
            _row("engine warm -alerts", sweep_size, p, run_engine(repo, p, quiet_env))
        )
        print(f"\n== cold at P = 16 (L = {sweep_size}) ==", flush=True)
        reset_manager(repo)
        figures["runs"].append(_row("engine cold", sweep_size, 16, run_engine(repo, 16, env)))

        summary = summarize(figures["runs"], p)
        figures["summary"] = summary
        print("\n== summary ==")
        for line in summary["lines"]:
            print(f"  {line}")
        print(json.dumps(figures))
        return 0
    finally:
        for service in services:
            service.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def summarize(runs: list[dict[str, Any]], parallel: int) -> dict[str, Any]:
    """Targets: 1k loops < 30 s; seconds per loop at 10k within 1.5x of 1k (linear)."""

    def pick(label: str, size: int, p: int) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in runs
                if r["run"] == label and r["loops"] == size and r["max_parallel"] == p
            ),
            None,
        )

    lines: list[str] = []
    out: dict[str, Any] = {}
    for label in ("engine cold", "engine warm", "cli warm"):
        row = pick(label, 1000, parallel)
        if row is not None:
            met = row["seconds"] < 30 and row["failed"] == 0
            out[f"1k_{label.replace(' ', '_')}_s"] = row["seconds"]
            lines.append(
                f"1,000 loops, {label}: {row['seconds']:.1f} s (target < 30 s): "
                f"{'MET' if met else 'NOT MET'}"
            )
    for label in ("engine cold", "engine warm"):
        small, big = pick(label, 1000, parallel), pick(label, 10_000, parallel)
        if small and big:
            ratio = big["ms_per_loop"] / small["ms_per_loop"]
            out[f"linearity_{label.replace(' ', '_')}"] = round(ratio, 2)
            lines.append(
                f"{label}: ms/loop at 10k / at 1k = {ratio:.2f} (linear if <= 1.5): "
                f"{'MET' if ratio <= 1.5 else 'NOT MET'}"
            )
    sweep = [r for r in runs if r["run"] == "engine warm" and r["loops"] == 1000]
    if sweep:
        best = max(sweep, key=lambda r: r["loops_per_s"] or 0)
        out["best_parallel_at_1k"] = best["max_parallel"]
        lines.append(
            f"best max-parallel at 1k: {best['max_parallel']} ({best['loops_per_s']} loops/s)"
        )
        out["1k_best_warm_s"] = best["seconds"]
        lines.append(
            f"1,000 loops, best warm pass: {best['seconds']:.1f} s at max-parallel "
            f"{best['max_parallel']} (issue 14 target <= 5 s): "
            f"{'MET' if best['seconds'] <= 5 else 'NOT MET'}"
        )
        floors = [r for r in runs if r["run"] == "floor bare http" and r["loops"] == 1000]
        if floors:
            floor = min(floors, key=lambda r: r["seconds"])
            ratio = best["seconds"] / floor["seconds"]
            out["1k_best_warm_over_floor"] = round(ratio, 2)
            lines.append(
                f"best warm pass / bare-HTTP floor ({floor['seconds']:.2f} s at P="
                f"{floor['max_parallel']}, same services, same run): {ratio:.2f}x"
            )
    out["lines"] = lines
    return out


if __name__ == "__main__":
    sys.exit(main())
