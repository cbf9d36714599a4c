"""Fleet status: posture, exception buckets, drill-down rows, trace linkage (``fleet.md`` §2.4).

Fleet states are seeded with :mod:`tests.fleet_fixtures` exactly as fleet-reconcile writes
them; one end-to-end test runs the real fleet-reconcile first. Without policy and handoff
artifacts the sections they feed are ``null`` (pinned here); what they contain is tested in
``tests/test_fleet_status_autonomy.py`` (Appendix A.5 in full, byte for byte).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_manager._jsonfmt import dumps_compact, dumps_pretty
from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.cli import main
from ops_manager.engine.fleet_status import FleetStatusFiles, fleet_status
from ops_manager.errors import OpsError
from ops_manager.reducers.fleet_status import (
    STATUS_KEY_ORDER,
    build_fleet_status,
    fleet_state_problem,
    trace_linkage,
)
from ops_manager.store import FleetPaths
from tests.fleet_fixtures import (
    append_reconcile_telemetry,
    fleet_state,
    governance,
    guarded_auto_policy,
    loop_entry,
    loop_result,
    make_fleet_repo,
    registry_doc,
    seed_fleet,
    write_fleet_state,
    write_registry,
)

NOW = 1_780_000_000
TOP_KEYS = [
    "schemaVersion",
    "generatedAt",
    "source",
    "fleet",
    "healthRollup",
    "exceptions",
    "policy",
    "handoff",
    "autonomous",
    "loops",
    "traceLinkage",
    "latestTelemetry",
    "latestHandoffTelemetry",
    "files",
]
AUTONOMY_KEYS = ("policy", "handoff", "autonomous", "latestHandoffTelemetry")


def tmp_files(loop_id: str) -> dict[str, str]:
    """The ``/tmp/<loop>/...`` artifact paths of the upstream hand-written fixtures."""
    return {
        "stateFile": f"/tmp/{loop_id}/state.json",
        "healthFile": f"/tmp/{loop_id}/health.json",
        "cursorFile": f"/tmp/{loop_id}/cursor.json",
        "reconcileTelemetryFile": f"/tmp/{loop_id}/reconcile.jsonl",
    }


def a5_state(repo: Path) -> dict[str, Any]:
    """The fleet state behind Appendix A.5 (R-POL-1 fixture)."""
    trace = "trace-fleet-policy-1"
    red = loop_result(
        repo,
        "loop-red",
        status="failed",
        health_status="critical",
        health_reason_codes=["transport_unreachable"],
        fleet_trace_id=trace,
        duration_seconds=5,
        files=tmp_files("loop-red"),
    )
    blue = loop_result(
        repo,
        "loop-blue",
        health_status="degraded",
        health_reason_codes=["ingest_stale"],
        fleet_trace_id=trace,
        duration_seconds=4,
        files=tmp_files("loop-blue"),
    )
    state = fleet_state([red, blue], fleet_id="fleet-policy", trace_id=trace)
    state["reasonCodes"] = ["fleet_partial_failure"]
    return state


#: Appendix A.5, the parts that do not depend on the policy state (no policy state is
#: written here: ``traceLinkage.policyTraceId`` is null; the whole of A.5 is compared in
#: ``tests/test_fleet_status_autonomy.py``)
A5_PARTS = {
    "source": '{"repoPath":"/abs/repo","fleetId":"fleet-policy"}',
    "fleet": (
        '{"status":"partial_failure","reasonCodes":["fleet_health_critical","fleet_partial_failure"],'
        '"loopCount":2,"successCount":1,"failedCount":1,"skippedCount":0,'
        '"startedAt":"2026-02-22T17:59:40Z","updatedAt":"2026-02-22T18:00:00Z","durationSeconds":20,'
        '"traceId":"trace-fleet-policy-1","partialFailure":true}'
    ),
    "healthRollup": '{"healthy":0,"degraded":1,"critical":1,"unknown":0}',
    "exceptions": (
        '{"reconcileFailures":["loop-red"],"criticalLoops":["loop-red"],'
        '"degradedLoops":["loop-blue"],"skippedLoops":[]}'
    ),
    "loops": (
        '[{"loopId":"loop-red","status":"failed","reasonCode":"reconcile_failed",'
        '"reconcileStatus":"failed","healthStatus":"critical","healthReasonCodes":'
        '["transport_unreachable"],"durationSeconds":5,"traceId":"trace-fleet-policy-1-loop-red",'
        '"transport":"local","sprite":{},"artifacts":{"stateFile":"/tmp/loop-red/state.json",'
        '"healthFile":"/tmp/loop-red/health.json","cursorFile":"/tmp/loop-red/cursor.json",'
        '"reconcileTelemetryFile":"/tmp/loop-red/reconcile.jsonl"}},{"loopId":"loop-blue",'
        '"status":"success","reconcileStatus":"success","healthStatus":"degraded",'
        '"healthReasonCodes":["ingest_stale"],"durationSeconds":4,"traceId":'
        '"trace-fleet-policy-1-loop-blue","transport":"local","sprite":{},"artifacts":'
        '{"stateFile":"/tmp/loop-blue/state.json","healthFile":"/tmp/loop-blue/health.json",'
        '"cursorFile":"/tmp/loop-blue/cursor.json","reconcileTelemetryFile":'
        '"/tmp/loop-blue/reconcile.jsonl"}}]'
    ),
    "traceLinkage": (
        '{"fleetTraceId":"trace-fleet-policy-1","policyTraceId":null,"loopTraceIds":'
        '["trace-fleet-policy-1-loop-blue","trace-fleet-policy-1-loop-red"],"sharedTraceId":null}'
    ),
    "latestTelemetry": "null",
    "files": (
        '{"registryFile":"/abs/repo/.superloop/ops-manager/fleet/registry.v1.json",'
        '"fleetStateFile":"/abs/repo/.superloop/ops-manager/fleet/state.json",'
        '"policyStateFile":"/abs/repo/.superloop/ops-manager/fleet/policy-state.json",'
        '"fleetTelemetryFile":"/abs/repo/.superloop/ops-manager/fleet/telemetry/reconcile.jsonl",'
        '"handoffStateFile":"/abs/repo/.superloop/ops-manager/fleet/handoff-state.json",'
        '"handoffTelemetryFile":"/abs/repo/.superloop/ops-manager/fleet/telemetry/handoff.jsonl"}'
    ),
}


def test_appendix_a5_parts_byte_for_byte(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    seed_fleet(repo, [], registry=registry_doc(["loop-red", "loop-blue"]), telemetry=False)
    write_fleet_state(repo, a5_state(repo))
    status = fleet_status(repo, now=NOW)
    assert list(status) == TOP_KEYS
    assert status["schemaVersion"] == "v1" and status["generatedAt"] == format_ts(NOW)
    for key, expected in A5_PARTS.items():
        assert dumps_compact(status[key]).replace(str(repo), "/abs/repo") == expected, key


def test_autonomy_sections_are_null_without_their_artifacts(tmp_path: Path) -> None:
    """§2.4: present with value null (no top-level drop-nulls), in contract order."""
    seed_fleet(tmp_path, [loop_result(tmp_path, "a")])
    status = fleet_status(tmp_path, now=NOW)
    assert list(status) == TOP_KEYS
    assert all(status[key] is None for key in AUTONOMY_KEYS)
    assert status["traceLinkage"]["policyTraceId"] is None
    paths = FleetPaths.for_repo(tmp_path)
    assert list(status["files"].items())[2:] == [
        ("policyStateFile", str(paths.policy_state_file)),
        ("fleetTelemetryFile", str(paths.reconcile_telemetry_file)),
        ("handoffStateFile", str(paths.handoff_state_file)),
        ("handoffTelemetryFile", str(paths.handoff_telemetry_file)),
    ]


# --------------------------------------------------------------------------------------------
# posture and exception buckets on seeded fleet states
# --------------------------------------------------------------------------------------------
def _r(
    repo: Path, loop_id: str, status: str = "success", health: str = "healthy"
) -> dict[str, Any]:
    return loop_result(repo, loop_id, status=status, health_status=health)


SCENARIOS: list[tuple[str, list[tuple[str, str, str]], dict[str, Any]]] = [
    (
        "all-healthy",
        [("a", "success", "healthy"), ("b", "success", "healthy")],
        {
            "status": "success",
            "reasonCodes": [],
            "counts": (2, 2, 0, 0),
            "partialFailure": False,
            "rollup": (2, 0, 0, 0),
            "buckets": ([], [], [], []),
        },
    ),
    (
        "partial-failure",
        [("b", "success", "degraded"), ("a", "failed", "critical"), ("c", "success", "healthy")],
        {
            "status": "partial_failure",
            "reasonCodes": ["fleet_health_critical", "fleet_partial_failure"],
            "counts": (3, 2, 1, 0),
            "partialFailure": True,
            "rollup": (1, 1, 1, 0),
            "buckets": (["a"], ["a"], ["b"], []),
        },
    ),
    (
        "all-failed",
        [("z", "failed", "unknown"), ("y", "failed", "degraded")],
        {
            "status": "failed",
            "reasonCodes": ["fleet_health_degraded", "fleet_reconcile_failed"],
            "counts": (2, 0, 2, 0),
            "partialFailure": False,
            "rollup": (0, 1, 0, 1),
            "buckets": (["y", "z"], [], ["y"], []),
        },
    ),
    (
        "disabled-loop",  # DECISIONS 6.1: enabled:false really skips
        [("on", "success", "healthy"), ("off", "skipped", "unknown")],
        {
            "status": "success",
            "reasonCodes": ["fleet_loop_skipped"],
            "counts": (2, 1, 0, 1),
            "partialFailure": False,
            "rollup": (1, 0, 0, 1),
            "buckets": ([], [], [], ["off"]),
        },
    ),
    (
        "byte-order-sort",
        [
            ("loop-é", "failed", "critical"),
            ("loop-Z", "failed", "critical"),
            ("loop-a", "failed", "critical"),
        ],
        {
            "status": "failed",
            "reasonCodes": ["fleet_health_critical", "fleet_reconcile_failed"],
            "counts": (3, 0, 3, 0),
            "partialFailure": False,
            "rollup": (0, 0, 3, 0),
            "buckets": (["loop-Z", "loop-a", "loop-é"],) * 2 + ([], []),
        },
    ),
]


@pytest.mark.parametrize(
    ("rows", "want"), [(r, w) for _, r, w in SCENARIOS], ids=[s[0] for s in SCENARIOS]
)
def test_posture_and_buckets(
    tmp_path: Path, rows: list[tuple[str, str, str]], want: dict[str, Any]
) -> None:
    results = [_r(tmp_path, loop_id, status, health) for loop_id, status, health in rows]
    seed_fleet(tmp_path, results)
    status = fleet_status(tmp_path, now=NOW)
    fleet = status["fleet"]
    assert fleet["status"] == want["status"]
    assert fleet["reasonCodes"] == want["reasonCodes"]
    counts = (
        fleet["loopCount"],
        fleet["successCount"],
        fleet["failedCount"],
        fleet["skippedCount"],
    )
    assert counts == want["counts"]
    assert fleet["partialFailure"] is want["partialFailure"]
    assert tuple(status["healthRollup"].values()) == want["rollup"]
    assert list(status["healthRollup"]) == ["healthy", "degraded", "critical", "unknown"]
    assert tuple(status["exceptions"].values()) == want["buckets"]
    assert [row["loopId"] for row in status["loops"]] == [loop_id for loop_id, _, _ in rows]
    assert status["latestTelemetry"] == {
        "timestamp": "2026-02-22T18:00:00Z",
        "status": want["status"],
        "reasonCodes": want["reasonCodes"],
    }


def test_loop_rows_drill_down(tmp_path: Path) -> None:
    """Each row points at the loop's own state/health/cursor/telemetry files."""
    sprite = {"id": "sp-1", "serviceBaseUrl": "http://s"}
    row = loop_result(
        tmp_path,
        "loop-s",
        status="failed",
        reason_code="transport_unreachable",
        health_status="critical",
        health_reason_codes=["transport_unreachable"],
        transition_state="running",
        transport="sprite_service",
        sprite=sprite,
        metadata={"team": "x"},
        duration_seconds=3,
    )
    seed_fleet(tmp_path, [row])
    out = fleet_status(tmp_path, now=NOW)["loops"][0]
    ops = tmp_path.absolute() / ".superloop" / "ops-manager" / "loop-s"
    assert out == {
        "loopId": "loop-s",
        "status": "failed",
        "reasonCode": "transport_unreachable",
        "reconcileStatus": "failed",
        "healthStatus": "critical",
        "healthReasonCodes": ["transport_unreachable"],
        "transitionState": "running",
        "durationSeconds": 3,
        "traceId": "trace-fleet-1-loop-s",
        "transport": "sprite_service",
        "sprite": sprite,
        "artifacts": {
            "stateFile": str(ops / "state.json"),
            "healthFile": str(ops / "health.json"),
            "cursorFile": str(ops / "cursor.json"),
            "reconcileTelemetryFile": str(ops / "telemetry" / "reconcile.jsonl"),
        },
    }


