"""A failure document is the whole output (issue 12, point 3; docs/output-and-errors.md).

Every command that prints a JSON document on a failure path is run as a real process with
stderr merged into stdout (``2>&1``, as the tool we replace allowed): the combined output
must parse as JSON (one document; alert-route-test prints one per case) and the exit code
must be the non-zero one the command page documents. Where no document is printed, the
output is exactly one ``error: ...`` line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops_manager.testing import LoopbackReceiver, Reply
from tests.fleet_fixtures import make_fleet_repo
from tests.runtime_fixtures import make_runtime_repo

CLI = Path(sys.executable).parent / "ops-manager"
LOOP = "demo-loop"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_MANAGER_")}
    env.pop("SUPERLOOP_BIN", None)
    env.update(extra)
    return env


def _run(*argv: object, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        [str(CLI), *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env if env is not None else _env(),
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stdout


def _document(output: str) -> dict[str, Any]:
    """The combined output as exactly one JSON object (raises if anything else is there)."""
    doc = json.loads(output)
    assert isinstance(doc, dict), output
    return doc


@pytest.fixture
def failing_receiver() -> Iterator[LoopbackReceiver]:
    with LoopbackReceiver(name="down", default=Reply(503, b"unavailable", {})) as rx:
        yield rx


def _webhook_config(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "schemaVersion": "v1",
                "defaultMinSeverity": "info",
                "sinks": {
                    "hook": {
                        "enabled": True,
                        "type": "webhook",
                        "urlEnv": "FAILDOC_HOOK_URL",
                        "timeoutSeconds": 2,
                    }
                },
                "routing": {"defaultSinks": ["hook"], "categorySeverity": {}, "routes": []},
                "delivery": {"maxAttempts": 1, "deadlineSeconds": 3, "backoffBaseSeconds": 0.05},
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return path


def test_reconcile_without_runtime_artifacts(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    code, out = _run("reconcile", "--repo", repo, "--loop", "L", "--trace-id", "fd-1")
    assert code == 1
    health = _document(out)
    assert health["traceId"] == "fd-1"
    assert health["transport"]["failureCode"] == "snapshot_unavailable"
    assert "error:" not in out
    # the why is kept where a reader of the document can find it
    row = json.loads(
        (repo / ".superloop/ops-manager/L/telemetry/reconcile.jsonl").read_text().splitlines()[-1]
    )
    assert row["failureMessage"].startswith("error: required artifact root missing: ")
    # --pretty: still one document
    code, out = _run("reconcile", "--repo", repo, "--loop", "L", "--pretty")
    assert code == 1
    assert _document(out)["status"] in ("degraded", "critical")


def test_alert_dispatch_with_unusable_config(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "r", LOOP).resolve()
    bad = tmp_path / "bad.json"
    bad.write_text('{"schemaVersion": "v1", "sinks": {', encoding="utf-8")
    code, out = _run("alert-dispatch", "--repo", repo, "--loop", LOOP, "--alert-config-file", bad)
    assert code == 1
    state = _document(out)
    assert state["status"] == "config_invalid"
    assert state["configError"]["reasonCode"] == "alert_config_invalid"


def test_alert_replay_with_undelivered_notifications(
    tmp_path: Path, failing_receiver: LoopbackReceiver
) -> None:
    repo = make_runtime_repo(tmp_path / "r", LOOP).resolve()
    config = _webhook_config(tmp_path / "sinks.json")
    env = _env(FAILDOC_HOOK_URL=failing_receiver.url_for("/hook"))
    ops = repo / ".superloop/ops-manager" / LOOP
    ops.mkdir(parents=True)
    (ops / "escalations.jsonl").write_text(
        json.dumps(
            {
                "timestamp": "2026-02-22T10:00:00Z",
                "loopId": LOOP,
                "traceId": "t-esc",
                "category": "health_critical",
                "healthStatus": "critical",
                "reasonCodes": ["ingest_stale"],
            }
        )
        + "\n",
        encoding="utf-8",
    )
    argv = ("--repo", repo, "--loop", LOOP, "--alert-config-file", config)
    code, out = _run("alert-dispatch", *argv, env=env)
    assert code == 0, out  # a delivery failure is data, not a failed run
    assert _document(out)["outbox"]["pendingCount"] >= 1
    code, out = _run("alert-replay", *argv, env=env)
    assert code == 1
    report = _document(out)
    assert report["failedCount"] == 1
    assert report["notifications"][0]["status"] == "failed"


def test_alert_route_test_with_failing_expectation(tmp_path: Path) -> None:
    config = _webhook_config(tmp_path / "sinks.json")
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        '{"category":"health_critical","expectSinks":["hook"]}\n'
        '{"category":"health_critical","expectSinks":["nobody"]}\n',
        encoding="utf-8",
    )
    code, out = _run("alert-route-test", "--config-file", config, "--cases-file", cases)
    assert code == 1
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["pass"] for d in docs] == [True, False]


def test_control_local_command_fails(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "r", LOOP).resolve()
    stub = tmp_path / "superloop-stub"
    stub.write_text('#!/bin/sh\necho "error: boom" >&2\nexit 1\n', encoding="utf-8")
    stub.chmod(0o755)
    code, out = _run(
        "control",
        "--repo",
        repo,
        "--loop",
        LOOP,
        "--intent",
        "cancel",
        "--timeout-seconds",
        "0",
        env=_env(SUPERLOOP_BIN=str(stub)),
    )
    assert code == 1
    entry = _document(out)
    assert (entry["status"], entry["commandOutput"]) == ("failed_command", "error: boom")


def test_control_sprite_service_unreachable(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "r", LOOP).resolve()
    code, out = _run(
        "control",
        "--repo",
        repo,
        "--loop",
        LOOP,
        "--intent",
        "cancel",
        "--transport",
        "sprite_service",
        "--service-base-url",
        "http://127.0.0.1:1",
        "--retry-attempts",
        "1",
        "--retry-backoff-seconds",
        "0",
    )
    assert code == 1
    entry = _document(out)
    assert entry["status"] == "failed_command"
    # the client's error is inside the document instead of on stderr
    assert entry["commandOutput"].startswith("error: service request failed (method=POST ")


def test_confirm_intent_timeout(tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path / "r", LOOP).resolve()
    code, out = _run(
        "confirm-intent", "--repo", repo, "--loop", LOOP, "--intent", "cancel",
        "--timeout-seconds", "0",
    )  # fmt: skip
    assert code == 1
    outcome = _document(out)
    assert (outcome["confirmed"], outcome["reason"]) == (False, "timeout")


def test_promotion_hold_with_fail_on_hold(tmp_path: Path) -> None:
    repo = make_fleet_repo(tmp_path / "fleet", ["loop-a", "loop-b"], without_artifacts=["loop-b"])
    code, out = _run("fleet-reconcile", "--repo", repo, "--quiet")
    assert code == 0, out
    # an unwritable step summary is a warning of successful runs only
    env = _env(GITHUB_STEP_SUMMARY=str(tmp_path / "no" / "such" / "summary.md"))
    for command in ("promotion-gates", "promotion-ci"):
        code, out = _run(command, "--repo", repo, "--fail-on-hold", env=env)
        assert code == 2, (command, out)
        assert _document(out)["summary"]["decision"] == "hold", command


def test_rebuild_with_differences(tmp_path: Path) -> None:
    repo = make_fleet_repo(tmp_path / "fleet", ["loop-a"])
    code, out = _run("reconcile", "--repo", repo, "--loop", "loop-a")
    assert code == 0, out
    tampered = repo / ".superloop/ops-manager/loop-a/telemetry/transport-health.json"
    tampered.write_text("{}", encoding="utf-8")
    code, out = _run("rebuild", "--repo", repo, "--loop", "loop-a")
    assert code == 1
    assert _document(out)["ok"] is False


@pytest.mark.parametrize(
    "argv",
    [
        ("reconcile", "--repo", "."),
        ("status", "--repo", ".", "--loop", "nothing-here"),
        ("alert-dispatch", "--repo", "."),
        ("alert-route-test", "--severity", "critical"),
        ("control", "--repo", ".", "--loop", "L", "--intent", "pause"),
    ],
)
def test_without_a_document_one_error_line(tmp_path: Path, argv: tuple[str, ...]) -> None:
    proc = subprocess.run(
        [str(CLI), *argv],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
