"""``alert-dispatch`` / ``alert-replay`` against REAL loopback HTTP receivers.

Sinks are fakes registered in-test (types ``fakehook`` and ``fakepage``; see
``tests/test_alert_config.py``), so these tests exercise core delivery — retries,
``Retry-After``, the outbox, replay, crash safety, resolves, pacing — independently of the
sink plugins. The clock and the sleep are injected: nothing here actually waits.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager.cli import main
from ops_manager.engine.alert_delivery import HttpResponse, RequestsSender
from ops_manager.engine.alert_dispatch import (
    DispatchEffects,
    DispatchSettings,
    dispatch,
    iter_outbox,
    read_new_lines,
    run_dispatch_after_reconcile,
)
from ops_manager.errors import OpsError
from ops_manager.store import LoopPaths, Position
from tests.test_alert_config import FakeSinksPlugin, FakeUrlSink

LOOP = "demo-loop"
SHIPPED = Path(__file__).resolve().parent.parent / "config" / "ops-manager-alert-sinks.v1.json"
SECRET_PATH = "/hooks/s3cr3t-token-path"


# --- loopback receivers ------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 (random port) that records POSTs and answers from a
    script of ``(status, headers, body)`` (then 200 forever)."""

    def __init__(self, script: list[tuple[int, dict[str, str], str]] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    status, headers, text = (
                        receiver.script.pop(0) if receiver.script else (200, {}, "ok")
                    )
                data = text.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]

    def keys(self) -> list[str]:
        return [r["headers"]["Idempotency-Key"] for r in self.requests]


def dead_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{SECRET_PATH}"