def test_sparse_state_falls_back_to_results(tmp_path: Path) -> None:
    """A state without counts/status: counts come from results, nulls kept in ``fleet``."""
    results = [
        {"loopId": "a", "status": "failed", "healthStatus": "critical"},
        {"loopId": "b", "status": "success"},
        {"loopId": "c", "status": "skipped", "healthStatus": "weird"},
    ]
    write_registry(tmp_path, ["a", "b", "c"], fleet_id="from-registry")
    write_fleet_state(tmp_path, {"results": results, "loopCount": "3", "failedCount": None})
    status = fleet_status(tmp_path, now=NOW)
    assert status["source"]["fleetId"] == "from-registry"
    assert status["fleet"] == {
        "status": "unknown",
        "reasonCodes": ["fleet_health_critical", "fleet_partial_failure"],
        "loopCount": 3,
        "successCount": 1,
        "failedCount": 1,
        "skippedCount": 1,
        "startedAt": None,
        "updatedAt": None,
        "durationSeconds": None,
        "traceId": None,
        "partialFailure": True,
    }
    assert status["healthRollup"] == {"healthy": 0, "degraded": 0, "critical": 1, "unknown": 2}
    assert status["loops"][1] == {
        "loopId": "b",
        "status": "success",
        "healthStatus": "unknown",
        "healthReasonCodes": [],
        "transport": "local",
        "sprite": {},
        "artifacts": dict.fromkeys(
            ["stateFile", "healthFile", "cursorFile", "reconcileTelemetryFile"], None
        ),
    }
    assert status["traceLinkage"] == {
        "fleetTraceId": None,
        "policyTraceId": None,
        "loopTraceIds": [],
        "sharedTraceId": None,
    }


