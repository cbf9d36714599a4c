"""``ops-manager control`` end to end (``loop.md`` §3.10, §7.7 items 82-84, 91, 93, 94, 96).

The runtime CLI is ``tests/stub_superloop.py`` behind a one-line wrapper script in
``SUPERLOOP_BIN`` (it behaves like the real runtime; ``STUB_SUPERLOOP_MODE`` switches it to
``complete_on_approve`` / ``stop_on_cancel`` / ``noop`` / ``fail``, and every call is logged to
``STUB_SUPERLOOP_LOG`` so idempotency tests can count executions). Most tests run the CLI
in-process; the concurrency test runs two real processes. Nothing waits longer than ~2 s.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from ops_manager._timefmt import utc_now_epoch
from ops_manager.cli import main
from ops_manager.engine.control import (
    IDEMPOTENCY_FILE,
    ControlSettings,
    execution_from_json,
    execution_to_json,
    run_control,
)
from ops_manager.hookspecs import hookimpl
from ops_manager.plugins import get_plugin_manager
from ops_manager.store import LoopPaths
from ops_manager.transports import ControlExecution, ControlRequest, TransportConfig
from tests.runtime_fixtures import (
    loop_dir,
    make_runtime_repo,
    pending_approval,
    realistic_run_events,
)

LOOP = "demo-loop"
STUB = Path(__file__).with_name("stub_superloop.py")
CLI = Path(sys.executable).parent / "ops-manager"

ENTRY_KEYS = [
    "timestamp",
    "loopId",
    "intent",
    "traceId",
    "requestedBy",
    "note",
    "transport",
    "status",
    "command",
    "idempotencyKey",
    "exitCode",
    "confirmExitCode",
    "confirmed",
    "commandOutput",
    "confirm",
]

# Appendix A "Scenario B" rows (upstream, jq 1.6): key order is compared exactly
SCENARIO_B_INTENT = json.loads(
    '{"timestamp":"2026-11-22T02:17:43Z","loopId":"demo-loop","intent":"cancel","traceId":"tc-1","requestedBy":"unknown","transport":"local","status":"confirmed","command":"<stub> cancel --repo <R>","idempotencyKey":"k1","exitCode":0,"confirmExitCode":0,"confirmed":true,"commandOutput":"Cancelled loop state.","confirm":{"intent":"cancel","confirmed":true,"reason":"inactive_not_running","attempts":1,"timeoutSeconds":30,"observedStatus":"stopped","observedLastEvent":"loop_stop","observedApprovalStatus":null,"observedActive":false,"observedAt":"2026-11-22T02:17:43Z"}}'  # noqa: E501
)
SCENARIO_B_CONTROL = json.loads(
    '{"timestamp":"2026-11-22T02:17:43Z","startedAt":"2026-11-22T02:17:42Z","loopId":"demo-loop","intent":"cancel","traceId":"tc-1","transport":"local","status":"confirmed","idempotencyKey":"k1","requestedBy":"unknown","exitCode":0,"confirmExitCode":0,"confirmed":true,"durationSeconds":1,"retryAttempts":3,"retryBackoffSeconds":1}'
)
SCENARIO_B_INVOCATION = json.loads(
    '{"schemaVersion":"v1","timestamp":"2026-11-22T02:17:43Z","startedAt":"2026-11-22T02:17:42Z","loopId":"demo-loop","intent":"cancel","traceId":"tc-1","transport":"local","requestedBy":"unknown","idempotencyKey":"k1","request":{"doConfirm":true,"timeoutSeconds":30,"intervalSeconds":2,"retryAttempts":3,"retryBackoffSeconds":1},"execution":{"status":"succeeded","exitCode":0,"command":"<stub> cancel --repo <R>","output":"Cancelled loop state.","replayed":false},"confirmation":{"attempted":true,"status":"confirmed","exitCode":0,"outcome":{"intent":"cancel","confirmed":true,"reason":"inactive_not_running","attempts":1,"timeoutSeconds":30,"observedStatus":"stopped","observedLastEvent":"loop_stop","observedApprovalStatus":null,"observedActive":false,"observedAt":"2026-11-22T02:17:43Z"}},"outcome":{"status":"confirmed","confirmed":true,"durationSeconds":1}}'  # noqa: E501
)
#: values that legitimately differ between runs
VOLATILE = {"timestamp", "startedAt", "observedAt", "durationSeconds", "command"}


@attrs.define
class Stub:
    """The stub runtime CLI as the tests see it."""

    bin: Path
    log: Path
    monkeypatch: pytest.MonkeyPatch

    def mode(self, mode: str, delay: float = 0) -> None:
        self.monkeypatch.setenv("STUB_SUPERLOOP_MODE", mode)
        self.monkeypatch.setenv("STUB_SUPERLOOP_DELAY", str(delay))

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line)["argv"] for line in self.log.read_text().splitlines()]


@pytest.fixture
def superloop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stub:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "superloop"
    wrapper.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(STUB))} "$@"\n'
    )
    wrapper.chmod(0o755)
    log = tmp_path / "stub-calls.jsonl"
    monkeypatch.setenv("SUPERLOOP_BIN", str(wrapper))
    monkeypatch.setenv("STUB_SUPERLOOP_LOG", str(log))
    for name in ("STUB_SUPERLOOP_MODE", "STUB_SUPERLOOP_DELAY", "OPS_MANAGER_TRACE_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("USER", "tester")
    return Stub(wrapper, log, monkeypatch)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_runtime_repo(tmp_path / "repo", active=True).resolve()


Run = Callable[..., tuple[int, dict[str, Any], str]]


@pytest.fixture
def control(capsys: pytest.CaptureFixture[str], repo: Path) -> Run:
    def run(*args: str, intent: str = "cancel") -> tuple[int, dict[str, Any], str]:
        argv = ["control", "--repo", str(repo), "--loop", LOOP, "--intent", intent, *args]
        code = main(argv)
        captured = capsys.readouterr()
        entry = json.loads(captured.out) if captured.out.strip() else {}
        if captured.out:
            assert captured.out.endswith("}\n") and captured.out.count("\n") == 1
        return code, entry, captured.err

    return run


def rows(repo: Path, name: str) -> list[dict[str, Any]]:
    ops = repo / ".superloop" / "ops-manager" / LOOP
    path = {
        "intents": ops / "intents.jsonl",
        "control": ops / "telemetry" / "control.jsonl",
        "invocations": ops / "telemetry" / "control-invocations.jsonl",
    }[name]
    return [json.loads(line) for line in path.read_text().splitlines()]


def same_shape(actual: Any, expected: Any, where: str = "") -> None:
    """Same keys in the same order at every level; equal values except volatile ones."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert list(actual) == list(expected), where
        for key in expected:
            if key not in VOLATILE:
                same_shape(actual[key], expected[key], f"{where}.{key}")
    else:
        assert actual == expected, where


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--repo is required"),
        (["--repo", "R"], "--loop is required"),
        (["--repo", "R", "--loop", LOOP], "--intent is required"),
        # item 82
        (
            ["--repo", "R", "--loop", LOOP, "--intent", "unknown"],
            "intent must be one of: cancel, approve, reject",
        ),
        (
            ["--repo", "R", "--loop", LOOP, "--intent", "cancel", "--transport", "ssh"],
            "--transport must be local or sprite_service",
        ),
        (
            ["--repo", "R", "--loop", LOOP, "--intent", "cancel", "--retry-attempts", "0"],
            "--retry-attempts must be an integer >= 1",
        ),
        (
            ["--repo", "R", "--loop", LOOP, "--intent", "cancel", "--retry-backoff-seconds", "x"],
            "--retry-backoff-seconds must be a non-negative integer",
        ),
        (
            ["--repo", "R", "--loop", LOOP, "--intent", "cancel", "--timeout-seconds", "-1"],
            "timeout and interval must be non-negative integers",
        ),
        (
            ["--repo", "R", "--loop", LOOP, "--intent", "cancel", "--interval-seconds", "2s"],
            "timeout and interval must be non-negative integers",
        ),
        (
            ["--repo", "R", "--loop", LOOP, "--intent", "cancel", "--transport", "sprite_service"],
            "--service-base-url is required when --transport sprite_service",
        ),
        (
            ["--repo", "R", "--loop", LOOP, "--intent", "cancel", "--bogus"],
            "unknown argument: --bogus",
        ),
    ],
)
def test_validation_messages(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], superloop: Stub
) -> None:
    assert main(["control", *argv]) == 1
    assert capsys.readouterr().err == f"error: {message}\n"
    assert superloop.calls() == []


