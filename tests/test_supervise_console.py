"""The supervisor's fleet telemetry stream feeds the console charts (they survive restarts)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from ops_manager.console import ConsoleApi
from ops_manager.store import FleetPaths
from tests.fleet_fixtures import make_fleet_repo
from tests.supervise_process import SuperviseProcess


def test_console_lag_chart_reads_the_supervise_stream_across_restarts(tmp_path: Path) -> None:
    repo = make_fleet_repo(tmp_path / "fleet", ["loop-a", "loop-b"]).resolve()
    with SuperviseProcess(repo, args=["--interval", "1"]).running() as sup:
        sup.wait_for(lambda ticks: len(ticks) >= 3)
        sup.signal(signal.SIGTERM)
        assert sup.wait(timeout=11) == 0
    stream = FleetPaths.for_repo(repo).telemetry_dir / "supervise.jsonl"
    rows = [json.loads(line) for line in stream.read_text().splitlines()]
    assert len(rows) >= 3
    assert all(set(r["ingestLagSeconds"]) == {"loop-a", "loop-b"} for r in rows)
    # the fleet outcome never changed: one reconcile.jsonl row (it carries every result),
    # not one per tick
    reconcile_rows = FleetPaths.for_repo(repo).reconcile_telemetry_file.read_text()
    assert len(reconcile_rows.splitlines()) == 1
    for _ in range(2):  # a fresh console (a restart) sees the same history
        body = ConsoleApi(repo).slo().body
        lag = {s["name"]: s["points"] for s in body["ingestLag"]["series"]}
        assert set(lag) == {"loop-a", "loop-b"}
        assert len(lag["loop-a"]) == len(rows)
        assert [p[0] for p in lag["loop-a"]] == [r["timestamp"] for r in rows]
        latency = {s["name"]: s["points"] for s in body["reconcileLatency"]["series"]}
        assert len(latency["supervise tick"]) == len(rows)
