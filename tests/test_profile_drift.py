"""``ops-manager profile-drift``, its reducer, and drift inside reconcile / status
(``loop.md`` §3.7, §3.8.2 steps 12-14, §3.13, §7.6 items 72-79, 81)."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager._timefmt import format_ts, parse_ts, utc_now_epoch
from ops_manager.cli import main
from ops_manager.engine.reconcile import ReconcileSettings, reconcile
from ops_manager.reducers.drift import (
    DriftInputs,
    drift_history_row,
    evaluate_drift,
    state_drift,
    tuning_block,
)
from ops_manager.reducers.thresholds import Thresholds
from tests.runtime_fixtures import event, make_runtime_repo

LOOP = "demo-loop"
T0 = parse_ts("2030-01-01T00:00:00Z") or 0
BIG = "999999999"
QUIET_INGEST = ("--degraded-ingest-lag-seconds", BIG, "--critical-ingest-lag-seconds", BIG)
PROFILES = Path(__file__).resolve().parent.parent / "config/ops-manager-threshold-profiles.v1.json"

DRIFT_KEYS = [
    "schemaVersion",
    "updatedAt",
    "loopId",
    "status",
    "reasonCode",
    "appliedProfile",
    "recommendedProfile",
    "recommendationConfidence",
    "minimumConfidence",
    "recommendationRank",
    "minimumRank",
    "requiredStreak",
    "summaryWindow",
    "mismatch",
    "confidenceOk",
    "eligibleMismatch",
    "mismatchStreak",
    "driftActive",
    "transitioned",
    "rationale",
    "action",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OPS_MANAGER_"):
            monkeypatch.delenv(key)


def ops(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP


def tel(repo: Path) -> Path:
    return ops(repo) / "telemetry"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def drift_cli(
    capsys: pytest.CaptureFixture[str], repo: Path, *extra: object
) -> tuple[int, str, str]:
    return cli(capsys, "profile-drift", "--repo", repo, "--loop", LOOP, *extra)


def fresh_events(count: int = 2) -> list[dict[str, Any]]:
    now = utc_now_epoch()
    names = ["loop_start", "iteration_start", "role_start", "role_end"]
    return [event(names[i], format_ts(now - count + i)) for i in range(count)]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = (tmp_path / "repo").resolve()
    r.mkdir()
    return r


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    """A runtime repo with two fresh events."""
    return make_runtime_repo(tmp_path / "rt", events=fresh_events()).resolve()


# --- the command (§7.6 items 76-79) ------------------------------------------------------

MISMATCH = ("--applied-profile", "balanced", "--recommended-profile", "relaxed")


def test_item_76_streak_activates_drift(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    args = (*MISMATCH, "--recommendation-confidence", "high", "--required-streak", "2")
    code, out, err = drift_cli(capsys, repo, *args)
    assert (code, err) == (0, "")
    first = json.loads(out)
    assert list(first) == [k for k in DRIFT_KEYS if k not in ("reasonCode", "rationale")]
    assert (first["status"], first["mismatchStreak"], first["driftActive"]) == (
        "mismatch_pending",
        1,
        False,
    )
    assert first["action"] == "monitor_additional_windows"
    code, out, _ = drift_cli(capsys, repo, *args)
    second = json.loads(out)
    assert (second["status"], second["driftActive"]) == ("drift_active", True)
    assert second["reasonCode"] == "profile_drift_detected"
    assert second["action"] == "review_threshold_profile"
    assert second["transitioned"] == {"toActive": True, "toResolved": False}
    state_text = (ops(repo) / "profile-drift.json").read_text(encoding="utf-8")
    assert state_text == json.dumps(second, separators=(",", ":")) + "\n"  # compact file
    history = read_jsonl(tel(repo) / "profile-drift.jsonl")
    assert len(history) == 2
    assert list(history[1]) == ["timestamp", "loopId", "category", "drift"]
    assert history[1]["category"] == "profile_drift_evaluation"
    assert history[1]["drift"] == second
    # a third mismatch keeps it active without a new edge
    third = json.loads(drift_cli(capsys, repo, *args)[1])
    assert third["transitioned"] == {"toActive": False, "toResolved": False}
    assert third["mismatchStreak"] == 3


def test_item_77_alignment_resolves(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    base = ("--recommendation-confidence", "high", "--required-streak", "1")
    assert json.loads(drift_cli(capsys, repo, *MISMATCH, *base)[1])["driftActive"] is True
    _, out, _ = drift_cli(
        capsys,
        repo,
        "--applied-profile",
        "balanced",
        "--recommended-profile",
        "balanced",
        *base,
        "--rationale",
        "why not",
    )
    drift = json.loads(out)
    assert (drift["status"], drift["driftActive"], drift["mismatchStreak"]) == ("aligned", False, 0)
    assert drift["transitioned"] == {"toActive": False, "toResolved": True}
    assert "action" not in drift and "reasonCode" not in drift
    assert drift["rationale"] == "why not"
    # the resolve signal: the projection says inactive, the history row carries the edge
    assert read_json(ops(repo) / "profile-drift.json")["driftActive"] is False
    assert read_jsonl(tel(repo) / "profile-drift.jsonl")[-1]["drift"]["transitioned"]["toResolved"]


def test_item_78_insufficient_confidence(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    _, out, _ = drift_cli(
        capsys, repo, *MISMATCH, "--recommendation-confidence", "low", "--min-confidence", "high"
    )
    drift = json.loads(out)
    assert drift["status"] == "insufficient_confidence"
    assert (drift["eligibleMismatch"], drift["mismatchStreak"]) == (False, 0)
    assert (drift["recommendationRank"], drift["minimumRank"]) == (1, 3)
    assert drift["action"] == "collect_more_confident_telemetry"


def test_no_recommendation_and_defaults(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    code, out, _ = drift_cli(capsys, repo)
    assert code == 0
    drift = json.loads(out)
    assert drift["status"] == "no_recommendation"
    assert "appliedProfile" not in drift and "recommendedProfile" not in drift
    assert (drift["recommendationConfidence"], drift["minimumConfidence"]) == ("low", "medium")
    assert (drift["requiredStreak"], drift["summaryWindow"]) == (3, 200)
    assert "action" not in drift
    pretty = drift_cli(capsys, repo, "--pretty", "--summary-window", "25")[1]
    assert pretty.startswith('{\n  "schemaVersion": "v1",')
    assert json.loads(pretty)["summaryWindow"] == 25
    assert (ops(repo) / "profile-drift.json").read_text(encoding="utf-8").count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--required-streak", "0"], "--required-streak must be an integer >= 1"),
        (["--summary-window", "x"], "--summary-window must be an integer >= 1"),
        (
            ["--recommendation-confidence", "max"],
            "--recommendation-confidence must be one of: low, medium, high",
        ),
        (["--min-confidence", ""], "--min-confidence must be one of: low, medium, high"),
        # validation order: streak first, then window, then the confidences
        (
            ["--min-confidence", "x", "--summary-window", "0", "--required-streak", "0"],
            "--required-streak must be an integer >= 1",
        ),
        (
            ["--min-confidence", "x", "--recommendation-confidence", "y", "--summary-window", "0"],
            "--summary-window must be an integer >= 1",
        ),
        (
            ["--min-confidence", "x", "--recommendation-confidence", "y"],
            "--recommendation-confidence must be one of: low, medium, high",
        ),
        (["--applied-profile", "unknown-profile"], "unknown applied profile: unknown-profile"),
        (["--recommended-profile", "nope"], "unknown recommended profile: nope"),
        (
            ["--applied-profile", "a", "--recommended-profile", "b"],
            "unknown applied profile: a",
        ),
    ],
)
def test_item_79_validation(
    capsys: pytest.CaptureFixture[str], repo: Path, extra: list[str], message: str
) -> None:
    code, out, err = drift_cli(capsys, repo, *extra)
    assert (code, out, err) == (1, "", f"error: {message}\n")
    assert not (ops(repo) / "profile-drift.json").exists()


def test_file_errors_and_overrides(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = repo / "bad.json"
    bad.write_text('{"profiles": []}', encoding="utf-8")
    assert drift_cli(capsys, repo, "--thresholds-file", bad)[2] == (
        f"error: invalid threshold profiles file: {bad}\n"
    )
    missing = repo / "missing.json"
    assert drift_cli(capsys, repo, "--thresholds-file", missing)[2] == (
        f"error: invalid threshold profiles file: {missing}\n"
    )
    # env catalog: a catalog with only "custom"
    custom = repo / "custom.json"
    custom.write_text(json.dumps({"profiles": {"custom": {}}}), encoding="utf-8")
    monkeypatch.setenv("OPS_MANAGER_THRESHOLD_PROFILES_FILE", str(custom))
    assert drift_cli(capsys, repo, "--applied-profile", "balanced")[2] == (
        "error: unknown applied profile: balanced\n"
    )
    assert drift_cli(capsys, repo, "--applied-profile", "custom")[0] == 0
    # the flag wins over the env
    assert drift_cli(capsys, repo, "--thresholds-file", PROFILES, *MISMATCH)[0] == 0
    monkeypatch.delenv("OPS_MANAGER_THRESHOLD_PROFILES_FILE")
    # a damaged drift state is an error for the command (contract), named
    state = ops(repo) / "profile-drift.json"
    state.write_text("{nope", encoding="utf-8")
    assert drift_cli(capsys, repo, *MISMATCH)[2] == f"error: invalid drift state JSON: {state}\n"
    # overrides of both files
    alt_state, alt_hist = repo / "d.json", repo / "h.jsonl"
    code, out, _ = drift_cli(
        capsys, repo, *MISMATCH, "--drift-state-file", alt_state, "--drift-history-file", alt_hist
    )
    assert code == 0
    assert read_json(alt_state) == json.loads(out)
    assert read_jsonl(alt_hist)[0]["drift"] == json.loads(out)


def test_non_integer_previous_streak_counts_as_zero(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    ops(repo).mkdir(parents=True)
    (ops(repo) / "profile-drift.json").write_text(
        json.dumps({"mismatchStreak": "7", "driftActive": "true"}), encoding="utf-8"
    )
    drift = json.loads(drift_cli(capsys, repo, *MISMATCH, "--recommendation-confidence", "high")[1])
    assert drift["mismatchStreak"] == 1
    assert drift["transitioned"] == {"toActive": False, "toResolved": False}


# --- the reducer -------------------------------------------------------------------------


def inputs(**kw: Any) -> DriftInputs:
    base: dict[str, Any] = {
        "loop_id": LOOP,
        "now": T0,
        "applied_profile": "balanced",
        "recommended_profile": "strict",
        "recommendation_confidence": "high",
        "min_confidence": "medium",
        "required_streak": 2,
    }
    base.update(kw)
    return DriftInputs(**base)


def test_reducer_shapes() -> None:
    drift = evaluate_drift({}, inputs(rationale="r"))
    assert list(drift) == [k for k in DRIFT_KEYS if k != "reasonCode"]
    assert drift["updatedAt"] == format_ts(T0)
    row = drift_history_row(drift, T0)
    assert row == {
        "timestamp": format_ts(T0),
        "loopId": LOOP,
        "category": "profile_drift_evaluation",
        "drift": drift,
    }
    with_trace = state_drift(drift, "t-1")
    assert list(with_trace)[-1] == "traceId" and with_trace["traceId"] == "t-1"
    summary = {
        "recommendedProfile": "strict",
        "confidence": "low",
        "rationale": "x",
        "observed": {"reconcileAttempts": 1},
        "source": {"window": 25},
    }
    assert tuning_block(summary, "balanced") == {
        "appliedProfile": "balanced",
        "recommendedProfile": "strict",
        "confidence": "low",
        "rationale": "x",
        "summaryWindow": 25,
        "telemetrySummary": {"observed": {"reconcileAttempts": 1}, "source": {"window": 25}},
    }
    assert tuning_block({}, None)["telemetrySummary"] == {"observed": {}, "source": {}}


EVALUATION = st.fixed_dictionaries(
    {
        "applied": st.sampled_from(["", "strict", "balanced", "relaxed"]),
        "recommended": st.sampled_from(["", "strict", "balanced", "relaxed"]),
        "confidence": st.sampled_from(["low", "medium", "high"]),
    }
)


@settings(max_examples=200, deadline=None)
@given(
    evaluations=st.lists(EVALUATION, max_size=15),
    required=st.integers(1, 5),
    min_conf=st.sampled_from(["low", "medium", "high"]),
)
def test_streak_and_edges(evaluations: list[dict[str, str]], required: int, min_conf: str) -> None:
    """The streak never exceeds the number of evaluations (nor the run of consecutive
    eligible mismatches); drift is active iff the streak reached the requirement; each edge
    fires exactly when activity changes."""
    previous: dict[str, Any] = {}
    run = 0
    for count, ev in enumerate(evaluations, start=1):
        drift = evaluate_drift(
            previous,
            inputs(
                applied_profile=ev["applied"],
                recommended_profile=ev["recommended"],
                recommendation_confidence=ev["confidence"],
                min_confidence=min_conf,
                required_streak=required,
            ),
        )
        run = run + 1 if drift["eligibleMismatch"] else 0
        assert drift["mismatchStreak"] == run <= count
        assert drift["driftActive"] == (run >= required)
        was = previous.get("driftActive") is True
        assert drift["transitioned"] == {
            "toActive": drift["driftActive"] and not was,
            "toResolved": was and not drift["driftActive"],
        }
        assert (drift["status"] == "drift_active") == drift["driftActive"]
        assert ("action" in drift) == (
            drift["status"] in ("drift_active", "mismatch_pending", "insufficient_confidence")
        )
        previous = drift


# --- inside reconcile ---------------------------------------------------------------------


def rec(capsys: pytest.CaptureFixture[str], repo: Path, *extra: object) -> tuple[int, str, str]:
    return cli(capsys, "reconcile", "--repo", repo, "--loop", LOOP, *extra)


def test_item_73_reconcile_activates_drift(
    capsys: pytest.CaptureFixture[str], runtime: Path
) -> None:
    code, out, err = rec(
        capsys,
        runtime,
        "--trace-id",
        "t-73",
        "--threshold-profile",
        "balanced",
        "--drift-min-confidence",
        "low",
        "--drift-required-streak",
        "1",
        "--drift-summary-window",
        "25",
        *QUIET_INGEST,
    )
    assert (code, err) == (0, "")
    state = json.loads(out)
    drift = state["drift"]
    assert (drift["status"], drift["recommendedProfile"]) == ("drift_active", "strict")
    assert drift["summaryWindow"] == 25
    assert list(drift) == [*DRIFT_KEYS, "traceId"]
    assert drift["traceId"] == "t-73"
    stored = read_json(ops(runtime) / "profile-drift.json")
    assert {**stored, "traceId": "t-73"} == drift
    history = read_jsonl(tel(runtime) / "profile-drift.jsonl")
    assert history[-1]["drift"] == stored
    tuning = state["tuning"]
    assert list(tuning) == [
        "appliedProfile",
        "recommendedProfile",
        "confidence",
        "rationale",
        "summaryWindow",
        "telemetrySummary",
    ]
    assert (tuning["appliedProfile"], tuning["recommendedProfile"], tuning["summaryWindow"]) == (
        "balanced",
        "strict",
        25,
    )
    assert tuning["telemetrySummary"]["observed"]["reconcileAttempts"] == 1
    # one drift escalation, after the health one (if any), with the §3.8.7 shape
    escalations = read_jsonl(ops(runtime) / "escalations.jsonl")
    assert [e["category"] for e in escalations][-1] == "profile_drift_detected"
    row = escalations[-1]
    assert list(row) == [
        "timestamp",
        "loopId",
        "traceId",
        "category",
        "transport",
        "stateFile",
        "driftStateFile",
        "driftHistoryFile",
        "reasonCode",
        "drift",
    ]
    assert row["driftStateFile"] == str(ops(runtime) / "profile-drift.json")
    assert row["driftHistoryFile"] == str(tel(runtime) / "profile-drift.jsonl")
    assert row["reasonCode"] == "profile_drift_detected"
    assert row["drift"]["mismatchStreak"] == 1
    # a second identical pass: still active, no second escalation
    assert rec(capsys, runtime, "--drift-min-confidence", "low", "--drift-required-streak", "1",
               *QUIET_INGEST)[0] == 0  # fmt: skip
    categories = [e["category"] for e in read_jsonl(ops(runtime) / "escalations.jsonl")]
    assert categories.count("profile_drift_detected") == 1


def test_item_81_default_reconcile_of_stale_events(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stale = make_runtime_repo(tmp_path / "stale").resolve()  # 2026-02-22 events: critical
    code, out, _ = rec(capsys, stale, "--trace-id", "t-81")
    assert code == 0
    drift = json.loads(out)["drift"]
    assert (drift["status"], drift["recommendedProfile"]) == ("insufficient_confidence", "relaxed")
    assert drift["action"] == "collect_more_confident_telemetry"
    assert drift["rationale"] == (
        "Observed high critical/failure rates; reduce alert noise while stabilizing"
    )
    assert (drift["minimumConfidence"], drift["requiredStreak"], drift["summaryWindow"]) == (
        "medium",
        3,
        200,
    )


def test_drift_env_vars_flow_through(
    capsys: pytest.CaptureFixture[str], runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_MANAGER_DRIFT_MIN_CONFIDENCE", "low")
    monkeypatch.setenv("OPS_MANAGER_DRIFT_REQUIRED_STREAK", "1")
    monkeypatch.setenv("OPS_MANAGER_DRIFT_SUMMARY_WINDOW", "7")
    drift = json.loads(rec(capsys, runtime, *QUIET_INGEST)[1])["drift"]
    assert (drift["minimumConfidence"], drift["requiredStreak"], drift["summaryWindow"]) == (
        "low",
        1,
        7,
    )
    assert drift["status"] == "drift_active"
    # flags win over the env
    drift = json.loads(
        rec(
            capsys,
            runtime,
            "--drift-min-confidence",
            "high",
            "--drift-required-streak",
            "2",
            "--drift-summary-window",
            "9",
            *QUIET_INGEST,
        )[1]
    )["drift"]
    assert (drift["minimumConfidence"], drift["requiredStreak"], drift["summaryWindow"]) == (
        "high",
        2,
        9,
    )
    assert drift["status"] == "insufficient_confidence"
    assert drift["transitioned"]["toResolved"] is True


def test_drift_file_overrides_in_reconcile(
    capsys: pytest.CaptureFixture[str], runtime: Path
) -> None:
    d, h = runtime / "my-drift.json", runtime / "my-history.jsonl"
    code, out, _ = rec(
        capsys, runtime, "--drift-state-file", d, "--drift-history-file", h, *QUIET_INGEST
    )
    assert code == 0
    assert read_json(d) == {k: v for k, v in json.loads(out)["drift"].items() if k != "traceId"}
    assert len(read_jsonl(h)) == 1
    assert not (ops(runtime) / "profile-drift.json").exists()


def test_failed_pass_runs_drift_without_state(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    """Q-30 / item 49: a failed pass with no state still evaluates drift (files written, no
    state.json); the failed row pushes the recommendation to relaxed."""
    code, out, _ = rec(capsys, repo, "--trace-id", "f-1")
    assert code == 1
    assert json.loads(out)["transport"]["ingestStatus"] == "failed"  # stdout: the health
    assert not (ops(repo) / "state.json").exists()
    drift = read_json(ops(repo) / "profile-drift.json")
    assert (drift["recommendedProfile"], drift["status"]) == ("relaxed", "insufficient_confidence")
    assert len(read_jsonl(tel(repo) / "profile-drift.jsonl")) == 1


def test_damaged_drift_state_is_rebuilt_from_history_in_reconcile(
    capsys: pytest.CaptureFixture[str], runtime: Path
) -> None:
    flags = ("--drift-min-confidence", "low", "--drift-required-streak", "1", *QUIET_INGEST)
    assert rec(capsys, runtime, *flags)[0] == 0
    path = ops(runtime) / "profile-drift.json"
    path.write_text("{torn", encoding="utf-8")
    code, out, err = rec(capsys, runtime, *flags)
    assert code == 0
    assert err == (
        f"warning: invalid drift state JSON: {path}; rebuilt from the last history row "
        f"({tel(runtime) / 'profile-drift.jsonl'})\n"
    )
    drift = json.loads(out)["drift"]
    # the episode continued: no second activation
    assert drift["mismatchStreak"] == 2 and drift["transitioned"]["toActive"] is False
    categories = [e["category"] for e in read_jsonl(ops(runtime) / "escalations.jsonl")]
    assert categories.count("profile_drift_detected") == 1


def test_recommendation_outside_the_catalog(
    capsys: pytest.CaptureFixture[str], runtime: Path
) -> None:
    """A catalog without the recommended profile: drift runs without a recommendation
    (upstream failed every pass with ``unknown recommended profile``)."""
    catalog = runtime / "catalog.json"
    catalog.write_text(
        json.dumps(
            {
                "schemaVersion": "v1",
                "defaultProfile": "only",
                "profiles": {
                    "only": {
                        "degradedIngestLagSeconds": 10**9,
                        "criticalIngestLagSeconds": 10**9,
                        "degradedTransportFailureStreak": 2,
                        "criticalTransportFailureStreak": 4,
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    code, out, err = rec(capsys, runtime, "--thresholds-file", catalog)
    assert code == 0
    assert err == (
        "warning: recommended profile 'strict' is not in the threshold catalog; "
        "drift evaluated without a recommendation\n"
    )
    state = json.loads(out)
    assert state["drift"]["status"] == "no_recommendation"
    assert state["tuning"]["recommendedProfile"] == "strict"  # the summary still says it


def test_library_settings_validate_drift_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ReconcileSettings(repo=tmp_path, loop_id=LOOP, trace_id="t", drift_min_confidence="max")
    with pytest.raises(ValueError):
        ReconcileSettings(repo=tmp_path, loop_id=LOOP, trace_id="t", drift_required_streak=0)
    with pytest.raises(ValueError):
        ReconcileSettings(repo=tmp_path, loop_id=LOOP, trace_id="t", drift_summary_window=0)


def test_library_reconcile_counts_its_own_row(tmp_path: Path) -> None:
    """The summary a pass feeds to drift includes the row the pass appends (as upstream,
    where the summary ran after the row was written)."""
    repo = make_runtime_repo(tmp_path / "lib", events=[event("loop_start", format_ts(T0))])
    s = ReconcileSettings(
        repo=repo.resolve(),
        loop_id=LOOP,
        trace_id="lib",
        thresholds=Thresholds(
            profile="balanced", degraded_ingest_lag_seconds=10**9, critical_ingest_lag_seconds=10**9
        ),
        drift_summary_window=2,
    )
    for i in range(3):
        result = reconcile(s, clock=functools.partial(int, T0 + i))
        assert result.ok
        observed = result.output["tuning"]["telemetrySummary"]["observed"]
        assert observed["reconcileAttempts"] == min(i + 1, 2)


# --- status (items 72, 74) -----------------------------------------------------------------


def test_items_72_74_status_tuning_and_drift(
    capsys: pytest.CaptureFixture[str], runtime: Path
) -> None:
    assert (
        rec(
            capsys,
            runtime,
            "--trace-id",
            "t-st",
            "--threshold-profile",
            "balanced",
            "--drift-min-confidence",
            "low",
            "--drift-required-streak",
            "1",
            "--drift-summary-window",
            "25",
            *QUIET_INGEST,
        )[0]
        == 0
    )
    code, out, _ = cli(capsys, "status", "--repo", runtime, "--loop", LOOP, "--summary-window", 25)
    assert code == 0
    st = json.loads(out)
    tuning = st["tuning"]
    assert (tuning["appliedProfile"], tuning["summaryWindow"]) == ("balanced", 25)
    assert tuning["recommendedProfile"] == "strict"
    assert tuning["confidence"] == "low"
    assert tuning["rationale"] == (
        "Observed stable healthy runs; tighten thresholds for faster detection"
    )
    assert tuning["telemetrySummary"]["source"]["window"] == 25
    assert tuning["telemetrySummary"]["observed"]["reconcileAttempts"] == 1
    assert st["drift"]["status"] == "drift_active"
    assert st["drift"]["action"] == "review_threshold_profile"
    assert "traceId" not in st["drift"]  # item 109: from profile-drift.json
    assert st["files"]["driftStateFile"] == str(ops(runtime) / "profile-drift.json")
    # status still works (summary counts it) when a telemetry row is malformed
    with open(tel(runtime) / "reconcile.jsonl", "ab") as handle:
        handle.write(b"oops\n")
    st = json.loads(cli(capsys, "status", "--repo", runtime, "--loop", LOOP)[1])
    observed = st["tuning"]["telemetrySummary"]["observed"]
    assert observed["malformedRows"] == {"reconcile": 1, "control": 0}
    assert st["tuning"]["recommendedProfile"] == "strict"


def test_unreadable_telemetry_means_no_recommendation(
    capsys: pytest.CaptureFixture[str], runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A summary that cannot be read is no summary (upstream: summary = null): drift is
    evaluated without a recommendation, ``tuning`` is not merged, the pass still succeeds."""
    import ops_manager.engine.reconcile as engine

    def broken(**_kw: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(engine, "summarize_with", broken)
    code, out, err = rec(capsys, runtime, *QUIET_INGEST)
    assert code == 0
    assert err.startswith("warning: telemetry summary unavailable:")
    state = json.loads(out)
    assert state["drift"]["status"] == "no_recommendation"
    assert state["drift"]["recommendationConfidence"] == "low"
    assert "tuning" not in state
