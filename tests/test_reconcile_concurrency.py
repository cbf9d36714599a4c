"""Reconcile while the runtime writes, and reconciles racing each other.

- A writer appends events (some in two partial writes: a torn line in progress) while the
  test runs reconcile passes; at the end every complete event was ingested exactly once.
- Reconciles of one loop serialize on the loop lock, in threads and in processes, and leave
  every artifact whole.

Everything is bounded in count and time: no sleep is longer than a few milliseconds, every
wait has a timeout, and the whole file runs in a few seconds.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ops_manager._timefmt import format_ts
from ops_manager.engine.reconcile import ReconcileSettings, reconcile
from ops_manager.reducers.thresholds import Thresholds
from ops_manager.store import exclusive_lock
from tests.runtime_fixtures import event, events_path, make_runtime_repo

LOOP = "demo-loop"
CLI = Path(sys.executable).parent / "ops-manager"
T0 = 1_893_456_000  # 2030-01-01T00:00:00Z
NAMES = ("iteration_start", "role_start", "role_end", "tests_start", "tests_end")
#: generous upper bound for any single wait (never reached when things work)
TIMEOUT = 10.0


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OPS_MANAGER_"):
            monkeypatch.delenv(key)


def ops(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path} ends with a torn line"
    return [json.loads(line) for line in text.splitlines() if line]


def settings(repo: Path, trace: str) -> ReconcileSettings:
    return ReconcileSettings(
        repo=repo,
        loop_id=LOOP,
        trace_id=trace,
        thresholds=Thresholds(
            profile="balanced", degraded_ingest_lag_seconds=10**9, critical_ingest_lag_seconds=10**9
        ),
    )


def event_line(i: int) -> bytes:
    ev = event(NAMES[i % len(NAMES)], format_ts(T0 + i), role="planner", data={"n": i})
    return (json.dumps(ev, separators=(",", ":")) + "\n").encode()


def assert_all_artifacts_whole(repo: Path) -> None:
    """Every projection parses; every stream ends with a newline and parses line by line."""
    for path in ops(repo).rglob("*.json"):
        read_json(path)
    for path in ops(repo).rglob("*.jsonl"):
        read_jsonl(path)


def assert_exactly_once(repo: Path, written: int, expected_names: Counter[str]) -> None:
    rows = read_jsonl(ops(repo) / "telemetry" / "reconcile.jsonl")
    assert all(r["status"] == "success" for r in rows)
    assert sum(r["eventsIngested"] for r in rows) == written
    # each pass started where the previous one stopped: passes never overlapped
    for prev, cur in itertools.pairwise(rows):
        assert cur["cursorOffsetBefore"] == prev["cursorOffsetAfter"]
    stream = read_json(ops(repo) / "stream-state.json")
    assert stream["fold"]["eventCount"] == written
    assert Counter(stream["fold"]["byName"]) == expected_names
    cursor = read_json(ops(repo) / "cursor.json")
    assert cursor["eventLineOffset"] == written
    assert cursor["eventLineCount"] == written


class Writer(threading.Thread):
    """Appends ``count`` events like the runtime (``>>``), some as two partial writes.

    Every ``handshake_every`` events it stops in the middle of a line and waits until the
    test has run a pass that saw the torn line (``torn``/``seen`` events).
    """

    def __init__(self, path: Path, count: int, seed: int, handshake_every: int = 40) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.count = count
        self.rng = random.Random(seed)
        self.handshake_every = handshake_every
        self.torn = threading.Event()
        self.seen = threading.Event()
        self.error: BaseException | None = None
        self.names: Counter[str] = Counter()

    def run(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                for i in range(self.count):
                    line = event_line(i)
                    self.names[NAMES[i % len(NAMES)]] += 1
                    handshake = i % self.handshake_every == self.handshake_every - 1
                    if handshake or self.rng.random() < 0.3:
                        cut = self.rng.randrange(1, len(line) - 1)
                        os.write(fd, line[:cut])
                        if handshake:
                            self.torn.set()
                            if not self.seen.wait(TIMEOUT):
                                raise TimeoutError("no pass observed the torn line")
                            self.seen.clear()
                        else:
                            time.sleep(self.rng.random() / 1000)
                        os.write(fd, line[cut:])
                    else:
                        os.write(fd, line)
                    if self.rng.random() < 0.2:
                        time.sleep(self.rng.random() / 1000)
            finally:
                os.close(fd)
        except BaseException as exc:  # surfaced by the test
            self.error = exc


@pytest.mark.parametrize("seed", [1, 2])
def test_passes_during_writes_ingest_every_event_once(tmp_path: Path, seed: int) -> None:
    repo = make_runtime_repo(tmp_path / "repo", events=[]).resolve()
    count = 160
    writer = Writer(events_path(repo), count, seed)
    writer.start()
    passes = 0
    torn_seen = 0
    deadline = time.monotonic() + TIMEOUT
    while writer.is_alive() and passes < 2000:
        assert time.monotonic() < deadline, "writer did not finish in time"
        handshake = writer.torn.is_set()
        result = reconcile(settings(repo, f"p{passes}"))
        passes += 1
        assert result.ok, (result.failure_code, result.failure_message)
        if handshake:
            # the writer is parked in the middle of a line: this pass saw it torn
            assert any("incomplete line" in w for w in result.warnings)
            torn_seen += 1
            writer.torn.clear()
            writer.seen.set()
    writer.join(TIMEOUT)
    assert not writer.is_alive()
    assert writer.error is None, writer.error
    assert torn_seen == count // writer.handshake_every
    # catch up: at most two more passes, then nothing new
    for _ in range(3):
        result = reconcile(settings(repo, "final"))
        assert result.ok and not result.warnings
    assert result.events_ingested == 0
    assert_exactly_once(repo, count, writer.names)
    assert_all_artifacts_whole(repo)
    assert passes >= 2


def test_threads_racing_on_one_loop_serialize(tmp_path: Path) -> None:
    """Four threads reconcile the same loop while a writer appends: the lock serializes
    them (no event ingested twice, the cursor chain is unbroken)."""
    repo = make_runtime_repo(tmp_path / "repo", events=[]).resolve()
    count = 120
    writer = Writer(events_path(repo), count, seed=7, handshake_every=10**9)
    errors: list[BaseException] = []
    results: list[bool] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for i in range(12):
                r = reconcile(settings(repo, f"t{n}-{i}"))
                with lock:
                    results.append(r.ok)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(4)]
    writer.start()
    for t in threads:
        t.start()
    for t in [*threads, writer]:
        t.join(TIMEOUT)
        assert not t.is_alive()
    assert errors == [] and writer.error is None
    assert results == [True] * 48
    result = reconcile(settings(repo, "final"))
    assert result.ok
    assert_exactly_once(repo, count, writer.names)
    assert_all_artifacts_whole(repo)


def _cli(repo: Path, trace: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_MANAGER_")}
    return subprocess.Popen(
        [
            str(CLI),
            "reconcile",
            "--repo",
            str(repo),
            "--loop",
            LOOP,
            "--trace-id",
            trace,
            "--degraded-ingest-lag-seconds",
            "999999999",
            "--critical-ingest-lag-seconds",
            "999999999",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _blocked_on(lock_file: Path) -> bool:
    """True when /proc/locks shows a process waiting for a flock on ``lock_file``."""
    ino = os.stat(lock_file).st_ino
    text = Path("/proc/locks").read_text()
    return any("->" in line and f":{ino} " in line for line in text.splitlines())


@pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="needs Linux /proc/locks")
def test_a_reconcile_process_waits_for_the_loop_lock(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "repo", events=[]).resolve()
    lock_file = ops(repo) / ".lock"
    with exclusive_lock(lock_file):
        proc = _cli(repo, "waiter")
        deadline = time.monotonic() + TIMEOUT
        while not _blocked_on(lock_file):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the reconcile never reached the lock"
            time.sleep(0.02)
        # it is parked on the lock: nothing of the pass is written yet
        assert proc.poll() is None
        assert not (ops(repo) / "telemetry" / "reconcile.jsonl").exists()
        assert not (ops(repo) / "state.json").exists()
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert json.loads(out)["trace"] == {"reconcileTraceId": "waiter"}
    (row,) = read_jsonl(ops(repo) / "telemetry" / "reconcile.jsonl")
    assert row["traceId"] == "waiter"


def test_concurrent_reconcile_processes_do_not_corrupt_anything(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "repo", events=[]).resolve()
    path = events_path(repo)
    names: Counter[str] = Counter()
    written = 0
    for rnd, batch in enumerate((7, 5)):
        with open(path, "ab") as handle:
            for i in range(written, written + batch):
                handle.write(event_line(i))
                names[NAMES[i % len(NAMES)]] += 1
        written += batch
        procs = [_cli(repo, f"r{rnd}-{n}") for n in range(3)]
        outcomes = [p.communicate(timeout=TIMEOUT) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outcomes]
        for out, _ in outcomes:
            json.loads(out)  # every process printed a whole state
        rows = read_jsonl(ops(repo) / "telemetry" / "reconcile.jsonl")[-3:]
        # exactly one of the three racing passes ingested the new batch
        assert sorted(r["eventsIngested"] for r in rows) == [0, 0, batch]
    assert_exactly_once(repo, written, names)
    assert_all_artifacts_whole(repo)
    # no temp file of an atomic write was left behind
    assert not [p for p in ops(repo).rglob("*.tmp.*")]