def test_empty_state_object(tmp_path: Path) -> None:
    write_registry(tmp_path, ["a"])
    write_fleet_state(tmp_path, {})
    status = fleet_status(tmp_path, now=NOW)
    assert status["fleet"]["loopCount"] == 0 and status["loops"] == []
    assert status["source"]["fleetId"] == "default"


@pytest.mark.parametrize(
    ("fleet_trace", "loop_traces", "shared"),
    [
        ("t", ["t-a", "t-b"], None),  # reconcile-produced: unique per loop (§6.11)
        (None, ["x", "x"], "x"),
        ("", ["x"], "x"),
        ("x", ["x"], "x"),
        ("y", ["x"], None),
        (None, ["", "x"], "x"),
        (None, [], None),
        (None, [None, 5, "x"], "x"),
    ],
)
def test_shared_trace_id(fleet_trace: Any, loop_traces: list[Any], shared: str | None) -> None:
    state = {"traceId": fleet_trace}
    results = [{"loopId": str(i), "traceId": t} for i, t in enumerate(loop_traces)]
    assert trace_linkage(state, results)["sharedTraceId"] == shared


# --------------------------------------------------------------------------------------------
# latest telemetry row
# --------------------------------------------------------------------------------------------
def test_latest_telemetry_is_last_complete_row(tmp_path: Path) -> None:
    results = [_r(tmp_path, "a")]
    seed_fleet(tmp_path, results, telemetry=False)
    telemetry = FleetPaths.for_repo(tmp_path).reconcile_telemetry_file
    assert fleet_status(tmp_path, now=NOW)["latestTelemetry"] is None
    older = fleet_state(results, updated_at="2026-02-22T17:00:00Z")
    newer = fleet_state([_r(tmp_path, "a", "failed")], updated_at="2026-02-22T18:00:00Z")
    append_reconcile_telemetry(tmp_path, older)
    append_reconcile_telemetry(tmp_path, newer)
    expect = {
        "timestamp": "2026-02-22T18:00:00Z",
        "status": "failed",
        "reasonCodes": ["fleet_reconcile_failed"],
    }
    assert fleet_status(tmp_path, now=NOW)["latestTelemetry"] == expect
    with open(telemetry, "a", encoding="utf-8") as handle:
        handle.write("\n")  # a trailing blank line
        handle.write('{"timestamp":"2026-02-22T19:00:00Z","status":"succ')  # a write in progress
    assert fleet_status(tmp_path, now=NOW)["latestTelemetry"] == expect
    with open(telemetry, "a", encoding="utf-8") as handle:
        handle.write("\nnot json\n")
    assert fleet_status(tmp_path, now=NOW)["latestTelemetry"] is None
    telemetry.write_text('{"timestamp":"t","reasonCodes":null,"status":null}\n')
    assert fleet_status(tmp_path, now=NOW)["latestTelemetry"] == {
        "timestamp": "t",
        "reasonCodes": [],
    }


