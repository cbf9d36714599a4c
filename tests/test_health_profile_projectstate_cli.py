"""``ops-manager health`` / ``threshold-profile`` / ``project-state`` end to end, in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ops_manager.cli import main
from ops_manager.engine.profiles import PACKAGED_PROFILES_FILE, PROFILES_FILE_ENV
from tests.runtime_fixtures import make_runtime_repo


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fail(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 1, (out, err)
    assert err.startswith("error: ")
    return err[len("error: ") :].rstrip("\n")


def write(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


NOW = "2026-02-22T10:10:00Z"

# --- health ---------------------------------------------------------------------------------


def test_health_defaults_compact(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "health", "--now", NOW)
    assert code == 0
    assert out.endswith("}\n") and "\n" not in out[:-1]
    health = json.loads(out)
    assert health["status"] == "healthy"
    assert health["updatedAt"] == NOW
    assert health["traceId"] is None
    assert health["thresholds"]["profile"] is None
    assert health["metrics"]["lifecycleState"] == "unknown"


def test_health_reads_every_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = write(
        tmp_path / "state.json",
        {
            "transition": {"currentState": "running"},
            "projection": {"lastEventAt": "2026-02-22T10:09:50Z"},
            "divergence": {"any": False},
        },
    )
    hb = write(tmp_path / "hb.json", {"lastHeartbeatAt": "2026-02-22T10:00:00Z"})
    seq = write(tmp_path / "seq.json", {"status": "ok", "driftActive": False, "updatedAt": NOW})
    th = write(tmp_path / "th.json", {"failureStreak": 2, "lastFailureCode": "events_unavailable"})
    intents = write(tmp_path / "intents.jsonl", '{"status":"confirmed"}\n{"status":"ambiguous"}\n')
    code, out, _ = run_cli(
        capsys,
        "health",
        "--state-file", str(state),
        "--heartbeat-state-file", str(hb),
        "--sequence-state-file", str(seq),
        "--transport-health-file", str(th),
        "--intents-file", str(intents),
        "--trace-id", "t-9",
        "--transport", "sprite_service",
        "--threshold-profile", "strict",
        "--degraded-transport-failure-streak", "1",
        "--critical-transport-failure-streak", "2",
        "--now", NOW,
        "--pretty",
    )  # fmt: skip
    assert code == 0
    assert out.startswith('{\n  "schemaVersion": "v1",')
    health = json.loads(out)
    assert health["traceId"] == "t-9"
    assert health["status"] == "critical"
    # 7.4 #41 + #43, and the heartbeat lag recomputed from lastHeartbeatAt (600 s)
    assert health["reasonCodes"] == [
        "control_ambiguous",
        "runtime_heartbeat_stale",
        "transport_unreachable",
    ]
    assert health["metrics"]["heartbeatLagSeconds"] == 600
    assert health["metrics"]["ingestLagSeconds"] == 10
    assert health["metrics"]["lastControlStatus"] == "ambiguous"
    assert health["thresholds"]["profile"] == "strict"
    # the label does not load values (§3.4)
    assert health["thresholds"]["degradedIngestLagSeconds"] == 300
    assert health["transport"] == {
        "mode": "sprite_service",
        "ingestStatus": "success",
        "failureCode": None,
        "lastFailureCode": "events_unavailable",
    }


def test_health_missing_input_files_are_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys,
        "health",
        "--state-file", str(tmp_path / "nope.json"),
        "--intents-file", str(tmp_path / "nope.jsonl"),
        "--now", NOW,
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["status"] == "healthy"


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ('{"status":"ambiguous"}\n\n', "ambiguous"),  # a trailing blank line is not a row
        ('{"status":"confirmed"}\n{"status":"ambig', "confirmed"),  # torn tail ignored
        ("garbage\n", None),
        ('{"status":"failed_command"}\n', "failed_command"),
    ],
)
def test_health_intents_last_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, status: str | None
) -> None:
    intents = write(tmp_path / "intents.jsonl", content)
    code, out, _ = run_cli(capsys, "health", "--intents-file", str(intents), "--now", NOW)
    assert code == 0
    assert json.loads(out)["metrics"]["lastControlStatus"] == status


def test_health_ingest_failed_without_code(capsys: pytest.CaptureFixture[str]) -> None:
    # 7.4 #54
    code, out, _ = run_cli(capsys, "health", "--ingest-status", "failed", "--now", NOW)
    assert code == 0
    health = json.loads(out)
    assert [r["code"] for r in health["reasons"]] == ["reconcile_failed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transport", "ssh"], "--transport must be local or sprite_service"),
        (["--transport", ""], "--transport must be local or sprite_service"),
        (["--ingest-status", "ok"], "--ingest-status must be success or failed"),
        (["--now", "bad"], "--now must be an ISO-8601 UTC timestamp"),
        (["--now", "2026-02-22T10:00:00+00:00"], "--now must be an ISO-8601 UTC timestamp"),
        (
            ["--critical-ingest-lag-seconds", "1"],
            "critical ingest lag threshold must be >= degraded threshold",
        ),
        (
            ["--critical-heartbeat-lag-seconds", "1"],
            "critical heartbeat lag threshold must be >= degraded threshold",
        ),
        (
            ["--critical-transport-failure-streak", "1"],
            "critical transport failure threshold must be >= degraded threshold",
        ),
        (
            ["--degraded-ingest-lag-seconds", "x"],
            "degraded-ingest-lag-seconds must be a non-negative integer",
        ),
        (
            ["--critical-ingest-lag-seconds", "-1"],
            "critical-ingest-lag-seconds must be a non-negative integer",
        ),
        (
            ["--degraded-heartbeat-lag-seconds", ""],
            "degraded-heartbeat-lag-seconds must be a non-negative integer",
        ),
        (
            ["--critical-heartbeat-lag-seconds", "1.5"],
            "critical-heartbeat-lag-seconds must be a non-negative integer",
        ),
        (
            ["--degraded-transport-failure-streak", "a"],
            "degraded-transport-failure-streak must be a non-negative integer",
        ),
        (
            ["--critical-transport-failure-streak", " 2"],
            "critical-transport-failure-streak must be a non-negative integer",
        ),
        (["--bogus"], "unknown argument: --bogus"),
        (["--now"], "--now requires a value"),
    ],
)
def test_health_errors(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert fail(capsys, "health", *args) == message


@pytest.mark.parametrize(
    ("flag", "prefix"),
    [
        ("--state-file", "invalid state JSON"),
        ("--heartbeat-state-file", "invalid heartbeat state JSON"),
        ("--sequence-state-file", "invalid sequence state JSON"),
        ("--transport-health-file", "invalid transport health JSON"),
    ],
)
@pytest.mark.parametrize("content", ["{nope", "[1,2]", ""])
def test_health_invalid_input_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, prefix: str, content: str
) -> None:
    bad = write(tmp_path / "bad.json", content)
    assert fail(capsys, "health", flag, str(bad)) == f"{prefix}: {bad}"


# --- threshold-profile ----------------------------------------------------------------------


@pytest.fixture
def no_profile_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROFILES_FILE_ENV, raising=False)


def test_profile_default(capsys: pytest.CaptureFixture[str], no_profile_env: None) -> None:
    code, out, _ = run_cli(capsys, "threshold-profile")
    assert code == 0
    obj = json.loads(out)
    assert list(obj) == ["schemaVersion", "sourceFile", "profile", "values", "description"]
    assert obj["profile"] == "balanced"
    assert obj["values"]["criticalTransportFailureStreak"] == 4
    assert obj["sourceFile"] == str(PACKAGED_PROFILES_FILE)


def test_profile_list(capsys: pytest.CaptureFixture[str], no_profile_env: None) -> None:
    code, out, _ = run_cli(capsys, "threshold-profile", "--list")
    assert (code, out) == (0, "balanced\nrelaxed\nstrict\n")


def test_profile_named_pretty(capsys: pytest.CaptureFixture[str], no_profile_env: None) -> None:
    code, out, _ = run_cli(capsys, "threshold-profile", "--profile", "strict", "--pretty")
    assert code == 0
    assert out.startswith('{\n  "schemaVersion": "v1",')
    assert json.loads(out)["values"]["degradedIngestLagSeconds"] == 120


def _catalog(tmp_path: Path, name: str, default: str | None = "mine") -> Path:
    cat: dict[str, Any] = {
        "schemaVersion": "v1",
        "profiles": {
            "mine": {
                "degradedIngestLagSeconds": 5,
                "criticalIngestLagSeconds": 6,
                "degradedTransportFailureStreak": 1,
                "criticalTransportFailureStreak": 1,
            }
        },
    }
    if default is not None:
        cat["defaultProfile"] = default
    return write(tmp_path / name, cat)


def test_profile_precedence_flag_env_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = _catalog(tmp_path, "env.json")
    flag_file = _catalog(tmp_path, "flag.json")
    monkeypatch.setenv(PROFILES_FILE_ENV, str(env_file))
    _, out, _ = run_cli(capsys, "threshold-profile")
    obj = json.loads(out)
    assert obj["sourceFile"] == str(env_file)
    assert obj["profile"] == "mine"
    assert "description" not in obj  # [strip]
    _, out, _ = run_cli(capsys, "threshold-profile", "--profiles-file", str(flag_file))
    assert json.loads(out)["sourceFile"] == str(flag_file)
    monkeypatch.setenv(PROFILES_FILE_ENV, "")
    _, out, _ = run_cli(capsys, "threshold-profile")
    assert json.loads(out)["sourceFile"] == str(PACKAGED_PROFILES_FILE)


def test_profile_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_profile_env: None
) -> None:
    missing = tmp_path / "missing.json"
    assert fail(capsys, "threshold-profile", "--profiles-file", str(missing)) == (
        f"threshold profiles file not found: {missing}"
    )
    bad = write(tmp_path / "bad.json", "{")
    assert fail(capsys, "threshold-profile", "--profiles-file", str(bad)) == (
        f"invalid threshold profiles JSON: {bad}"
    )
    shape = write(tmp_path / "shape.json", {"schemaVersion": "v1", "profiles": {}})
    assert fail(capsys, "threshold-profile", "--profiles-file", str(shape)) == (
        "threshold profiles file has invalid shape"
    )
    assert fail(capsys, "threshold-profile", "--list", "--profiles-file", str(shape)) == (
        "threshold profiles file has invalid shape"
    )
    nodefault = _catalog(tmp_path, "nodefault.json", default=None)
    assert fail(capsys, "threshold-profile", "--profiles-file", str(nodefault)) == (
        "profile name is required and defaultProfile is missing"
    )
    assert fail(capsys, "threshold-profile", "--profile", "unknown") == (
        "unknown threshold profile: unknown"
    )
    invalid = write(
        tmp_path / "invalid.json",
        {"schemaVersion": "v1", "profiles": {"p": {"degradedIngestLagSeconds": 9}}},
    )
    assert fail(capsys, "threshold-profile", "--profiles-file", str(invalid), "--profile", "p") == (
        "threshold profile values are invalid: p"
    )


# --- project-state --------------------------------------------------------------------------


def _snapshot(repo: Path, loop: str = "demo-loop", **over: Any) -> dict[str, Any]:
    snap: dict[str, Any] = {
        "schemaVersion": "v1",
        "envelopeType": "loop_run_snapshot",
        "source": {"repoPath": str(repo), "loopId": loop},
        "run": {"runId": "run-123", "iteration": 1, "status": "running", "summary": None},
        "runtime": {"superloopState": {"active": True}, "approval": None},
        "cursor": {"eventLineOffset": 2, "eventLineCount": 2},
        "health": {"lastEventName": "iteration_start", "lastEventAt": "2026-02-22T10:00:05Z"},
    }
    snap.update(over)
    return snap


def _event(loop: str = "demo-loop", name: str = "role_end", line: int = 1) -> dict[str, Any]:
    return {
        "schemaVersion": "v1",
        "envelopeType": "loop_run_event",
        "source": {"repoPath": "/r", "loopId": loop},
        "sequence": {"source": "cursor_event_line_offset", "value": line},
        "event": {"name": name, "timestamp": "2026-02-22T10:00:05Z"},
    }


def test_project_state_with_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    snap = write(tmp_path / "snap.json", _snapshot(repo))
    events = write(
        tmp_path / "events.ndjson",
        "\n".join(json.dumps(e) for e in [_event(line=1), _event(name="iteration_start", line=2)])
        + "\n\n",
    )
    state_file = tmp_path / "out" / "deep" / "state.json"
    code, out, _ = run_cli(
        capsys,
        "project-state",
        "--repo", str(repo),
        "--loop", "demo-loop",
        "--snapshot-file", str(snap),
        "--events-file", str(events),
        "--state-file", str(state_file),
    )  # fmt: skip
    assert code == 0
    assert state_file.read_text() == out  # the file is echoed
    state = json.loads(out)
    assert state["source"] == {"repoPath": str(repo.resolve()), "loopId": "demo-loop"}
    assert state["transition"] == {
        "previousState": "none",
        "triggeringSignal": "event:iteration_start",
        "currentState": "running",
        "confidence": "high",
    }
    assert state["evidence"]["snapshotFile"] == str(snap)
    assert state["evidence"]["eventsFile"] == str(events)
    assert state["evidence"]["lastEventEnvelope"]["sequence"]["value"] == 2

    # second run: previous state is read, and --pretty writes the pretty form too
    code, out, _ = run_cli(
        capsys,
        "project-state",
        "--repo", str(repo),
        "--loop", "demo-loop",
        "--snapshot-file", str(snap),
        "--state-file", str(state_file),
        "--pretty",
    )  # fmt: skip
    assert code == 0
    assert out.startswith('{\n  "schemaVersion": "v1",')
    assert state_file.read_text() == out
    state = json.loads(out)
    assert state["transition"]["previousState"] == "running"
    assert state["transition"]["triggeringSignal"] == "snapshot_status:running"
    assert state["transition"]["confidence"] == "medium"
    assert state["evidence"]["eventsFile"] is None


def test_project_state_in_process_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_runtime_repo(tmp_path / "repo")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, _ = run_cli(capsys, "project-state", "--repo", str(repo), "--loop", "demo-loop")
    assert code == 0
    state = json.loads(out)
    default_state = repo / ".superloop" / "ops-manager" / "demo-loop" / "state.json"
    assert default_state.read_text() == out
    assert state["evidence"]["snapshotFile"] is None  # nothing written for the snapshot
    assert state["transition"]["currentState"] == "running"
    assert state["run"] == {"runId": "run-123", "iteration": 1}
    assert state["cursor"] == {"eventLineOffset": 3, "eventLineCount": 3}
    assert state["projection"]["active"] is True
    # no temp file left anywhere under the test dir or the OPS dir
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert sorted(p.name for p in default_state.parent.iterdir()) == ["state.json"]


def test_project_state_invalid_previous_state_is_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    snap = write(tmp_path / "snap.json", _snapshot(repo))
    state_file = write(tmp_path / "state.json", "{broken")
    code, out, _ = run_cli(
        capsys,
        "project-state",
        "--repo", str(repo),
        "--loop", "demo-loop",
        "--snapshot-file", str(snap),
        "--state-file", str(state_file),
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["transition"]["previousState"] == "none"


def test_project_state_cursor_regression_7_2_26(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    snap = write(tmp_path / "snap.json", _snapshot(repo))
    state_file = write(tmp_path / "state.json", {"cursor": {"eventLineOffset": 99}})
    code, out, _ = run_cli(
        capsys,
        "project-state",
        "--repo", str(repo),
        "--loop", "demo-loop",
        "--snapshot-file", str(snap),
        "--state-file", str(state_file),
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["divergence"]["flags"]["cursorRegression"] is True


def test_project_state_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    base = ["project-state", "--repo", str(repo), "--loop", "demo-loop"]
    assert fail(capsys, "project-state", "--loop", "demo-loop") == "--repo is required"
    assert fail(capsys, "project-state", "--repo", str(repo)) == "--loop is required"
    assert fail(capsys, "project-state", "--repo", str(repo), "--loop", "../x").startswith(
        "invalid loop id"
    )
    missing = tmp_path / "missing.json"
    assert (
        fail(capsys, *base, "--snapshot-file", str(missing))
        == f"snapshot file not found: {missing}"
    )
    bad = write(tmp_path / "bad.json", "{x")
    assert fail(capsys, *base, "--snapshot-file", str(bad)) == f"invalid snapshot JSON: {bad}"
    other = write(tmp_path / "other.json", _snapshot(repo, loop="other-loop"))
    assert fail(capsys, *base, "--snapshot-file", str(other)) == (
        "snapshot envelope is invalid or loop id mismatch"
    )
    snap = write(tmp_path / "snap.json", _snapshot(repo))
    with_snap = [*base, "--snapshot-file", str(snap)]
    missing_ev = tmp_path / "missing.ndjson"
    assert fail(capsys, *with_snap, "--events-file", str(missing_ev)) == (
        f"events file not found: {missing_ev}"
    )
    not_json = write(tmp_path / "nj.ndjson", json.dumps(_event()) + "\nnot json\n")
    assert fail(capsys, *with_snap, "--events-file", str(not_json)) == (
        f"invalid event envelope in {not_json}"
    )
    # 7.2 #27
    invalid = write(tmp_path / "inv.ndjson", '{"not":"a-valid-envelope"}\n')
    assert fail(capsys, *with_snap, "--events-file", str(invalid)) == (
        "event envelope is invalid or loop id mismatch"
    )
    wrong_loop = write(tmp_path / "wl.ndjson", json.dumps(_event(loop="x")) + "\n")
    assert fail(capsys, *with_snap, "--events-file", str(wrong_loop)) == (
        "event envelope is invalid or loop id mismatch"
    )
    # nothing was written by any failing run
    assert not (repo / ".superloop").exists()


def test_project_state_in_process_snapshot_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    message = fail(capsys, "project-state", "--repo", str(repo), "--loop", "demo-loop")
    assert message.startswith("required artifact root missing: ")
    assert not (repo / ".superloop" / "ops-manager").exists()