def test_invalid_loop_id_and_missing_repo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], superloop: Stub
) -> None:
    assert main(["control", "--repo", str(tmp_path), "--loop", "../x", "--intent", "cancel"]) == 1
    assert "invalid loop id" in capsys.readouterr().err
    assert (
        main(["control", "--repo", str(tmp_path / "nope"), "--loop", LOOP, "--intent", "cancel"])
        == 1
    )
    assert "repo directory not found" in capsys.readouterr().err
    assert superloop.calls() == []


# --- local transport -----------------------------------------------------------------------


def test_item_83_cancel_confirmed_and_recorded(superloop: Stub, control: Run, repo: Path) -> None:
    code, entry, _ = control("--trace-id", "trace-control-local-1")
    assert code == 0
    assert entry["status"] == "confirmed" and entry["confirmed"] is True
    assert superloop.calls() == [["cancel", "--repo", str(repo)]]
    assert entry["command"] == f"{superloop.bin} cancel --repo {repo}"
    assert entry["commandOutput"] == "Cancelled loop state."
    assert entry["confirm"]["reason"] == "inactive_not_running"
    assert entry["requestedBy"] == "tester"
    intent = rows(repo, "intents")[-1]
    assert intent == entry
    assert (intent["intent"], intent["traceId"]) == ("cancel", "trace-control-local-1")
    row = rows(repo, "control")[-1]
    assert (row["status"], row["traceId"]) == ("confirmed", "trace-control-local-1")
    assert "reasonCode" not in row
    inv = rows(repo, "invocations")[-1]
    assert inv["execution"]["status"] == "succeeded"
    assert inv["traceId"] == "trace-control-local-1"
    assert inv["confirmation"]["status"] == "confirmed"
    assert inv["outcome"]["status"] == "confirmed"
    assert inv["execution"]["replayed"] is False