# --------------------------------------------------------------------------------------------
# errors, in the contract's order
# --------------------------------------------------------------------------------------------
def test_missing_fleet_state_checked_before_registry(tmp_path: Path) -> None:
    write_registry(tmp_path, {"schemaVersion": "v0"})  # invalid, but never looked at
    with pytest.raises(OpsError) as info:
        fleet_status(tmp_path, now=NOW)
    assert (
        info.value.message
        == f"fleet state file not found: {FleetPaths.for_repo(tmp_path).state_file}"
    )


def test_registry_fails_closed(tmp_path: Path) -> None:
    write_fleet_state(tmp_path, "not even an object")
    paths = FleetPaths.for_repo(tmp_path)
    with pytest.raises(OpsError) as info:
        fleet_status(tmp_path, now=NOW)
    assert info.value.message == f"fleet registry file not found: {paths.registry_file}"
    write_registry(tmp_path, registry_doc(["a"], policy={"mode": "x"}))
    with pytest.raises(OpsError) as info:
        fleet_status(tmp_path, now=NOW)
    assert info.value.message == (
        f"invalid fleet registry: {paths.registry_file}\n"
        " - policy.mode must be advisory or guarded_auto"
    )


def test_expired_governance_blocks_status(tmp_path: Path) -> None:
    """§1.4: an expired guarded_auto review deadline makes status fail closed (exit 1)."""
    now = utc_now_epoch()
    policy = guarded_auto_policy(now, gov=governance(now, changed_days_ago=30, review_in_days=2))
    seed_fleet(tmp_path, [_r(tmp_path, "a")], registry=registry_doc(["a"], policy=policy))
    assert fleet_status(tmp_path, now=now)["fleet"]["status"] == "success"
    with pytest.raises(OpsError) as info:
        fleet_status(tmp_path, now=now + 2 * 86400)
    assert info.value.message.endswith(
        "\n - policy.autonomous.governance.reviewBy must be in the future when policy.mode is "
        "guarded_auto"
    )


