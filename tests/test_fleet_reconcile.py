"""``ops-manager fleet-reconcile`` (``fleet.md`` §2.2, §3.1, §3.2, §4.1).

Three layers:

- the pure reducer (:mod:`ops_manager.reducers.fleet_reconcile`): the §3.2 reason table,
  trace ids, excerpts, pre-checks, result / state / telemetry shapes and key order;
- the engine on local loops (real loop reconciles in temp repos, an injected clock):
  ordering, skipped loops, a loop whose reconcile raises, the fleet lock, the files written;
- the CLI, including local + sprite_service loops against a REAL ``ops-manager
  sprite-service`` on 127.0.0.1, a dead service URL and a slow service that answers after
  its registry ``service.timeoutSeconds``, and the progress line on a (fake) terminal.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops_manager._timefmt import parse_ts
from ops_manager.cli import main
from ops_manager.cli.fleet_reconcile import ProgressLine, progress_line
from ops_manager.engine.fleet_reconcile import (
    FleetReconcileSettings,
    LoopDefaults,
    fleet_reconcile,
    loop_defaults_from_env,
)
from ops_manager.engine.reconcile import ReconcileResult, ReconcileSettings, reconcile
from ops_manager.errors import OpsError
from ops_manager.reducers.fleet_reconcile import (
    FleetExecution,
    LoopRun,
    classify_failure_text,
    derive_failure_reason,
    fleet_state,
    loop_result,
    loop_trace_id,
    output_excerpt,
    precheck,
    telemetry_row,
)
from ops_manager.store import FleetPaths, exclusive_lock
from tests.fleet_fixtures import (
    TOKEN_ENV,
    loop_entry,
    make_fleet_repo,
    reconcile_telemetry_row,
    sprite_loop,
    write_registry,
)
from tests.fleet_fixtures import fleet_state as fixture_fleet_state
from tests.fleet_fixtures import loop_result as fixture_loop_result
from tests.runtime_fixtures import make_runtime_repo, runtime_heartbeat, ts
from tests.service_process import ServiceProcess

#: the injected "now": 2 minutes after the fixture events, so fresh loops are healthy
NOW = parse_ts(ts(130))
assert NOW is not None
NO_ALERTS = LoopDefaults(alerts=None)

RESULT_KEYS_SUCCESS = [
    "timestamp",
    "startedAt",
    "loopId",
    "transport",
    "enabled",
    "status",
    "reconcileStatus",
    "healthStatus",
    "healthReasonCodes",
    "transitionState",
    "durationSeconds",
    "traceId",
    "sprite",
    "metadata",
    "files",
]
RESULT_KEYS_FAILED = [
    "timestamp",
    "startedAt",
    "loopId",
    "transport",
    "enabled",
    "status",
    "reasonCode",
    "reconcileStatus",
    "healthStatus",
    "healthReasonCodes",
    "durationSeconds",
    "traceId",
    "outputExcerpt",
    "sprite",
    "metadata",
    "files",
]
STATE_KEYS = [
    "schemaVersion",
    "updatedAt",
    "startedAt",
    "fleetId",
    "traceId",
    "status",
    "reasonCodes",
    "loopCount",
    "successCount",
    "failedCount",
    "skippedCount",
    "durationSeconds",
    "execution",
    "results",
]
TELEMETRY_KEYS = [
    "timestamp",
    "category",
    "fleetId",
    "traceId",
    "status",
    "reasonCodes",
    "loopCount",
    "successCount",
    "failedCount",
    "skippedCount",
    "durationSeconds",
    "results",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OPS_MANAGER_"):  # TOKEN_ENV included
            monkeypatch.delenv(key)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def service_loop(loop_id: str, base_url: str, **extra: Any) -> dict[str, Any]:
    """A sprite_service loop that fails fast: one attempt, no backoff."""
    return sprite_loop(loop_id, base_url, retry_attempts=1, retry_backoff_seconds=0, **extra)


def run_fleet(repo: Path, **kw: Any) -> dict[str, Any]:
    """The engine with the fixed clock and alerts off (unless given)."""
    kw.setdefault("loop_defaults", NO_ALERTS)
    kw.setdefault("env", {})
    options = {
        k: kw.pop(k)
        for k in ("max_parallel", "deterministic_order", "trace_id", "max_events", "from_start")
        if k in kw
    }
    settings = FleetReconcileSettings(repo=repo, **options)
    return fleet_reconcile(settings, clock=lambda: NOW, **kw).state


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["fleet-reconcile", *args])
    out, err = capsys.readouterr()
    return code, out, err


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def by_id(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["loopId"]: r for r in state["results"]}


# --------------------------------------------------------------------------------------------
# reducer: §3.2 reason derivation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("failure_json", "text", "expected"),
    [
        # rule 1: reasonCodes, by priority (not by position)
        (
            {"reasonCodes": ["reconcile_failed", "transport_unreachable"]},
            "",
            "transport_unreachable",
        ),
        (
            {"reasonCodes": ["projection_failed", "invalid_transport_payload"]},
            "",
            "invalid_transport_payload",
        ),
        ({"reasonCodes": ["ingest_stale", "projection_failed"]}, "", "projection_failed"),
        ({"reasonCodes": ["reconcile_failed"]}, "", "reconcile_failed"),
        # rule 1 beats rule 2
        (
            {
                "reasonCodes": ["projection_failed"],
                "transport": {"failureCode": "events_unavailable"},
            },
            "",
            "projection_failed",
        ),
        # rule 2: transport.failureCode
        (
            {"reasonCodes": [], "transport": {"failureCode": "snapshot_unavailable"}},
            "",
            "transport_unreachable",
        ),
        ({"transport": {"failureCode": "events_unavailable"}}, "", "transport_unreachable"),
        ({"transport": {"failureCode": "service_request_failed"}}, "", "transport_unreachable"),
        (
            {"transport": {"failureCode": "service_response_invalid"}},
            "",
            "invalid_transport_payload",
        ),
        ({"transport": {"failureCode": "custom_failure"}}, "", "custom_failure"),
        # rule 3: text, when the JSON has nothing usable (or there is no JSON)
        (
            {"reasonCodes": ["ingest_stale"], "transport": {"failureCode": ""}},
            "x",
            "reconcile_failed",
        ),
        (None, "error: missing required artifact: run-summary.json", "missing_runtime_artifacts"),
        (None, "no EVENTS ARTIFACT here", "missing_runtime_artifacts"),
        (None, "error: Service Request Failed (code=000)", "transport_unreachable"),
        (None, "health says transport_unreachable", "transport_unreachable"),
        (None, "curl: Connection refused", "transport_unreachable"),
        (None, "error: invalid state\nJSON: /x", "invalid_transport_payload"),
        (None, "an invalid payload arrived", "invalid_transport_payload"),
        (None, "json is invalid", "reconcile_failed"),
        (None, "", "reconcile_failed"),
        # text order: artifacts > unreachable > invalid json
        (None, "events artifact; connection refused; invalid json", "missing_runtime_artifacts"),
        (None, "connection refused; invalid json", "transport_unreachable"),
    ],
)
def test_failure_reason_derivation(
    failure_json: dict[str, Any] | None, text: str, expected: str
) -> None:
    assert derive_failure_reason(failure_json, text) == expected


def test_text_classification_is_case_insensitive() -> None:
    assert classify_failure_text("INVALID Transport JSON") == "invalid_transport_payload"


def test_loop_trace_id_sanitises_only_the_loop_id() -> None:
    assert loop_trace_id("trace fleet/1", "loop-b") == "trace fleet/1-loop-b"
    assert loop_trace_id("t", "a b/c:d_e.f-g") == "t-a-b-c-d_e.f-g"
    assert loop_trace_id("t", "lööp") == "t-l--p"


def test_output_excerpt() -> None:
    assert output_excerpt("") == " "
    assert output_excerpt("a\n\nb\t c\n") == "a b c "
    long = output_excerpt("x" * 700)
    assert long == "x" * 600
    cut = output_excerpt("é" * 400)  # 2 bytes each: the cut falls on a boundary at 600
    assert cut == "é" * 300
    odd = output_excerpt("a" + "é" * 400)  # 601st byte is the middle of a sequence
    assert odd.startswith("a" + "é" * 299) and odd.endswith("\ufffd")


@pytest.mark.parametrize(
    ("loop", "env", "expected"),
    [
        ({"loopId": "a", "enabled": False}, {}, ("skipped", "loop_disabled")),
        # disabled wins over every other problem
        (
            {"loopId": "a", "enabled": False, "transport": "sprite_service"},
            {},
            ("skipped", "loop_disabled"),
        ),
        (
            {"loopId": "a", "transport": "sprite_service", "service": {}},
            {},
            ("failed", "missing_service_base_url"),
        ),
        (
            {
                "loopId": "a",
                "transport": "sprite_service",
                "sprite": {"serviceBaseUrl": "http://x"},
            },
            {},
            None,
        ),
        (
            {"loopId": "a", "service": {"tokenEnv": "TOK"}},
            {},
            ("failed", "missing_service_token_env"),
        ),
        (
            {"loopId": "a", "service": {"tokenEnv": "TOK"}},
            {"TOK": ""},
            ("failed", "missing_service_token_env"),
        ),
        ({"loopId": "a", "service": {"tokenEnv": "TOK"}}, {"TOK": "s3cret"}, None),
        ({"loopId": "a", "enabled": True}, {}, None),
    ],
)
def test_prechecks(
    loop: dict[str, Any], env: dict[str, str], expected: tuple[str, str] | None
) -> None:
    assert precheck(loop, env) == expected


def test_result_shapes_and_key_order() -> None:
    loop = {
        "loopId": "loop-b",
        "enabled": True,
        "transport": "local",
        "sprite": {"id": "s1"},
        "service": {"retryAttempts": 3, "retryBackoffSeconds": 1},
        "metadata": {"k": "v"},
    }
    merged = {
        "transition": {"currentState": "running"},
        "health": {"status": "healthy", "reasonCodes": []},
    }
    ok = loop_result(
        loop,
        LoopRun(status="success", output=merged),
        repo_path="/abs/repo",
        trace_id="trace fleet/1-loop-b",
        started=NOW - 24,
        finished=NOW,
    )
    assert list(ok) == RESULT_KEYS_SUCCESS
    assert ok["durationSeconds"] == 24
    assert ok["transitionState"] == "running"
    ops = "/abs/repo/.superloop/ops-manager/loop-b"
    assert ok["files"] == {
        "stateFile": f"{ops}/state.json",
        "healthFile": f"{ops}/health.json",
        "cursorFile": f"{ops}/cursor.json",
        "reconcileTelemetryFile": f"{ops}/telemetry/reconcile.jsonl",
    }

    # A.8: a pre-check failure (no output): excerpt " ", health unknown
    pre = loop_result(
        {"loopId": "loop-c", "service": {"tokenEnv": "T"}},
        LoopRun.prechecked("failed", "missing_service_token_env"),
        repo_path="/abs/repo",
        trace_id="t-loop-c",
        started=NOW,
        finished=NOW,
    )
    assert list(pre) == RESULT_KEYS_FAILED
    assert pre["reasonCode"] == "missing_service_token_env"
    assert pre["outputExcerpt"] == " "
    assert (pre["healthStatus"], pre["healthReasonCodes"]) == ("unknown", [])
    assert (pre["transport"], pre["enabled"], pre["sprite"], pre["metadata"]) == (
        "local",
        True,
        {},
        {},
    )

    # a failed pass: health from the failure JSON, reason derived (§3.2)
    health = {
        "status": "degraded",
        "reasonCodes": ["transport_unreachable"],
        "transport": {"failureCode": "snapshot_unavailable"},
    }
    failed = loop_result(
        {"loopId": "x"},
        LoopRun(status="failed", output=health, output_text='{"status":"degraded"}\nerror: boom'),
        repo_path="/r",
        trace_id="t-x",
        started=NOW,
        finished=NOW,
    )
    assert list(failed) == RESULT_KEYS_FAILED
    assert (failed["reasonCode"], failed["healthStatus"]) == ("transport_unreachable", "degraded")
    assert failed["outputExcerpt"] == '{"status":"degraded"} error: boom '

    skipped = loop_result(
        {"loopId": "off", "enabled": False},
        LoopRun.prechecked("skipped", "loop_disabled"),
        repo_path="/r",
        trace_id="t-off",
        started=NOW,
        finished=NOW,
    )
    assert (skipped["status"], skipped["reconcileStatus"], skipped["enabled"]) == (
        "skipped",
        "skipped",
        False,
    )


def _result(status: str, health: str = "unknown") -> dict[str, Any]:
    return {"status": status, "healthStatus": health}


@pytest.mark.parametrize(
    ("results", "status", "codes"),
    [
        ([_result("success"), _result("failed")], "partial_failure", ["fleet_partial_failure"]),
        ([_result("failed"), _result("failed")], "failed", ["fleet_reconcile_failed"]),
        ([_result("skipped"), _result("skipped")], "success", ["fleet_loop_skipped"]),
        (
            [_result("failed"), _result("skipped")],
            "failed",
            ["fleet_loop_skipped", "fleet_reconcile_failed"],
        ),
        (
            [_result("success", "critical"), _result("success", "degraded")],
            "success",
            ["fleet_health_critical"],
        ),
        (
            [_result("success", "degraded"), _result("success", "healthy")],
            "success",
            ["fleet_health_degraded"],
        ),
        ([_result("success", "healthy")], "success", []),
    ],
)
def test_fleet_rollup(results: list[dict[str, Any]], status: str, codes: list[str]) -> None:
    state = fleet_state(
        results,
        fleet_id="f",
        trace_id="t",
        started=NOW,
        finished=NOW + 3,
        execution=FleetExecution(
            max_parallel=2, deterministic_order=False, from_start=False, max_events=0
        ),
    )
    assert list(state) == STATE_KEYS
    assert (state["status"], state["reasonCodes"]) == (status, codes)
    assert state["durationSeconds"] == 3
    assert list(state["execution"]) == [
        "maxParallel",
        "deterministicOrder",
        "fromStart",
        "maxEvents",
    ]
    row = telemetry_row(state)
    assert list(row) == TELEMETRY_KEYS
    assert row["category"] == "fleet_reconcile" and row["timestamp"] == state["updatedAt"]


def test_fleet_rollup_refuses_no_results() -> None:
    with pytest.raises(ValueError, match="no loop results"):
        fleet_state(
            [],
            fleet_id="f",
            trace_id="t",
            started=0,
            finished=0,
            execution=FleetExecution(1, False, False, 0),
        )


# --------------------------------------------------------------------------------------------
# engine on local loops
# --------------------------------------------------------------------------------------------
def test_partial_failure_sorted_state_and_telemetry(tmp_path: Path) -> None:
    """R-REC-1: only loop-b has runtime artifacts; sorted results; files written."""
    repo = make_runtime_repo(tmp_path / "repo", "loop-b")
    write_registry(repo, [loop_entry("loop-b"), loop_entry("loop-a")], fleet_id="fleet-1")
    state = run_fleet(
        repo, deterministic_order=True, max_parallel=2, trace_id="trace-fleet-partial-1"
    )
    assert [r["loopId"] for r in state["results"]] == ["loop-a", "loop-b"]
    assert (state["status"], state["successCount"], state["failedCount"]) == (
        "partial_failure",
        1,
        1,
    )
    assert "fleet_partial_failure" in state["reasonCodes"]
    a, b = state["results"]
    assert a["status"] == "failed" and a["reasonCode"] == "transport_unreachable"
    assert "transport_unreachable" in a["healthReasonCodes"]
    assert a["outputExcerpt"].startswith("error: reconcile failed (snapshot_unavailable): ")
    assert b["status"] == "success" and b["healthStatus"] == "healthy"
    assert (a["traceId"], b["traceId"]) == (
        "trace-fleet-partial-1-loop-a",
        "trace-fleet-partial-1-loop-b",
    )
    assert state["fleetId"] == "fleet-1"
    assert state["execution"] == {
        "maxParallel": 2,
        "deterministicOrder": True,
        "fromStart": False,
        "maxEvents": 0,
    }

    paths = FleetPaths.for_repo(repo)
    on_disk = paths.state_file.read_text()
    assert on_disk == json.dumps(state, ensure_ascii=False, separators=(",", ":")) + "\n"
    assert list(json.loads(on_disk)) == STATE_KEYS
    rows = read_jsonl(paths.reconcile_telemetry_file)
    assert len(rows) == 1 and list(rows[0]) == TELEMETRY_KEYS
    assert rows[0]["traceId"] == "trace-fleet-partial-1"
    assert rows[0]["results"] == state["results"]
    # the loop reconcile really ran and wrote its per-loop artifacts with the loop trace id
    loop_state = json.loads(Path(b["files"]["stateFile"]).read_text())
    assert loop_state["trace"]["reconcileTraceId"] == "trace-fleet-partial-1-loop-b"

    # a second run appends a second telemetry row and overwrites the state
    run_fleet(repo, trace_id="second")
    assert [r["traceId"] for r in read_jsonl(paths.reconcile_telemetry_file)] == [
        "trace-fleet-partial-1",
        "second",
    ]
    assert json.loads(paths.state_file.read_text())["traceId"] == "second"


class _ShuffledReconcile:
    """A stand-in loop reconcile whose loops finish in reverse launch order."""

    def __init__(self, delays: dict[str, float]) -> None:
        self.delays = delays
        self.finished: list[str] = []
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def __call__(self, settings: ReconcileSettings, *, clock: Any) -> ReconcileResult:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delays.get(settings.loop_id, 0))
        with self.lock:
            self.active -= 1
            self.finished.append(settings.loop_id)
        return ReconcileResult(ok=True, output={"health": {"status": "healthy", "reasonCodes": []}})


def test_results_come_back_in_launch_order_not_completion_order(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write_registry(repo, [loop_entry("loop-c"), loop_entry("loop-a"), loop_entry("loop-b")])
    fake = _ShuffledReconcile({"loop-c": 0.3, "loop-a": 0.15, "loop-b": 0.0})
    state = run_fleet(repo, max_parallel=3, reconcile_fn=fake)
    assert fake.finished == ["loop-b", "loop-a", "loop-c"]
    assert [r["loopId"] for r in state["results"]] == ["loop-c", "loop-a", "loop-b"]
    assert state["execution"]["deterministicOrder"] is False

    fake = _ShuffledReconcile({"loop-a": 0.3, "loop-b": 0.15})
    for _ in range(2):  # R-REC-2: stable across runs
        state = run_fleet(repo, max_parallel=3, deterministic_order=True, reconcile_fn=fake)
        assert [r["loopId"] for r in state["results"]] == ["loop-a", "loop-b", "loop-c"]


def test_max_parallel_bounds_concurrency(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write_registry(repo, [loop_entry(f"loop-{i}") for i in range(8)])
    fake = _ShuffledReconcile({f"loop-{i}": 0.05 for i in range(8)})
    run_fleet(repo, max_parallel=3, reconcile_fn=fake)
    assert fake.peak == 3
    fake = _ShuffledReconcile({f"loop-{i}": 0.01 for i in range(8)})
    run_fleet(repo, max_parallel=1, reconcile_fn=fake)
    assert fake.peak == 1


def test_disabled_loops_are_skipped_without_a_reconcile(tmp_path: Path) -> None:
    """DECISIONS 6.1: ``enabled: false`` is honoured."""
    repo = make_runtime_repo(tmp_path / "repo", "loop-on")
    make_runtime_repo(repo, "loop-off")
    write_registry(
        repo, [loop_entry("loop-off", enabled=False, metadata={"team": "x"}), loop_entry("loop-on")]
    )
    state = run_fleet(repo, trace_id="t")
    off, on = state["results"]
    assert off["status"] == "skipped" and off["reconcileStatus"] == "skipped"
    assert (off["reasonCode"], off["enabled"], off["outputExcerpt"]) == (
        "loop_disabled",
        False,
        " ",
    )
    assert off["metadata"] == {"team": "x"}
    assert on["status"] == "success"
    assert (state["status"], state["skippedCount"], state["successCount"]) == ("success", 1, 1)
    assert "fleet_loop_skipped" in state["reasonCodes"]
    assert not (repo / ".superloop" / "ops-manager" / "loop-off").exists()


def test_a_loop_whose_reconcile_raises_is_a_failed_result(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "repo", "loop-ok")
    make_runtime_repo(repo, "loop-boom")
    write_registry(repo, [loop_entry("loop-boom"), loop_entry("loop-ok"), loop_entry("loop-ops")])

    def flaky(settings: ReconcileSettings, *, clock: Any) -> ReconcileResult:
        if settings.loop_id == "loop-boom":
            raise RuntimeError("disk on fire")
        if settings.loop_id == "loop-ops":
            raise OpsError("corrupt stream /x/escalations.jsonl: invalid JSON at line 3")
        return reconcile(settings, clock=clock)

    state = run_fleet(repo, max_parallel=2, reconcile_fn=flaky)
    results = by_id(state)
    boom = results["loop-boom"]
    assert (boom["status"], boom["reasonCode"]) == ("failed", "reconcile_failed")
    assert boom["outputExcerpt"] == "error: internal error: RuntimeError: disk on fire "
    # an operator-facing error of the loop reconcile: same treatment, its message kept
    ops = results["loop-ops"]
    assert (ops["status"], ops["reasonCode"]) == ("failed", "invalid_transport_payload")
    assert ops["outputExcerpt"].startswith("error: corrupt stream /x/escalations.jsonl")
    assert results["loop-ok"]["status"] == "success"
    assert state["status"] == "partial_failure"


def test_missing_token_env_fails_only_that_loop(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "repo", "loop-a")
    make_runtime_repo(repo, "loop-b")
    write_registry(
        repo,
        [loop_entry("loop-a", service={"tokenEnv": TOKEN_ENV}), loop_entry("loop-b")],
    )
    results = by_id(run_fleet(repo))
    assert results["loop-a"]["reasonCode"] == "missing_service_token_env"
    assert results["loop-b"]["status"] == "success"
    results = by_id(run_fleet(repo, env={TOKEN_ENV: "x"}))
    assert results["loop-a"]["status"] == "success"


def test_health_flows_into_results(tmp_path: Path) -> None:
    """R-REC-4 (local half): stale heartbeats are degraded / critical, a loop without
    artifacts fails with ``transport_unreachable``; reasons roll up."""
    repo = make_fleet_repo(
        tmp_path / "repo",
        ["loop-deg", "loop-crit", "loop-gone"],
        without_artifacts=["loop-gone"],
        heartbeat_ages={"loop-deg": 180, "loop-crit": 900},
        now=NOW,
    )
    state = run_fleet(repo, max_parallel=4)
    results = by_id(state)
    assert results["loop-deg"]["healthStatus"] == "degraded"
    assert results["loop-crit"]["healthStatus"] == "critical"
    gone = results["loop-gone"]
    assert (gone["status"], gone["reasonCode"]) == ("failed", "transport_unreachable")
    assert "transport_unreachable" in gone["healthReasonCodes"]
    assert state["status"] == "partial_failure"
    assert state["reasonCodes"] == ["fleet_health_critical", "fleet_partial_failure"]


def test_output_matches_the_shared_fleet_fixtures(tmp_path: Path) -> None:
    """What fleet-reconcile really writes has the shapes the other fleet commands' tests
    build with ``tests.fleet_fixtures`` (key order included)."""
    repo = make_fleet_repo(
        tmp_path / "repo", ["loop-ok", "loop-gone", "loop-off"], without_artifacts=["loop-gone"]
    )
    write_registry(
        repo,
        [loop_entry("loop-ok"), loop_entry("loop-gone"), loop_entry("loop-off", enabled=False)],
    )
    state = run_fleet(repo, trace_id="trace-fleet-1")
    ok, gone, off = state["results"]
    fixtures = {
        "loop-ok": fixture_loop_result(repo, "loop-ok", transition_state="running"),
        "loop-gone": fixture_loop_result(repo, "loop-gone", status="failed"),
        "loop-off": fixture_loop_result(repo, "loop-off", status="skipped", enabled=False),
    }
    for real in (ok, gone, off):
        expected = fixtures[real["loopId"]]
        if "transitionState" not in real:
            expected.pop("transitionState", None)
        assert list(real) == list(expected), real["loopId"]
        assert real["files"] == expected["files"]
        assert real["traceId"] == expected["traceId"]
    assert list(state) == list(fixture_fleet_state(state["results"]))
    assert state["reasonCodes"] == fixture_fleet_state(state["results"])["reasonCodes"]
    row = read_jsonl(FleetPaths.for_repo(repo).reconcile_telemetry_file)[-1]
    assert row == reconcile_telemetry_row(state)
    assert list(row) == list(reconcile_telemetry_row(state))


def test_the_fleet_lock_guards_only_the_fleet_write(tmp_path: Path) -> None:
    """Per-loop work runs while another writer holds the fleet lock; the fleet state waits."""
    repo = make_runtime_repo(tmp_path / "repo", "loop-a")
    write_registry(repo, [loop_entry("loop-a")])
    paths = FleetPaths.for_repo(repo)
    loop_state = repo / ".superloop" / "ops-manager" / "loop-a" / "state.json"
    outcome: dict[str, Any] = {}

    def background() -> None:
        outcome["state"] = run_fleet(repo)

    with exclusive_lock(paths.lock_file):
        worker = threading.Thread(target=background)
        worker.start()
        deadline = time.monotonic() + 10
        while not loop_state.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert loop_state.exists(), "the loop reconcile must not wait for the fleet lock"
        time.sleep(0.2)
        assert not paths.state_file.exists(), "the fleet state must wait for the fleet lock"
    worker.join(10)
    assert outcome["state"]["status"] == "success"
    assert paths.state_file.exists()


def test_alerts_follow_the_environment(tmp_path: Path) -> None:
    """alerts.md §4.1: no alert flags; each loop pass dispatches unless the env says false."""
    repo = make_runtime_repo(tmp_path / "repo", "loop-a")
    write_registry(repo, [loop_entry("loop-a")])
    dispatch_state = repo / ".superloop" / "ops-manager" / "loop-a" / "alert-dispatch-state.json"
    run_fleet(repo, loop_defaults=loop_defaults_from_env({"OPS_MANAGER_ALERTS_ENABLED": "false"}))
    assert not dispatch_state.exists()
    run_fleet(repo, loop_defaults=loop_defaults_from_env({}))
    assert dispatch_state.exists()
    with pytest.raises(OpsError, match="OPS_MANAGER_ALERTS_ENABLED must be true or false"):
        loop_defaults_from_env({"OPS_MANAGER_ALERTS_ENABLED": "yes"})


def test_loop_defaults_follow_the_threshold_profile_env() -> None:
    defaults = loop_defaults_from_env({"OPS_MANAGER_THRESHOLD_PROFILE": "strict"})
    assert defaults.thresholds.profile == "strict"
    assert defaults.default_service_token is None
    assert loop_defaults_from_env({"OPS_MANAGER_SERVICE_TOKEN": "t"}).default_service_token == "t"


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def test_cli_flag_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli([], capsys)[2] == "error: --repo is required\n"
    code, _, err = cli(["--repo", str(tmp_path), "--max-parallel", "0"], capsys)
    assert (code, err) == (1, "error: --max-parallel must be an integer >= 1\n")
    code, _, err = cli(["--repo", str(tmp_path), "--max-parallel", "x"], capsys)
    assert err == "error: --max-parallel must be an integer >= 1\n"
    code, _, err = cli(["--repo", str(tmp_path), "--max-events", "-1"], capsys)
    assert (code, err) == (1, "error: --max-events must be a non-negative integer\n")
    code, _, err = cli(["--repo", str(tmp_path), "--bogus"], capsys)
    assert code == 1 and err == "error: unknown argument: --bogus\n"


def test_cli_bad_registry_is_the_registry_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    paths = FleetPaths.for_repo(repo)
    code, out, err = cli(["--repo", str(repo)], capsys)
    assert code == 1 and out == ""
    assert err == f"error: fleet registry file not found: {paths.registry_file}\n"
    # the fleet dirs exist anyway (upstream creates them first, §6.23); nothing else is written
    assert paths.telemetry_dir.is_dir()
    assert not paths.state_file.exists()

    paths.registry_file.write_text("{not json")
    code, _, err = cli(["--repo", str(repo)], capsys)
    assert code == 1 and err == f"error: invalid fleet registry JSON: {paths.registry_file}\n"

    write_registry(repo, [loop_entry("a", transport="sprite_service")])
    code, _, err = cli(["--repo", str(repo)], capsys)
    assert code == 1
    assert "sprite_service loops require service.baseUrl or sprite.serviceBaseUrl" in err
    assert not paths.state_file.exists()


def test_cli_writes_the_given_files_and_prints_the_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_runtime_repo(tmp_path / "repo", "loop-a")
    registry = write_registry(repo, ["loop-a"], path=tmp_path / "elsewhere" / "reg.json")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPS_MANAGER_TRACE_ID", "env-trace")
    monkeypatch.setenv("OPS_MANAGER_ALERTS_ENABLED", "false")
    code, out, err = cli(
        [
            "--repo",
            str(repo),
            "--registry-file",
            str(registry),
            "--fleet-state-file",
            "out/state.json",
            "--fleet-telemetry-file",
            "out/tel/reconcile.jsonl",
            "--max-events",
            "5",
            "--from-start",
            "--pretty",
        ],
        capsys,
    )
    assert code == 0, err
    assert err == ""  # not a terminal: no progress line
    state = json.loads(out)
    assert out.startswith('{\n  "schemaVersion": "v1",')
    assert state["traceId"] == "env-trace"
    assert state["fleetId"] == "default"
    assert state["execution"] == {
        "maxParallel": 2,
        "deterministicOrder": False,
        "fromStart": True,
        "maxEvents": 5,
    }
    assert json.loads((tmp_path / "out" / "state.json").read_text()) == state
    assert len(read_jsonl(tmp_path / "out" / "tel" / "reconcile.jsonl")) == 1
    assert not FleetPaths.for_repo(repo).state_file.exists()


class _FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_renders_in_place() -> None:
    stream = io.StringIO()
    ticks = iter([0.0, 0.01, 0.02, 0.5, 1.0])
    line = ProgressLine(stream, min_interval=0.1, clock=lambda: next(ticks))
    line(1, 3, 0)  # t=0.01: first update is always written
    line(2, 3, 1)  # t=0.02: throttled
    line(3, 3, 1)  # t=0.5: the last one is always written
    line.finish()
    assert stream.getvalue() == (
        "\rreconciled 1/3 loops (0 failed) 0.0s\x1b[K\rreconciled 3/3 loops (1 failed) 0.5s\x1b[K\n"
    )
    assert progress_line(_FakeTerminal(), quiet=True) is None
    assert progress_line(io.StringIO(), quiet=False) is None
    assert isinstance(progress_line(_FakeTerminal(), quiet=False), ProgressLine)


def test_cli_progress_on_a_terminal_stderr_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_runtime_repo(tmp_path / "repo", "loop-a")
    make_runtime_repo(repo, "loop-b")
    write_registry(repo, [loop_entry("loop-a"), loop_entry("loop-b")])
    monkeypatch.setenv("OPS_MANAGER_ALERTS_ENABLED", "false")
    terminal = _FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    code = main(["fleet-reconcile", "--repo", str(repo), "--max-parallel", "2"])
    out = capsys.readouterr().out
    assert code == 0
    json.loads(out)  # stdout is only the JSON document
    shown = terminal.getvalue()
    assert shown.startswith("\rreconciled ") and shown.endswith("\n")
    assert "reconciled 2/2 loops (0 failed)" in shown
    terminal.truncate(0)
    terminal.seek(0)
    assert main(["fleet-reconcile", "--repo", str(repo), "--quiet"]) == 0
    assert terminal.getvalue() == ""


# --------------------------------------------------------------------------------------------
# local + sprite_service loops against real services
# --------------------------------------------------------------------------------------------
class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request only after ``server.delay`` seconds (or when released)."""

    def do_GET(self) -> None:
        release: threading.Event = self.server.release  # type: ignore[attr-defined]
        release.wait(self.server.delay)  # type: ignore[attr-defined]
        body = b'{"ok":true}'
        with contextlib.suppress(OSError):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def slow_server(delay: float) -> Iterator[str]:
    """A loopback HTTP server that sleeps ``delay`` s before answering; always stopped."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.daemon_threads = True
    server.delay = delay  # type: ignore[attr-defined]
    server.release = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.release.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
        thread.join(5)


#: the slow service's registry ``service.timeoutSeconds``; its server sleeps well past it
SLOW_LOOP_TIMEOUT_SECONDS = 1


def test_mixed_transports_dead_and_slow_services(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Local + sprite_service loops in one run (R-REC-3/4 with a real service); a dead URL
    and a service slower than its registry ``service.timeoutSeconds`` fail only their own
    loops (the other sprite_service loops keep the client's default timeouts)."""
    token = "fleet-test-token"
    manager = make_runtime_repo(tmp_path / "manager", "local-ok")
    sprite = make_runtime_repo(tmp_path / "sprite", "svc-ok")
    make_runtime_repo(sprite, "svc-critical", heartbeat=runtime_heartbeat("2020-01-01T00:00:00Z"))
    for i in range(4):
        make_runtime_repo(manager, f"local-{i}")
    monkeypatch.setenv(TOKEN_ENV, token)
    monkeypatch.setenv("OPS_MANAGER_ALERTS_ENABLED", "false")
    with (
        ServiceProcess(sprite, token=token, args=["--quiet"]).running() as service,
        slow_server(delay=5.0) as slow_url,
    ):
        write_registry(
            manager,
            [
                service_loop("svc-slow", slow_url, timeout_seconds=SLOW_LOOP_TIMEOUT_SECONDS),
                service_loop("svc-dead", "http://127.0.0.1:9"),
                loop_entry("local-ok"),
                service_loop("svc-ok", service.url, sprite_id="sprite-1"),
                service_loop("svc-critical", service.url),
                service_loop("svc-missing", service.url),
                loop_entry("local-missing"),
                *[loop_entry(f"local-{i}") for i in range(4)],
            ],
        )
        code, out, err = cli(
            ["--repo", str(manager), "--max-parallel", "2", "--trace-id", "mixed"], capsys
        )
    assert code == 0, err
    state = json.loads(out)
    results = by_id(state)
    succeeded = sorted(k for k, r in results.items() if r["status"] == "success")
    assert succeeded == [
        "local-0",
        "local-1",
        "local-2",
        "local-3",
        "local-ok",
        "svc-critical",
        "svc-ok",
    ]
    for loop_id in ("svc-slow", "svc-dead", "svc-missing", "local-missing"):
        assert results[loop_id]["status"] == "failed", loop_id
        assert results[loop_id]["reasonCode"] == "transport_unreachable", loop_id
    assert "no response within" in results["svc-slow"]["outputExcerpt"]
    assert "connection refused" in results["svc-dead"]["outputExcerpt"]
    assert results["svc-critical"]["healthStatus"] == "critical"
    assert results["svc-ok"]["transport"] == "sprite_service"
    assert results["svc-ok"]["sprite"] == {"id": "sprite-1", "serviceBaseUrl": service.url}
    assert results["local-ok"]["transport"] == "local"
    assert [r["loopId"] for r in state["results"]][:3] == ["svc-slow", "svc-dead", "local-ok"]
    assert state["status"] == "partial_failure"
    assert state["successCount"] == 7 and state["failedCount"] == 4
    assert token not in out and token not in FleetPaths.for_repo(manager).state_file.read_text()
