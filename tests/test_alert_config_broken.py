"""A broken alert sink config must not drop pages (issue 12, point 5).

Real CLI processes, real HTTP on 127.0.0.1, no mocks: escalations are written, then
``alert-dispatch`` runs with a truncated config. Nothing may be consumed: the offset stays,
the run says ``config_invalid`` / ``alert_config_invalid`` (exit 1, the state is the whole
output), and a reconcile shows the broken config in health and status. Once the config is
fixed, every escalation read meanwhile reaches the receiver exactly once per idempotency key;
further dispatch and replay runs send nothing again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops_manager.testing import LoopbackReceiver
from tests.runtime_fixtures import make_runtime_repo

LOOP = "demo-loop"
BIG = "999999999"
CLI = Path(sys.executable).parent / "ops-manager"
#: huge lag thresholds: the fixture's events are hours old, and this test is about alerts
QUIET = (
    "--degraded-ingest-lag-seconds",
    BIG,
    "--critical-ingest-lag-seconds",
    BIG,
    "--degraded-heartbeat-lag-seconds",
    BIG,
    "--critical-heartbeat-lag-seconds",
    BIG,
)


def _config(url_env: str) -> dict[str, Any]:
    return {
        "schemaVersion": "v1",
        "defaultMinSeverity": "info",
        "sinks": {
            "ops-webhook": {
                "enabled": True,
                "type": "webhook",
                "urlEnv": url_env,
                "timeoutSeconds": 5,
            }
        },
        "routing": {
            "defaultSinks": ["ops-webhook"],
            "categorySeverity": {
                "health_degraded": "warning",
                "health_critical": "critical",
                "divergence_detected": "warning",
            },
            "routes": [],
        },
        "delivery": {"maxAttempts": 2, "deadlineSeconds": 5, "backoffBaseSeconds": 0.05},
    }


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    with LoopbackReceiver(name="webhook") as rx:
        yield rx


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_MANAGER_")}
    env["BROKEN_CFG_WEBHOOK_URL"] = url
    return env


def _run(env: dict[str, str], *argv: object) -> tuple[int, str]:
    """One CLI process; stdout and stderr merged, as a ``2>&1`` caller reads them."""
    proc = subprocess.run(
        [str(CLI), *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout


def _escalation(repo: Path, n: int, category: str, status: str) -> dict[str, Any]:
    ops = repo / ".superloop" / "ops-manager" / LOOP
    return {
        "timestamp": f"2026-02-22T0{n}:00:00Z",
        "loopId": LOOP,
        "traceId": f"trace-esc-{n}",
        "category": category,
        "transport": "local",
        "ingestStatus": "failed",
        "failureCode": "snapshot_unavailable",
        "stateFile": str(ops / "state.json"),
        "cursorFile": str(ops / "cursor.json"),
        "healthFile": str(ops / "health.json"),
        "healthStatus": status,
        "reasonCodes": ["transport_unreachable"],
        "reasons": [
            {
                "code": "transport_unreachable",
                "severity": status,
                "metric": "ingestStatus",
                "observed": "failed",
                "threshold": "success",
            }
        ],
    }


def _ops(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP


def _keys(rx: LoopbackReceiver) -> list[str]:
    return [str(r.header("Idempotency-Key")) for r in rx.requests if r.accepted]


def test_truncated_config_keeps_every_page_until_fixed(
    tmp_path: Path, receiver: LoopbackReceiver
) -> None:
    repo = make_runtime_repo(tmp_path / "repo", LOOP).resolve()
    env = _env(receiver.url_for("/hook"))
    config_file = tmp_path / "alert-sinks.json"
    good = json.dumps(_config("BROKEN_CFG_WEBHOOK_URL"), indent=2)
    # a deploy that wrote half the file
    config_file.write_text(good[: len(good) // 2], encoding="utf-8")

    ops = _ops(repo)
    ops.mkdir(parents=True)
    rows = [
        _escalation(repo, 1, "health_degraded", "degraded"),
        _escalation(repo, 2, "health_critical", "critical"),
        _escalation(repo, 3, "divergence_detected", "degraded"),
    ]
    (ops / "escalations.jsonl").write_text(
        "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows), encoding="utf-8"
    )
    dispatch = ("alert-dispatch", "--repo", repo, "--loop", LOOP, "--trace-id")
    cfg = ("--alert-config-file", config_file)

    # 1. broken config: nothing consumed, nothing sent, the state is the whole output
    code, out = _run(env, *dispatch, "t-broken-1", *cfg)
    assert code == 1, out
    state = json.loads(out)
    assert state["status"] == "config_invalid"
    assert state["failureReasonCodes"] == ["alert_config_invalid"]
    assert state["processedCount"] == 0
    assert state["escalationsLineOffset"] == 0
    assert state["escalationsLineCount"] == 3
    error = state["configError"]
    assert error["reasonCode"] == "alert_config_invalid"
    assert error["message"] == f"invalid alert sink config JSON: {config_file}"
    assert error["pendingEscalationCount"] == 3
    since = error["since"]
    assert receiver.requests == []
    outbox = ops / "alert-outbox.jsonl"
    assert not outbox.exists() or outbox.read_text(encoding="utf-8") == ""

    # a second broken run: still nothing lost, `since` kept, no second telemetry row
    code, out = _run(env, *dispatch, "t-broken-2", *cfg)
    assert code == 1
    assert json.loads(out)["configError"]["since"] == since
    telemetry = [
        json.loads(line)
        for line in (ops / "telemetry" / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [t["status"] for t in telemetry] == ["config_invalid"]
    assert telemetry[0]["reasonCode"] == "alert_config_invalid"
    assert telemetry[0]["pendingEscalationCount"] == 3

    # 2. a reconcile (alerts on, same broken config) shows it in health and status
    code, out = _run(
        env,
        "reconcile",
        "--repo",
        repo,
        "--loop",
        LOOP,
        "--trace-id",
        "t-rec-1",
        "--alert-config-file",
        config_file,
        *QUIET,
    )
    assert code == 0, out
    reconciled = json.loads(out)
    assert "alert_config_invalid" in reconciled["health"]["reasonCodes"]
    health = json.loads((ops / "health.json").read_text(encoding="utf-8"))
    assert health["status"] == "degraded"
    assert health["reasonCodes"] == ["alert_config_invalid"]
    assert receiver.requests == []
    code, out = _run(env, "status", "--repo", repo, "--loop", LOOP)
    assert code == 0, out
    status = json.loads(out)
    assert "alert_config_invalid" in status["health"]["reasonCodes"]
    assert status["alerts"]["dispatch"]["status"] == "config_invalid"
    assert status["alerts"]["dispatch"]["configError"]["reasonCode"] == "alert_config_invalid"
    # the pass escalated the degraded health; it waits with the others
    lines = (ops / "escalations.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    assert json.loads(lines[3])["reasonCodes"] == ["alert_config_invalid"]
    state = json.loads((ops / "alert-dispatch-state.json").read_text(encoding="utf-8"))
    assert state["escalationsLineOffset"] == 0
    assert state["configError"]["pendingEscalationCount"] == 4

    # 3. fixed: each of the four is delivered exactly once per idempotency key
    config_file.write_text(good, encoding="utf-8")
    code, out = _run(env, *dispatch, "t-fixed-1", *cfg)
    assert code == 0, out
    state = json.loads(out)
    assert state["status"] == "success"
    assert state["processedCount"] == 4
    assert state["dispatchedCount"] == 4
    assert state["escalationsLineOffset"] == 4
    assert state["configError"] is None
    keys = _keys(receiver)
    assert Counter(keys).most_common(1)[0][1] == 1, keys
    sent = [(r.json()["event"]["action"], r.json()["event"]["category"]) for r in receiver.requests]
    triggers = [c for a, c in sent if a == "trigger"]
    assert triggers == [
        "health_degraded",
        "health_critical",
        "divergence_detected",
        "health_degraded",
    ]
    # the runtime shows no divergence: that episode is resolved in the same run
    assert [c for a, c in sent if a == "resolve"] == ["divergence_detected"]
    delivered = len(receiver.requests)

    # 4. again, and a replay: no duplicates
    code, out = _run(env, *dispatch, "t-fixed-2", *cfg)
    assert code == 0, out
    assert json.loads(out)["status"] == "no_new_escalations"
    code, out = _run(env, "alert-replay", "--repo", repo, "--loop", LOOP, *cfg)
    assert code == 0, out
    assert json.loads(out)["selectedCount"] == 0
    assert len(receiver.requests) == delivered

    # 5. the next reconcile: health clears; status no longer shows a config error
    code, out = _run(
        env,
        "reconcile",
        "--repo",
        repo,
        "--loop",
        LOOP,
        "--trace-id",
        "t-rec-2",
        "--alert-config-file",
        config_file,
        *QUIET,
    )
    assert code == 0, out
    assert json.loads(out)["health"]["status"] == "healthy"
    code, out = _run(env, "status", "--repo", repo, "--loop", LOOP)
    status = json.loads(out)
    assert "alert_config_invalid" not in status["health"]["reasonCodes"]
    assert "configError" not in status["alerts"]["dispatch"]
    keys = _keys(receiver)
    assert Counter(keys).most_common(1)[0][1] == 1, keys


def test_missing_config_file_also_keeps_rows(tmp_path: Path, receiver: LoopbackReceiver) -> None:
    """An explicit config path that does not exist (a deploy that lost the file) is the same
    case: rows stay unconsumed and are delivered after the file is back."""
    repo = make_runtime_repo(tmp_path / "repo", LOOP).resolve()
    env = _env(receiver.url_for("/hook"))
    config_file = tmp_path / "gone.json"
    ops = _ops(repo)
    ops.mkdir(parents=True)
    row = _escalation(repo, 1, "health_critical", "critical")
    (ops / "escalations.jsonl").write_text(
        json.dumps(row, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    argv = ("alert-dispatch", "--repo", repo, "--loop", LOOP, "--alert-config-file", config_file)
    code, out = _run(env, *argv)
    assert code == 1
    state = json.loads(out)
    assert state["configError"]["message"] == f"alert sink config file not found: {config_file}"
    assert state["escalationsLineOffset"] == 0
    config_file.write_text(json.dumps(_config("BROKEN_CFG_WEBHOOK_URL")), encoding="utf-8")
    code, out = _run(env, *argv)
    assert code == 0, out
    assert json.loads(out)["dispatchedCount"] == 1
    assert len(_keys(receiver)) == 1
    code, out = _run(env, *argv)
    assert code == 0
    assert len(receiver.requests) == 1


# --- the pure pieces ------------------------------------------------------------------------


def test_health_rule_and_config_error_record() -> None:
    from ops_manager.reducers.alerts import config_error_json
    from ops_manager.reducers.health import HealthInputs, compute_health
    from ops_manager.reducers.thresholds import Thresholds

    base: dict[str, Any] = {
        "now": 1_800_000_000,
        "trace_id": "t",
        "transport": "local",
        "ingest_status": "success",
        "failure_code": None,
        "thresholds": Thresholds(profile="balanced"),
        "state": {},
        "heartbeat_state": {},
        "sequence_state": {},
        "transport_health": {},
        "last_control_status": None,
    }
    assert compute_health(HealthInputs(**base))["reasonCodes"] == []
    broken = compute_health(HealthInputs(**base, alert_config_error="invalid JSON"))
    assert (broken["status"], broken["reasonCodes"]) == ("degraded", ["alert_config_invalid"])
    assert broken["reasons"] == [
        {
            "code": "alert_config_invalid",
            "severity": "degraded",
            "metric": "alertConfig",
            "observed": "invalid",
            "threshold": "valid",
        }
    ]
    first = config_error_json(
        now=1_800_000_000, message="m", config_file="/c", pending=2, previous=None
    )
    assert first["since"] == "2027-01-15T08:00:00Z"
    later = config_error_json(
        now=1_800_000_600, message="m2", config_file="/c", pending=5, previous=first
    )
    assert (later["since"], later["pendingEscalationCount"]) == (first["since"], 5)