def test_library_file_overrides(tmp_path: Path) -> None:
    """``FleetStatusFiles`` replaces defaults; a missing telemetry file is just ``null``."""
    write_registry(tmp_path, ["a"])
    other = tmp_path / "elsewhere" / "state.json"
    write_fleet_state(tmp_path, fleet_state([_r(tmp_path, "a", "failed")]), path=other)
    files = FleetStatusFiles(fleet_state=other, fleet_telemetry=tmp_path / "none.jsonl")
    status = fleet_status(tmp_path, files=files, now=NOW)
    assert status["files"]["fleetStateFile"] == str(other)
    assert status["files"]["fleetTelemetryFile"] == str(tmp_path / "none.jsonl")
    assert status["exceptions"]["reconcileFailures"] == ["a"]
    assert status["latestTelemetry"] is None


@pytest.mark.parametrize(
    ("content", "suffix"),
    [
        ("{", ""),
        ("", ""),
        ('{"results":[{"loopId":"a","durationSeconds":NaN}]}', ""),
        ("[1,2]", " (the fleet state must be a JSON object)"),
        ('{"results":{"a":1}}', " (results must be an array of objects)"),
        ('{"results":[1]}', " (results must be an array of objects)"),
    ],
)
def test_invalid_fleet_state(tmp_path: Path, content: str, suffix: str) -> None:
    write_registry(tmp_path, ["a"])
    path = FleetPaths.for_repo(tmp_path).state_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    with pytest.raises(OpsError) as info:
        fleet_status(tmp_path, now=NOW)
    assert info.value.message == f"invalid fleet state JSON: {path}{suffix}"


