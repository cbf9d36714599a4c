"""Issue 12 point 2: a truncated or rewritten event log is ordering drift, on both transports.

DECISIONS Q-12 exempts an explicit replay (``--from-start``) of the SAME log from
``event_sequence_regression``. A log that lost lines (shorter) or whose lines changed (a
same-length rewrite: same byte size, same line count, other content) is not the same log:
``sequence-state.json`` reports ``ordering_drift_detected`` with its diagnostics, health is
degraded, an ``ordering_drift_detected`` escalation is written, and ``status`` shows it with
the pass's trace id (loop.md §3.8.6, §5.4, §7.5 #58-#64, §3.13).

Each scenario runs against the ``local`` transport and through a REAL
``ops-manager sprite-service`` process on 127.0.0.1 (tests/service_process.py).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.cli import main
from tests.runtime_fixtures import (
    events_bytes,
    events_path,
    make_runtime_repo,
    realistic_run_events,
)
from tests.service_process import ServiceProcess

LOOP = "demo-loop"
BIG = "999999999"
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
TRANSPORTS = ("local", "sprite_service")


def ops(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def escalations(repo: Path) -> list[dict[str, Any]]:
    path = ops(repo) / "escalations.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def two_events(start: str) -> list[dict[str, Any]]:
    """The first two lines of a real run (``loop_start``, ``iteration_start``)."""
    return realistic_run_events(start=start, iterations=1, outcome="died")[:2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    # a run that started three hours ago; still active (nothing about staleness is tested)
    start = format_ts(utc_now_epoch() - 3 * 3600)
    return make_runtime_repo(
        tmp_path / "r", events=two_events(start), summary_entries=None
    ).resolve()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, repo: Path) -> Iterator[tuple[str, ...]]:
    """The transport flags of one reconcile (a real service serves ``repo`` remotely)."""
    if request.param == "local":
        yield ()
        return
    token = secrets.token_hex(8)
    with ServiceProcess(repo, token=token).running() as service:
        yield (
            "--transport",
            "sprite_service",
            "--service-base-url",
            service.url,
            "--service-token",
            token,
            "--retry-attempts",
            "1",
            "--retry-backoff-seconds",
            "0",
        )


def rec(
    capsys: pytest.CaptureFixture[str], repo: Path, flags: tuple[str, ...], *args: str
) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = main(["reconcile", "--repo", str(repo), "--loop", LOOP, *flags, *QUIET, *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def status(capsys: pytest.CaptureFixture[str], repo: Path) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["status", "--repo", str(repo), "--loop", LOOP]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def assert_drift_reported(
    capsys: pytest.CaptureFixture[str], repo: Path, trace: str, rewrite: str
) -> dict[str, Any]:
    """The drift as sequence-state, health, escalation and status all show it."""
    seq = read_json(ops(repo) / "sequence-state.json")
    assert seq["status"] == seq["reasonCode"] == "ordering_drift_detected"
    assert seq["driftActive"] is True
    assert "event_sequence_regression" in seq["violations"]
    assert seq["events"]["monotonicAcrossBatches"] is False
    assert seq["events"]["previousLast"] == 2 and seq["events"]["first"] == 1
    assert seq["transition"]["transitionedToDrift"] is True
    assert seq["replay"] == {"fromStart": True, "sameLog": False, "logRewrite": rewrite}
    assert seq["traceId"] == trace

    health = read_json(ops(repo) / "health.json")
    assert health["status"] == "degraded"
    assert "ordering_drift_detected" in health["reasonCodes"]
    assert health["metrics"]["sequenceStatus"] == "ordering_drift_detected"

    drift_rows = [e for e in escalations(repo) if e["category"] == "ordering_drift_detected"]
    assert len(drift_rows) == 1
    assert drift_rows[0]["traceId"] == trace
    assert drift_rows[0]["sequence"]["violations"] == seq["violations"]

    vis = status(capsys, repo)["visibility"]
    assert vis["sequence"]["status"] == "ordering_drift_detected"
    assert vis["sequence"]["driftActive"] is True
    assert vis["sequence"]["traceId"] == trace
    assert vis["trace"]["sequenceTraceId"] == trace
    assert vis["trace"]["reconcileTraceId"] == trace
    return seq  # type: ignore[no-any-return]


def test_shorter_log_replayed_from_start_is_ordering_drift(
    capsys: pytest.CaptureFixture[str], repo: Path, transport: tuple[str, ...]
) -> None:
    assert rec(capsys, repo, transport, "--trace-id", "base")[0] == 0
    path = events_path(repo)
    path.write_bytes(path.read_bytes().splitlines(keepends=True)[0])  # one line instead of two

    code, out, err = rec(capsys, repo, transport, "--trace-id", "trace-short", "--from-start")
    assert code == 0, err
    seq = assert_drift_reported(capsys, repo, "trace-short", "truncated")
    assert seq["violations"] == ["event_sequence_regression", "snapshot_sequence_regression"]
    assert seq["snapshot"] == {
        "previous": 2,
        "current": 1,
        "monotonic": False,
        "regressed": True,
        "missing": False,
    }
    # the truncation also shows as cursorRegression divergence (7.5 #63)
    assert out["health"]["reasonCodes"] == ["divergence_detected", "ordering_drift_detected"]


def test_same_length_rewrite_replayed_from_start_is_ordering_drift(
    capsys: pytest.CaptureFixture[str], repo: Path, transport: tuple[str, ...]
) -> None:
    assert rec(capsys, repo, transport, "--trace-id", "base")[0] == 0
    path = events_path(repo)
    before = path.read_bytes()
    lines = before.splitlines(keepends=True)
    # same byte size, same line count, another event on the last consumed line
    lines[1] = lines[1].replace(b"iteration_start", b"iteration_begin")
    path.write_bytes(b"".join(lines))
    assert len(path.read_bytes()) == len(before) and path.read_bytes() != before

    code, out, err = rec(capsys, repo, transport, "--trace-id", "trace-rw", "--from-start")
    assert code == 0, err
    seq = assert_drift_reported(capsys, repo, "trace-rw", "rewritten")
    assert seq["violations"] == ["event_sequence_regression"]
    assert seq["snapshot"]["regressed"] is False  # same length: only the content check sees it
    assert out["health"]["reasonCodes"] == ["ordering_drift_detected"]


def test_replay_of_the_same_log_is_not_drift(
    capsys: pytest.CaptureFixture[str], repo: Path, transport: tuple[str, ...]
) -> None:
    """Q-12: replaying an unchanged (or merely grown) log is the operator's reset."""
    assert rec(capsys, repo, transport, "--trace-id", "base")[0] == 0
    assert rec(capsys, repo, transport, "--trace-id", "replay-1", "--from-start")[0] == 0
    seq = read_json(ops(repo) / "sequence-state.json")
    assert (seq["status"], seq["driftActive"], seq["violations"]) == ("ok", False, [])
    assert seq["replay"] == {"fromStart": True, "sameLog": True}

    # the log grew by a line since: still the same log
    more = realistic_run_events(start=format_ts(utc_now_epoch() - 3 * 3600), outcome="died")
    with events_path(repo).open("ab") as handle:
        handle.write(events_bytes([more[2]]))
    code, out, _ = rec(capsys, repo, transport, "--trace-id", "replay-2", "--from-start")
    assert code == 0
    assert out["sequence"]["violations"] == []
    assert out["health"]["status"] == "healthy"
    assert not [e for e in escalations(repo) if e["category"] == "ordering_drift_detected"]


