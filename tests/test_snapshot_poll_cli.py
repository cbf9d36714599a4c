"""``loop-run-snapshot`` and ``poll-events`` through the real CLI (loop.md §7.1 + our fixes)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ops_manager.cli import main
from ops_manager.reducers.run_status import (
    coerce_iteration,
    derive_run_identity,
    derive_run_status,
)
from tests.runtime_fixtures import (
    append_events,
    append_raw,
    compact,
    event,
    events_path,
    make_runtime_repo,
    pending_approval,
    realistic_run_events,
    runtime_heartbeat,
    summary_entry,
    ts,
    write_events_raw,
)

LOOP = "demo-loop"
SNAPSHOT_KEYS = [
    "schemaVersion",
    "envelopeType",
    "emittedAt",
    "traceId",
    "source",
    "run",
    "runtime",
    "artifacts",
    "sequence",
    "cursor",
    "health",
]
EVENT_KEYS = [
    "schemaVersion",
    "envelopeType",
    "emittedAt",
    "traceId",
    "source",
    "sequence",
    "cursor",
    "run",
    "event",
]
CURSOR_KEYS = [
    "schemaVersion",
    "repoPath",
    "loopId",
    "eventsFile",
    "eventLineOffset",
    "eventLineCount",
    "updatedAt",
    "position",
]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop anything printed before
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def snapshot(capsys: pytest.CaptureFixture[str], repo: Path, *extra: str) -> dict[str, Any]:
    rc, out, err = cli(capsys, "loop-run-snapshot", "--repo", str(repo), "--loop", LOOP, *extra)
    assert rc == 0, err
    assert out.endswith("\n")
    if "--pretty" not in extra:
        assert out.count("\n") == 1
    value: dict[str, Any] = json.loads(out)
    return value


def poll(
    capsys: pytest.CaptureFixture[str], repo: Path, *extra: str
) -> tuple[int, list[dict[str, Any]], str]:
    rc, out, err = cli(capsys, "poll-events", "--repo", str(repo), "--loop", LOOP, *extra)
    lines = [json.loads(line) for line in out.splitlines()]
    assert all(line.strip() for line in out.splitlines())
    return rc, lines, err


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The upstream contract fixture: active state, one summary entry, 3 events."""
    return make_runtime_repo(tmp_path / "repo")


# --- loop-run-snapshot ---------------------------------------------------------------------