# --------------------------------------------------------------------------------------------
# composition: more section builders slot into contract order
# --------------------------------------------------------------------------------------------
def test_extra_sections_are_merged_in_contract_order() -> None:
    state = fleet_state([{"loopId": "a", "status": "success", "traceId": "t-a"}], trace_id="t")

    def policy_section(doc: Any) -> dict[str, Any]:
        assert doc["fleet"]["loopCount"] == 1  # builders see what is built so far
        return {
            "latestHandoffTelemetry": None,
            "policy": {"mode": "advisory"},
            "traceLinkage": {"policyTraceId": "p-1"},
            "files": {"handoffTelemetryFile": "/h.jsonl", "policyStateFile": "/p.json"},
        }

    def handoff_section(doc: Any) -> dict[str, Any]:
        return {
            "autonomous": {"mode": "advisory"},
            "handoff": None,
            "files": {"handoffStateFile": "/hs.json"},
        }

    out = build_fleet_status(
        {"fleetId": "f"},
        state,
        now=NOW,
        repo_path="/r",
        files={"registryFile": "/reg", "fleetStateFile": "/st", "fleetTelemetryFile": "/tel"},
        extra_sections=(policy_section, handoff_section),
    )
    assert list(out) == list(STATUS_KEY_ORDER)
    assert list(out["traceLinkage"]) == [
        "fleetTraceId",
        "policyTraceId",
        "loopTraceIds",
        "sharedTraceId",
    ]
    assert list(out["files"]) == [
        "registryFile",
        "fleetStateFile",
        "policyStateFile",
        "fleetTelemetryFile",
        "handoffStateFile",
        "handoffTelemetryFile",
    ]


# --------------------------------------------------------------------------------------------
# never crash on a hand-edited state
# --------------------------------------------------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)
json_values = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=6,
)
result_strategy = st.fixed_dictionaries(
    {},
    optional={
        "loopId": st.sampled_from(["a", "b", "é"]) | json_values,
        "status": st.sampled_from(["success", "failed", "skipped"]) | json_values,
        "healthStatus": st.sampled_from(["healthy", "degraded", "critical", "unknown"])
        | json_values,
        "traceId": st.sampled_from(["t", ""]) | json_values,
        "files": st.fixed_dictionaries({}, optional={"stateFile": json_values}) | json_values,
        "healthReasonCodes": json_values,
        "sprite": json_values,
    },
)
state_strategy = st.fixed_dictionaries(
    {"results": st.lists(result_strategy, max_size=5)},
    optional={
        k: json_values
        for k in (
            "status",
            "reasonCodes",
            "loopCount",
            "successCount",
            "failedCount",
            "skippedCount",
            "traceId",
            "fleetId",
        )
    },
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    state=state_strategy,
    telemetry=st.none()
    | st.dictionaries(st.sampled_from(["timestamp", "status", "reasonCodes"]), json_values),
)
def test_any_state_object_builds(state: dict[str, Any], telemetry: dict[str, Any] | None) -> None:
    assert fleet_state_problem(state) is None
    out = build_fleet_status(
        {"fleetId": "f"}, state, now=NOW, repo_path="/r", files={}, latest_telemetry=telemetry
    )
    dumps_compact(out)
    assert sum(out["healthRollup"].values()) == len(state["results"])
    assert len(out["loops"]) == len(state["results"])
    for bucket in out["exceptions"].values():
        assert bucket == sorted(set(bucket))


