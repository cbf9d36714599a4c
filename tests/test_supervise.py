"""``ops-manager supervise``: the real process, scraped over HTTP, driven by real signals."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ops_manager.store import FleetPaths
from tests.fleet_fixtures import TOKEN_ENV, make_fleet_repo, sprite_loop, write_registry
from tests.service_process import service_command
from tests.supervise_process import SuperviseProcess

METRIC_NAMES = {
    "ops_manager_loops",
    "ops_manager_supervise_ticks",
    "ops_manager_supervise_tick_duration_seconds",
    "ops_manager_reconcile_duration_seconds",
    "ops_manager_loop_ingest_lag_seconds",
    "ops_manager_alert_notifications",
    "ops_manager_alert_outbox_pending",
    "ops_manager_last_tick_success_timestamp_seconds",
}


def _metrics(url: str, **kwargs: object) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    response = requests.get(url, timeout=10, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    out: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        out[family.name] = [(s.name, dict(s.labels), s.value) for s in family.samples]
    return out


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """Three local loops; ``loop-c`` has no runtime artifacts (its reconcile fails)."""
    return make_fleet_repo(
        tmp_path / "fleet", ["loop-a", "loop-b", "loop-c"], without_artifacts=["loop-c"]
    )


def test_once_reconciles_every_loop_and_logs_one_json_line(fleet: Path) -> None:
    sup = SuperviseProcess(fleet, args=["--once"])
    with sup.running():
        assert sup.wait(timeout=60) == 0
        ticks = sup.ticks()
    assert len(ticks) == 1
    tick = ticks[0]
    assert tick["event"] == "supervise_tick"
    assert (tick["loops"], tick["succeeded"], tick["failed"]) == (3, 2, 1)
    assert tick["policyMode"] == "advisory"
    assert tick["fleetStatus"] == "partial_failure"
    paths = FleetPaths.for_repo(fleet)
    state = json.loads(paths.state_file.read_text())
    assert [r["loopId"] for r in state["results"]] == ["loop-a", "loop-b", "loop-c"]
    assert paths.policy_state_file.is_file()
    rows = (paths.telemetry_dir / "supervise.jsonl").read_text().splitlines()
    assert len(rows) == 1
    row = json.loads(rows[0])
    assert row["category"] == "supervise_tick"
    assert set(row["ingestLagSeconds"]) == {"loop-a", "loop-b"}


def test_metrics_healthz_and_sigterm(fleet: Path) -> None:
    with SuperviseProcess(fleet, args=["--interval", "1"]).running() as sup:
        assert sup.metrics_url.startswith("http://127.0.0.1:")
        sup.wait_for(lambda ticks: len(ticks) >= 2)
        health = requests.get(sup.base_url + "/healthz", timeout=10)
        assert health.status_code == 200, health.text
        families = _metrics(sup.metrics_url)
        assert set(families) >= METRIC_NAMES
        loops = {labels["health"]: value for _, labels, value in families["ops_manager_loops"]}
        assert sum(loops.values()) == 3
        assert loops["healthy"] == 2
        ticks = [v for n, _, v in families["ops_manager_supervise_ticks"] if n.endswith("_total")]
        assert ticks and ticks[0] >= 2
        lag_loops = {lab["loop"] for _, lab, _ in families["ops_manager_loop_ingest_lag_seconds"]}
        assert lag_loops == {"loop-a", "loop-b"}
        counts = [
            v
            for n, _, v in families["ops_manager_reconcile_duration_seconds"]
            if n.endswith("_count")
        ]
        assert counts and counts[0] >= 6  # 3 loops x >= 2 ticks
        assert requests.get(sup.base_url + "/nope", timeout=10).status_code == 404
        # a non-loopback Host name is refused without a token (DNS rebinding)
        forged = requests.get(sup.metrics_url, headers={"Host": "evil.example"}, timeout=10)
        assert forged.status_code == 403
        sup.signal(signal.SIGTERM)
        assert sup.wait(timeout=1 + 10) == 0


def test_second_supervisor_for_the_same_fleet_exits_1(fleet: Path) -> None:
    with SuperviseProcess(fleet, args=["--interval", "5"]).running() as sup:
        sup.wait_for(lambda ticks: len(ticks) >= 1)
        second = subprocess.run(
            [*service_command(), "supervise", "--repo", str(fleet), "--once"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert second.stdout == ""
        lines = second.stderr.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("error: another supervisor is already running")
    # once the first one is gone, the lock is free again
    again = SuperviseProcess(fleet, args=["--once"])
    with again.running():
        assert again.wait(timeout=60) == 0


def test_sighup_reloads_the_registry(fleet: Path) -> None:
    write_registry(fleet, ["loop-a", "loop-b"])
    with SuperviseProcess(fleet, args=["--interval", "60"]).running() as sup:
        sup.wait_for(lambda ticks: len(ticks) >= 1)
        assert sup.ticks()[0]["loops"] == 2
        write_registry(fleet, ["loop-a", "loop-b", "loop-c"])
        sup.signal(signal.SIGHUP)  # also starts the next tick now instead of in 60 s
        ticks = sup.wait_for(lambda ticks: len(ticks) >= 2, timeout=30)
        assert ticks[1]["loops"] == 3
        assert ticks[1]["reloaded"] is True
        sup.signal(signal.SIGINT)
        assert sup.wait(timeout=60 + 10) == 0


@pytest.fixture
def hanging_sprite() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts and never answers (a wedged sprite)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        done.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def test_a_wedged_sprite_times_out_alone_and_healthz_goes_stale(
    fleet: Path, hanging_sprite: str
) -> None:
    write_registry(fleet, ["loop-a", "loop-b"])
    args = ["--interval", "0.5", "--loop-timeout", "4", "--max-parallel", "2"]
    env = {TOKEN_ENV: "test-token"}
    with SuperviseProcess(fleet, args=args, env=env).running() as sup:
        sup.wait_for(lambda ticks: len(ticks) >= 1)
        write_registry(
            fleet,
            [
                sprite_loop("wedged", hanging_sprite, timeout_seconds=60, retry_attempts=1),
                "loop-a",
                "loop-b",
            ],
        )
        sup.signal(signal.SIGHUP)
        # while the wedged loop holds the tick (4 s > 3 x 0.5 s), /healthz reports stale
        stale = False
        for _ in range(80):
            if requests.get(sup.base_url + "/healthz", timeout=10).status_code == 503:
                stale = True
                break
            if any(t.get("timedOut") for t in sup.ticks()):
                break
            threading.Event().wait(0.1)
        assert stale
        ticks = sup.wait_for(lambda ticks: any(t.get("timedOut") for t in ticks), timeout=60)
        slow = next(t for t in ticks if t.get("timedOut"))
        # the local loops were reconciled in the same tick; only the sprite failed
        assert (slow["loops"], slow["succeeded"], slow["failed"], slow["timedOut"]) == (3, 2, 1, 1)
        state = json.loads(FleetPaths.for_repo(fleet).state_file.read_text())
        by_id = {r["loopId"]: r for r in state["results"]}
        # (a later tick may already have replaced the state: the loop is then still running)
        assert by_id["wedged"]["status"] == "failed"
        assert by_id["wedged"]["reasonCode"] in (
            "supervise_loop_timeout",
            "supervise_loop_still_running",
        )
        assert by_id["loop-a"]["status"] == "success"
        # the next tick does not start a second reconcile of the still-wedged loop
        later = sup.wait_for(lambda ticks: len(ticks) > ticks.index(slow) + 1, timeout=60)
        nxt = later[later.index(slow) + 1]
        assert nxt["stillRunning"] + nxt["backoff"] == 1
        sup.signal(signal.SIGTERM)
        assert sup.wait(timeout=0.5 + 10) == 0


def test_non_loopback_metrics_host_requires_a_token(fleet: Path) -> None:
    bare = subprocess.run(
        [
            *service_command(),
            "supervise",
            "--repo",
            str(fleet),
            "--once",
            "--metrics-host",
            "0.0.0.0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_env(), "OPS_MANAGER_METRICS_TOKEN": ""},
    )
    assert bare.returncode == 1
    assert bare.stderr.startswith("error: --metrics-host 0.0.0.0 is not loopback")
    assert bare.stderr.count("\n") == 1
    assert not FleetPaths.for_repo(fleet).state_file.exists()
    env = {"OPS_MANAGER_METRICS_TOKEN": "s3cret-metrics"}
    args = ["--interval", "2", "--metrics-host", "0.0.0.0"]
    with SuperviseProcess(fleet, args=args, env=env).running() as sup:
        port = sup.metrics_url.rsplit(":", 1)[1].split("/")[0]
        url = f"http://127.0.0.1:{port}/metrics"
        assert requests.get(url, timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert requests.get(url, headers=wrong, timeout=10).status_code == 401
        good = {"Authorization": "Bearer s3cret-metrics"}
        assert _metrics(url, headers=good)
        sup.stop()
        assert "s3cret-metrics" not in sup.stderr_text()


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "error: --repo is required"),
        (["--repo", "{repo}", "--interval", "0"], "error: --interval must be a number > 0"),
        (["--repo", "{repo}", "--shard", "3/3"], "error: --shard must be K/N"),
        (["--repo", "{repo}", "--metrics-port", "70000"], "error: --metrics-port must be"),
    ],
)
def test_bad_flags_exit_1_with_one_error_line(fleet: Path, args: list[str], message: str) -> None:
    argv = [a.replace("{repo}", str(fleet)) for a in args]
    done = subprocess.run(
        [*service_command(), "supervise", *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith(message)
    assert done.stderr.count("\n") == 1


def test_an_invalid_registry_stops_start_up_with_nothing_written(tmp_path: Path) -> None:
    repo = tmp_path / "fleet"
    registry = FleetPaths.for_repo(repo).registry_file
    registry.parent.mkdir(parents=True)
    registry.write_text('{\n  "schemaVersion": "v1",\n  "loops": [\n')  # torn by an editor
    done = subprocess.run(
        [*service_command(), "supervise", "--repo", str(repo), "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"error: invalid fleet registry JSON: {registry}\n"
    assert sorted(p.name for p in registry.parent.iterdir()) == ["registry.v1.json"]