def test_snapshot_basics(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    snap = snapshot(capsys, repo, "--trace-id", "trace-abc")
    assert list(snap) == SNAPSHOT_KEYS  # 16
    assert snap["schemaVersion"] == "v1"  # 1
    assert snap["envelopeType"] == "loop_run_snapshot"
    assert snap["source"] == {"repoPath": str(repo.resolve()), "loopId": LOOP}
    assert snap["run"]["runId"] == "run-123"  # 2
    assert snap["traceId"] == "trace-abc"  # 3
    assert snap["sequence"] == {"source": "cursor_event_line_offset", "value": 3}  # 4
    assert snap["cursor"] == {"eventLineOffset": 3, "eventLineCount": 3}  # 5
    assert snap["run"]["status"] == "running"
    assert snap["run"]["iteration"] == 1
    assert snap["run"]["summary"]["gates"]["lifecycle"] == "skipped"
    assert list(snap["run"]) == ["runId", "iteration", "status", "summary"]
    assert list(snap["runtime"]) == ["superloopState", "activeRun", "approval", "heartbeat"]
    assert list(snap["artifacts"]) == [
        "events",
        "runSummary",
        "state",
        "activeRun",
        "approval",
        "heartbeat",
    ]
    health = snap["health"]
    assert list(health) == [
        "eventCount",
        "lastEventAt",
        "lastEventName",
        "lastSummaryAt",
        "hasPendingApproval",
        "gates",
        "stuck",
    ]
    assert health["eventCount"] == 3
    assert health["lastEventName"] == "role_end"
    assert health["lastEventAt"] == ts(5)
    assert health["lastSummaryAt"] == ts(120)
    assert health["hasPendingApproval"] is False
    assert health["stuck"] == {"streak": 0, "threshold": 3}


def test_snapshot_artifact_refs(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    snap = snapshot(capsys, repo)
    events = snap["artifacts"]["events"]
    assert list(events) == ["path", "exists", "sizeBytes", "lineCount", "sha256", "mtimeEpoch"]
    data = events_path(repo).read_bytes()
    assert events == {
        "path": ".superloop/loops/demo-loop/events.jsonl",
        "exists": True,
        "sizeBytes": len(data),
        "lineCount": 3,
        "sha256": hashlib.sha256(data).hexdigest(),
        "mtimeEpoch": int(events_path(repo).stat().st_mtime),
    }
    assert snap["artifacts"]["state"]["path"] == ".superloop/state.json"
    assert snap["artifacts"]["activeRun"]["exists"] is True
    # 6: no heartbeat file
    assert snap["runtime"]["heartbeat"] is None
    assert snap["artifacts"]["heartbeat"] == {
        "path": ".superloop/loops/demo-loop/heartbeat.v1.json",
        "exists": False,
        "sizeBytes": 0,
        "lineCount": 0,
        "sha256": None,
        "mtimeEpoch": None,
    }


def test_snapshot_trace_id_null_when_not_given(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    rc, out, _ = cli(capsys, "loop-run-snapshot", "--repo", str(repo), "--loop", LOOP)
    assert rc == 0
    assert out.startswith('{"schemaVersion":"v1","envelopeType":"loop_run_snapshot","emittedAt":')
    assert ',"traceId":null,"source":' in out


def test_snapshot_pretty(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    rc, out, _ = cli(capsys, "loop-run-snapshot", "--repo", str(repo), "--loop", LOOP, "--pretty")
    assert rc == 0
    assert out.startswith('{\n  "schemaVersion": "v1",\n')
    assert json.loads(out)["envelopeType"] == "loop_run_snapshot"


def test_snapshot_run_id_override(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    assert snapshot(capsys, repo, "--run-id", "run-override")["run"]["runId"] == "run-override"


def test_snapshot_heartbeat_passthrough(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path, heartbeat=runtime_heartbeat("2026-02-22T11:00:04Z"))
    snap = snapshot(capsys, repo)  # 15
    assert snap["runtime"]["heartbeat"]["timestamp"] == "2026-02-22T11:00:04Z"
    assert snap["artifacts"]["heartbeat"]["exists"] is True


def test_snapshot_iteration_prefers_summary(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    evs = [event("loop_start", ts(0), iteration=1), event("iteration_start", ts(1), iteration=2)]
    repo = make_runtime_repo(tmp_path, events=evs)
    assert snapshot(capsys, repo)["run"]["iteration"] == 1  # 17


def test_snapshot_single_unterminated_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo = make_runtime_repo(tmp_path, active=None, summary_entries=None, events=[])
    write_events_raw(repo, LOOP, compact(event("loop_start", ts(0))).encode())
    snap = snapshot(capsys, repo)  # 18
    assert snap["health"]["eventCount"] == 0
    assert snap["run"]["status"] == "unknown"
    assert snap["health"]["lastEventName"] is None
    assert snap["run"]["runId"] == "unknown"


def test_snapshot_ignores_a_torn_tail_for_last_event(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # upstream: "a\n" + "b" -> eventCount 1 but lastEventName "b"; we use the last
    # complete line, so counts and lastEvent describe the same bytes
    repo = make_runtime_repo(tmp_path, active=None, summary_entries=None, events=[])
    data = (compact(event("iteration_start", ts(0))) + "\n").encode()
    write_events_raw(repo, LOOP, data + b'{"timestamp":"x","event":"loop_st')
    snap = snapshot(capsys, repo)
    assert snap["health"]["eventCount"] == 1
    assert snap["health"]["lastEventName"] == "iteration_start"


def test_snapshot_trailing_blank_line_is_fine(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    append_raw(repo, LOOP, b"\n\n")  # upstream crashed here
    snap = snapshot(capsys, repo)
    assert snap["health"]["eventCount"] == 5
    assert snap["health"]["lastEventName"] == "role_end"


def test_snapshot_failed_status(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    evs = [event("loop_start", ts(0)), event("usage_limit_blocked", ts(1), status="error")]
    repo = make_runtime_repo(tmp_path, active=None, summary_entries=None, events=evs)
    assert snapshot(capsys, repo)["run"]["status"] == "failed"  # 19


def test_snapshot_statuses_of_realistic_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cases = {
        "complete": (
            dict(active=False, summary_entries=[summary_entry(completion_ok=True)]),
            "complete",
        ),
        "max_iterations": (dict(active=False), "stopped"),
        "no_progress": (dict(active=False), "stopped"),
        "role_timeout": (dict(active=False, summary_entries=None), "failed"),
        "died": (dict(active=True), "running"),  # runtime-observed §2: looks alive
        "approval_requested": (
            dict(active=False, approval=pending_approval()),
            "awaiting_approval",
        ),
    }
    for outcome, (kwargs, status) in cases.items():
        evs = realistic_run_events(outcome=outcome)
        repo = make_runtime_repo(tmp_path / outcome, events=evs, **kwargs)
        snap = snapshot(capsys, repo)
        assert snap["run"]["status"] == status, outcome
        assert snap["health"]["eventCount"] == len(evs)
        assert snap["health"]["lastEventName"] == evs[-1]["event"]
    pending = snapshot(capsys, tmp_path / "approval_requested")
    assert pending["health"]["hasPendingApproval"] is True


def test_snapshot_idle_after_cancel_is_unknown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # cancel deletes state.json: the idle rule needs a state object
    repo = make_runtime_repo(tmp_path / "a", active=None)
    assert snapshot(capsys, repo)["run"]["status"] == "unknown"
    repo = make_runtime_repo(tmp_path / "b", active=False)
    assert snapshot(capsys, repo)["run"]["status"] == "idle"


def test_snapshot_fail_closed_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path)
    loopdir = (repo / ".superloop/loops/other").resolve()
    rc, out, err = cli(capsys, "loop-run-snapshot", "--repo", str(repo), "--loop", "other")
    assert (rc, out) == (1, "")
    assert err == f"error: required artifact root missing: {loopdir}\n"
    events_path(repo).unlink()
    rc, _, err = cli(capsys, "loop-run-snapshot", "--repo", str(repo), "--loop", LOOP)
    assert rc == 1  # 7
    assert err == f"error: required artifact missing: {events_path(repo).resolve()}\n"
    write_events_raw(repo, LOOP, b'{"timestamp":"t","event":"a"}\nnot json\n')
    (repo / ".superloop/state.json").write_text("{broken")
    rc, _, err = cli(capsys, "loop-run-snapshot", "--repo", str(repo), "--loop", LOOP)
    assert err == f"error: invalid JSON in final events line: {events_path(repo).resolve()}\n"
    write_events_raw(repo, LOOP, b'{"timestamp":"t","event":"a"}\n')
    rc, _, err = cli(capsys, "loop-run-snapshot", "--repo", str(repo), "--loop", LOOP)
    assert err == f"error: invalid JSON in {(repo / '.superloop/state.json').resolve()}\n"
    (repo / ".superloop/state.json").write_text("{}")
    (repo / ".superloop/loops/demo-loop/heartbeat.v1.json").write_text("")
    rc, _, err = cli(capsys, "loop-run-snapshot", "--repo", str(repo), "--loop", LOOP)
    assert "error: invalid JSON in " in err and err.rstrip().endswith("heartbeat.v1.json")


def test_snapshot_flag_errors(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    assert cli(capsys, "loop-run-snapshot", "--loop", LOOP)[1:] == (
        "",
        "error: --repo is required\n",
    )
    rc, _, err = cli(capsys, "loop-run-snapshot", "--repo", str(repo))
    assert (rc, err) == (1, "error: --loop is required\n")
    rc, _, err = cli(capsys, "loop-run-snapshot", "--repo", str(repo), "--loop", "")
    assert (rc, err) == (1, "error: --loop is required\n")
    rc, out, err = cli(capsys, "loop-run-snapshot", "--repo", str(repo), "--bogus")
    assert rc == 1 and err == "error: unknown argument: --bogus\n" and "usage" in out
    assert main(["loop-run-snapshot", "--help"]) == 0
    assert "--pretty" in capsys.readouterr().out


@pytest.mark.parametrize("loop_id", ["../x", "..", "a/b", "/etc", "x\x00y"])
def test_path_tricks_in_loop_id_are_rejected(
    capsys: pytest.CaptureFixture[str], repo: Path, loop_id: str
) -> None:
    for command in ("loop-run-snapshot", "poll-events"):
        rc, out, err = cli(capsys, command, "--repo", str(repo), "--loop", loop_id)
        assert rc == 1 and out == ""
        assert err.startswith("error: invalid loop id ")


# --- poll-events ---------------------------------------------------------------------------


def test_poll_contract_sequence(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path
) -> None:
    cursor = tmp_path / "state" / "cursor.json"
    rc, envs, _ = poll(capsys, repo, "--cursor-file", str(cursor), "--trace-id", "trace-p")
    assert rc == 0
    assert len(envs) == 3  # 8
    assert all(e["envelopeType"] == "loop_run_event" for e in envs)
    first = envs[0]
    assert list(first) == EVENT_KEYS
    assert first["sequence"] == {"source": "cursor_event_line_offset", "value": 1}  # 9
    assert first["traceId"] == "trace-p"
    assert first["cursor"] == {"eventLineOffset": 1, "eventLineCount": 3}
    assert [e["sequence"]["value"] for e in envs] == [1, 2, 3]
    stored = json.loads(cursor.read_text())
    assert stored["eventLineOffset"] == 3  # 10
    rc, envs, _ = poll(capsys, repo, "--cursor-file", str(cursor))
    assert (rc, envs) == (0, [])  # 11
    append_events(repo, LOOP, [event("role_start", ts(9), role="implementer")])
    rc, envs, _ = poll(capsys, repo, "--cursor-file", str(cursor), "--max-events", "1")
    assert rc == 0 and len(envs) == 1  # 12
    assert envs[0]["sequence"]["value"] == 4
    assert json.loads(cursor.read_text())["eventLineOffset"] == 4


def test_poll_envelope_fields(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    evs = [
        {"timestamp": ts(1), "event": "x", "iteration": "7", "data": [1]},
        {"timestamp": ts(2), "type": "legacy", "run_id": None, "iteration": "abc", "data": False},
        event("role_timeout", ts(3), role="implementer", status="timeout", message="slow",
              data={"role": "implementer", "timeout_seconds": 900}),
        {"timestamp": ts(4), "event": "y", "role": "", "iteration": 2.5, "data": 0},
    ]  # fmt: skip
    repo = make_runtime_repo(tmp_path, events=evs)
    rc, envs, _ = poll(capsys, repo)
    assert rc == 0
    a, b, c, d = envs
    # 20
    assert a["run"] == {"runId": "unknown", "iteration": 7}
    assert a["event"]["payload"] == [1]
    assert a["traceId"] is None
    assert list(a["event"]) == ["timestamp", "name", "role", "status", "message", "payload", "raw"]
    assert a["event"]["raw"] == evs[0]
    assert b["run"] == {"runId": "unknown", "iteration": 0}
    assert b["event"]["name"] == "legacy" and b["event"]["payload"] is None
    assert c["run"] == {"runId": "run-123", "iteration": 1}
    assert (c["event"]["role"], c["event"]["status"], c["event"]["message"]) == (
        "implementer",
        "timeout",
        "slow",
    )
    assert c["event"]["payload"] == {"role": "implementer", "timeout_seconds": 900}
    assert d["event"]["role"] is None and d["event"]["payload"] == 0
    assert d["run"]["iteration"] == 2
    assert d["source"] == {"repoPath": str(repo.resolve()), "loopId": LOOP}


def test_poll_raw_is_compact_and_utf8(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    evs = [event("role_end", ts(1), data={"note": "héllo ✓", "path": "a/b"})]
    repo = make_runtime_repo(tmp_path, events=evs)
    rc, out, _ = cli(capsys, "poll-events", "--repo", str(repo), "--loop", LOOP)
    assert rc == 0
    assert '"raw":' + compact(evs[0]) + "}}\n" in out
    assert "héllo ✓" in out and "a/b" in out


def test_poll_default_cursor_file_is_pretty_with_position(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    rc, envs, _ = poll(capsys, repo, "--max-events", "2")
    assert rc == 0 and len(envs) == 2
    cursor_path = repo / ".superloop/loops/demo-loop/ops-manager.cursor.json"
    text = cursor_path.read_text()
    assert text.startswith('{\n  "schemaVersion": "v1",\n  "repoPath": ')  # 23
    assert text.endswith("}\n")
    stored = json.loads(text)
    assert list(stored) == CURSOR_KEYS
    assert stored["repoPath"] == str(repo.resolve())
    assert stored["loopId"] == LOOP
    assert stored["eventsFile"] == ".superloop/loops/demo-loop/events.jsonl"
    assert (stored["eventLineOffset"], stored["eventLineCount"]) == (2, 3)
    assert stored["position"]["lineOffset"] == 2
    assert list(stored["position"]) == [
        "byteOffset",
        "lineOffset",
        "lastLineSha256",
        "lastLineBytes",
    ]


def test_poll_resumes_from_upstream_cursor_without_position(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path
) -> None:
    cursor = tmp_path / "upstream-cursor.json"
    cursor.write_text(json.dumps({"schemaVersion": "v1", "eventLineOffset": 2.0}, indent=2))
    rc, envs, _ = poll(capsys, repo, "--cursor-file", str(cursor))
    assert rc == 0 and [e["sequence"]["value"] for e in envs] == [3]
    assert "position" in json.loads(cursor.read_text())
    # a cursor with a null offset starts at 0 (jq `.eventLineOffset // 0`)
    cursor.write_text('{"eventLineOffset": null}')
    assert len(poll(capsys, repo, "--cursor-file", str(cursor))[1]) == 3


def test_poll_from_start_ignores_cursor(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path
) -> None:
    cursor = tmp_path / "c.json"
    cursor.write_text("not json")
    rc, envs, _ = poll(capsys, repo, "--cursor-file", str(cursor), "--from-start")
    assert rc == 0 and len(envs) == 3
    assert json.loads(cursor.read_text())["eventLineOffset"] == 3


def test_poll_torn_tail_waits_for_completion(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    line = compact(event("role_start", ts(9), role="tester"))
    append_raw(repo, LOOP, line[:20].encode())
    rc, envs, _ = poll(capsys, repo)
    assert rc == 0 and len(envs) == 3
    assert all(e["cursor"]["eventLineCount"] == 3 for e in envs)
    cursor_path = repo / ".superloop/loops/demo-loop/ops-manager.cursor.json"
    assert json.loads(cursor_path.read_text())["eventLineOffset"] == 3  # not 4
    rc, envs, _ = poll(capsys, repo)
    assert (rc, envs) == (0, [])  # no "exceeds available events" error
    append_raw(repo, LOOP, (line[20:] + "\n").encode())
    rc, envs, _ = poll(capsys, repo)
    assert rc == 0 and [e["sequence"]["value"] for e in envs] == [4]
    assert envs[0]["event"]["raw"]["role"] == "tester"


def test_poll_trailing_blank_lines_not_consumed(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    append_raw(repo, LOOP, b"\n\n")
    rc, envs, _ = poll(capsys, repo)
    assert rc == 0 and len(envs) == 3 and envs[0]["cursor"]["eventLineCount"] == 5
    cursor_path = repo / ".superloop/loops/demo-loop/ops-manager.cursor.json"
    stored = json.loads(cursor_path.read_text())
    assert (stored["eventLineOffset"], stored["eventLineCount"]) == (3, 5)
    append_events(repo, LOOP, [event("role_start", ts(9))])
    rc, envs, _ = poll(capsys, repo)
    assert [e["sequence"]["value"] for e in envs] == [6]


def test_poll_flag_and_cursor_errors(
    capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path
) -> None:
    # 21: --max-events is checked before the repo is resolved
    rc, _, err = cli(
        capsys, "poll-events", "--repo", "/nonexistent/x", "--loop", LOOP, "--max-events", "x"
    )
    assert (rc, err) == (1, "error: --max-events must be a non-negative integer\n")
    for bad in ("-1", "1.5", ""):
        rc, _, err = cli(
            capsys, "poll-events", "--repo", str(repo), "--loop", LOOP, "--max-events", bad
        )
        assert err == "error: --max-events must be a non-negative integer\n", bad
    cursor = tmp_path / "c.json"
    cursor.write_text("{oops")
    rc, out, err = cli(
        capsys, "poll-events", "--repo", str(repo), "--loop", LOOP, "--cursor-file", str(cursor)
    )
    assert (rc, out, err) == (1, "", f"error: invalid JSON in cursor file: {cursor}\n")
    for offset in ('"x"', "-1", "1.5", "true", '"3"'):
        cursor.write_text(f'{{"eventLineOffset": {offset}}}')
        rc, _, err = cli(
            capsys, "poll-events", "--repo", str(repo), "--loop", LOOP, "--cursor-file", str(cursor)
        )
        assert (rc, err) == (1, f"error: invalid cursor offset in {cursor}\n"), offset
    cursor.write_text('{"eventLineOffset": 9}')
    rc, _, err = cli(
        capsys, "poll-events", "--repo", str(repo), "--loop", LOOP, "--cursor-file", str(cursor)
    )
    assert err == (
        "error: cursor offset (9) exceeds available events (3); reset cursor or use --from-start\n"
    )
    rc, _, err = cli(capsys, "poll-events", "--repo", str(repo), "--loop", LOOP, "--pretty")
    assert (rc, err) == (1, "error: unknown argument: --pretty\n")
    assert cli(capsys, "poll-events", "--loop", LOOP)[2] == "error: --repo is required\n"
    assert cli(capsys, "poll-events", "--repo", str(repo))[2] == "error: --loop is required\n"
    events_path(repo).unlink()
    rc, _, err = cli(capsys, "poll-events", "--repo", str(repo), "--loop", LOOP)
    assert err == f"error: required artifact missing: {events_path(repo).resolve()}\n"


def test_poll_bad_line_keeps_earlier_output_and_cursor(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    cursor_path = repo / ".superloop/loops/demo-loop/ops-manager.cursor.json"
    assert poll(capsys, repo, "--max-events", "1")[0] == 0
    before = cursor_path.read_text()
    append_raw(repo, LOOP, b'{"event":"no_ts"}\n')
    append_events(repo, LOOP, [event("role_start", ts(9))])
    rc, out, err = cli(capsys, "poll-events", "--repo", str(repo), "--loop", LOOP)
    assert rc == 1  # 22
    assert [json.loads(x)["sequence"]["value"] for x in out.splitlines()] == [2, 3]
    assert err == f"error: missing event timestamp at line 4 in {events_path(repo).resolve()}\n"
    assert cursor_path.read_text() == before


def test_poll_detects_rewritten_log(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    assert poll(capsys, repo)[0] == 0
    # the runtime's log replaced by a different one that is at least as long
    data = events_path(repo).read_bytes().replace(b"run-123", b"run-999")
    write_events_raw(repo, LOOP, data + (compact(event("role_start", ts(6))) + "\n").encode())
    rc, out, err = cli(capsys, "poll-events", "--repo", str(repo), "--loop", LOOP)
    assert (rc, out) == (1, "")
    assert err == (
        "error: events log was rewritten or truncated since the cursor was written "
        "(rewritten at line 3); reset cursor or use --from-start\n"
    )
    rc, envs, _ = poll(capsys, repo, "--from-start")
    assert rc == 0 and len(envs) == 4


def test_poll_detects_truncated_log(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    assert poll(capsys, repo)[0] == 0
    data = events_path(repo).read_bytes()
    write_events_raw(repo, LOOP, data[: data.index(b"\n") + 1])
    rc, _, err = cli(capsys, "poll-events", "--repo", str(repo), "--loop", LOOP)
    assert (rc, err) == (
        1,
        "error: cursor offset (3) exceeds available events (1); reset cursor or use --from-start\n",
    )
    # shorter in bytes but still >= 3 lines: the fingerprint error
    write_events_raw(repo, LOOP, b'{"timestamp":"t","event":"a"}\n' * 3)
    rc, _, err = cli(capsys, "poll-events", "--repo", str(repo), "--loop", LOOP)
    assert "(truncated at line 3)" in err


def test_poll_realistic_run_in_batches_equals_one_pass(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    evs = realistic_run_events(outcome="approval_consumed", iterations=3)
    repo = make_runtime_repo(tmp_path / "a", events=evs)
    _, full, _ = poll(capsys, repo)
    repo_b = make_runtime_repo(tmp_path / "b", events=evs[:10])
    batches: list[dict[str, Any]] = []
    for chunk_start in range(10, len(evs) + 5, 7):
        for _ in range(2):
            rc, envs, _ = poll(capsys, repo_b, "--max-events", "4")
            assert rc == 0
            batches += envs
        append_events(repo_b, LOOP, evs[chunk_start : chunk_start + 7])
    while True:
        rc, envs, _ = poll(capsys, repo_b, "--max-events", "4")
        if not envs:
            break
        batches += envs
    assert [e["event"]["raw"] for e in batches] == [e["event"]["raw"] for e in full]
    assert [e["sequence"]["value"] for e in batches] == list(range(1, len(evs) + 1))
    # run ids change inside one run's output (runtime-observed §1) and are reported as-is
    assert {e["run"]["runId"] for e in full} == {evs[0]["run_id"], evs[-3]["run_id"]}


def test_poll_lone_surrogate_in_raw_does_not_crash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo = make_runtime_repo(tmp_path, events=[])
    write_events_raw(repo, LOOP, b'{"timestamp":"t","event":"x","message":"\\ud800"}\n')
    rc, out, err = cli(capsys, "poll-events", "--repo", str(repo), "--loop", LOOP)
    assert rc == 0, err
    assert json.loads(out)["event"]["name"] == "x"


# --- the installed console script ----------------------------------------------------------


def _console_script() -> str:
    found = shutil.which("ops-manager", path=os.path.join(sys.prefix, "bin"))
    if found is None:
        found = shutil.which("ops-manager")
    if found is None:
        pytest.skip("ops-manager console script not installed")
    return found


def test_console_script_snapshot_and_poll(tmp_path: Path) -> None:
    exe = _console_script()
    repo = make_runtime_repo(tmp_path)
    proc = subprocess.run(
        [exe, "loop-run-snapshot", "--repo", str(repo), "--loop", LOOP, "--trace-id", "t-1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["traceId"] == "t-1"
    append_raw(repo, LOOP, b'{"timestamp":"t"}\n')
    proc = subprocess.run(
        [exe, "poll-events", "--repo", str(repo), "--loop", LOOP],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == 3  # earlier envelopes were flushed
    assert proc.stderr == f"error: missing event name at line 4 in {events_path(repo).resolve()}\n"
    assert not (repo / ".superloop/loops/demo-loop/ops-manager.cursor.json").exists()


def test_console_script_missing_loop_dir(tmp_path: Path) -> None:
    exe = _console_script()
    repo = make_runtime_repo(tmp_path)
    proc = subprocess.run(
        [exe, "poll-events", "--repo", str(repo), "--loop", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.startswith("error: required artifact root missing: ")
    assert "Traceback" not in proc.stderr


# --- the pure run-status reducer -----------------------------------------------------------


def _status(**kw: Any) -> str:
    base: dict[str, Any] = dict(
        approval=None, latest=None, state=None, last_event=None, loop_id="L"
    )
    base.update(kw)
    return derive_run_status(**base)


def test_run_status_truth_table_first_match() -> None:
    active = {"active": True, "current_loop_id": "L"}
    assert _status() == "unknown"
    assert (
        _status(approval={"status": "pending"}, latest={"completion_ok": True})
        == "awaiting_approval"
    )
    assert _status(approval={"status": "approved"}, latest={"completion_ok": True}) == "complete"
    assert _status(latest={"completion_ok": "true"}, state=active) == "running"
    assert _status(state={"active": True, "current_loop_id": "other"}) == "unknown"
    assert _status(state=active, last_event={"event": "loop_stop"}) == "running"
    for name in ("loop_stop", "rate_limit_stop", "no_progress_stop"):
        assert _status(last_event={"event": name, "status": "error"}) == "stopped"
    assert _status(last_event={"event": False, "type": "loop_stop"}) == "stopped"
    for status in ("error", "timeout", "blocked", "rate_limited"):
        assert _status(last_event={"event": "x", "status": status}) == "failed"
    assert _status(state={"active": False}, latest={}) == "idle"
    assert _status(state={}, latest={}) == "idle"
    assert _status(state={"active": None}, latest={}) == "idle"
    assert _status(state={"active": 0}, latest={}) == "unknown"  # jq: 0 != false
    assert _status(state={"active": False}) == "unknown"
    assert _status(state=[1], latest={}) == "idle"  # odd shapes never raise
    assert _status(approval="pending", last_event=[1]) == "unknown"


def test_run_identity() -> None:
    assert derive_run_identity(run_id_override=None, latest=None, last_event=None, state=None) == (
        "unknown",
        0,
    )
    assert derive_run_identity(
        run_id_override="", latest={"run_id": "", "iteration": False},
        last_event={"run_id": "ev", "iteration": "3"}, state={"iteration": 9},
    ) == ("ev", 3)  # fmt: skip
    # 0 is not "missing" for jq's //
    assert derive_run_identity(
        run_id_override="o",
        latest={"run_id": "s", "iteration": 0},
        last_event={"run_id": "ev", "iteration": 2},
        state=None,
    ) == ("o", 0)  # fmt: skip
    assert derive_run_identity(
        run_id_override=None, latest=None, last_event={"iteration": None}, state={"iteration": 4}
    ) == ("unknown", 4)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, 7), ("7", 7), (" 8 ", 8), (2.0, 2), (2.9, 2), ("x", 0), (None, 0), (True, 0), (-3, 0),
     ("1e400", 0), ([1], 0), ("nan", 0)],
)  # fmt: skip
def test_coerce_iteration(value: Any, expected: int) -> None:
    assert coerce_iteration(value) == expected