# --------------------------------------------------------------------------------------------
# CLI (in-process) and end to end
# --------------------------------------------------------------------------------------------
def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["fleet-status", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_r_pol_1_status_assertions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """R-POL-1 (status half): reconcileFailures, partialFailure, drill-down stateFile."""
    seed_fleet(tmp_path, [], registry=registry_doc(["loop-red", "loop-blue"]), telemetry=False)
    write_fleet_state(tmp_path, a5_state(tmp_path))
    code, out, err = run_cli(capsys, "--repo", str(tmp_path))
    assert (code, err) == (0, "") and out.count("\n") == 1
    doc = json.loads(out)
    assert doc["exceptions"]["reconcileFailures"] == ["loop-red"]
    assert doc["fleet"]["partialFailure"] is True
    red = next(row for row in doc["loops"] if row["loopId"] == "loop-red")
    assert red["artifacts"]["stateFile"] == "/tmp/loop-red/state.json"
    code, pretty, _ = run_cli(capsys, "--repo", str(tmp_path), "--pretty")
    assert code == 0
    reparsed = json.loads(pretty)
    reparsed["generatedAt"] = doc["generatedAt"]
    assert reparsed == doc and pretty.startswith('{\n  "schemaVersion": "v1",\n')
    assert pretty == dumps_pretty(json.loads(pretty)) + "\n"


def test_cli_flags_are_echoed_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write_registry(repo, ["a"], path=tmp_path / "reg.json")
    state = fleet_state([_r(repo, "a")])
    write_fleet_state(repo, state, path=tmp_path / "state.json")
    append_reconcile_telemetry(repo, state, path=tmp_path / "tel.jsonl")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(
        capsys,
        "--repo",
        "repo",
        "--registry-file",
        "reg.json",
        "--fleet-state-file",
        "state.json",
        "--fleet-telemetry-file",
        "tel.jsonl",
        "--policy-state-file",
        "policy.json",
        "--handoff-state-file",
        "handoff.json",
        "--handoff-telemetry-file",
        "handoff.jsonl",
    )
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["files"] == {
        "registryFile": "reg.json",
        "fleetStateFile": "state.json",
        "policyStateFile": "policy.json",
        "fleetTelemetryFile": "tel.jsonl",
        "handoffStateFile": "handoff.json",
        "handoffTelemetryFile": "handoff.jsonl",
    }
    assert list(doc["files"]) == [
        "registryFile",
        "fleetStateFile",
        "policyStateFile",
        "fleetTelemetryFile",
        "handoffStateFile",
        "handoffTelemetryFile",
    ]
    assert doc["source"]["repoPath"] == str(repo.resolve())
    assert doc["latestTelemetry"]["status"] == "success"


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys)[::2] == (1, "error: --repo is required\n")
    code, out, err = run_cli(capsys, "--repo", str(tmp_path))
    state_file = FleetPaths.for_repo(tmp_path).state_file
    assert (code, out, err) == (1, "", f"error: fleet state file not found: {state_file}\n")
    code, out, err = run_cli(capsys, "--repo", str(tmp_path), "--promotion-state-file", "x")
    assert code == 1 and err == "error: unknown argument: --promotion-state-file\n"
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for flag in (
        "--registry-file",
        "--fleet-state-file",
        "--policy-state-file",
        "--fleet-telemetry-file",
        "--handoff-state-file",
        "--handoff-telemetry-file",
        "--pretty",
    ):
        assert flag in out


