#!/usr/bin/env python3
"""Benchmark of ``reconcile`` (DESIGN.md §3, "incremental by construction").

Not a test: run it by hand from the repo root, with the project's venv::

    .venv/bin/python bench/reconcile.py            # full: ~30 s on 2 cores, ~0.5 GB of temp disk
    .venv/bin/python bench/reconcile.py --quick    # smaller sizes: ~8 s
    .venv/bin/python bench/reconcile.py --profile  # only: cProfile, cold 100k + increments

What it measures (each figure is the median of several runs):

1. cold reconcile of 1k / 10k / 100k events (fresh copy of the repo, no ``OPS`` dir), in
   process (``reconcile()``) and through the CLI (``ops-manager reconcile`` as a subprocess),
   against a plain parse of the same file in the same run
   (``for line in open(f, 'rb'): json.loads(line)``). Target: in-process cold 100k <= 3x
   the plain parse.
2. incremental reconcile of 10 new events after 1k / 100k / 1M events of history (cold pass
   first, then: append 10 events, time the next pass), in process and through the CLI.
   Target: cost at 1M history <= 1.5x the cost at 1k.
3. peak RSS of a cold reconcile in a fresh child process at each size (the child's own
   ``VmHWM``; its ``ru_maxrss`` is reported too but is polluted by the spawning parent's RSS on
   Linux), next to a child that only imports the reconcile code and a control child that keeps
   every parsed event: memory must not grow with the log.

Everything happens under one temp dir that is removed at the end (also on Ctrl-C). The last
line of stdout is one JSON object with every figure (``tail -n 1`` it into a file).
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import functools
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ops_manager.engine.reconcile import ReconcileSettings, reconcile  # noqa: E402

LOOP = "bench"
ROLES = ("planner", "implementer", "tester", "reviewer")
ITERATIONS_PER_RUN = 18
#: seconds between two consecutive events inside a run (one run = one UTC hour)
EVENT_SPACING = 14
APPEND = 10
K = 1000


# --------------------------------------------------------------------------------------------
# realistic events, generated fast
# --------------------------------------------------------------------------------------------
_TS = "@@TS@@"
_RID = "@@RID@@"


def _run_template() -> list[dict[str, Any]]:
    """One Superloop run as event objects, with timestamp / run id placeholders."""
    d = f".superloop/loops/{LOOP}"
    evs: list[dict[str, Any]] = []

    def ev(name: str, iteration: int, role: str | None = None, **data: Any) -> None:
        obj: dict[str, Any] = {
            "timestamp": _TS,
            "event": name,
            "loop_id": LOOP,
            "run_id": _RID,
            "iteration": iteration,
        }
        if role:
            obj["role"] = role
        if data:
            obj["data"] = data
        evs.append(obj)

    ev(
        "loop_start",
        0,
        spec_file=f"{d}/spec.md",
        max_iterations=ITERATIONS_PER_RUN + 2,
        tests_mode="on_promise",
        test_commands=["bats tests", "python -m pytest -q tests/unit", "npm run lint --silent"],
        checklists=[f"{d}/checklist.md", f"{d}/release-checklist.md"],
        prerequisites={
            "enabled": "true",
            "require_on_completion": "false",
            "file": f"{d}/prereqs.json",
        },
        delegation={
            "enabled": "false",
            "dispatch_mode": "serial",
            "wake_policy": "on_wave_complete",
            "failure_policy": "warn_and_continue",
            "max_children": 1,
            "max_parallel": 1,
            "max_waves": 1,
            "child_timeout_seconds": 300,
            "retry_limit": 0,
            "retry_backoff_seconds": 0,
            "retry_backoff_max_seconds": 30,
        },
        rlms={"enabled": "false", "mode": "auto", "max_depth": 2, "token_budget": 200000},
        lifecycle={
            "feature_prefix": "feat/",
            "main_ref": "origin/main",
            "no_fetch": "false",
            "strict": "false",
            "block_on_failure": "true",
        },
        git={
            "commit_strategy": "per_run",
            "commit_message": {
                "authoring": "llm",
                "author_role": "implementer",
                "timeout_seconds": 60,
            },
        },
        roles={
            r: {"runner": "codex", "model": "gpt-5-codex", "timeout_seconds": 1800} for r in ROLES
        },
        usage_tracking={"enabled": "true", "file": f"{d}/usage.jsonl"},
    )
    for it in range(1, ITERATIONS_PER_RUN + 1):
        idir = f"{d}/logs/iter-{it}"
        ev("iteration_start", it, started_at=_TS, iteration_dir=idir)
        for role in ROLES:
            ev(
                "role_start",
                it,
                role,
                prompt_file=f"{d}/prompts/{role}.md",
                log_file=f"{idir}/{role}.log",
                last_message_file=f"{d}/last_messages/{role}.txt",
                runner="codex",
                model="gpt-5-codex",
                timeout_seconds=1800,
            )
            ev(
                "role_end",
                it,
                role,
                log_file=f"{idir}/{role}.log",
                last_message_file=f"{d}/last_messages/{role}.txt",
                exit_code=0,
                status="ok",
                duration_seconds=97 + 13 * it,
                usage={"input_tokens": 18234 + it, "output_tokens": 2211, "cached_tokens": 9000},
            )
        matched = it % 6 == 0
        ev(
            "promise_checked",
            it,
            expected="SUPERLOOP_COMPLETE",
            text="SUPERLOOP_COMPLETE" if matched else None,
            matched=matched,
            source_file=f"{d}/last_messages/implementer.txt",
        )
        ev(
            "tests_start",
            it,
            commands=["bats tests", "python -m pytest -q tests/unit"],
            mode="on_promise",
        )
        ev(
            "tests_end",
            it,
            status="passed" if it % 3 else "failed",
            exit_code=0 if it % 3 else 1,
            duration_seconds=41,
            report_file=f"{d}/test-report.md",
            output_file=f"{idir}/tests.log",
        )
        ev(
            "gates_evaluated",
            it,
            gates={
                "tests": "passed" if it % 3 else "failed",
                "validation": "skipped",
                "prerequisites": "ok",
                "checklist": "ok",
                "evidence": "skipped",
                "lifecycle": "skipped",
                "approval": "skipped",
            },
            completion_ok=False,
            gate_summary_file=f"{d}/gate-summary.txt",
        )
        ev(
            "iteration_end",
            it,
            ended_at=_TS,
            completion_ok=False,
            promise_matched=matched,
            stuck={"streak": 0, "threshold": 3},
            changed_files=["src/app/main.py", "src/app/handlers.py", "tests/unit/test_handlers.py"],
            evidence_file=f"{d}/evidence.json",
        )
    ev("loop_stop", ITERATIONS_PER_RUN, reason="max_iterations", iterations=ITERATIONS_PER_RUN)
    return evs


class EventStream:
    """An endless, deterministic stream of event lines: one run per UTC hour.

    Each run is a precomputed template whose lines are split around the timestamp and the run
    id; producing a line is a few byte concatenations, so 1M lines take about a second.
    ``next_lines(n)`` continues exactly where the previous call stopped (mid-run included).
    """

    def __init__(self, total_hint: int) -> None:
        rows = _run_template()
        self.per_run = len(rows)
        assert self.per_run * EVENT_SPACING < 3600
        # each line split around its timestamp placeholder(s) (data.started_at / ended_at reuse
        # the line's own timestamp); the run id is substituted once per chunk
        self._parts: list[list[bytes]] = [
            (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
            .encode()
            .split(_TS.encode())
            for obj in rows
        ]
        self._mmss = [
            f"{(i * EVENT_SPACING) // 60:02d}:{(i * EVENT_SPACING) % 60:02d}Z".encode()
            for i in range(self.per_run)
        ]
        runs_needed = total_hint // self.per_run + 2
        now_hour = int(time.time()) // 3600 * 3600
        self.base = now_hour - runs_needed * 3600
        self.run = 0
        self.index = 0
        self.lines_emitted = 0
        self.last_epoch = self.base

    def _hour(self, run: int) -> tuple[bytes, bytes]:
        hour = time.strftime("%Y-%m-%dT%H:", time.gmtime(self.base + run * 3600)).encode()
        return hour, hour + b"00:00Z"

    def _lines(self, run: int, start: int, stop: int) -> bytes:
        hour, rid = self._hour(run)
        mmss, parts = self._mmss, self._parts
        block = b"".join([(hour + mmss[i]).join(parts[i]) for i in range(start, stop)])
        return block.replace(_RID.encode(), rid)

    def next_lines(self, n: int) -> bytes:
        chunks: list[bytes] = []
        while n > 0:
            take = min(n, self.per_run - self.index)
            chunks.append(self._lines(self.run, self.index, self.index + take))
            self.last_epoch = self.base + self.run * 3600 + (self.index + take - 1) * EVENT_SPACING
            self.index += take
            self.lines_emitted += take
            n -= take
            if self.index == self.per_run:
                self.run += 1
                self.index = 0
        return b"".join(chunks)

    def write(self, path: Path, n: int) -> None:
        with open(path, "ab") as handle:
            while n > 0:
                take = min(n, 50 * self.per_run)
                handle.write(self.next_lines(take))
                n -= take


def _pretty(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _fmt_ts(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def make_repo(root: Path, n_events: int) -> tuple[Path, EventStream]:
    """A runtime repo under ``root`` whose events.jsonl holds ``n_events`` lines."""
    stream = EventStream(n_events)
    loop_dir = root / ".superloop" / "loops" / LOOP
    loop_dir.mkdir(parents=True)
    stream.write(loop_dir / "events.jsonl", n_events)
    refresh_runtime_files(root, stream)
    return root, stream


def refresh_runtime_files(root: Path, stream: EventStream) -> None:
    """state.json / run-summary.json / heartbeat.v1.json matching the stream's position."""
    loop_dir = root / ".superloop" / "loops" / LOOP
    run_start = stream.base + stream.run * 3600
    rid = _fmt_ts(run_start)
    iteration = max(1, min(ITERATIONS_PER_RUN, stream.index // 14))
    last = _fmt_ts(stream.last_epoch)
    _pretty(
        root / ".superloop" / "state.json",
        {
            "active": True,
            "loop_index": 0,
            "iteration": iteration,
            "current_loop_id": LOOP,
            "updated_at": last,
        },
    )
    entries = [
        {
            "run_id": rid,
            "iteration": it,
            "started_at": _fmt_ts(run_start + it * 14 * EVENT_SPACING),
            "ended_at": _fmt_ts(run_start + (it + 1) * 14 * EVENT_SPACING - 1),
            "promise": {"expected": "SUPERLOOP_COMPLETE", "text": None, "matched": False},
            "gates": {
                "tests": "passed",
                "validation": "skipped",
                "prerequisites": "ok",
                "checklist": "ok",
                "evidence": "skipped",
                "lifecycle": "skipped",
                "approval": "skipped",
            },
            "tests_mode": "on_promise",
            "stuck": {"streak": 0, "threshold": 3},
            "delegation": {},
            "completion_ok": False,
            "artifacts": {
                "plan": {
                    "path": f".superloop/loops/{LOOP}/plan.md",
                    "exists": True,
                    "sha256": "0" * 64,
                    "mtime": rid,
                },
                "test_report": {
                    "path": f".superloop/loops/{LOOP}/test-report.md",
                    "exists": True,
                    "gate": "tests",
                },
            },
        }
        for it in range(1, iteration)
    ]
    _pretty(
        loop_dir / "run-summary.json",
        {"version": 1, "loop_id": LOOP, "updated_at": last, "entries": entries},
    )
    _pretty(
        loop_dir / "heartbeat.v1.json",
        {
            "schemaVersion": "v1",
            "timestamp": last,
            "source": "runtime",
            "status": "running",
            "stage": "iteration",
        },
    )


def events_file(repo: Path) -> Path:
    return repo / ".superloop" / "loops" / LOOP / "events.jsonl"


def fresh_copy(template: Path, dest: Path) -> Path:
    """Copy a runtime repo without any manager state (a cold start)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(template, dest, ignore=shutil.ignore_patterns("ops-manager"))
    return dest


# --------------------------------------------------------------------------------------------
# the things being timed
# --------------------------------------------------------------------------------------------
def plain_parse(path: Path) -> int:
    n = 0
    for line in open(path, "rb"):  # noqa: SIM115 - exactly the reference loop
        json.loads(line)
        n += 1
    return n


def run_inprocess(repo: Path, now: int) -> tuple[float, int]:
    settings = ReconcileSettings(repo=repo, loop_id=LOOP, trace_id="bench")
    t0 = time.perf_counter()
    result = reconcile(settings, clock=lambda: now)
    elapsed = time.perf_counter() - t0
    if not result.ok:
        raise SystemExit(f"reconcile failed: {result.failure_code}: {result.failure_message}")
    return elapsed, result.events_ingested


#: environment of every child process (CLI runs, RSS children); set up by ``main``
CHILD_ENV: dict[str, str] = dict(os.environ)


def child_env(work: Path, inherit: bool) -> dict[str, str]:
    """The children's environment: by default with a bytecode cache outside the source tree.

    ``PYTHONDONTWRITEBYTECODE=1`` (set in some dev sandboxes) makes every CLI call compile all
    of ``ops_manager`` from source, which no installed deployment does. Unless ``inherit``,
    children cache bytecode under the bench's temp dir (``PYTHONPYCACHEPREFIX``), so the
    source tree is not touched and the figures match a normal install after its first run.
    """
    env = dict(os.environ)
    if not inherit:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def cli_path() -> Path:
    path = Path(sys.executable).parent / "ops-manager"
    if not path.exists():
        raise SystemExit(
            f"error: {path} not found; run ./scripts/bootstrap.sh and use .venv/bin/python"
        )
    return path


def run_cli(repo: Path) -> float:
    cmd = [str(cli_path()), "reconcile", "--repo", str(repo), "--loop", LOOP, "--trace-id", "bench"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=CHILD_ENV)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(
            f"CLI reconcile failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}"
        )
    return elapsed


def folded_count(repo: Path) -> int:
    state = json.loads(
        (repo / ".superloop" / "ops-manager" / LOOP / "stream-state.json").read_text()
    )
    return int(state["fold"]["eventCount"])


_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, repo, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
from ops_manager.engine.reconcile import ReconcileSettings, reconcile
out = {"seconds": 0.0, "events": 0}
if mode == "keep-all":
    # control for the RSS measurement: what holding every parsed event would cost
    import json as _json
    t0 = time.perf_counter()
    kept = [_json.loads(line) for line in open(repo, "rb")]
    out["seconds"] = time.perf_counter() - t0
    out["events"] = len(kept)
elif mode == "reconcile":
    t0 = time.perf_counter()
    settings = ReconcileSettings(repo=Path(repo), loop_id="bench", trace_id="bench")
    r = reconcile(settings, clock=lambda: now)
    out["seconds"] = time.perf_counter() - t0
    if not r.ok:
        sys.exit("reconcile failed: %s" % r.failure_message)
    out["events"] = r.events_ingested
# ru_maxrss is NOT used as the peak: Linux carries the high-water mark of the pre-exec address
# space (the spawning parent's, with vfork/posix_spawn) into a child's ru_maxrss. VmHWM is the
# peak RSS of this process's own address space since exec.
out["ru_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out["peak_rss_kb"] = out["ru_maxrss_kb"]
try:
    with open("/proc/self/status") as fh:
        for row in fh:
            if row.startswith("VmHWM:"):
                out["peak_rss_kb"] = int(row.split()[1])
except OSError:
    pass
print(json.dumps(out))
"""


def child(mode: str, repo: Path, now: int) -> dict[str, Any]:
    """Run ``_CHILD`` (import / reconcile / keep-all) in a fresh interpreter: its own peak RSS."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(repo), str(now)],
        capture_output=True,
        cwd=str(ROOT),
        env=CHILD_ENV,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child failed: {proc.stderr.decode()[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def median_of(fn: Callable[[], float], reps: int) -> tuple[float, list[float]]:
    samples = [fn() for _ in range(reps)]
    return statistics.median(samples), samples


# --------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------
def label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= K and n % K == 0:
        return f"{n // K}k"
    return str(n)


def reps_for(n: int, small: int, big: int) -> int:
    return small if n <= 10 * K else big


def bench_cold(
    work: Path,
    sizes: list[int],
    templates: dict[int, tuple[Path, EventStream]],
    cold_reps: tuple[int, int],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        template, stream = templates[n]
        now = stream.last_epoch + 5
        ef = events_file(template)
        reps = reps_for(n, cold_reps[0], cold_reps[1])
        plain_parse(ef)  # warm the page cache for everyone
        dest = work / "cold"
        # interleaved (parse, in-process, CLI) rounds: background noise hits all three alike
        parse_samples, inproc_samples, cli_samples = [], [], []
        for _ in range(reps):
            parse_samples.append(_timed_parse(ef))
            inproc_samples.append(_cold_pass("inprocess", template, dest, now, n))
            cli_samples.append(_cold_pass("cli", template, dest, now, n))
        parse_s = statistics.median(parse_samples)
        inproc_s = statistics.median(inproc_samples)
        cli_s = statistics.median(cli_samples)
        out[label(n)] = {
            "events": n,
            "file_bytes": ef.stat().st_size,
            "repeats": reps,
            "plain_parse_s": parse_s,
            "inprocess_s": inproc_s,
            "cli_s": cli_s,
            "plain_parse_events_per_s": n / parse_s,
            "inprocess_events_per_s": n / inproc_s,
            "cli_events_per_s": n / cli_s,
            "inprocess_vs_parse": inproc_s / parse_s,
            "cli_vs_parse": cli_s / parse_s,
            "samples": {
                "plain_parse": parse_samples,
                "inprocess": inproc_samples,
                "cli": cli_samples,
            },
        }
        shutil.rmtree(work / "cold", ignore_errors=True)
        r = out[label(n)]
        print(
            f"  {label(n):>5}  {r['file_bytes'] / 1e6:7.1f} MB  parse {_ms(parse_s)}  "
            f"in-process {_ms(inproc_s)} ({r['inprocess_vs_parse']:.2f}x)  "
            f"CLI {_ms(cli_s)} ({r['cli_vs_parse']:.2f}x)",
            flush=True,
        )
    return out


def _timed_parse(path: Path) -> float:
    t0 = time.perf_counter()
    plain_parse(path)
    return time.perf_counter() - t0


def _cold_pass(runner: str, template: Path, dest: Path, now: int, n: int) -> float:
    """One timed cold pass on a fresh copy of ``template`` (the copy is not timed)."""
    repo = fresh_copy(template, dest)
    if runner == "inprocess":
        elapsed, ingested = run_inprocess(repo, now)
        assert ingested == n, (ingested, n)
    else:
        elapsed = run_cli(repo)
        assert folded_count(repo) == n
    return elapsed


class _History:
    """A repo with history: each :meth:`step` appends events and times the next pass."""

    def __init__(self, repo: Path, stream: EventStream, total: int) -> None:
        self.repo = repo
        self.stream = stream
        self.total = total

    def step(self, runner: str) -> float:
        with open(events_file(self.repo), "ab") as handle:
            handle.write(self.stream.next_lines(APPEND))
        self.total += APPEND
        refresh_runtime_files(self.repo, self.stream)
        if runner == "inprocess":
            elapsed, ingested = run_inprocess(self.repo, self.stream.last_epoch + 5)
            assert ingested == APPEND, ingested
        else:
            elapsed = run_cli(self.repo)
            assert folded_count(self.repo) == self.total
        return elapsed


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def bench_incremental(
    work: Path,
    sizes: list[int],
    templates: dict[int, tuple[Path, EventStream]],
    reps_in: int,
    reps_cli: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        repo_dir = work / f"history-{label(n)}"
        if n in templates:
            template, template_stream = templates[n]
            fresh_copy(template, repo_dir)
            stream = copy.copy(template_stream)  # continue exactly where the template ends
        else:
            t0 = time.perf_counter()
            _, stream = make_repo(repo_dir, n)
            print(
                f"  ({label(n)}: generated {events_file(repo_dir).stat().st_size / 1e6:.0f} MB "
                f"in {time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
        # the cold pass that builds the history, in a fresh child: also a peak-RSS sample
        build = child("reconcile", repo_dir, stream.last_epoch + 5)
        assert build["events"] == n, build
        parse_s = _timed_parse(events_file(repo_dir))  # context: the cold pass vs one plain parse
        history = _History(repo_dir, stream, n)
        inproc_s, inproc_samples = median_of(functools.partial(history.step, "inprocess"), reps_in)
        cli_s, cli_samples = median_of(functools.partial(history.step, "cli"), reps_cli)
        out[label(n)] = {
            "history_events": n,
            "history_bytes": events_file(repo_dir).stat().st_size,
            "appended_events": APPEND,
            "cold_build_child_s": build["seconds"],
            "history_plain_parse_s": parse_s,
            "cold_build_child_peak_rss_kb": build["peak_rss_kb"],
            "cold_build_child_ru_maxrss_kb": build["ru_maxrss_kb"],
            "inprocess_s": inproc_s,
            "cli_s": cli_s,
            "samples": {"inprocess": inproc_samples, "cli": cli_samples},
        }
        shutil.rmtree(repo_dir, ignore_errors=True)
        print(
            f"  {label(n):>5} history: in-process {_ms(inproc_s)}  CLI {_ms(cli_s)}  "
            f"(cold build in child {_ms(build['seconds']).strip()} vs plain parse "
            f"{_ms(parse_s).strip()}, "
            f"peak RSS {build['peak_rss_kb'] / 1024:.1f} MiB)",
            flush=True,
        )
    return out


def bench_rss(
    work: Path,
    sizes: list[int],
    templates: dict[int, tuple[Path, EventStream]],
    incremental: dict[str, Any],
) -> dict[str, Any]:
    base = child("import", ROOT, 0)
    out: dict[str, Any] = {
        "method": "VmHWM of the child (/proc/self/status); ru_maxrss kept for reference",
        "import_only_kb": base["peak_rss_kb"],
        "import_only_ru_maxrss_kb": base["ru_maxrss_kb"],
        "cold": {},
    }
    print(f"  import only: {base['peak_rss_kb'] / 1024:.1f} MiB", flush=True)
    for n in sizes:
        if n in templates:
            template, stream = templates[n]
            repo = fresh_copy(template, work / "rss")
            res = child("reconcile", repo, stream.last_epoch + 5)
            assert res["events"] == n
            size = events_file(template).stat().st_size
            source = "fresh copy"
        else:
            # measured while building the history of section 2 (same cold pass, fresh child)
            inc = incremental[label(n)]
            res = {
                "peak_rss_kb": inc["cold_build_child_peak_rss_kb"],
                "ru_maxrss_kb": inc["cold_build_child_ru_maxrss_kb"],
                "seconds": inc["cold_build_child_s"],
            }
            size = inc["history_bytes"]
            source = "history build of section 2"
        out["cold"][label(n)] = {
            "events": n,
            "file_bytes": size,
            "peak_rss_kb": res["peak_rss_kb"],
            "ru_maxrss_kb": res["ru_maxrss_kb"],
            "delta_vs_import_kb": res["peak_rss_kb"] - base["peak_rss_kb"],
            "child_reconcile_s": res["seconds"],
            "source": source,
        }
        shutil.rmtree(work / "rss", ignore_errors=True)
        print(
            f"  {label(n):>5}: peak RSS {res['peak_rss_kb'] / 1024:6.1f} MiB "
            f"(+{(res['peak_rss_kb'] - base['peak_rss_kb']) / 1024:.1f} MiB over import-only; "
            f"file {size / 1e6:.1f} MB; {source})",
            flush=True,
        )
    # control: the same kind of child holding every parsed event of the largest template
    n = max(templates)
    ctl = child("keep-all", events_file(templates[n][0]), 0)
    out["control_keep_all"] = {
        "events": n,
        "peak_rss_kb": ctl["peak_rss_kb"],
        "delta_vs_import_kb": ctl["peak_rss_kb"] - base["peak_rss_kb"],
    }
    print(
        f"  control: a child that keeps all {label(n)} parsed events in a list peaks at "
        f"{ctl['peak_rss_kb'] / 1024:.1f} MiB (the measurement does see retained events)",
        flush=True,
    )
    return out


def startup_floor(reps: int) -> dict[str, float]:
    """What any CLI call pays before doing work: interpreter start, and `ops-manager --help`."""
    py = statistics.median(
        _timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True, env=CHILD_ENV))
        for _ in range(reps)
    )
    cli = statistics.median(
        _timed(
            lambda: subprocess.run(
                [str(cli_path()), "--help"], check=True, stdout=subprocess.DEVNULL, env=CHILD_ENV
            )
        )
        for _ in range(reps)
    )
    code = (
        "import time, json; t0 = time.perf_counter()\n"
        "import ops_manager.cli.reconcile, ops_manager.engine.reconcile\n"
        "import ops_manager.engine.profiles, ops_manager.engine.reconcile_settings\n"
        "t1 = time.perf_counter()\n"
        "from ops_manager.plugins import get_plugin_manager; get_plugin_manager()\n"
        "t2 = time.perf_counter()\n"
        "print(json.dumps([t1 - t0, t2 - t1]))"
    )
    split = []
    for _ in range(reps):
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, check=True, env=CHILD_ENV
        )
        split.append(json.loads(proc.stdout))
    return {
        "python_c_pass_s": py,
        "cli_help_s": cli,
        "import_reconcile_modules_s": statistics.median(a for a, _ in split),
        "plugin_discovery_s": statistics.median(b for _, b in split),
    }


def profile_cold(work: Path, n: int, top: int = 25) -> str:
    """cProfile one cold in-process pass of ``n`` events; the top entries as text."""
    template, stream = make_repo(work / f"profile-tpl-{label(n)}", n)
    repo = fresh_copy(template, work / "profile")
    # warm-up on a copy so lazy imports / plugin discovery are not in the profile
    run_inprocess(fresh_copy(template, work / "profile-warm"), stream.last_epoch + 5)
    settings = ReconcileSettings(repo=repo, loop_id=LOOP, trace_id="bench")
    now = stream.last_epoch + 5
    prof = cProfile.Profile()
    prof.enable()
    reconcile(settings, clock=lambda: now)
    prof.disable()
    buf = io.StringIO()
    buf.write(f"=== cProfile: one cold in-process reconcile of {label(n)} events ===\n")
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)

    # the same repo now has history: profile 20 incremental passes of APPEND events each
    prof = cProfile.Profile()
    for _ in range(20):
        with open(events_file(repo), "ab") as handle:
            handle.write(stream.next_lines(APPEND))
        prof.enable()
        run_inprocess(repo, stream.last_epoch + 5)
        prof.disable()
    buf.write(f"=== cProfile: 20 incremental passes (+{APPEND} events after {label(n)}) ===\n")
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(15)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="small sizes (1k/10k cold, 1k/100k history)"
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="only: cProfile one cold 100k in-process pass, then 20 incremental passes",
    )
    ap.add_argument("--tmp", metavar="DIR", help="parent of the temp dir (default: $TMPDIR)")
    ap.add_argument(
        "--inherit-env",
        action="store_true",
        help="run children with this environment as is (default: bytecode cache in the temp dir)",
    )
    args = ap.parse_args(argv)

    if args.quick:
        cold_sizes, hist_sizes, rss_sizes = [K, 10 * K], [K, 100 * K], [K, 10 * K, 100 * K]
        reps_in, reps_cli, cold_reps = 9, 3, (5, 3)
    else:
        cold_sizes, hist_sizes = [K, 10 * K, 100 * K], [K, 100 * K, 1_000_000]
        rss_sizes = [K, 10 * K, 100 * K, 1_000_000]
        reps_in, reps_cli, cold_reps = 21, 9, (9, 5)

    work = Path(tempfile.mkdtemp(prefix="ops-manager-bench-", dir=args.tmp))
    global CHILD_ENV
    CHILD_ENV = child_env(work, args.inherit_env)
    try:
        if args.profile:
            print(profile_cold(work, 100 * K))
            return 0
        free = shutil.disk_usage(work).free
        need = (max(hist_sizes) * 420) * 2 + 200e6  # the 1M file (~400 MB) and slack
        if free < need:
            raise SystemExit(
                f"error: {work} has {free / 1e9:.1f} GB free; need ~{need / 1e9:.1f} GB"
            )

        results: dict[str, Any] = {
            "mode": "quick" if args.quick else "full",
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "platform": sys.platform,
            "started_at": _fmt_ts(int(time.time())),
            "children_bytecode_cache": not args.inherit_env
            or os.environ.get("PYTHONDONTWRITEBYTECODE", "") == "",
        }
        t_start = time.perf_counter()
        templates: dict[int, tuple[Path, EventStream]] = {}
        small = {s for s in [*cold_sizes, *rss_sizes, *hist_sizes] if s <= 100 * K}
        for n in sorted(small):
            templates[n] = make_repo(work / f"template-{label(n)}", n)

        # warm-up: lazy imports and plugin discovery happen once per process, not per pass
        tiny, tiny_stream = make_repo(work / "warmup", 50)
        run_inprocess(tiny, tiny_stream.last_epoch + 5)
        run_cli(tiny)  # also fills the children's bytecode cache
        child("import", ROOT, 0)

        print("\n== start-up floor (per CLI call) ==", flush=True)
        results["startup"] = startup_floor(5)
        st = results["startup"]
        print(
            f"  python -c pass {_ms(st['python_c_pass_s'])}   "
            f"ops-manager --help {_ms(st['cli_help_s'])}\n"
            f"  importing the reconcile command's modules "
            f"{_ms(st['import_reconcile_modules_s'])}   "
            f"plugin manager + entry-point discovery {_ms(st['plugin_discovery_s'])}",
            flush=True,
        )

        print("\n== 1. cold reconcile (median; ratio = / plain json.loads loop) ==", flush=True)
        results["cold"] = bench_cold(work, cold_sizes, templates, cold_reps)

        print(
            f"\n== 2. incremental reconcile of {APPEND} new events after N of history (median) ==",
            flush=True,
        )
        results["incremental"] = bench_incremental(work, hist_sizes, templates, reps_in, reps_cli)

        print("\n== 3. peak RSS of a cold reconcile in a fresh child ==", flush=True)
        results["rss"] = bench_rss(work, rss_sizes, templates, results["incremental"])

        results["targets"] = targets(results, cold_sizes, hist_sizes)
        results["elapsed_s"] = time.perf_counter() - t_start
        print_summary(results)
        print(json.dumps(results, separators=(",", ":")))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def targets(
    results: dict[str, Any], cold_sizes: list[int], hist_sizes: list[int]
) -> dict[str, Any]:
    big_cold = results["cold"][label(max(cold_sizes))]
    lo = results["incremental"][label(min(hist_sizes))]
    hi = results["incremental"][label(max(hist_sizes))]
    rss = results["rss"]["cold"]
    rss_lo = rss[min(rss, key=lambda k: rss[k]["events"])]
    rss_hi = rss[max(rss, key=lambda k: rss[k]["events"])]
    return {
        "cold_inprocess_vs_parse": {
            "size": label(max(cold_sizes)),
            "ratio": big_cold["inprocess_vs_parse"],
            "target": 3.0,
            "met": big_cold["inprocess_vs_parse"] <= 3.0,
        },
        "incremental_inprocess_growth": {
            "sizes": [label(min(hist_sizes)), label(max(hist_sizes))],
            "ratio": hi["inprocess_s"] / lo["inprocess_s"],
            "target": 1.5,
            "met": hi["inprocess_s"] / lo["inprocess_s"] <= 1.5,
        },
        "incremental_cli_growth": {
            "sizes": [label(min(hist_sizes)), label(max(hist_sizes))],
            "ratio": hi["cli_s"] / lo["cli_s"],
            "target": 1.5,
            "met": hi["cli_s"] / lo["cli_s"] <= 1.5,
        },
        "rss_growth": {
            "sizes": [label(rss_lo["events"]), label(rss_hi["events"])],
            "delta_kb": rss_hi["peak_rss_kb"] - rss_lo["peak_rss_kb"],
            "ratio": rss_hi["peak_rss_kb"] / rss_lo["peak_rss_kb"],
        },
    }


def print_summary(r: dict[str, Any]) -> None:
    print("\n== summary ==")
    print(
        f"{'cold':<8}{'events':>9}{'MB':>8}{'parse ms':>11}{'in-proc ms':>12}{'ev/s':>11}"
        f"{'x parse':>9}{'CLI ms':>10}{'ev/s':>11}{'x parse':>9}"
    )
    for key, c in r["cold"].items():
        print(
            f"{key:<8}{c['events']:>9}{c['file_bytes'] / 1e6:>8.1f}"
            f"{c['plain_parse_s'] * 1e3:>11.1f}{c['inprocess_s'] * 1e3:>12.1f}"
            f"{c['inprocess_events_per_s']:>11.0f}{c['inprocess_vs_parse']:>9.2f}"
            f"{c['cli_s'] * 1e3:>10.1f}{c['cli_events_per_s']:>11.0f}{c['cli_vs_parse']:>9.2f}"
        )
    print(f"\n{'+' + str(APPEND) + ' after':<10}{'history MB':>11}{'in-proc ms':>12}{'CLI ms':>10}")
    for key, c in r["incremental"].items():
        print(
            f"{key:<10}{c['history_bytes'] / 1e6:>11.1f}{c['inprocess_s'] * 1e3:>12.2f}"
            f"{c['cli_s'] * 1e3:>10.1f}"
        )
    print(f"\n{'peak RSS':<10}{'MiB':>8}{'+import':>9}")
    print(f"{'import':<10}{r['rss']['import_only_kb'] / 1024:>8.1f}{'':>9}")
    for key, c in r["rss"]["cold"].items():
        print(f"{key:<10}{c['peak_rss_kb'] / 1024:>8.1f}{c['delta_vs_import_kb'] / 1024:>9.1f}")
    ctl = r["rss"]["control_keep_all"]
    print(
        f"{'(control)':<10}{ctl['peak_rss_kb'] / 1024:>8.1f}"
        f"{ctl['delta_vs_import_kb'] / 1024:>9.1f}"
        f"   <- keeping all {label(ctl['events'])} parsed events"
    )
    t = r["targets"]
    a = t["cold_inprocess_vs_parse"]
    b = t["incremental_inprocess_growth"]
    c = t["incremental_cli_growth"]
    g = t["rss_growth"]
    print("\ntargets:")
    print(
        f"  cold {a['size']} in-process / plain parse = {a['ratio']:.2f}x  "
        f"(target <= {a['target']}x: {'MET' if a['met'] else 'NOT MET'})"
    )
    print(
        f"  incremental in-process {b['sizes'][1]} / {b['sizes'][0]} = {b['ratio']:.2f}x  "
        f"(target <= {b['target']}x: {'MET' if b['met'] else 'NOT MET'})"
    )
    print(
        f"  incremental CLI        {c['sizes'][1]} / {c['sizes'][0]} = {c['ratio']:.2f}x  "
        f"(target <= {c['target']}x: {'MET' if c['met'] else 'NOT MET'})"
    )
    print(
        f"  peak RSS {g['sizes'][1]} vs {g['sizes'][0]}: {g['ratio']:.2f}x "
        f"({g['delta_kb'] / 1024:+.1f} MiB)"
    )
    print(f"  total bench time {r['elapsed_s']:.0f} s\n")


if __name__ == "__main__":
    sys.exit(main())
