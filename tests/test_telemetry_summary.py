"""``ops-manager telemetry-summary`` and its pure fold (``loop.md`` §3.6, §7.6 items 70/71/80).

Deliberate difference (Q-34): a malformed row in the window is skipped, counted in
``observed.malformedRows`` and reported with a ``warning:`` line, instead of failing.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_manager.cli import main
from ops_manager.engine.telemetry_summary import tail_lines
from ops_manager.reducers.telemetry_summary import (
    RATIONALE_BALANCED,
    RATIONALE_NO_DATA,
    RATIONALE_RELAXED,
    RATIONALE_STRICT,
    SummarySource,
    parse_lines,
    summarize_lines,
    summarize_rows,
    to_number,
)
from ops_manager.store import Stream, _tail

LOOP = "demo-loop"
NOW = 1_900_000_000
SOURCE = SummarySource("/r", LOOP, "/r/rec.jsonl", "/r/ctl.jsonl", 200)

TOP_KEYS = [
    "schemaVersion",
    "generatedAt",
    "source",
    "observed",
    "recommendedProfile",
    "confidence",
    "rationale",
]
OBSERVED_KEYS = [
    "reconcileAttempts",
    "reconcileSuccessCount",
    "reconcileFailedCount",
    "health",
    "control",
    "durationSeconds",
    "malformedRows",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OPS_MANAGER_"):
            monkeypatch.delenv(key)


def row(
    status: str = "success",
    health: str = "healthy",
    codes: list[Any] | None = None,
    duration: Any = 1,
) -> dict[str, Any]:
    return {
        "status": status,
        "healthStatus": health,
        "healthReasonCodes": codes or [],
        "durationSeconds": duration,
    }


def summarize(recs: list[Any], ctls: list[Any] | None = None) -> dict[str, Any]:
    return summarize_rows(recs, ctls or [], source=SOURCE, now=NOW)


def tel(repo: Path) -> Path:
    return repo / ".superloop" / "ops-manager" / LOOP / "telemetry"


def write_rows(path: Path, rows: list[Any], *, raw: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(json.dumps(r).encode() + b"\n" for r in rows) + raw
    path.write_bytes(data)
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = (tmp_path / "repo").resolve()
    r.mkdir()
    return r


# --- the fold ----------------------------------------------------------------------------


def test_item_70_failures_and_criticals_recommend_relaxed() -> None:
    rows = [
        row("failed", "critical"),
        row("failed", "critical"),
        row("success", "degraded"),
        row("success", "healthy"),
    ]
    s = summarize(rows)
    assert s["recommendedProfile"] == "relaxed"
    assert s["rationale"] == RATIONALE_RELAXED
    assert s["confidence"] == "low"
    obs = s["observed"]
    assert (obs["reconcileAttempts"], obs["reconcileSuccessCount"]) == (4, 2)
    assert obs["reconcileFailedCount"] == 2
    assert obs["health"]["criticalRate"] == 0.5
    assert obs["health"]["degradedRate"] == 0.25


def test_item_71_forty_healthy_rows_recommend_strict_with_medium_confidence() -> None:
    s = summarize([row() for _ in range(40)])
    assert (s["recommendedProfile"], s["confidence"]) == ("strict", "medium")
    assert s["rationale"] == RATIONALE_STRICT
    assert s["observed"]["health"]["degradedRate"] == 0  # an int, as jq prints it
    assert isinstance(s["observed"]["health"]["degradedRate"], int)


def test_item_80_exact_rates_frequency_order_and_percentiles() -> None:
    rows = [
        row("failed", "degraded", ["b", "a"], "3"),
        row("success", "healthy", ["a", "c"], 10),
        row("success", "healthy", ["c"], "x"),  # non-numeric duration: dropped
    ]
    s = summarize(rows)
    health = s["observed"]["health"]
    assert health["degradedRate"] == 0.3333333333333333
    assert json.dumps(health["degradedRate"]) == "0.3333333333333333"
    # count descending, ties by code descending
    assert health["reasonCodeFrequency"] == [
        {"code": "c", "count": 2},
        {"code": "a", "count": 2},
        {"code": "b", "count": 1},
    ]
    assert s["observed"]["durationSeconds"] == {"p50": 3, "p95": 3, "max": 10}
    # index floor((n-1)*p): n=21 -> p50 index 10, p95 index 19
    many = summarize([row(duration=d) for d in range(21)])
    assert many["observed"]["durationSeconds"] == {"p50": 10, "p95": 19, "max": 20}


def test_empty_window() -> None:
    s = summarize([])
    assert (s["recommendedProfile"], s["confidence"], s["rationale"]) == (
        "balanced",
        "low",
        RATIONALE_NO_DATA,
    )
    health = s["observed"]["health"]
    assert (health["degradedRate"], health["criticalRate"]) == (0, 0)
    assert s["observed"]["durationSeconds"] == {"p50": None, "p95": None, "max": None}


def test_rules_in_order() -> None:
    # failed rate 0.25 -> relaxed even though nothing is critical
    assert summarize([row("failed")] + [row()] * 3)["recommendedProfile"] == "relaxed"
    # critical rate exactly 0.20 -> relaxed
    assert summarize([row(health="critical")] + [row()] * 4)["recommendedProfile"] == "relaxed"
    # one ambiguous control row spoils strict
    mixed = summarize([row()] * 10, [{"status": "ambiguous"}])
    assert (mixed["recommendedProfile"], mixed["rationale"]) == ("balanced", RATIONALE_BALANCED)
    assert mixed["observed"]["control"] == {"ambiguousCount": 1}
    assert summarize([row()], [{"reasonCode": "control_ambiguous"}])["observed"]["control"] == {
        "ambiguousCount": 1
    }
    # degraded rate 1/20 = 0.05 is still strict; 2/20 is not
    assert summarize([row(health="degraded")] + [row()] * 19)["recommendedProfile"] == "strict"
    assert (
        summarize([row(health="degraded")] * 2 + [row()] * 18)["recommendedProfile"] == "balanced"
    )
    assert summarize([row()] * 100)["confidence"] == "high"
    assert summarize([row()] * 99)["confidence"] == "medium"


def test_key_order() -> None:
    s = summarize([row()])
    assert list(s) == TOP_KEYS
    assert list(s["observed"]) == OBSERVED_KEYS
    assert list(s["observed"]["health"]) == [
        "degradedCount",
        "criticalCount",
        "degradedRate",
        "criticalRate",
        "reasonCodeFrequency",
    ]
    assert list(s["source"]) == [
        "repoPath",
        "loopId",
        "reconcileTelemetryFile",
        "controlTelemetryFile",
        "window",
    ]


def test_malformed_rows_are_counted_not_fatal() -> None:
    lines = [b'{"status":"success","healthStatus":"healthy"}', b"not json", b"[1]", b"", b"7"]
    s = summarize_lines(lines, [b"{oops", b'{"status":"ambiguous"}'], source=SOURCE, now=NOW)
    assert s["observed"]["reconcileAttempts"] == 1
    assert s["observed"]["malformedRows"] == {"reconcile": 3, "control": 1}
    assert s["observed"]["control"] == {"ambiguousCount": 1}


def test_window_counts_physical_lines_including_blanks() -> None:
    lines = [json.dumps(row("failed")).encode()] * 3 + [b"", b"  "] + [json.dumps(row()).encode()]
    s = summarize_lines(lines, [], source=SummarySource("/r", LOOP, "a", "b", 3), now=NOW)
    # the last 3 lines: two blanks and one healthy success row
    assert s["observed"]["reconcileAttempts"] == 1
    assert s["recommendedProfile"] == "strict"
    assert s["source"]["window"] == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3),
        (2.5, 2.5),
        (4.0, 4),
        ("12", 12),
        (" 7 ", 7),
        ("1.5", 1.5),
        ("1e2", 100),
        ("-2", -2),
        (True, None),
        (None, None),
        ("x", None),
        ("NaN", None),
        ("1_000", None),
        ([], None),
        (float("inf"), None),
    ],
)
def test_to_number(value: Any, expected: Any) -> None:
    assert to_number(value) == expected
    if expected is not None:
        assert type(to_number(value)) is type(expected)


# --- properties --------------------------------------------------------------------------

JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
FIELD_VALUES = (
    st.sampled_from(
        ["success", "failed", "healthy", "degraded", "critical", "ambiguous", "control_ambiguous"]
    )
    | JSON
)
ROW = st.fixed_dictionaries(
    {},
    optional={
        "status": FIELD_VALUES,
        "healthStatus": FIELD_VALUES,
        "healthReasonCodes": st.lists(st.sampled_from(["a", "b", "c"]) | JSON, max_size=4) | JSON,
        "durationSeconds": st.integers(-5, 500) | st.text(max_size=4) | JSON,
        "reasonCode": FIELD_VALUES,
    },
)
ANY_ROW = ROW | JSON


@settings(max_examples=200, deadline=None)
@given(recs=st.lists(ANY_ROW, max_size=30), ctls=st.lists(ANY_ROW, max_size=10))
def test_fold_never_raises_and_is_order_insensitive(recs: list[Any], ctls: list[Any]) -> None:
    s = summarize(recs, ctls)
    json.dumps(s, allow_nan=False)  # always serializable
    assert s["recommendedProfile"] in ("strict", "balanced", "relaxed")
    obs = s["observed"]
    assert obs["reconcileAttempts"] + obs["malformedRows"]["reconcile"] == len(recs)
    assert obs["reconcileSuccessCount"] + obs["reconcileFailedCount"] <= len(recs)
    for key in ("degradedRate", "criticalRate"):
        assert 0 <= obs["health"][key] <= 1
    rng = random.Random(len(recs) * 31 + len(ctls))
    shuffled_recs, shuffled_ctls = list(recs), list(ctls)
    rng.shuffle(shuffled_recs)
    rng.shuffle(shuffled_ctls)
    assert summarize(shuffled_recs, shuffled_ctls) == s


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.binary(max_size=20) | st.text(max_size=20), max_size=20))
def test_parsing_arbitrary_lines_never_raises(lines: list[bytes | str]) -> None:
    rows = parse_lines(lines)
    s = summarize_lines(lines, lines, source=SOURCE, now=NOW)
    assert s["observed"]["reconcileAttempts"] + s["observed"]["malformedRows"]["reconcile"] == (
        len(rows)
    )


# --- reading the tail --------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=25),
    torn=st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"")),
    block=st.integers(1, 9),
    n=st.integers(0, 30),
)
def test_tail_lines_matches_a_full_read(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], torn: bytes, block: int, n: int
) -> None:
    path = tmp_path_factory.mktemp("tail") / "f.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines) + torn)
    # the tail is the store's (Stream.lines_reverse): tiny blocks there make every line
    # straddle block boundaries
    old = _tail._FIRST_BLOCK, _tail._BLOCK
    _tail._FIRST_BLOCK = _tail._BLOCK = block
    try:
        assert list(Stream(path).lines_reverse()) == list(reversed(lines))
        assert tail_lines(path, n) == (lines[-n:] if n else [])
    finally:
        _tail._FIRST_BLOCK, _tail._BLOCK = old


def test_tail_does_not_read_a_huge_file_whole(tmp_path: Path) -> None:
    """A 64 GiB sparse file whose last lines are rows: reading the tail must not touch the
    hole (reading it whole would take minutes and gigabytes)."""
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as handle:
        handle.truncate(64 * 1024**3)
        handle.seek(0, os.SEEK_END)
        handle.write(b"\n" + b"".join(json.dumps(row()).encode() + b"\n" for _ in range(5)))
    assert len(tail_lines(path, 3)) == 3
    assert tail_lines(path, 3)[0] == json.dumps(row()).encode()


def test_missing_file_has_no_lines(tmp_path: Path) -> None:
    assert tail_lines(tmp_path / "nope", 5) == []
    assert list(Stream(tmp_path / "nope").lines_reverse()) == []


# --- the command -------------------------------------------------------------------------


def test_cli_summary(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    rows = [row("failed", "critical", ["transport_unreachable"], 2)] * 2 + [row()] * 2
    write_rows(tel(repo) / "reconcile.jsonl", rows)
    code, out, err = cli(
        capsys, "telemetry-summary", "--repo", repo, "--loop", LOOP, "--window", 50
    )
    assert (code, err) == (0, "")
    s = json.loads(out)
    assert out.count("\n") == 1
    assert list(s) == TOP_KEYS
    assert s["recommendedProfile"] == "relaxed"
    assert s["source"] == {
        "repoPath": str(repo),
        "loopId": LOOP,
        "reconcileTelemetryFile": str(tel(repo) / "reconcile.jsonl"),
        "controlTelemetryFile": str(tel(repo) / "control.jsonl"),
        "window": 50,
    }
    code, pretty, _ = cli(capsys, "telemetry-summary", "--repo", repo, "--loop", LOOP, "--pretty")
    assert code == 0 and pretty.startswith('{\n  "schemaVersion": "v1",')
    assert json.loads(pretty)["source"]["window"] == 200


def test_cli_window_samples_the_last_lines(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    write_rows(tel(repo) / "reconcile.jsonl", [row("failed", "critical")] * 5 + [row()] * 3)
    write_rows(tel(repo) / "control.jsonl", [{"status": "ambiguous"}] + [{"status": "ok"}] * 3)
    _, out, _ = cli(capsys, "telemetry-summary", "--repo", repo, "--loop", LOOP, "--window", 3)
    s = json.loads(out)
    assert s["observed"]["reconcileAttempts"] == 3
    assert s["observed"]["control"] == {"ambiguousCount": 0}  # outside the last 3 lines
    assert s["recommendedProfile"] == "strict"


def test_cli_malformed_row_is_reported_not_fatal(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    path = write_rows(tel(repo) / "reconcile.jsonl", [row(), row()], raw=b"{broken\n")
    with open(path, "ab") as handle:
        handle.write(json.dumps(row()).encode() + b"\n")
    code, out, err = cli(capsys, "telemetry-summary", "--repo", repo, "--loop", LOOP)
    assert code == 0
    s = json.loads(out)
    assert s["observed"]["reconcileAttempts"] == 3
    assert s["observed"]["malformedRows"] == {"reconcile": 1, "control": 0}
    assert err == (
        f"warning: skipped 1 malformed telemetry row(s) in the last 200 lines of {path}\n"
    )


def test_cli_torn_final_line_is_not_a_row(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    write_rows(tel(repo) / "reconcile.jsonl", [row()], raw=b'{"status":"fai')
    code, out, err = cli(capsys, "telemetry-summary", "--repo", repo, "--loop", LOOP)
    assert (code, err) == (0, "")
    assert json.loads(out)["observed"]["malformedRows"] == {"reconcile": 0, "control": 0}
    assert json.loads(out)["observed"]["reconcileAttempts"] == 1


def test_cli_explicit_files_are_echoed_as_given(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_rows(repo / "r.jsonl", [row()])
    monkeypatch.chdir(repo)
    code, out, _ = cli(
        capsys,
        "telemetry-summary",
        "--repo",
        repo,
        "--loop",
        LOOP,
        "--reconcile-telemetry-file",
        "r.jsonl",
        "--control-telemetry-file",
        "none.jsonl",
    )
    assert code == 0
    source = json.loads(out)["source"]
    assert (source["reconcileTelemetryFile"], source["controlTelemetryFile"]) == (
        "r.jsonl",
        "none.jsonl",
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--window", "0"], "error: --window must be an integer >= 1"),
        (["--window", "x"], "error: --window must be an integer >= 1"),
        (["--window", "-1"], "error: --window must be an integer >= 1"),
    ],
)
def test_cli_errors(
    capsys: pytest.CaptureFixture[str], repo: Path, extra: list[str], message: str
) -> None:
    write_rows(tel(repo) / "reconcile.jsonl", [row()])
    code, out, err = cli(capsys, "telemetry-summary", "--repo", repo, "--loop", LOOP, *extra)
    assert (code, out, err) == (1, "", message + "\n")


def test_cli_missing_reconcile_file(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    code, out, err = cli(capsys, "telemetry-summary", "--repo", repo, "--loop", LOOP)
    assert (code, out) == (1, "")
    assert err == f"error: reconcile telemetry file not found: {tel(repo) / 'reconcile.jsonl'}\n"
    assert cli(capsys, "telemetry-summary", "--loop", LOOP)[2] == "error: --repo is required\n"
    assert cli(capsys, "telemetry-summary", "--repo", repo)[2] == "error: --loop is required\n"