def test_normal_pass_after_rewrite_replay_recovers(
    capsys: pytest.CaptureFixture[str], repo: Path, transport: tuple[str, ...]
) -> None:
    assert rec(capsys, repo, transport, "--trace-id", "base")[0] == 0
    path = events_path(repo)
    path.write_bytes(path.read_bytes().splitlines(keepends=True)[0])
    assert rec(capsys, repo, transport, "--trace-id", "short", "--from-start")[0] == 0
    # the next normal pass compares with the replayed log: no drift any more
    code, out, _ = rec(capsys, repo, transport, "--trace-id", "after")
    assert code == 0
    seq = out["sequence"]
    assert (seq["status"], seq["driftActive"]) == ("ok", False)
    assert seq["transition"]["recoveredFromDrift"] is True
    assert "replay" not in seq


def test_normal_pass_after_same_length_rewrite_fails_loudly(
    capsys: pytest.CaptureFixture[str], repo: Path, transport: tuple[str, ...]
) -> None:
    """Without ``--from-start`` a rewritten history is never silently resumed by line
    number: locally the position's fingerprint fails (C-4); over HTTP the service checks the
    position it served last and refuses (502 ``runtime_error``)."""
    assert rec(capsys, repo, transport, "--trace-id", "base")[0] == 0
    path = events_path(repo)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"iteration_start", b"iteration_begin")
    more = realistic_run_events(start=format_ts(utc_now_epoch() - 3 * 3600), outcome="died")
    path.write_bytes(b"".join(lines) + events_bytes([more[2]]))
    cursor = (ops(repo) / "cursor.json").read_bytes()

    code, health, err = rec(capsys, repo, transport, "--trace-id", "rw")
    assert code == 1
    assert err == ""  # the health document is the whole output (issue 12.3)
    row = json.loads((ops(repo) / "telemetry" / "reconcile.jsonl").read_text().splitlines()[-1])
    assert "rewritten" in row["failureMessage"] and "--from-start" in row["failureMessage"]
    expected = "events_unavailable" if not transport else "service_request_failed"
    assert health["transport"]["failureCode"] == expected
    assert "transport_unreachable" in health["reasonCodes"]
    assert (ops(repo) / "cursor.json").read_bytes() == cursor  # nothing consumed

    # the explicit replay then reports the rewrite as ordering drift
    assert rec(capsys, repo, transport, "--trace-id", "replay", "--from-start")[0] == 0
    seq = read_json(ops(repo) / "sequence-state.json")
    assert seq["driftActive"] is True
    assert seq["replay"]["logRewrite"] == "rewritten"