class FakeClock:
    """Injected time: ``sleep`` only advances it (and records the pause)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("OPS_MANAGER_", "TEST_ALERT_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def fakes() -> Iterator[None]:
    from ops_manager.plugins import get_plugin_manager

    pm = get_plugin_manager()
    plugin = FakeSinksPlugin(FakeUrlSink("fakehook"), FakeUrlSink("fakepage", min_interval=0.5))
    pm.register(plugin, name="test-dispatch-fakes")
    try:
        yield
    finally:
        pm.unregister(plugin)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".superloop" / "ops-manager" / LOOP / "telemetry").mkdir(parents=True)
    return root.resolve()


def ops(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def telemetry(repo: Path) -> list[dict[str, Any]]:
    return read_jsonl(ops(repo) / "telemetry" / "alerts.jsonl")


def state(repo: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ops(repo) / "alert-dispatch-state.json").read_text())
    return data


def escalate(repo: Path, *rows: dict[str, Any] | str) -> None:
    """Append escalation rows the way reconcile does (compact JSON + newline)."""
    path = ops(repo) / "escalations.jsonl"
    with open(path, "a", encoding="utf-8") as handle:
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row)) + "\n")


def esc(category: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "timestamp": f"2026-11-22T00:00:{n:02d}Z",
        "loopId": LOOP,
        "traceId": f"trace-esc-{n}",
        "category": category,
        "stateFile": f"/abs/manager/{n}/state.json",
        "reasonCodes": ["ingest_stale"],
        **extra,
    }


def write_config(tmp_path: Path, **delivery: Any) -> Path:
    """``hook`` (fakehook) for health_degraded, ``hook`` + ``page`` (fakepage, 0.5 s
    pacing) for health_critical, ``hook`` by default."""
    cfg = {
        "schemaVersion": "v1",
        "defaultMinSeverity": "warning",
        "sinks": {
            "hook": {"enabled": True, "type": "fakehook", "urlEnv": "TEST_ALERT_HOOK_URL"},
            "page": {
                "enabled": True,
                "type": "fakepage",
                "urlEnv": "TEST_ALERT_PAGE_URL",
                "timeoutSeconds": 2,
            },
        },
        "routing": {
            "defaultSinks": ["hook"],
            "categorySeverity": {"health_degraded": "warning", "health_critical": "critical"},
            "routes": [
                {
                    "category": "health_critical",
                    "sinks": ["hook", "page"],
                    "minSeverity": "warning",
                },
                {"category": "health_degraded", "sinks": ["hook"]},
            ],
        },
        **({"delivery": delivery} if delivery else {}),
    }
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def run(
    repo: Path,
    config: Path,
    env: dict[str, str],
    clock: FakeClock | None = None,
    trace: str = "trace-d",
    **kw: Any,
) -> dict[str, Any]:
    clock = clock or FakeClock()
    return dispatch(
        DispatchSettings(repo=repo, loop_id=LOOP, trace_id=trace, config_file=str(config), **kw),
        DispatchEffects(clock=clock, sleep=clock.sleep, rng=lambda: 0.5, environ=env),
    )


STATE_KEYS = [
    "schemaVersion",
    "updatedAt",
    "loopId",
    "traceId",
    "escalationsFile",
    "dispatchTelemetryFile",
    "status",
    "processedCount",
    "dispatchedCount",
    "skippedCount",
    "failedCount",
    "failureReasonCodes",
    "escalationsLineOffset",
    "escalationsLineCount",
]


# --- the contract (R8, §3) ---------------------------------------------------------------


def test_r8_shipped_config_skips_everything_and_is_idempotent(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    escalate(
        repo,
        {
            "timestamp": "2026-11-22T00:00:00Z",
            "loopId": LOOP,
            "category": "health_degraded",
            "reasonCodes": ["ingest_stale"],
        },
        {
            "timestamp": "2026-11-22T00:00:01Z",
            "loopId": LOOP,
            "category": "divergence_detected",
            "reasonCodes": [],
        },
    )
    argv = [
        "alert-dispatch",
        "--repo",
        str(repo),
        "--loop",
        LOOP,
        "--alert-config-file",
        str(SHIPPED),
    ]
    assert main([*argv, "--trace-id", "trace-alert-dispatch-1"]) == 0
    out = json.loads(capsys.readouterr()[0])
    assert list(out)[: len(STATE_KEYS)] == STATE_KEYS
    assert list(out)[len(STATE_KEYS) :] == [
        "escalationsPosition",
        "resolveCount",
        "outbox",
        "episodes",
        "configError",
    ]
    assert out["configError"] is None
    assert (out["processedCount"], out["dispatchedCount"], out["skippedCount"]) == (2, 0, 2)
    assert out["status"] == "success" and out["failureReasonCodes"] == []
    assert main([*argv, "--trace-id", "trace-2"]) == 0
    again = json.loads(capsys.readouterr()[0])
    assert (again["status"], again["processedCount"]) == ("no_new_escalations", 0)
    rows = telemetry(repo)
    assert len(rows) == 2 and rows[0]["traceId"] == "trace-alert-dispatch-1"
    assert [r["reasonCode"] for r in rows] == ["no_dispatchable_sinks"] * 2
    assert list(rows[0]) == [
        "timestamp",
        "loopId",
        "traceId",
        "escalationTraceId",
        "category",
        "escalationCategory",
        "escalationTimestamp",
        "eventSeverity",
        "status",
        "reasonCode",
        "escalation",
        "route",
        "sinkCount",
        "dispatchedSinkCount",
        "failedSinkCount",
        "dedupKey",
    ]
    assert state(repo)["escalationsLineOffset"] == 2
    assert (ops(repo) / "alert-dispatch-state.json").read_text().count("\n") == 1


def test_no_source_invalid_state_and_offset_ahead(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    argv = [
        "alert-dispatch",
        "--repo",
        str(repo),
        "--loop",
        LOOP,
        "--alert-config-file",
        str(SHIPPED),
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr()[0])
    assert (out["status"], out["escalationsLineOffset"], out["escalationsLineCount"]) == (
        "no_source",
        0,
        0,
    )
    state_file = ops(repo) / "alert-dispatch-state.json"
    state_file.write_text("{oops")
    assert main(argv) == 1
    assert capsys.readouterr()[1] == f"error: invalid dispatch state JSON: {state_file}\n"
    state_file.write_text("")  # empty state: offset 0
    escalate(repo, esc("health_degraded"))
    assert main(argv) == 0 and json.loads(capsys.readouterr()[0])["processedCount"] == 1
    state_file.write_text(json.dumps({"escalationsLineOffset": 5}))
    before = state_file.read_text()
    assert main(argv) == 1
    assert (
        capsys.readouterr()[1]
        == "error: dispatch state offset is ahead of escalation file: 5 > 1\n"
    )
    assert state_file.read_text() == before  # no state written


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--repo is required"),
        (["--repo", "."], "--loop is required"),
        (
            ["--repo", ".", "--loop", "x", "--max-escalations", "-1"],
            "--max-escalations must be a non-negative integer",
        ),
        (
            ["--repo", "/nonexistent/repo", "--loop", "x"],
            "repo directory not found: /nonexistent/repo",
        ),
    ],
)
def test_argument_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(["alert-dispatch", *argv]) == 1
    assert capsys.readouterr()[1] == f"error: {message}\n"


def test_bug2_bug3_rows_and_counting(repo: Path, tmp_path: Path, fakes: None) -> None:
    """Blank, invalid, non-object (BUG-2), null, no category, bad severity, torn tail (BUG-3)."""
    config = write_config(tmp_path)
    escalate(repo, "", "{oops", '"just a string"', "[1]", "null", '{"loopId":"x"}')
    escalate(repo, esc("health_degraded", severity="loud"))
    path = ops(repo) / "escalations.jsonl"
    with open(path, "a") as handle:
        handle.write('{"category":"health_degraded"')  # a write in progress
    with Receiver() as rx:
        st = run(repo, config, {"TEST_ALERT_HOOK_URL": rx.url})
        assert rx.requests == []
    assert (st["processedCount"], st["skippedCount"], st["failedCount"]) == (7, 1, 6)
    assert (st["escalationsLineOffset"], st["escalationsLineCount"]) == (7, 7)
    assert st["status"] == "failed"
    assert st["failureReasonCodes"] == [
        "invalid_escalation_json",
        "missing_escalation_category",
        "route_resolution_failed",
    ]
    rows = telemetry(repo)
    assert [r["reasonCode"] for r in rows] == [
        "invalid_escalation_json",
        "invalid_escalation_json",
        "invalid_escalation_json",
        "missing_escalation_category",
        "missing_escalation_category",
        "route_resolution_failed",
    ]
    assert rows[1]["rawLine"] == '"just a string"'
    assert list(rows[0]) == [
        "timestamp",
        "loopId",
        "traceId",
        "category",
        "status",
        "reasonCode",
        "rawLine",
    ]
    assert rows[3]["escalation"] is None and rows[4]["escalation"] == {"loopId": "x"}
    assert rows[5]["message"] == "error: --severity must be one of: info, warning, critical"
    # the torn line is picked up once complete
    with open(path, "a") as handle:
        handle.write("}\n")
    with Receiver() as rx:
        st = run(repo, config, {"TEST_ALERT_HOOK_URL": rx.url})
        assert len(rx.requests) == 1
    assert (st["processedCount"], st["dispatchedCount"], st["escalationsLineOffset"]) == (1, 1, 8)


def test_invalid_config_consumes_no_row(repo: Path, tmp_path: Path) -> None:
    """Issue 12 point 5: an unusable config no longer fails (and consumes) every row; the
    offset stays so the rows are delivered once the config is fixed
    (tests/test_alert_config_broken.py runs the whole story with a real receiver)."""
    bad = tmp_path / "bad.json"
    bad.write_text("")
    escalate(repo, esc("health_degraded"))
    st = run(repo, bad, {})
    assert (st["status"], st["failedCount"], st["failureReasonCodes"]) == (
        "config_invalid",
        0,
        ["alert_config_invalid"],
    )
    assert (st["escalationsLineOffset"], st["escalationsLineCount"]) == (0, 1)
    assert st["configError"]["pendingEscalationCount"] == 1
    (row,) = telemetry(repo)
    assert row["message"] == f"invalid alert sink config JSON: {bad}"
    assert list(row) == [
        "timestamp",
        "loopId",
        "traceId",
        "category",
        "status",
        "reasonCode",
        "message",
        "configFile",
        "pendingEscalationCount",
    ]


# --- delivery ----------------------------------------------------------------------------


def test_success_payload_identifiers_and_q19(repo: Path, tmp_path: Path, fakes: None) -> None:
    (ops(repo) / "state.json").write_text(json.dumps({"run": {"runId": "run-77"}}))
    escalate(repo, esc("health_critical", 1))
    with Receiver() as hook, Receiver() as page:
        env = {"TEST_ALERT_HOOK_URL": hook.url, "TEST_ALERT_PAGE_URL": page.url}
        st = run(repo, write_config(tmp_path), env)
        (h,) = hook.bodies()
        (p,) = page.bodies()
        assert hook.requests[0]["path"] == SECRET_PATH
        assert hook.keys() == page.keys()
    assert (st["status"], st["dispatchedCount"], st["failedCount"]) == ("success", 1, 0)
    assert h["action"] == "trigger" and h["loopId"] == LOOP and h["runId"] == "run-77"
    assert (h["traceId"], h["severity"], h["category"]) == (
        "trace-esc-1",
        "critical",
        "health_critical",
    )
    assert h["reasonCodes"] == ["ingest_stale"]
    assert "stateFile" not in h["escalation"]  # absolute path outside the repo: removed
    assert h["dedupKey"] == p["dedupKey"] == f"{LOOP}:health:2026-11-22T00:00:01Z:L1"
    (row,) = telemetry(repo)
    assert row["status"] == "dispatched" and "reasonCode" not in row
    assert row["sinks"][0] == {
        "id": "hook",
        "type": "fakehook",
        "status": "success",
        "httpStatus": 200,
        "reasonCode": None,
        "message": "ok",
        "attempts": 1,
        "outboxStatus": "delivered",
    }
    assert (row["sinkCount"], row["dispatchedSinkCount"], row["failedSinkCount"]) == (2, 2, 0)
    assert row["action"] == "trigger" and row["idempotencyKey"] == h["idempotencyKey"]
    assert row["escalation"]["stateFile"] == "/abs/manager/1/state.json"  # local record: kept
    # the secret URL (and its path) is in no file
    for path in ops(repo).rglob("*"):
        if path.is_file():
            assert "s3cr3t" not in path.read_text(encoding="utf-8"), path


def test_503_then_success_is_retried_with_the_same_key(
    repo: Path, tmp_path: Path, fakes: None
) -> None:
    escalate(repo, esc("health_degraded"))
    clock = FakeClock()
    with Receiver([(503, {}, "busy"), (503, {}, "busy")]) as rx:
        st = run(repo, write_config(tmp_path), {"TEST_ALERT_HOOK_URL": rx.url}, clock)
        assert len(rx.requests) == 3
        assert len(set(rx.keys())) == 1
    assert st["status"] == "success"
    assert clock.sleeps == [0.25, 0.5]  # full jitter with u=0.5: 0.5*0.5, 0.5*1.0
    (row,) = telemetry(repo)
    assert row["sinks"][0]["attempts"] == 3 and row["sinks"][0]["status"] == "success"


def test_429_retry_after_is_honoured_and_recorded(repo: Path, tmp_path: Path, fakes: None) -> None:
    escalate(repo, esc("health_degraded"))
    clock = FakeClock()
    with Receiver([(429, {"Retry-After": "1"}, "slow down")]) as rx:
        run(repo, write_config(tmp_path), {"TEST_ALERT_HOOK_URL": rx.url}, clock)
        assert len(rx.requests) == 2
    assert clock.sleeps == [1.0]
    sink = telemetry(repo)[0]["sinks"][0]
    assert (sink["status"], sink["attempts"], sink["retryAfterSeconds"]) == ("success", 2, 1.0)


def test_long_retry_after_defers_to_a_later_run(repo: Path, tmp_path: Path, fakes: None) -> None:
    escalate(repo, esc("health_degraded"))
    clock = FakeClock()
    config = write_config(tmp_path, maxRetryAfterSeconds=5)
    with Receiver([(429, {"Retry-After": "120"}, "")]) as rx:
        env = {"TEST_ALERT_HOOK_URL": rx.url}
        st = run(repo, config, env, clock)
        assert len(rx.requests) == 1 and clock.sleeps == []
        assert st["outbox"]["pendingCount"] == 1
        (entry,) = iter_outbox(LoopPaths.for_loop(repo, LOOP))
        assert entry.status == "retrying" and entry.last["retryAfterSeconds"] == 120.0
        clock.now += 60  # not due yet: untouched
        run(repo, config, env, clock)
        assert len(rx.requests) == 1
        clock.now += 61
        st = run(repo, config, env, clock)
        assert len(rx.requests) == 2 and len(set(rx.keys())) == 1
    assert st["outbox"] == {
        "pendingCount": 0,
        "terminalCount": 0,
        "gaveUpCount": 0,
        "retriedCount": 1,
        "deliveredFromOutboxCount": 1,
    }


def test_terminal_400_is_kept_and_replayable(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path, fakes: None
) -> None:
    escalate(repo, esc("health_degraded"))
    config = write_config(tmp_path)
    with Receiver([(400, {}, "invalid_payload")]) as rx:
        st = run(repo, config, {"TEST_ALERT_HOOK_URL": rx.url})
        assert len(rx.requests) == 1  # terminal: no retry
        assert (st["status"], st["failureReasonCodes"]) == ("failed", ["http_error"])
        assert st["outbox"]["terminalCount"] == 1
        sink = telemetry(repo)[0]["sinks"][0]
        assert (sink["reasonCode"], sink["httpStatus"], sink["message"]) == (
            "http_error",
            400,
            "invalid_payload",
        )
        assert sink["outboxStatus"] == "terminal"
        # later runs leave it alone
        run(repo, config, {"TEST_ALERT_HOOK_URL": rx.url})
        assert len(rx.requests) == 1
        os.environ["TEST_ALERT_HOOK_URL"] = rx.url
        try:
            base = [
                "alert-replay",
                "--repo",
                str(repo),
                "--loop",
                LOOP,
                "--alert-config-file",
                str(config),
            ]
            assert main(base) == 0  # nothing pending without --include-terminal
            assert json.loads(capsys.readouterr()[0])["selectedCount"] == 0
            assert main([*base, "--include-terminal", "--dry-run"]) == 0
            report = json.loads(capsys.readouterr()[0])
            assert report["notifications"][0]["status"] == "would_send" and len(rx.requests) == 1
            assert (
                main([*base, "--include-terminal", "--sink", "hook", "--trace-id", "tr-replay"])
                == 0
            )
            report = json.loads(capsys.readouterr()[0])
        finally:
            del os.environ["TEST_ALERT_HOOK_URL"]
        assert len(rx.requests) == 2 and rx.keys()[0] == rx.keys()[1]
    assert (report["selectedCount"], report["deliveredCount"], report["failedCount"]) == (1, 1, 0)
    (entry,) = iter_outbox(LoopPaths.for_loop(repo, LOOP))
    assert entry.status == "delivered" and entry.attempts == 2
    last = telemetry(repo)[-1]
    assert (last["source"], last["traceId"], last["status"]) == (
        "replay",
        "tr-replay",
        "dispatched",
    )


def test_receiver_down_for_a_run_then_outbox_delivers_once_per_key(
    repo: Path, tmp_path: Path, fakes: None
) -> None:
    config = write_config(tmp_path, maxAttempts=3)
    escalate(repo, esc("health_degraded", 1), esc("health_degraded", 2))
    clock = FakeClock()
    st = run(repo, config, {"TEST_ALERT_HOOK_URL": dead_url()}, clock)
    assert (st["status"], st["failedCount"], st["escalationsLineOffset"]) == ("failed", 2, 2)
    assert st["failureReasonCodes"] == ["delivery_deferred", "request_failed"]
    assert st["outbox"]["pendingCount"] == 2
    rows = telemetry(repo)
    assert rows[0]["sinks"][0]["reasonCode"] == "request_failed"
    assert rows[0]["sinks"][0]["attempts"] == 3
    assert "127.0.0.1" in rows[0]["sinks"][0]["message"] and "s3cr3t" not in json.dumps(rows)
    # the destination is down: the second row is not even tried in this run
    assert rows[1]["sinks"][0]["reasonCode"] == "delivery_deferred"
    assert rows[1]["sinks"][0]["attempts"] == 0
    escalate(repo, esc("health_degraded", 3))
    clock.now += 60  # the next reconcile pass, a minute later: the retry is due
    with Receiver() as rx:
        st = run(repo, config, {"TEST_ALERT_HOOK_URL": rx.url}, clock)
        keys = rx.keys()
        assert len(keys) == 3 and len(set(keys)) == 3  # exactly one delivery per key
        order = [b["escalation"]["timestamp"][-3:-1] for b in rx.bodies()]
        assert order == ["01", "02", "03"]  # the outbox goes first, in queue order
        st = run(repo, config, {"TEST_ALERT_HOOK_URL": rx.url}, clock)
        assert len(rx.requests) == 3
    assert st["outbox"]["pendingCount"] == 0


class SimulatedCrash(BaseException):
    """Raised after a request reached the receiver but before the outcome is recorded."""


class CrashAfterSend:
    def __init__(self) -> None:
        self.inner = RequestsSender()

    def post(self, url: str, body: bytes, headers: Any, timeout: float) -> HttpResponse:
        self.inner.post(url, body, headers, timeout)
        raise SimulatedCrash


def test_crash_between_send_and_record_yields_at_most_a_duplicate(
    repo: Path, tmp_path: Path, fakes: None
) -> None:
    config = write_config(tmp_path)
    escalate(repo, esc("health_degraded"))
    with Receiver() as rx:
        env = {"TEST_ALERT_HOOK_URL": rx.url}
        clock = FakeClock()
        with pytest.raises(SimulatedCrash):
            dispatch(
                DispatchSettings(repo=repo, loop_id=LOOP, trace_id="t1", config_file=str(config)),
                DispatchEffects(
                    clock=clock, sleep=clock.sleep, environ=env, sender=CrashAfterSend()
                ),
            )
        assert not (ops(repo) / "alert-dispatch-state.json").exists()
        (entry,) = iter_outbox(LoopPaths.for_loop(repo, LOOP))
        assert entry.status == "queued"  # recorded BEFORE the send
        st = run(repo, config, env)
        assert st["processedCount"] == 1 and st["outbox"]["deliveredFromOutboxCount"] == 1
        # one duplicate at most, with the same key
        assert len(rx.requests) == 2 and len(set(rx.keys())) == 1
        run(repo, config, env)
        assert len(rx.requests) == 2
    row = telemetry(repo)[-1]
    assert row["status"] == "dispatched"
    assert row["sinks"][0]["message"] == "already delivered (outbox)"


def test_q5_missing_secret_blocks_only_that_sink(repo: Path, tmp_path: Path, fakes: None) -> None:
    config = write_config(tmp_path)
    escalate(repo, esc("health_critical"))
    with Receiver() as hook:
        st = run(repo, config, {"TEST_ALERT_HOOK_URL": hook.url})
        assert len(hook.requests) == 1
        assert (st["status"], st["dispatchedCount"], st["failedCount"]) == ("partial", 1, 1)
        assert st["failureReasonCodes"] == ["missing_secret"]
        row = telemetry(repo)[0]
        assert (row["status"], row["reasonCode"]) == ("partial", "partial_dispatch_failure")
        assert row["sinks"][1] == {
            "id": "page",
            "type": "fakepage",
            "status": "failed",
            "reasonCode": "missing_secret",
            "httpStatus": None,
            "message": "secret env var(s) are unset: TEST_ALERT_PAGE_URL",
            "attempts": 0,
            "outboxStatus": "retrying",
        }
        # once the secret is set, the kept notification goes out on the next run
        with Receiver() as page:
            st = run(
                repo, config, {"TEST_ALERT_HOOK_URL": hook.url, "TEST_ALERT_PAGE_URL": page.url}
            )
            assert len(page.requests) == 1 and len(hook.requests) == 1
    assert st["outbox"]["pendingCount"] == 0


def test_pacing_is_per_destination(repo: Path, tmp_path: Path, fakes: None) -> None:
    """``fakepage`` asks for 0.5 s between requests to one destination; ``fakehook`` none."""
    config = write_config(tmp_path)
    escalate(repo, esc("health_critical", 1), esc("health_critical", 2), esc("health_critical", 3))
    clock = FakeClock()
    with Receiver() as hook, Receiver() as page:
        run(repo, config, {"TEST_ALERT_HOOK_URL": hook.url, "TEST_ALERT_PAGE_URL": page.url}, clock)
        assert len(hook.requests) == len(page.requests) == 3
    # the clock does not move during real I/O, so each page request waits the full interval
    assert clock.sleeps == [0.5, 0.5]


def test_deadline_defers_to_the_outbox(repo: Path, tmp_path: Path, fakes: None) -> None:
    config = write_config(tmp_path, deadlineSeconds=0)
    escalate(repo, esc("health_degraded"))
    with Receiver() as rx:
        st = run(repo, config, {"TEST_ALERT_HOOK_URL": rx.url})
        assert rx.requests == []
        assert st["failureReasonCodes"] == ["delivery_deferred"]
        assert st["outbox"]["pendingCount"] == 1
        run(repo, write_config(tmp_path), {"TEST_ALERT_HOOK_URL": rx.url})
        assert len(rx.requests) == 1


def test_give_up_after_budget_and_removed_sink(repo: Path, tmp_path: Path, fakes: None) -> None:
    config = write_config(tmp_path, giveUpAfterSeconds=100, maxAttempts=1)
    escalate(repo, esc("health_degraded"))
    clock = FakeClock()
    run(repo, config, {"TEST_ALERT_HOOK_URL": dead_url()}, clock)
    clock.now += 101
    st = run(repo, config, {"TEST_ALERT_HOOK_URL": dead_url()}, clock)
    assert st["outbox"]["gaveUpCount"] == 1 and st["outbox"]["pendingCount"] == 0
    (entry,) = iter_outbox(LoopPaths.for_loop(repo, LOOP))
    assert entry.last["reasonCode"] == "retry_budget_exhausted"


# --- episodes and resolves ---------------------------------------------------------------


def test_resolve_sent_once_when_health_returns_to_healthy(
    repo: Path, tmp_path: Path, fakes: None
) -> None:
    config = write_config(tmp_path)
    health = ops(repo) / "health.json"
    health.write_text(json.dumps({"status": "degraded"}))
    escalate(repo, esc("health_degraded", 1))
    with Receiver() as hook, Receiver() as page:
        env = {"TEST_ALERT_HOOK_URL": hook.url, "TEST_ALERT_PAGE_URL": page.url}
        run(repo, config, env)
        health.write_text(json.dumps({"status": "critical"}))
        escalate(repo, esc("health_critical", 2))
        st = run(repo, config, env)
        assert st["episodes"]["health"]["sinks"] == ["hook", "page"]
        health.write_text(json.dumps({"status": "healthy"}))
        st = run(repo, config, env, trace="trace-recovered")
        assert (st["status"], st["resolveCount"], st["episodes"]) == ("no_new_escalations", 1, {})
        run(repo, config, env)  # nothing more
        hook_bodies, page_bodies = hook.bodies(), page.bodies()
    assert [b["action"] for b in hook_bodies] == ["trigger", "trigger", "resolve"]
    assert [b["action"] for b in page_bodies] == ["trigger", "resolve"]
    keys = {b["dedupKey"] for b in hook_bodies + page_bodies}
    assert keys == {f"{LOOP}:health:2026-11-22T00:00:01Z:L1"}
    assert page_bodies[1]["traceId"] == "trace-recovered"
    assert page_bodies[1]["severity"] == "critical"
    last = telemetry(repo)[-1]
    assert (last["action"], last["status"], last["escalationCategory"]) == (
        "resolve",
        "dispatched",
        "health_critical",
    )
    assert last["escalation"]["condition"] == {"healthStatus": "healthy"}


def test_resolve_waits_behind_a_pending_trigger(repo: Path, tmp_path: Path, fakes: None) -> None:
    """A trigger kept in the outbox and a resolve for the same sink keep their order."""
    config = write_config(tmp_path, maxAttempts=1)
    health = ops(repo) / "health.json"
    health.write_text(json.dumps({"status": "degraded"}))
    escalate(repo, esc("health_degraded", 1))
    down = {"TEST_ALERT_HOOK_URL": dead_url()}
    clock = FakeClock()
    run(repo, config, down, clock)
    health.write_text(json.dumps({"status": "healthy"}))
    clock.now += 60
    st = run(repo, config, down, clock)
    assert st["resolveCount"] == 1 and st["outbox"]["pendingCount"] == 2
    clock.now += 60
    with Receiver() as rx:
        run(repo, config, {"TEST_ALERT_HOOK_URL": rx.url}, clock)
        assert [b["action"] for b in rx.bodies()] == ["trigger", "resolve"]


def test_skipped_episode_closes_silently(repo: Path, tmp_path: Path) -> None:
    health = ops(repo) / "health.json"
    health.write_text(json.dumps({"status": "degraded"}))
    escalate(repo, esc("health_degraded"))
    run(repo, SHIPPED, {})
    assert "health" in state(repo)["episodes"]
    health.write_text(json.dumps({"status": "healthy"}))
    st = run(repo, SHIPPED, {})
    assert st["episodes"] == {} and st["resolveCount"] == 0 and len(telemetry(repo)) == 1


# --- incremental reads -------------------------------------------------------------------


def test_reads_seek_from_the_stored_position(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":2}\n{"c":3}\n{"d"')
    first = read_new_lines(path, 0, None, 2)
    assert first is not None and first.line_count == 3
    assert [n for n, _ in first.lines] == [1, 2] and first.position is not None
    assert first.position["byteOffset"] == 16
    second = read_new_lines(path, 2, first.position, 0)
    assert second is not None and [raw for _, raw in second.lines] == [b'{"c":3}']
    # a wrong fingerprint falls back to counting from the start
    bogus = {**first.position, "lastLineSha256": "0" * 64}
    third = read_new_lines(path, 2, bogus, 0)
    assert third is not None and [raw for _, raw in third.lines] == [b'{"c":3}']
    with pytest.raises(OpsError, match="offset is ahead of escalation file: 4 > 3"):
        read_new_lines(path, 4, None, 0)
    assert read_new_lines(tmp_path / "missing.jsonl", 0, None, 0) is None


def test_reads_after_a_rewrite_truncation_or_nothing_new(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":2}\n')
    first = read_new_lines(path, 0, None, 0)
    assert first is not None and first.position is not None
    # nothing new: the stored position comes back as it was stored (extra keys and all)
    stored = {**first.position, "note": "kept"}
    idle = read_new_lines(path, 2, stored, 0)
    assert idle is not None and idle.lines == [] and idle.position == stored
    # rewritten before the position (line 1 longer): the rescan finds line 2's true end
    path.write_bytes(b'{"a":111}\n{"b":2}\n{"c":3}\n')
    moved = read_new_lines(path, 2, first.position, 0)
    assert moved is not None and [raw for _, raw in moved.lines] == [b'{"c":3}']
    assert moved.position is not None and moved.position["byteOffset"] == path.stat().st_size
    # a stored position whose fingerprinted line is the tail of a longer line (not where
    # line 3 ends) is not trusted: the rescan finds line 3, and nothing is new
    path.write_bytes(b'{"x":0}{"b":2}\n{"c":3}\n{"d":4}\n')
    tail = {**first.position, "byteOffset": 15, "lineOffset": 3}
    assert Position.from_json(tail) is not None
    again = read_new_lines(path, 3, tail, 0)
    assert again is not None and again.lines == [] and again.line_count == 3
    assert again.position is not None and again.position["byteOffset"] == path.stat().st_size
    # truncated below the offset: the contract's error, counting complete lines only
    path.write_bytes(b'{"a":1}\n{"b"')
    with pytest.raises(OpsError, match="offset is ahead of escalation file: 2 > 1"):
        read_new_lines(path, 2, first.position, 0)
    with pytest.raises(OpsError, match="escalations file is not a regular file"):
        read_new_lines(tmp_path, 0, None, 0)


def test_max_escalations(repo: Path) -> None:
    escalate(repo, esc("health_degraded", 1), esc("health_degraded", 2), esc("health_degraded", 3))
    st = run(repo, SHIPPED, {}, max_escalations=2)
    assert (st["processedCount"], st["escalationsLineOffset"], st["escalationsLineCount"]) == (
        2,
        2,
        3,
    )
    st = run(repo, SHIPPED, {}, max_escalations=2)
    assert (st["processedCount"], st["escalationsLineOffset"]) == (1, 3)


# --- reconcile integration (fail-open) and status ----------------------------------------


def test_run_dispatch_after_reconcile_is_fail_open(repo: Path) -> None:
    paths = LoopPaths.for_loop(repo, LOOP)
    state_file = ops(repo) / "alert-dispatch-state.json"
    state_file.write_text("{broken")
    custom_tel = repo / "custom" / "dir" / "alerts.jsonl"
    run_dispatch_after_reconcile(
        paths, trace_id="trace-rec", config_file=SHIPPED, state_file=None, telemetry_file=custom_tel
    )
    (row,) = read_jsonl(custom_tel)
    assert row == {
        "timestamp": row["timestamp"],
        "loopId": LOOP,
        "traceId": "trace-rec",
        "category": "alert_dispatch",
        "status": "failed_command",
        "reasonCode": "alert_dispatch_failed",
        "message": f"error: invalid dispatch state JSON: {state_file}",
    }
    assert state_file.read_text() == "{broken"  # untouched


def test_reconcile_then_dispatch_end_to_end_with_status(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fakes: None
) -> None:
    """A runtime goes stale → reconcile escalates → dispatch delivers → fresh events →
    healthy → the resolve goes out; status shows the alert surfaces (R9/R10 shape)."""
    from ops_manager.engine.reconcile import ReconcileSettings, reconcile
    from ops_manager.reducers.thresholds import Thresholds
    from tests.runtime_fixtures import append_events, event, make_runtime_repo

    old = [event("loop_start", "2020-01-01T00:00:00Z", iteration=0)]
    repo = make_runtime_repo(tmp_path / "rt", events=old).resolve()
    thresholds = Thresholds(
        profile="balanced", degraded_ingest_lag_seconds=3600, critical_ingest_lag_seconds=10**9
    )
    paths = LoopPaths.for_loop(repo, LOOP)
    config = write_config(tmp_path)
    with Receiver() as hook:
        os.environ["TEST_ALERT_HOOK_URL"] = hook.url
        try:
            for trace in ("trace-alert-status-1", "trace-alert-status-2"):
                result = reconcile(
                    ReconcileSettings(
                        repo=repo, loop_id=LOOP, trace_id=trace, thresholds=thresholds
                    )
                )
                assert result.output["health"]["status"] == "degraded"
                run_dispatch_after_reconcile(
                    paths, trace_id=trace, config_file=config, state_file=None, telemetry_file=None
                )
            st = state(repo)
            assert (st["status"], st["processedCount"]) == ("no_new_escalations", 0)
            assert len(hook.requests) == 1
            (body,) = hook.bodies()
            assert (body["category"], body["runId"], body["traceId"]) == (
                "health_degraded",
                "run-123",
                "trace-alert-status-1",
            )
            assert body["escalation"]["stateFile"] == ".superloop/ops-manager/demo-loop/state.json"
            assert str(repo) not in hook.requests[0]["body"].decode()
            assert main(["status", "--repo", str(repo), "--loop", LOOP]) == 0
            status = json.loads(capsys.readouterr()[0])
            assert status["alerts"]["lastDelivery"]["status"] == "dispatched"
            assert status["alerts"]["dispatch"]["lastTraceId"] == "trace-alert-status-2"
            from ops_manager._timefmt import format_ts, utc_now_epoch

            append_events(repo, LOOP, [event("iteration_start", format_ts(utc_now_epoch()))])
            result = reconcile(
                ReconcileSettings(
                    repo=repo, loop_id=LOOP, trace_id="trace-ok", thresholds=thresholds
                )
            )
            assert result.output["health"]["status"] == "healthy"
            run_dispatch_after_reconcile(
                paths, trace_id="trace-ok", config_file=config, state_file=None, telemetry_file=None
            )
            assert [b["action"] for b in hook.bodies()] == ["trigger", "resolve"]
            assert hook.bodies()[1]["dedupKey"] == body["dedupKey"]
        finally:
            del os.environ["TEST_ALERT_HOOK_URL"]


# --- plugins command ---------------------------------------------------------------------


def test_plugins_command_lists_builtins_and_registered_plugins(
    capsys: pytest.CaptureFixture[str], fakes: None
) -> None:
    assert main(["plugins", "--json"]) == 0
    plugins = {p["name"]: p for p in json.loads(capsys.readouterr()[0])["plugins"]}
    local = plugins["ops_manager.transports.local"]
    assert (local["distribution"], local["builtin"]) == ("built-in", True)
    assert local["hooks"] == ["opsmgr_register_transports"]
    assert local["provides"] == {"transports": ["local"]}
    fake = plugins["test-dispatch-fakes"]
    assert (fake["distribution"], fake["builtin"]) == (None, False)
    assert fake["provides"] == {"sinks": ["fakehook", "fakepage"]}
    assert main(["plugins"]) == 0
    table = capsys.readouterr()[0]
    assert table.startswith("PLUGIN") and "test-dispatch-fakes" in table


# --- the delivery loop as a property (no network) ------------------------------------------------


class ScriptedSender:
    """Answers from a script of statuses (``0`` = connection refused)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.calls = 0

    def post(self, url: str, body: bytes, headers: Any, timeout: float) -> HttpResponse:
        from ops_manager.engine.alert_delivery import TransportFailure

        self.calls += 1
        assert headers["Idempotency-Key"] == "key-1"
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 0:
            raise TransportFailure("connection_error", "127.0.0.1")
        return HttpResponse(status=status, headers={}, body=b"")