def test_end_to_end_with_fleet_reconcile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real loop-level reconciles through fleet-reconcile, then status reads what it wrote."""
    repo = make_fleet_repo(
        tmp_path / "repo",
        ["loop-a", "loop-b", "loop-c", "loop-d", "loop-e"],
        without_artifacts=["loop-c"],
        heartbeat_ages={"loop-a": 180, "loop-b": 900},
    )
    write_registry(
        repo, ["loop-a", "loop-b", "loop-c", "loop-d", loop_entry("loop-e", enabled=False)]
    )
    assert (
        main(
            ["fleet-reconcile", "--repo", str(repo), "--deterministic-order", "--trace-id", "tr-1"]
        )
        == 0
    )
    capsys.readouterr()
    code, out, err = run_cli(capsys, "--repo", str(repo))
    assert (code, err) == (0, "")
    doc = json.loads(out)
    state = json.loads(FleetPaths.for_repo(repo).state_file.read_text())
    fleet = doc["fleet"]
    assert fleet["status"] == state["status"] == "partial_failure"
    assert (
        fleet["loopCount"],
        fleet["successCount"],
        fleet["failedCount"],
        fleet["skippedCount"],
    ) == (5, 3, 1, 1)
    assert doc["exceptions"] == {
        "reconcileFailures": ["loop-c"],
        "criticalLoops": ["loop-b"],
        "degradedLoops": sorted(
            r["loopId"] for r in state["results"] if r["healthStatus"] == "degraded"
        ),
        "skippedLoops": ["loop-e"],
    }
    assert (
        "fleet_loop_skipped" in fleet["reasonCodes"]
        and "fleet_health_critical" in fleet["reasonCodes"]
    )
    assert doc["traceLinkage"]["fleetTraceId"] == "tr-1"
    assert doc["traceLinkage"]["loopTraceIds"] == [f"tr-1-loop-{x}" for x in "abcde"]
    assert doc["latestTelemetry"]["status"] == "partial_failure"
    for row in doc["loops"]:
        if row["status"] == "success":
            assert Path(row["artifacts"]["stateFile"]).is_file()
            assert Path(row["artifacts"]["healthFile"]).is_file()


def test_fleet_paths_cover_every_fleet_artifact(tmp_path: Path) -> None:
    """``FleetPaths`` = the table of ``fleet.md`` §0.1 (+ the fleet lock), absolute."""
    paths = FleetPaths.for_repo(tmp_path)
    fleet = tmp_path.absolute() / ".superloop" / "ops-manager" / "fleet"
    assert {
        "registry.v1.json": paths.registry_file,
        "state.json": paths.state_file,
        "policy-state.json": paths.policy_state_file,
        "handoff-state.json": paths.handoff_state_file,
        "promotion-state.json": paths.promotion_state_file,
        "drills/promotion.v1.json": paths.promotion_drill_file,
        "promotion-ci-result.json": paths.promotion_ci_result_file,
        "promotion-ci-summary.md": paths.promotion_ci_summary_file,
        "telemetry/reconcile.jsonl": paths.reconcile_telemetry_file,
        "telemetry/policy.jsonl": paths.policy_telemetry_file,
        "telemetry/policy-history.jsonl": paths.policy_history_file,
        "telemetry/policy-governance.jsonl": paths.policy_governance_file,
        "telemetry/handoff.jsonl": paths.handoff_telemetry_file,
        "telemetry/promotion.jsonl": paths.promotion_telemetry_file,
        ".lock": paths.lock_file,
    } == {
        rel: fleet / rel
        for rel in (
            "registry.v1.json",
            "state.json",
            "policy-state.json",
            "handoff-state.json",
            "promotion-state.json",
            "drills/promotion.v1.json",
            "promotion-ci-result.json",
            "promotion-ci-summary.md",
            "telemetry/reconcile.jsonl",
            "telemetry/policy.jsonl",
            "telemetry/policy-history.jsonl",
            "telemetry/policy-governance.jsonl",
            "telemetry/handoff.jsonl",
            "telemetry/promotion.jsonl",
            ".lock",
        )
    }
    ops = tmp_path.absolute() / ".superloop" / "ops-manager" / "loop-a"
    assert paths.loop_files("loop-a") == {
        "stateFile": str(ops / "state.json"),
        "healthFile": str(ops / "health.json"),
        "cursorFile": str(ops / "cursor.json"),
        "reconcileTelemetryFile": str(ops / "telemetry" / "reconcile.jsonl"),
    }
    with pytest.raises(OpsError, match="invalid loop id"):
        paths.loop("../x")