def test_item_84_approve_confirmed_with_completing_stub(
    superloop: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_runtime_repo(
        tmp_path / "appr",
        active=False,
        events=realistic_run_events(outcome="approval_requested"),
        approval=pending_approval(),
    ).resolve()
    superloop.mode("complete_on_approve")
    argv = [
        "control",
        "--repo",
        str(repo),
        "--loop",
        LOOP,
        "--intent",
        "approve",
        "--by",
        "ops-user",
        "--note",
        "Looks good",
        "--interval-seconds",
        "1",
    ]
    assert main(argv) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["status"] == "confirmed"
    assert entry["note"] == "Looks good" and entry["requestedBy"] == "ops-user"
    assert entry["confirm"]["reason"] == "completion_observed"
    approval = json.loads((loop_dir(repo) / "approval.json").read_text())
    assert approval["status"] == "approved"
    assert approval["decision"]["by"] == "ops-user"
    inv = rows(repo, "invocations")[-1]
    assert (inv["intent"], inv["confirmation"]["status"]) == ("approve", "confirmed")
    assert inv["note"] == "Looks good"
    assert superloop.calls() == [
        ["approve", "--repo", str(repo), "--loop", LOOP, "--by", "ops-user", "--note", "Looks good"]
    ]


def test_item_93_real_approve_is_ambiguous_with_quoted_note(
    superloop: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_runtime_repo(
        tmp_path / "appr",
        active=False,
        events=realistic_run_events(outcome="approval_requested"),
        approval=pending_approval(),
    ).resolve()
    started = time.monotonic()
    argv = [
        "control",
        "--repo",
        str(repo),
        "--loop",
        LOOP,
        "--intent",
        "approve",
        "--note",
        "hi there",
        "--timeout-seconds",
        "2",
        "--interval-seconds",
        "1",
    ]
    assert main(argv) == 2
    assert time.monotonic() - started < 6
    entry = json.loads(capsys.readouterr().out)
    assert (entry["status"], entry["exitCode"], entry["confirmExitCode"]) == ("ambiguous", 0, 1)
    assert entry["confirm"]["reason"] == "timeout"
    assert entry["confirm"]["attempts"] >= 2
    assert entry["confirm"]["observedLastEvent"] == "approval_decision"
    # DECISIONS rule 3: shlex.quote, not printf %q
    assert entry["command"].endswith("--by tester --note 'hi there'")
    inv = rows(repo, "invocations")[-1]
    assert inv["outcome"]["reasonCode"] == "control_ambiguous"
    assert inv["confirmation"] == {
        "attempted": True,
        "status": "ambiguous",
        "exitCode": 1,
        "outcome": entry["confirm"],
    }
    assert rows(repo, "control")[-1]["reasonCode"] == "control_ambiguous"


def test_reject_confirmed_from_the_decision(
    superloop: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_runtime_repo(
        tmp_path / "appr",
        active=False,
        events=realistic_run_events(outcome="approval_requested"),
        approval=pending_approval(),
    ).resolve()
    argv = ["control", "--repo", str(repo), "--loop", LOOP, "--intent", "reject", "--by", "me"]
    assert main(argv) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["status"] == "confirmed" and entry["confirm"]["reason"] == "rejection_observed"
    assert superloop.calls()[-1] == [
        "approve",
        "--repo",
        str(repo),
        "--loop",
        LOOP,
        "--by",
        "me",
        "--reject",
    ]


def test_item_94_key_order_default_key_and_unknown_requester(
    superloop: Stub, control: Run, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USER")
    before = utc_now_epoch()
    code, entry, _ = control("--note", "n")
    after = utc_now_epoch()
    assert code == 0
    assert list(entry) == ENTRY_KEYS
    assert entry["requestedBy"] == "unknown"
    match = re.fullmatch(r"cancel-(\d+)-(\d+)", entry["idempotencyKey"])
    assert match is not None
    assert before <= int(match.group(1)) <= after
    assert int(match.group(2)) == os.getpid()
    # trace id generated (uuid4) when neither flag nor env
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", entry["traceId"]
    )


def test_scenario_b_records_match_upstream_shapes(
    superloop: Stub, control: Run, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USER")
    superloop.mode("stop_on_cancel")
    code, entry, _ = control("--trace-id", "tc-1", "--idempotency-key", "k1")
    assert code == 0
    same_shape(entry, SCENARIO_B_INTENT)
    same_shape(rows(repo, "control")[-1], SCENARIO_B_CONTROL)
    inv = rows(repo, "invocations")[-1]
    same_shape(inv, SCENARIO_B_INVOCATION)
    assert inv["execution"]["command"] == f"{superloop.bin} cancel --repo {repo}"


def test_env_trace_id_is_used(
    superloop: Stub, control: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_MANAGER_TRACE_ID", "env-trace")
    _, entry, _ = control()
    assert entry["traceId"] == "env-trace"
    _, entry, _ = control("--trace-id", "flag-trace")
    assert entry["traceId"] == "flag-trace"


def test_no_confirm_locally(superloop: Stub, control: Run, repo: Path) -> None:
    superloop.mode("noop")
    code, entry, _ = control("--no-confirm", "--trace-id", "t-nc")
    assert code == 0
    assert (entry["status"], entry["confirmed"], entry["confirmExitCode"]) == (
        "executed_unconfirmed",
        False,
        0,
    )
    assert "confirm" not in entry
    inv = rows(repo, "invocations")[-1]
    assert inv["confirmation"] == {"attempted": False, "status": "skipped", "exitCode": 0}
    assert inv["request"]["doConfirm"] is False
    assert inv["outcome"] == {
        "status": "executed_unconfirmed",
        "confirmed": False,
        "durationSeconds": inv["outcome"]["durationSeconds"],
    }


def test_failed_command_is_recorded(superloop: Stub, control: Run, repo: Path) -> None:
    superloop.mode("fail")
    code, entry, _ = control()
    assert code == 1
    assert (entry["status"], entry["exitCode"], entry["confirmed"]) == ("failed_command", 3, False)
    assert entry["commandOutput"] == "stub superloop: simulated runtime failure"
    assert "confirm" not in entry
    assert rows(repo, "control")[-1]["reasonCode"] == "control_failed_command"
    inv = rows(repo, "invocations")[-1]
    assert inv["execution"]["status"] == "failed_command"
    assert inv["confirmation"] == {"attempted": False, "status": "not_attempted", "exitCode": 0}
    assert inv["outcome"]["reasonCode"] == "control_failed_command"


def test_runtime_refusal_is_failed_command(superloop: Stub, control: Run) -> None:
    code, entry, _ = control(intent="approve")
    assert code == 1
    assert entry["status"] == "failed_command"
    assert entry["commandOutput"] == f"error: no approval request found for loop '{LOOP}'"


def test_superloop_cli_missing(
    control: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SUPERLOOP_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, entry, _ = control()
    assert code == 1
    assert entry["status"] == "failed_command"
    assert entry["commandOutput"] == "superloop CLI not found: set SUPERLOOP_BIN"
    monkeypatch.setenv("SUPERLOOP_BIN", str(tmp_path / "no-such-superloop"))
    code, entry, _ = control()
    assert (code, entry["exitCode"]) == (1, 127)
    assert entry["commandOutput"] == f"superloop CLI not found: {tmp_path / 'no-such-superloop'}"


def test_ambiguous_exit_2(superloop: Stub, control: Run, repo: Path) -> None:
    superloop.mode("noop")  # the command "succeeds" but the run stays active
    code, entry, _ = control("--timeout-seconds", "0")
    assert code == 2
    assert entry["status"] == "ambiguous"
    assert entry["confirm"]["attempts"] == 1
    assert entry["confirm"]["observedStatus"] == "running"


def test_slow_runtime_is_ambiguous_within_the_timeout(superloop: Stub, control: Run) -> None:
    superloop.mode("noop")
    started = time.monotonic()
    code, entry, _ = control("--timeout-seconds", "1", "--interval-seconds", "1")
    assert time.monotonic() - started < 5
    assert code == 2 and entry["confirm"]["reason"] == "timeout"


def test_hung_runtime_command_is_killed(
    superloop: Stub, control: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ops_manager.transports.local_control as local_control

    monkeypatch.setattr(local_control, "COMMAND_TIMEOUT_SECONDS", 1)
    superloop.mode("", delay=30)
    started = time.monotonic()
    code, entry, _ = control()
    assert time.monotonic() - started < 5
    assert code == 1
    assert (entry["status"], entry["exitCode"]) == ("failed_command", 124)
    assert entry["commandOutput"].endswith("superloop command timed out after 1s and was killed")


def test_injected_clock_reaches_the_confirmation(superloop: Stub, repo: Path) -> None:
    superloop.mode("noop")
    now = [1_900_000_000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    started = time.monotonic()
    result = run_control(
        ControlSettings(repo=repo, loop_id=LOOP, intent="cancel", trace_id="t"),
        clock=lambda: int(now[0]),
        sleep=sleep,
    )
    assert time.monotonic() - started < 3  # 30 s of confirmation on the fake clock
    assert result.status == "ambiguous" and result.exit_code == 2
    assert result.entry["confirm"]["attempts"] == 16 and sleeps == [2] * 15
    assert result.control_row["durationSeconds"] == 30


# --- idempotency ---------------------------------------------------------------------------


def test_same_key_twice_executes_once_and_replays(
    superloop: Stub, control: Run, repo: Path
) -> None:
    code1, first, _ = control("--idempotency-key", "idem-1", "--trace-id", "t1")
    code2, second, _ = control("--idempotency-key", "idem-1", "--trace-id", "t2")
    assert (code1, code2) == (0, 0)
    assert len(superloop.calls()) == 1
    assert second["status"] == first["status"] == "confirmed"
    assert second["traceId"] == "t2" and second["confirm"] == first["confirm"]
    invs = rows(repo, "invocations")
    assert [i["execution"]["replayed"] for i in invs] == [False, True]
    assert [i["traceId"] for i in invs] == ["t1", "t2"]
    assert len(rows(repo, "intents")) == len(rows(repo, "control")) == 2
    store = json.loads((repo / ".superloop/ops-manager" / LOOP / IDEMPOTENCY_FILE).read_text())
    assert store["idem-1"]["state"] == "done"
    assert store["idem-1"]["execution"]["status"] == "confirmed"
    # a replayed ambiguous/failed outcome keeps its exit code
    superloop.mode("fail")
    assert control("--idempotency-key", "idem-f")[0] == 1
    code, entry, _ = control("--idempotency-key", "idem-f")
    assert (code, entry["status"]) == (1, "failed_command")
    assert len(superloop.calls()) == 2


def test_same_key_for_another_intent_is_an_error(
    superloop: Stub, control: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    control("--idempotency-key", "k")
    code, entry, err = control("--idempotency-key", "k", intent="reject")
    assert (code, entry) == (1, {})
    assert err == "error: idempotency key k was already used for intent cancel\n"
    assert len(superloop.calls()) == 1


def test_concurrent_same_key_executes_once(superloop: Stub, repo: Path) -> None:
    env = {**os.environ, "STUB_SUPERLOOP_DELAY": "1.5"}
    argv = [
        str(CLI),
        "control",
        "--repo",
        str(repo),
        "--loop",
        LOOP,
        "--intent",
        "cancel",
        "--idempotency-key",
        "same",
        "--timeout-seconds",
        "0",
    ]
    procs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [(p.wait(timeout=30), p.communicate()) for p in procs]
    codes = sorted(code for code, _ in outs)
    assert codes == [0, 2], outs
    assert len(superloop.calls()) == 1
    waiting = next(json.loads(out) for code, (out, _) in outs if code == 2)
    assert waiting["commandOutput"] == "intent with idempotency key same is still executing"
    assert waiting["status"] == "ambiguous"
    # once the first finished, the key replays its result
    code = main(
        [
            "control",
            "--repo",
            str(repo),
            "--loop",
            LOOP,
            "--intent",
            "cancel",
            "--idempotency-key",
            "same",
        ]
    )
    assert code == 0 and len(superloop.calls()) == 1
    statuses = [r["execution"]["status"] for r in rows(repo, "invocations")]
    assert sorted(statuses) == ["not_started", "succeeded", "succeeded"]


def test_interrupted_reservation_never_executes_again(
    superloop: Stub, control: Run, repo: Path
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store = repo / ".superloop/ops-manager" / LOOP / IDEMPOTENCY_FILE
    store.parent.mkdir(parents=True, exist_ok=True)
    import socket

    store.write_text(
        json.dumps(
            {
                "k-dead": {
                    "state": "executing",
                    "intent": "cancel",
                    "pid": dead.pid,
                    "host": socket.gethostname(),
                    "startedAt": "2030-01-01T00:00:00Z",
                }
            }
        )
    )
    code, entry, _ = control("--idempotency-key", "k-dead")
    assert code == 2 and entry["status"] == "ambiguous"
    assert "was interrupted while executing" in entry["commandOutput"]
    assert superloop.calls() == []


def test_store_round_trip() -> None:
    execution = ControlExecution(
        status="ambiguous",
        command="c",
        exit_code=0,
        confirm_exit_code=1,
        confirmed=False,
        execution_status="succeeded",
        confirmation_status="ambiguous",
        confirmation_attempted=True,
        command_output="o",
        confirm={"reason": "timeout"},
    )
    assert execution_from_json(execution_to_json(execution)) == execution
    assert execution_from_json({"nope": 1}) is None


# --- transports through the registry ------------------------------------------------------


class _FakeTransport:
    def __init__(self, name: str, dedup: bool | None, calls: list[ControlRequest]) -> None:
        self.name = name
        self.calls = calls
        if dedup is not None:
            self.deduplicates_intents = dedup

    def control(self, request: ControlRequest) -> ControlExecution:
        self.calls.append(request)
        return ControlExecution(
            status="executed",
            command=f"FAKE {request.intent}",
            exit_code=0,
            confirm_exit_code=0,
            confirmed=False,
            execution_status="succeeded",
            confirmation_status="attempted_unknown",
            confirmation_attempted=True,
            command_output='{"ok":true}',
            replayed=len(self.calls) > 1,
        )

    def observe(self, request: Any) -> Any:
        raise NotImplementedError


class _FakePlugin:
    def __init__(self) -> None:
        self.calls: list[ControlRequest] = []

    @hookimpl
    def opsmgr_register_transports(self, register: Callable[..., None]) -> None:
        calls = self.calls
        register("fake_remote", lambda config: _FakeTransport("fake_remote", True, calls))
        register("fake_plain", lambda config: _FakeTransport("fake_plain", None, calls))


@pytest.fixture
def fake_plugin() -> Any:
    pm = get_plugin_manager()
    plugin = _FakePlugin()
    pm.register(plugin, name="test-fake-transports")
    try:
        yield plugin
    finally:
        pm.unregister(plugin)


def test_engine_goes_through_the_registry(fake_plugin: _FakePlugin, repo: Path) -> None:
    config = TransportConfig(retry_attempts=5, retry_backoff_seconds=0)
    settings = ControlSettings(
        repo=repo,
        loop_id=LOOP,
        intent="approve",
        transport="fake_remote",
        transport_config=config,
        idempotency_key="rk",
        trace_id="t",
        by="b",
        note="n",
    )
    first = run_control(settings)
    second = run_control(settings)
    # the remote deduplicates: both calls reach it, the local store is bypassed
    assert len(fake_plugin.calls) == 2
    assert fake_plugin.calls[0].idempotency_key == "rk" and fake_plugin.calls[0].note == "n"
    assert (first.status, first.exit_code) == ("executed", 1)
    assert second.replayed and not first.replayed
    assert first.control_row["retryAttempts"] == 5
    assert first.invocation["confirmation"]["status"] == "attempted_unknown"
    assert not (LoopPaths.for_loop(repo, LOOP).ops(IDEMPOTENCY_FILE)).exists()
    # a transport without its own dedup gets the local store
    plain = attrs.evolve(settings, transport="fake_plain", idempotency_key="pk")
    run_control(plain)
    again = run_control(plain)
    assert len(fake_plugin.calls) == 3 and again.replayed


def test_unknown_transport_is_a_clean_error(repo: Path) -> None:
    from ops_manager.errors import OpsError

    with pytest.raises(OpsError, match="transport 'nope' is not available"):
        run_control(ControlSettings(repo=repo, loop_id=LOOP, intent="cancel", transport="nope"))


def test_sprite_service_unreachable_is_failed_command(
    superloop: Stub, control: Run, repo: Path
) -> None:
    pytest.importorskip(
        "ops_manager.transports.sprite_service",
        reason="the sprite_service transport plugin is not in this tree yet",
    )
    code, entry, _ = control(
        "--transport",
        "sprite_service",
        "--service-base-url",
        "http://127.0.0.1:9",
        "--retry-attempts",
        "1",
        "--retry-backoff-seconds",
        "0",
        "--idempotency-key",
        "svc-1",
    )
    assert code == 1
    assert entry["status"] == "failed_command" and entry["transport"] == "sprite_service"
    assert entry["command"] == "POST http://127.0.0.1:9/ops/control"
    assert superloop.calls() == []
    store = LoopPaths.for_loop(repo, LOOP).ops(IDEMPOTENCY_FILE)
    assert not store.exists()  # the service owns idempotency in this mode


# --- status after control (item 91) --------------------------------------------------------


def test_item_91_status_shows_the_invocation(
    superloop: Stub, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = "trace-vis-control-1"
    base = ["--repo", str(repo), "--loop", LOOP]
    assert main(["reconcile", *base, "--trace-id", trace, "--alerts-enabled", "false"]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "control",
                *base,
                "--intent",
                "cancel",
                "--trace-id",
                trace,
                "--idempotency-key",
                "vis-1",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["status", *base]) == 0
    status = json.loads(capsys.readouterr().out)
    audit = status["visibility"]["invocationAudit"]
    audit.pop("timestamp")
    assert audit.pop("replayed", False) is False  # shown or omitted: status's choice
    assert audit == {
        "intent": "cancel",
        "transport": "local",
        "idempotencyKey": "vis-1",
        "executionStatus": "succeeded",
        "confirmationStatus": "confirmed",
        "outcomeStatus": "confirmed",
        "traceId": trace,
    }
    assert status["visibility"]["trace"]["controlInvocationTraceId"] == trace
    assert status["control"]["lastIntent"] == "cancel"
    assert status["control"]["lastStatus"] == "confirmed"
    assert status["control"]["lastTraceId"] == trace
    assert status["traceLinkage"]["controlTraceId"] == trace
