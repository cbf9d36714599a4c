"""``promotion-gates`` and ``promotion-ci`` (``fleet.md`` §2.6, §2.7, §3.12, §3.13, §4.5).

Decision tables for each of the five gates (every reason, in evaluation order), the upstream
requirement lines R-PG-1..6 and R-CI-1..3 through the CLI, threshold validation, per-drill
timestamp checks (DECISIONS 6.28) and the CI markdown bytes with the intended `` `path` ``
form (DECISIONS 6.9: nothing is ever executed). Drill ages are relative to now.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.cli import main
from ops_manager.engine.promotion import (
    PromotionCISettings,
    PromotionSettings,
    parse_thresholds,
    promotion_ci,
    promotion_gates,
)
from ops_manager.errors import OpsError
from ops_manager.reducers import promotion as rp
from ops_manager.store import FleetPaths

HOUR = 3600
PATHS4 = ("policyGated", "rolloutGated", "governanceGated", "transportGated")


# --- fixtures (the upstream helpers, relative to now) ---------------------------------------


def status_fixture(
    *,
    enabled: Any = True,
    posture: Any = "active",
    blocks: Any = False,
    reason_codes: Any = (),
    backlog: Any = 2,
    autopause: Any = False,
    state_autopause: Any = None,
    paths: Any = PATHS4,
) -> dict[str, Any]:
    """``write_status_fixture``: the minimal fleet status the gates read."""
    rollout: dict[str, Any] = {"autopause": {"active": autopause}}
    if state_autopause is not None:
        rollout["state"] = {"autoPauseActive": state_autopause}
    by_path = (
        {p: {"blockedCount": 0, "byReason": {}} for p in paths}
        if isinstance(paths, tuple)
        else paths
    )
    auto: dict[str, Any] = {
        "enabled": enabled,
        "governance": {
            "posture": posture,
            "blocksAutonomous": blocks,
            "reasonCodes": list(reason_codes),
        },
        "outcomeRollup": {"manual_backlog": backlog} if backlog is not None else {},
        "rollout": rollout,
        "safetyGateDecisions": {"byPath": by_path},
    }
    return {"schemaVersion": "v1", "autonomous": auto}


def execute_row(
    requested: int, executed: int, ambiguous: int, failed: int, mode: str = "autonomous"
) -> dict[str, Any]:
    return {
        "timestamp": format_ts(utc_now_epoch()),
        "category": "fleet_handoff_execute",
        "fleetId": "f",
        "traceId": "t",
        "execution": {
            "mode": mode,
            "requestedIntentCount": requested,
            "executedIntentCount": requested,
            "executedCount": executed,
            "ambiguousCount": ambiguous,
            "failedCount": failed,
        },
    }


def rows(
    n: int, requested: int = 1, executed: int = 1, ambiguous: int = 0, failed: int = 0
) -> list[dict[str, Any]]:
    return [execute_row(requested, executed, ambiguous, failed) for _ in range(n)]


def drills(age_hours: float = 1, status: str = "pass", now: int | None = None) -> dict[str, Any]:
    at = (utc_now_epoch() if now is None else now) - int(age_hours * HOUR)
    return {
        "schemaVersion": "v1",
        "updatedAt": format_ts(at),
        "drills": [
            {"id": d, "status": status, "completedAt": format_ts(at)} for d in rp.REQUIRED_DRILLS
        ],
    }


def evidence(
    status: Mapping[str, Any] | None = None,
    handoff: list[dict[str, Any]] | None = None,
    drill: Any = None,
    **flags: bool,
) -> rp.Evidence:
    return rp.Evidence(
        status=status if status is not None else status_fixture(),
        handoff_rows=handoff if handoff is not None else rows(20),
        drill_state=drill if drill is not None else drills(),
        **flags,
    )


NOW = utc_now_epoch()
T = rp.Thresholds()


# --- gate decision tables -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reasons"),
    [
        (status_fixture(), []),
        (
            status_fixture(enabled=False, posture="not_required"),
            ["promotion_policy_mode_not_guarded_auto", "promotion_governance_posture_not_active"],
        ),
        ({}, ["promotion_policy_mode_not_guarded_auto", "promotion_governance_posture_not_active"]),
        (status_fixture(enabled="yes"), []),  # not false -> enabled (jq `// false == false`)
        (
            status_fixture(
                posture="authority_missing",
                blocks=True,
                reason_codes=["autonomous_governance_authority_missing"],
            ),
            [
                "promotion_governance_posture_not_active",
                "promotion_governance_blocks_autonomous",
                "promotion_governance_authority_missing",
            ],
        ),
        (
            status_fixture(
                posture="review_deadline_missing",
                blocks=True,
                reason_codes=["autonomous_governance_review_deadline_missing"],
            ),
            [
                "promotion_governance_posture_not_active",
                "promotion_governance_blocks_autonomous",
                "promotion_governance_review_deadline_missing",
            ],
        ),
        (
            status_fixture(
                posture="review_expired",
                blocks=True,
                reason_codes=["autonomous_governance_review_expired"],
            ),
            [
                "promotion_governance_posture_not_active",
                "promotion_governance_blocks_autonomous",
                "promotion_governance_review_expired",
            ],
        ),
        (
            # §6.15: due soon blocks too (no promotion_* mapping for the due_soon code itself)
            status_fixture(
                posture="review_due_soon",
                blocks=True,
                reason_codes=["autonomous_governance_review_due_soon"],
            ),
            ["promotion_governance_posture_not_active", "promotion_governance_blocks_autonomous"],
        ),
    ],
)
def test_governance_gate(status: dict[str, Any], reasons: list[str]) -> None:
    gate = rp.governance_gate(status)
    assert gate["reasons"] == reasons
    assert gate["status"] == ("fail" if reasons else "pass")
    assert list(gate) == ["status", "reasons", "posture", "blocksAutonomous", "reasonCodes"]


def test_governance_gate_echoes() -> None:
    gate = rp.governance_gate(status_fixture(reason_codes=["z", "a", "a", 7]))
    assert gate["reasonCodes"] == ["7", "a", "z"]
    assert gate["posture"] == "active"
    assert rp.governance_gate({})["posture"] is None
    assert rp.governance_gate({})["blocksAutonomous"] is False


@pytest.mark.parametrize(
    ("handoff", "flags", "thresholds", "reasons", "numbers"),
    [
        (rows(20), {}, T, [], (20, 20, 20, 0, 0, 0, 0)),
        (
            [],
            {"handoff_missing": True},
            T,
            ["promotion_handoff_telemetry_missing", "promotion_autonomous_sample_insufficient"],
            (0, 0, 0, 0, 0, 0, 0),
        ),
        (
            [],
            {"handoff_invalid": True},
            T,
            ["promotion_handoff_telemetry_invalid", "promotion_autonomous_sample_insufficient"],
            (0, 0, 0, 0, 0, 0, 0),
        ),
        (rows(3), {}, T, ["promotion_autonomous_sample_insufficient"], (3, 3, 3, 0, 0, 0, 0)),
        (rows(20, 0, 0), {}, T, ["promotion_autonomous_attempts_zero"], (20, 0, 0, 0, 0, 0, 0)),
        # 5/20 = 0.25 > 0.2 (strict)
        (
            rows(15) + rows(5, 1, 0, 1),
            {},
            T,
            ["promotion_autonomous_ambiguity_rate_exceeded"],
            (20, 20, 15, 5, 0, 0.25, 0),
        ),
        # exactly at the threshold passes: 4/20 = 0.2
        (rows(16) + rows(4, 1, 0, 0, 1), {}, T, [], (20, 20, 16, 0, 4, 0, 0.2)),
        (
            rows(10) + rows(10, 1, 0, 0, 1),
            {},
            T,
            ["promotion_autonomous_failure_rate_exceeded"],
            (20, 20, 10, 0, 10, 0, 0.5),
        ),
        # window: only the LAST 20 rows (file order) count; manual and plan rows never count
        (
            rows(5, 1, 0, 0, 1)
            + rows(20)
            + [execute_row(1, 0, 0, 1, mode="manual"), {"category": "fleet_handoff_plan"}],
            {},
            T,
            [],
            (20, 20, 20, 0, 0, 0, 0),
        ),
        (
            rows(2, 2, 1, 1),
            {},
            rp.Thresholds(min_sample_size=2),
            ["promotion_autonomous_ambiguity_rate_exceeded"],
            (2, 4, 2, 2, 0, 0.5, 0),
        ),
        (
            rows(3, 3, 3),
            {},
            rp.Thresholds(window_executions=2, min_sample_size=3),
            ["promotion_autonomous_sample_insufficient"],
            (2, 6, 6, 0, 0, 0, 0),
        ),
    ],
)
def test_outcome_reliability_gate(
    handoff: list[dict[str, Any]],
    flags: dict[str, bool],
    thresholds: rp.Thresholds,
    reasons: list[str],
    numbers: tuple[Any, ...],
) -> None:
    gate = rp.outcome_reliability_gate(evidence(handoff=handoff, **flags), thresholds)
    assert gate["reasons"] == reasons
    assert list(gate)[2:] == [
        "sampleRuns",
        "attempted",
        "executed",
        "ambiguous",
        "failed",
        "ambiguityRate",
        "failureRate",
    ]
    got = tuple(gate[k] for k in list(gate)[2:])
    assert got == numbers
    # integral rates print as integers
    assert all(not isinstance(v, float) or not v.is_integer() for v in got)


@pytest.mark.parametrize(
    ("backlog", "reasons", "echo"),
    [
        (2, [], 2),
        (5, [], 5),
        (0, [], 0),
        (6, ["promotion_manual_backlog_exceeded"], 6),
        (None, ["promotion_manual_backlog_unavailable"], None),
        ("3", ["promotion_manual_backlog_unavailable"], None),
    ],
)
def test_manual_backlog_gate(backlog: Any, reasons: list[str], echo: Any) -> None:
    gate = rp.manual_backlog_gate(status_fixture(backlog=backlog), T)
    assert gate["reasons"] == reasons
    assert gate["manualBacklog"] == echo


@pytest.mark.parametrize(
    ("kwargs", "reasons", "missing", "active"),
    [
        ({}, [], [], False),
        ({"autopause": True}, ["promotion_autopause_active"], [], True),
        ({"autopause": False, "state_autopause": True}, ["promotion_autopause_active"], [], True),
        ({"paths": PATHS4[:3]}, ["promotion_suppression_paths_missing"], ["transportGated"], False),
        ({"paths": None}, ["promotion_suppression_paths_missing"], list(PATHS4), False),
        (
            {"autopause": True, "paths": ("rolloutGated",)},
            ["promotion_autopause_active", "promotion_suppression_paths_missing"],
            ["policyGated", "governanceGated", "transportGated"],
            True,
        ),
    ],
)
def test_safety_suppression_gate(
    kwargs: dict[str, Any], reasons: list[str], missing: list[str], active: bool
) -> None:
    gate = rp.safety_suppression_gate(status_fixture(**kwargs))
    assert gate["reasons"] == reasons
    assert gate["missingPaths"] == missing
    assert gate["autopauseActive"] is active
    assert (gate["byPath"] is None) == (kwargs.get("paths", PATHS4) is None)


def drill_doc(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"schemaVersion": "v1", "drills": list(entries)}


FRESH = format_ts(NOW - HOUR)
STALE = format_ts(NOW - 169 * HOUR)


@pytest.mark.parametrize(
    ("doc", "flags", "reasons"),
    [
        (drills(), {}, []),
        (None, {"drill_missing": True}, ["promotion_drill_state_missing"]),
        (None, {"drill_invalid": True}, ["promotion_drill_state_invalid"]),
        (
            drill_doc({"id": "kill_switch", "status": "pass", "completedAt": FRESH}),
            {},
            [
                "promotion_drill_missing_sprite_service_outage",
                "promotion_drill_missing_ambiguous_retry_guard",
            ],
        ),
        (
            drill_doc(
                {"id": "kill_switch", "status": "fail", "completedAt": FRESH},
                {"id": "sprite_service_outage", "status": "pass", "completedAt": STALE},
                {"id": "ambiguous_retry_guard", "completedAt": FRESH},
            ),
            {},
            [
                "promotion_drill_not_passed_kill_switch",
                "promotion_drill_stale_sprite_service_outage",
                "promotion_drill_not_passed_ambiguous_retry_guard",
            ],
        ),
        (
            # §6.28 upstream example: upstream PASSED this; we judge each drill on its own
            drill_doc(
                {"id": "kill_switch", "status": "pass"},
                {"id": "sprite_service_outage", "status": "fail", "completedAt": "bad"},
                {"id": "ambiguous_retry_guard", "status": "pass", "completedAt": FRESH},
            ),
            {},
            [
                "promotion_drill_timestamp_invalid_kill_switch",
                "promotion_drill_not_passed_sprite_service_outage",
                "promotion_drill_timestamp_invalid_sprite_service_outage",
            ],
        ),
        (
            # fractional seconds / offsets are not contract timestamps (§0.3)
            drill_doc(
                {"id": "kill_switch", "status": "pass", "completedAt": FRESH},
                {
                    "id": "sprite_service_outage",
                    "status": "pass",
                    "completedAt": "2026-01-01T00:00:00.000Z",
                },
                {
                    "id": "ambiguous_retry_guard",
                    "status": "pass",
                    "completedAt": format_ts(NOW + 10 * HOUR),
                },
            ),
            {},
            ["promotion_drill_timestamp_invalid_sprite_service_outage"],  # future: never stale
        ),
        (
            # first entry per id wins; extra ids ignored
            drill_doc(
                {"id": "kill_switch", "status": "fail", "completedAt": FRESH},
                {"id": "kill_switch", "status": "pass", "completedAt": FRESH},
                {"id": "sprite_service_outage", "status": "pass", "completedAt": FRESH},
                {"id": "ambiguous_retry_guard", "status": "pass", "completedAt": FRESH},
                {"id": "extra", "status": "fail"},
                "not-an-object",
            ),
            {},
            ["promotion_drill_not_passed_kill_switch"],
        ),
        ({"drills": "nope"}, {}, [f"promotion_drill_missing_{d}" for d in rp.REQUIRED_DRILLS]),
    ],
)
def test_drill_recency_gate(doc: Any, flags: dict[str, bool], reasons: list[str]) -> None:
    ev = rp.Evidence(status={}, drill_state=doc, **flags)
    gate = rp.drill_recency_gate(ev, T, NOW)
    assert gate["reasons"] == reasons
    assert gate["requiredDrills"] == list(rp.REQUIRED_DRILLS)
    assert gate["drills"] == (doc["drills"] if isinstance(doc, dict) else [])


def test_drill_staleness_boundary() -> None:
    exact = drills(age_hours=168, now=NOW)
    assert rp.drill_recency_gate(rp.Evidence(status={}, drill_state=exact), T, NOW)["reasons"] == []
    over = drills(age_hours=168, now=NOW + 1)  # completedAt one second earlier than "168 h ago"
    over_gate = rp.drill_recency_gate(rp.Evidence(status={}, drill_state=over), T, NOW + 2)
    assert over_gate["reasons"] == [f"promotion_drill_stale_{d}" for d in rp.REQUIRED_DRILLS]


def test_decision_summary_counts_and_order() -> None:
    doc = rp.promotion_document(
        evidence=evidence(
            status=status_fixture(enabled=False, posture="x", backlog=99), handoff=rows(2)
        ),
        thresholds=T,
        now=NOW,
        generated_at="G",
        trace_id="tr",
        source={"repoPath": "/r"},
    )
    assert list(doc) == [
        "schemaVersion",
        "generatedAt",
        "traceId",
        "source",
        "thresholds",
        "summary",
        "gates",
    ]
    assert list(doc["gates"]) == [
        "governance",
        "outcomeReliability",
        "manualBacklog",
        "safetySuppression",
        "drillRecency",
    ]
    summary = doc["summary"]
    assert summary["decision"] == "hold" and summary["promote"] is False
    assert summary["failedGates"] == ["governance", "outcome_reliability", "manual_backlog"]
    assert (summary["gatePassCount"], summary["gateFailCount"]) == (2, 3)
    assert summary["reasonCodes"] == sorted(summary["reasonCodes"])
    ok = rp.promotion_document(
        evidence=evidence(), thresholds=T, now=NOW, generated_at="G", trace_id="t", source={}
    )
    assert ok["summary"] == {
        "decision": "promote",
        "promote": True,
        "gatePassCount": 5,
        "gateFailCount": 0,
        "failedGates": [],
        "reasonCodes": [],
    }


# --- thresholds -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_executions": "0"}, "--window-executions must be an integer >= 1"),
        ({"window_executions": "x"}, "--window-executions must be an integer >= 1"),
        ({"min_sample_size": "-1"}, "--min-sample-size must be an integer >= 1"),
        ({"max_ambiguity_rate": "1.5"}, "--max-ambiguity-rate must be a number between 0 and 1"),
        ({"max_ambiguity_rate": "1e-1"}, "--max-ambiguity-rate must be a number between 0 and 1"),
        ({"max_failure_rate": "-0.1"}, "--max-failure-rate must be a number between 0 and 1"),
        ({"max_manual_backlog": "1.0"}, "--max-manual-backlog must be an integer >= 0"),
        ({"max_drill_age_hours": "0"}, "--max-drill-age-hours must be an integer >= 1"),
        # table order: the first invalid flag wins
        (
            {"max_drill_age_hours": "0", "window_executions": "0"},
            "--window-executions must be an integer >= 1",
        ),
    ],
)
def test_threshold_validation(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(OpsError) as err:
        parse_thresholds(**kwargs)
    assert err.value.message == message


def test_threshold_canonical_numbers() -> None:
    t = parse_thresholds(
        max_ambiguity_rate=".5",
        max_failure_rate="1.0",
        window_executions="007",
        max_manual_backlog="0",
    )
    assert t.to_json() == {
        "windowExecutions": 7,
        "minSampleSize": 20,
        "maxAmbiguityRate": 0.5,
        "maxFailureRate": 1,
        "maxManualBacklog": 0,
        "maxDrillAgeHours": 168,
    }
    assert json.dumps(parse_thresholds().to_json()) == (
        '{"windowExecutions": 20, "minSampleSize": 20, "maxAmbiguityRate": 0.2, '
        '"maxFailureRate": 0.2, "maxManualBacklog": 5, "maxDrillAgeHours": 168}'
    )


# --- CLI: the upstream requirement lines ----------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("OPS_MANAGER_TRACE_ID", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    return root.resolve()


def write(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value) + "\n")
    return path


def write_rows(path: Path, items: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in items))
    return path


def evidence_files(
    tmp: Path,
    *,
    status: dict[str, Any] | None = None,
    handoff: list[dict[str, Any]] | None = None,
    drill: Any = None,
) -> dict[str, Path]:
    return {
        "status": write(tmp / "status.json", status or status_fixture()),
        "handoff": write_rows(tmp / "handoff.jsonl", rows(20) if handoff is None else handoff),
        "drills": write(tmp / "drills.json", drill if drill is not None else drills()),
    }


def gates_cli(repo: Path, files: Mapping[str, Path], *extra: str) -> list[str]:
    return [
        "promotion-gates",
        "--repo",
        str(repo),
        "--fleet-status-file",
        str(files["status"]),
        "--handoff-telemetry-file",
        str(files["handoff"]),
        "--drill-state-file",
        str(files["drills"]),
        *extra,
    ]


def test_pg1_promote_writes_state_and_one_telemetry_row(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = evidence_files(tmp_path)
    assert main(gates_cli(repo, files, "--trace-id", "tr-1")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["decision"] == "promote"
    paths = FleetPaths.for_repo(repo)
    state = json.loads(paths.promotion_state_file.read_text())
    assert state == out
    assert state["summary"]["gateFailCount"] == 0
    lines = paths.promotion_telemetry_file.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == out
    assert out["source"] == {
        "repoPath": str(repo),
        "fleetStatusSource": "file",
        "fleetStatusFile": str(files["status"]),
        "handoffTelemetryFile": str(files["handoff"]),
        "drillStateFile": str(files["drills"]),
        "promotionStateFile": str(paths.promotion_state_file),
        "promotionTelemetryFile": str(paths.promotion_telemetry_file),
    }
    assert out["traceId"] == "tr-1"


@pytest.mark.parametrize(
    ("files_kwargs", "gate", "codes"),
    [
        (
            {
                "status": status_fixture(
                    posture="authority_missing",
                    blocks=True,
                    reason_codes=["autonomous_governance_authority_missing"],
                )
            },
            "governance",
            ["promotion_governance_authority_missing"],
        ),
        ({"handoff": rows(3)}, "outcome_reliability", ["promotion_autonomous_sample_insufficient"]),
        (
            {"status": status_fixture(autopause=True, paths=PATHS4[:3])},
            "safety_suppression",
            ["promotion_autopause_active", "promotion_suppression_paths_missing"],
        ),
    ],
)
def test_pg2_to_pg4_hold(
    repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files_kwargs: dict[str, Any],
    gate: str,
    codes: list[str],
) -> None:
    files = evidence_files(tmp_path, **files_kwargs)
    assert main(gates_cli(repo, files)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["decision"] == "hold"
    assert out["summary"]["failedGates"] == [gate]
    assert set(codes) <= set(out["summary"]["reasonCodes"])


def test_pg5_missing_drill_file(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = dict(evidence_files(tmp_path), drills=tmp_path / "nope.json")
    assert main(gates_cli(repo, files)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["failedGates"] == ["drill_recency"]
    assert out["summary"]["reasonCodes"] == ["promotion_drill_state_missing"]


def test_pg6_fail_on_hold_exits_2_and_still_prints(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = evidence_files(tmp_path, status=status_fixture(backlog=10))
    assert main(gates_cli(repo, files, "--fail-on-hold")) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["decision"] == "hold"
    assert "promotion_manual_backlog_exceeded" in out["summary"]["reasonCodes"]
    # promote + --fail-on-hold is still 0
    files = evidence_files(tmp_path)
    assert main(gates_cli(repo, files, "--fail-on-hold")) == 0


def test_invalid_evidence_is_never_fatal(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = evidence_files(tmp_path)
    files["handoff"].write_text('{"category":"fleet_handoff_execute"}\n{broken\n')
    files["drills"].write_text("{not json")
    assert main(gates_cli(repo, files)) == 0
    out = json.loads(capsys.readouterr().out)
    assert "promotion_handoff_telemetry_invalid" in out["gates"]["outcomeReliability"]["reasons"]
    assert out["gates"]["drillRecency"]["reasons"] == ["promotion_drill_state_invalid"]
    # a torn final line (a write in progress) is not corruption
    write_rows(files["handoff"], rows(20))
    with open(files["handoff"], "a") as handle:
        handle.write('{"category":"fleet_hand')
    write(files["drills"], drills())
    assert main(gates_cli(repo, files)) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["decision"] == "promote"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "error: fleet status file not found: {status}"),
        ("invalid", "error: invalid fleet status JSON: {status}"),
    ],
)
def test_status_file_errors(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str
) -> None:
    files = evidence_files(tmp_path)
    if setup == "missing":
        files["status"].unlink()
    else:
        files["status"].write_text("{")
    assert main(gates_cli(repo, files)) == 1
    assert capsys.readouterr().err.strip() == message.format(status=files["status"])
    assert not FleetPaths.for_repo(repo).promotion_state_file.exists()


def test_threshold_errors_come_before_the_repo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["promotion-gates", "--repo", "/does/not/exist", "--max-failure-rate", "2"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "error: --max-failure-rate must be a number between 0 and 1"
    )


def test_generated_status_source(repo: Path, tmp_path: Path) -> None:
    files = evidence_files(tmp_path)
    seen: list[Path] = []

    def status_fn(path: Path, now: int) -> dict[str, Any]:
        seen.append(path)
        return status_fixture()

    result = promotion_gates(
        PromotionSettings(
            repo=repo, handoff_telemetry_file=files["handoff"], drill_state_file=files["drills"]
        ),
        status_fn=status_fn,
    )
    assert seen == [repo]
    assert result.document["source"]["fleetStatusSource"] == "generated"
    assert result.document["source"]["fleetStatusFile"] is None
    assert result.decision == "promote"

    def broken(path: Path, now: int) -> dict[str, Any]:
        raise OpsError("fleet state file not found: x")

    with pytest.raises(OpsError, match="failed to read fleet status via ops-manager fleet-status"):
        promotion_gates(PromotionSettings(repo=repo), status_fn=broken)


def test_generated_status_through_the_real_fleet_status(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A.6-like: an advisory fleet with no handoff telemetry and no drills holds."""
    from tests.fleet_fixtures import loop_result, seed_fleet

    seed_fleet(repo, [loop_result(repo, "loop-a")])
    assert main(["promotion-gates", "--repo", str(repo), "--trace-id", "tr-1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"]["fleetStatusSource"] == "generated"
    assert out["summary"]["decision"] == "hold"
    assert {
        "promotion_policy_mode_not_guarded_auto",
        "promotion_handoff_telemetry_missing",
        "promotion_drill_state_missing",
    } <= set(out["summary"]["reasonCodes"])


# --- promotion CI ---------------------------------------------------------------------------


def ci_cli(repo: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "promotion-ci",
        "--repo",
        str(repo),
        "--result-file",
        str(tmp_path / "ci/result.json"),
        "--summary-file",
        str(tmp_path / "ci/summary.md"),
        *extra,
    ]


def test_ci1_skipped_on_missing_evidence(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    step = tmp_path / "step-summary.md"
    step.write_text("previous step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    assert (
        main(ci_cli(repo, tmp_path, "--skip-on-missing-evidence", "--max-failure-rate", "9")) == 0
    )
    out = json.loads(capsys.readouterr().out)
    paths = FleetPaths.for_repo(repo)
    missing = [str(paths.handoff_telemetry_file), str(paths.promotion_drill_file)]
    assert out["summary"] == {
        "decision": "skipped",
        "promote": False,
        "reasonCodes": ["promotion_ci_missing_evidence"],
        "missingEvidencePaths": missing,
    }
    assert list(out) == ["schemaVersion", "generatedAt", "source", "summary"]
    assert json.loads((tmp_path / "ci/result.json").read_text()) == out
    markdown = (
        "## Ops Manager Promotion CI\n"
        "\n"
        "Decision: `skipped`\n"
        "\n"
        "Reason codes: `promotion_ci_missing_evidence`\n"
        "\n"
        "Missing evidence paths:\n"
        f"- `{missing[0]}`\n"
        f"- `{missing[1]}`\n"
    )
    assert (tmp_path / "ci/summary.md").read_text() == markdown
    assert step.read_text() == "previous step\n" + markdown
    # the evaluator did not run
    assert not paths.promotion_state_file.exists()


def test_ci2_promote_and_exact_markdown(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = evidence_files(tmp_path, status=status_fixture(backlog=1))
    argv = ci_cli(
        repo,
        tmp_path,
        "--fleet-status-file",
        str(files["status"]),
        "--handoff-telemetry-file",
        str(files["handoff"]),
        "--drill-state-file",
        str(files["drills"]),
        "--skip-on-missing-evidence",
        "--pretty",
    )
    assert main(argv) == 0
    raw = capsys.readouterr().out
    assert raw.startswith("{\n  ")
    out = json.loads(raw)
    assert out["summary"]["decision"] == "promote"
    assert json.loads((tmp_path / "ci/result.json").read_text()) == out
    paths = FleetPaths.for_repo(repo)
    assert (tmp_path / "ci/summary.md").read_text() == (
        "## Ops Manager Promotion CI\n"
        "\n"
        "Decision: `promote`\n"
        "\n"
        "Failed gates: none\n"
        "\n"
        "Reason codes: none\n"
        "\n"
        f"Result JSON: `{tmp_path / 'ci/result.json'}`\n"
        "\n"
        f"Promotion state: `{paths.promotion_state_file}`\n"
        "\n"
        f"Promotion telemetry: `{paths.promotion_telemetry_file}`\n"
    )


def test_ci3_hold_with_fail_on_hold(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = evidence_files(tmp_path, status=status_fixture(backlog=99), handoff=rows(3))
    argv = ci_cli(
        repo,
        tmp_path,
        "--fleet-status-file",
        str(files["status"]),
        "--handoff-telemetry-file",
        str(files["handoff"]),
        "--drill-state-file",
        str(files["drills"]),
        "--fail-on-hold",
        "--max-manual-backlog",
        "5",
    )
    assert main(argv) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["decision"] == "hold"
    assert "promotion_manual_backlog_exceeded" in out["summary"]["reasonCodes"]
    summary = (tmp_path / "ci/summary.md").read_text()
    assert "Decision: `hold`\n" in summary
    assert "Failed gates: outcome_reliability, manual_backlog\n" in summary
    codes = "promotion_autonomous_sample_insufficient, promotion_manual_backlog_exceeded"
    assert f"Reason codes: {codes}\n" in summary


def test_ci_markdown_never_executes_a_path(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DECISIONS 6.9: upstream ran ``<path>\\`` as a command substitution. Paths here are
    executables that would leave a marker if run; they only appear as code spans."""
    marker = tmp_path / "EXECUTED"
    bad = tmp_path / "bin dir"
    bad.mkdir()
    evil = bad / "handoff`x`.jsonl"
    evil.write_text(f"#!/bin/sh\ntouch {marker}\n")
    evil.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    argv = ci_cli(
        repo,
        tmp_path,
        "--handoff-telemetry-file",
        str(evil),
        "--drill-state-file",
        str(bad / "missing.json"),
        "--skip-on-missing-evidence",
    )
    assert main(argv) == 0
    capsys.readouterr()
    md = (tmp_path / "ci/summary.md").read_text()
    assert f"- `` {bad / 'missing.json'} ``\n" not in md  # no backticks -> single fence
    assert f"- `{bad / 'missing.json'}`\n" in md
    assert not marker.exists()
    # evaluated: the state/telemetry paths are named as code spans, never run
    files = evidence_files(tmp_path)
    argv = ci_cli(
        repo,
        tmp_path,
        "--fleet-status-file",
        str(files["status"]),
        "--handoff-telemetry-file",
        str(files["handoff"]),
        "--drill-state-file",
        str(files["drills"]),
        "--promotion-telemetry-file",
        str(bad / "promo`tel`.jsonl"),
    )
    assert main(argv) == 0
    capsys.readouterr()
    md = (tmp_path / "ci/summary.md").read_text()
    assert f"Promotion telemetry: `` {bad / 'promo`tel`.jsonl'} ``\n" in md
    assert not marker.exists()


def test_ci_evaluator_error_writes_nothing(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ci_cli(repo, tmp_path, "--fleet-status-file", str(tmp_path / "nope.json"))
    assert main(argv) == 1
    assert "error: fleet status file not found" in capsys.readouterr().err
    assert not (tmp_path / "ci/result.json").exists()
    assert not (tmp_path / "ci/summary.md").exists()
    assert (tmp_path / "ci").is_dir()  # directories are created first, like upstream
    files = evidence_files(tmp_path)
    argv = ci_cli(
        repo, tmp_path, "--fleet-status-file", str(files["status"]), "--window-executions", "0"
    )
    assert main(argv) == 1
    assert "--window-executions must be an integer >= 1" in capsys.readouterr().err


def test_ci_missing_status_file_listed_first(repo: Path, tmp_path: Path) -> None:
    result = promotion_ci(
        PromotionCISettings(
            repo=repo, fleet_status_file=tmp_path / "s.json", skip_on_missing_evidence=True
        ),
        env={},
    )
    assert result.result["summary"]["missingEvidencePaths"][0] == str(tmp_path / "s.json")
    assert result.exit_code == 0


def test_md_code() -> None:
    assert rp.md_code("a b") == "`a b`"
    assert rp.md_code("a`b") == "`` a`b ``"
    assert rp.md_code("``x") == "``` ``x ```"
    assert os.sep in rp.decision_markdown(
        {}, result_file="/r", state_file="/s", telemetry_file="/t"
    )
    assert "Decision: `unknown`\n" in rp.decision_markdown(
        {}, result_file="r", state_file="s", telemetry_file="t"
    )


def test_ci_step_summary_failure_is_a_warning(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = promotion_ci(
        PromotionCISettings(repo=repo, skip_on_missing_evidence=True),
        env={"GITHUB_STEP_SUMMARY": str(tmp_path / "no/such/dir/summary.md")},
    )
    assert result.exit_code == 0
    # the engine returns the warning; the CLI prints it (on successful runs only)
    (warning,) = result.warnings
    assert warning.startswith("cannot append to GITHUB_STEP_SUMMARY")
    assert capsys.readouterr().err == ""
    assert FleetPaths.for_repo(repo).promotion_ci_summary_file.read_text() == result.markdown