@settings(max_examples=150, deadline=None)
@given(
    statuses=st.lists(st.sampled_from([0, 200, 202, 400, 404, 408, 429, 500, 503]), max_size=8),
    max_attempts=st.integers(min_value=1, max_value=6),
    deadline=st.floats(min_value=0.0, max_value=30.0),
    u=st.floats(min_value=0.0, max_value=0.99),
)
def test_delivery_loop_properties(
    statuses: list[int], max_attempts: int, deadline: float, u: float
) -> None:
    from ops_manager.engine.alert_delivery import Deliverer
    from ops_manager.reducers.alerts import DeliveryPolicy, classify_http_status
    from ops_manager.sinks import SinkRequest

    clock = FakeClock()
    start = clock.now
    sender = ScriptedSender(statuses)
    deliverer = Deliverer(
        DeliveryPolicy(max_attempts=max_attempts, deadline_seconds=deadline),
        sender=sender,
        clock=clock,
        sleep=clock.sleep,
        rng=lambda: u,
    )
    result = deliverer.deliver(
        SinkRequest(url="http://127.0.0.1/x", body=b"{}"),
        idempotency_key="key-1",
        timeout=1,
        destination="d",
        min_interval=0,
    )
    assert result.attempts == sender.calls <= max_attempts
    assert clock.now - start <= max(deadline, 0.0)  # never sleeps past the deadline
    answered = statuses[: sender.calls] + [200] * (sender.calls - len(statuses))
    if result.attempts == 0:  # the deadline had already passed: kept, not tried
        assert (result.outbox_status, result.reason_code) == ("retrying", "delivery_deferred")
        return
    if result.success:
        assert classify_http_status(answered[-1]) == "success"
    elif result.outbox_status == "terminal":
        assert classify_http_status(answered[-1]) == "terminal"
    else:
        assert result.outbox_status == "retrying"
        assert deliverer.is_down("d")
    # nothing before the last answer was final
    assert all(s == 0 or classify_http_status(s) == "retryable" for s in answered[:-1])


def test_outbox_compaction_keeps_only_what_is_kept(
    repo: Path, tmp_path: Path, fakes: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ops_manager.engine.alert_dispatch as alert_dispatch

    monkeypatch.setattr(alert_dispatch, "OUTBOX_COMPACT_THRESHOLD", 3)
    config = write_config(tmp_path)
    escalate(repo, esc("health_degraded", 1), esc("divergence_detected", 2))
    with Receiver([(200, {}, "ok"), (400, {}, "bad")]) as rx:
        run(repo, config, {"TEST_ALERT_HOOK_URL": rx.url})
    outbox = ops(repo) / "alert-outbox.jsonl"
    records = read_jsonl(outbox)
    assert [r["status"] for r in records] == ["queued", "terminal"]
    (entry,) = iter_outbox(LoopPaths.for_loop(repo, LOOP))
    assert entry.status == "terminal" and entry.event["category"] == "divergence_detected"
