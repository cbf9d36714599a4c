"""``--format table|json`` on real reconciled repos (issue 16).

A four-loop fleet is built the way a Superloop runtime writes it and put through the real
``fleet-reconcile`` / ``fleet-policy`` / ``fleet-handoff``: ``alpha`` with a 15-minute-old
heartbeat (critical), ``beta`` 3 minutes (degraded), ``delta`` without artifacts (reconcile
fails), ``gamma`` fresh (healthy). Tables are checked for their columns, worst-first order
and summary line; the JSON view must be byte-identical with and without ``--format json``;
colour appears only on a terminal and never with ``NO_COLOR``.
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops_manager.cli import main
from ops_manager.cli._table import fmt_age, grid, summary
from tests.fleet_fixtures import make_fleet_repo

CLI = Path(sys.executable).parent / "ops-manager"
LOOPS = ["alpha", "beta", "gamma", "delta"]
ANSI = "\x1b["
LOOP_HEADER = ["LOOP", "LIFECYCLE", "HEALTH", "REASONS", "INGEST LAG", "RECONCILED", "PENDING"]
FROZEN = 1_796_000_000.0


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OPS_MANAGER_") or key == "NO_COLOR":
            monkeypatch.delenv(key)


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fleet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    repo = make_fleet_repo(
        tmp_path / "fleet",
        LOOPS,
        without_artifacts=["delta"],
        heartbeat_ages={"alpha": 900, "beta": 180},
    )
    code, _, err = cli(capsys, "fleet-reconcile", "--repo", repo, "--deterministic-order")
    assert code == 0, err
    return repo


def lines_of(out: str) -> list[list[str]]:
    """Each table line split on runs of 2+ spaces (cells may contain single spaces)."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()]


# --- the pure renderers -------------------------------------------------------------------


def test_summary_counts_worst_first_and_pluralises() -> None:
    states = ["healthy", "critical", "degraded"]
    assert summary("loop", states) == "3 loops: 1 critical, 1 degraded, 1 healthy"
    assert summary("loop", ["healthy"]) == "1 loop: 1 healthy"
    assert summary("intent", []) == "0 intents: none"


def test_fmt_age_units() -> None:
    assert [fmt_age(s) for s in (None, 0, 59, 61, 3600 + 120, 2 * 86400 + 3600)] == [
        "-",
        "0s",
        "59s",
        "1m01s",
        "1h02m",
        "2d01h",
    ]


def test_grid_colour_keeps_columns_and_the_word() -> None:
    rows = [("a", "critical", "x"), ("bb", "healthy", "y")]
    plain = grid(("ID", "STATE", "NOTE"), rows, state_col=1)
    coloured = grid(("ID", "STATE", "NOTE"), rows, state_col=1, color=True)
    assert ANSI not in plain
    assert "\x1b[31mcritical" in coloured and "\x1b[32mhealthy " in coloured
    strip = coloured.replace("\x1b[31m", "").replace("\x1b[32m", "").replace("\x1b[0m", "")
    assert strip == plain


# --- table views of each command ----------------------------------------------------------


def test_fleet_status_table_rows_worst_first_with_summary(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "fleet-status", "--repo", fleet, "--format", "table")
    assert code == 0, err
    table = lines_of(out)
    assert table[0] == LOOP_HEADER
    assert [row[0] for row in table[1:-1]] == ["alpha", "beta", "delta", "gamma"]
    assert [row[2] for row in table[1:-1]] == ["critical", "degraded", "degraded", "healthy"]
    alpha = table[1]
    assert alpha[3] == "runtime_heartbeat_stale"
    assert alpha[4].endswith("s") and alpha[5].endswith("ago")
    delta = table[3]
    assert delta[3] == "transport_unreachable" and delta[4] == "-"
    assert delta[5].endswith("ago (failed)")
    assert (
        out.splitlines()[-1] == "4 loops: 1 critical, 2 degraded, 1 healthy (fleet partial_failure)"
    )
    assert ANSI not in out


def test_fleet_status_table_counts_pending_intents_per_loop(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "fleet-policy", "--repo", fleet)[0] == 0
    assert cli(capsys, "fleet-handoff", "--repo", fleet)[0] == 0
    _, out, _ = cli(capsys, "fleet-status", "--repo", fleet, "--format", "table")
    pending = {row[0]: row[6] for row in lines_of(out)[1:-1]}
    # alpha: health_critical; beta: health_degraded; delta: reconcile_failed + health_degraded
    assert pending == {"alpha": "1", "beta": "1", "delta": "2", "gamma": "0"}


def test_status_table_one_loop(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "status", "--repo", fleet, "--loop", "alpha", "--format", "table")
    assert code == 0
    table = lines_of(out)
    assert table[0] == LOOP_HEADER
    assert table[1][:4] == ["alpha", "unknown", "critical", "runtime_heartbeat_stale"]
    assert table[1][6] == "0"
    assert out.splitlines()[-1] == "1 loop: 1 critical"


def test_fleet_policy_and_handoff_tables(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "fleet-policy", "--repo", fleet, "--format", "table")
    assert code == 0
    table = lines_of(out)
    assert table[0] == ["LOOP", "CATEGORY", "SEVERITY", "INTENT", "SUPPRESSED", "AUTONOMY"]
    assert [row[2] for row in table[1:-1]] == ["critical", "critical", "warning", "warning"]
    assert {(row[0], row[1]) for row in table[1:3]} == {
        ("alpha", "health_critical"),
        ("delta", "reconcile_failed"),
    }
    assert out.splitlines()[-1] == "4 candidates: 2 critical, 2 warning (mode advisory)"
    # the table view writes the same artifacts as the JSON view: handoff plans from it
    code, out, _ = cli(capsys, "fleet-handoff", "--repo", fleet, "--format", "table")
    assert code == 0
    table = lines_of(out)
    assert table[0] == ["LOOP", "INTENT", "CATEGORY", "SEVERITY", "STATUS", "AUTONOMY"]
    assert [row[3] for row in table[1:-1]] == ["critical", "critical", "warning", "warning"]
    assert {row[4] for row in table[1:-1]} == {"pending_operator_confirmation"}
    assert out.splitlines()[-1] == "4 intents: 4 pending_operator_confirmation"


def test_rebuild_table_puts_differences_first(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cursor = fleet / ".superloop" / "ops-manager" / "gamma" / "cursor.json"
    cursor.write_text('{"eventLineOffset": 0, "eventLineCount": 0}\n')
    code, out, _ = cli(capsys, "rebuild", "--repo", fleet, "--loop", "gamma", "--format", "table")
    assert code == 1
    table = lines_of(out)
    assert table[0] == ["PROJECTION", "STATUS", "REBUILDABLE", "DIFFERENCES", "NOTE"]
    assert table[1][:2] == ["cursor.json", "differs"]
    assert "eventLineOffset" in table[1][3]
    last = out.splitlines()[-1]
    assert last.startswith(f"{len(table) - 2} projections: 1 differs, ")
    assert last.endswith("(loop gamma)")


def test_alert_sink_config_and_route_test_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "alert-sink-config", "--no-env-check", "--format", "table")
    assert code == 0
    table = lines_of(out)
    assert table[0] == ["SINK", "TYPE", "STATE", "TIMEOUT", "SECRET ENV VARS"]
    assert {row[0] for row in table[1:-1]} == {
        "pagerduty-default",
        "slack-default",
        "webhook-default",
    }
    assert out.splitlines()[-1] == "3 sinks: 3 disabled"

    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        '{"category":"health_degraded","severity":"warning","expectSinks":[]}\n'
        '{"category":"health_critical","severity":"critical","expectSinks":["slack-default"]}\n'
    )
    code, out, err = cli(capsys, "alert-route-test", "--cases-file", cases, "--format", "table")
    # the table (with its "fail" rows) is the failure document: no extra error line (12.3)
    assert code == 1 and err == ""
    table = lines_of(out)
    assert table[0] == ["LINE", "CATEGORY", "SEVERITY", "DECISION", "REASON", "RECEIVING", "EXPECT"]
    assert [(row[0], row[6]) for row in table[1:-1]] == [("2", "fail"), ("1", "pass")]
    assert out.splitlines()[-1] == "2 cases: 1 fail, 1 pass"


def test_plugins_table_keeps_its_default_and_gains_a_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, default, _ = cli(capsys, "plugins")
    _, table, _ = cli(capsys, "plugins", "--format", "table")
    assert default == table
    assert lines_of(table)[0][:3] == ["PLUGIN", "DISTRIBUTION", "VERSION"]
    # transports, the sink interface and the external-command control executor
    assert "3 built-in" in table.splitlines()[-1]
    _, as_json, _ = cli(capsys, "plugins", "--json")
    _, formatted, _ = cli(capsys, "plugins", "--format", "json")
    assert as_json == formatted and as_json.startswith('{"plugins":[')


# --- JSON stays the contract --------------------------------------------------------------


def _frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``generatedAt`` / ``updatedAt`` from one instant, so two runs can be compared."""
    monkeypatch.setattr(time, "time", lambda: FROZEN)


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--repo", "{repo}", "--loop", "alpha"],
        ["status", "--repo", "{repo}", "--loop", "alpha", "--pretty"],
        ["fleet-status", "--repo", "{repo}"],
        ["rebuild", "--repo", "{repo}", "--loop", "gamma"],
        ["alert-sink-config", "--no-env-check"],
        ["alert-sink-config", "--no-env-check", "--category", "health_critical"],
        ["alert-route-test", "--category", "health_critical", "--severity", "critical"],
    ],
)
def test_json_is_byte_identical_with_and_without_the_flag(
    argv: list[str],
    fleet: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _frozen(monkeypatch)
    args = [a.replace("{repo}", str(fleet)) for a in argv]
    plain = cli(capsys, *args)
    flagged = cli(capsys, *args, "--format", "json")
    monkeypatch.setenv("OPS_MANAGER_FORMAT", "table")
    overridden = cli(capsys, *args, "--format", "json")
    assert plain == flagged == overridden
    assert plain[1].startswith("{")


@pytest.mark.parametrize("command", ["fleet-policy", "fleet-handoff"])
def test_json_of_writing_commands_is_byte_identical(
    command: str,
    fleet: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _frozen(monkeypatch)
    if command == "fleet-handoff":
        assert cli(capsys, "fleet-policy", "--repo", fleet, "--trace-id", "t-1")[0] == 0
    saved = tmp_path / "saved"
    shutil.copytree(fleet, saved)
    args = [command, "--repo", str(fleet), "--trace-id", "t-1"]
    plain = cli(capsys, *args)
    shutil.rmtree(fleet)
    shutil.copytree(saved, fleet)
    flagged = cli(capsys, *args, "--format", "json")
    assert plain == flagged and plain[1].startswith("{")


def test_env_default_and_bad_values(
    fleet: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_MANAGER_FORMAT", "table")
    code, out, _ = cli(capsys, "status", "--repo", fleet, "--loop", "gamma")
    assert code == 0 and lines_of(out)[0] == LOOP_HEADER
    monkeypatch.setenv("OPS_MANAGER_FORMAT", "yaml")
    assert cli(capsys, "status", "--repo", fleet, "--loop", "gamma") == (
        1,
        "",
        "error: OPS_MANAGER_FORMAT must be table or json (got 'yaml')\n",
    )
    monkeypatch.delenv("OPS_MANAGER_FORMAT")
    assert cli(capsys, "fleet-status", "--repo", fleet, "--format", "xml") == (
        1,
        "",
        "error: --format must be table or json\n",
    )
    assert cli(capsys, "fleet-status", "--repo", fleet, "--format") == (
        1,
        "",
        "error: --format requires a value\n",
    )


# --- colour: a terminal only, never with NO_COLOR ------------------------------------------


def _on_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    """Run the real CLI with stdout on a pseudo-terminal; return what it printed."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [str(CLI), *argv], stdout=slave, stderr=subprocess.PIPE, env=env, timeout=60
        )
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO once the terminal has no writer left
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.returncode == 0, proc.stderr
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_unless_no_color(fleet: Path) -> None:
    argv = ["fleet-status", "--repo", str(fleet), "--format", "table"]
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR" and not k.startswith("OPS_")}
    env["TERM"] = "xterm"
    coloured = _on_a_terminal(argv, env)
    assert "\x1b[31mcritical" in coloured and "\x1b[32mhealthy" in coloured
    plain = _on_a_terminal(argv, {**env, "NO_COLOR": "1"})
    assert ANSI not in plain
    assert "critical" in plain and "4 loops: 1 critical, 2 degraded, 1 healthy" in plain
    piped = subprocess.run([str(CLI), *argv], capture_output=True, text=True, env=env, timeout=60)
    assert piped.returncode == 0 and ANSI not in piped.stdout


def test_status_table_names_presumed_dead_and_finished_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Lifecycle alone says ``running`` for a dead run: the table and the sentence say more."""
    import json

    from ops_manager._timefmt import format_ts, utc_now_epoch
    from ops_manager.cli._table import attention
    from tests.runtime_fixtures import runtime_tree

    now = utc_now_epoch()
    dead = runtime_tree(tmp_path / "dead", "died", start=format_ts(now - 5 * 3600), loop_id="d")
    done = runtime_tree(tmp_path / "done", "complete", start=format_ts(now - 5 * 3600), loop_id="f")
    for repo, loop in ((dead, "d"), (done, "f")):
        assert cli(capsys, "reconcile", "--repo", repo, "--loop", loop)[0] == 0
    _, out, _ = cli(capsys, "status", "--repo", dead, "--loop", "d", "--format", "table")
    row = lines_of(out)[1]
    assert row[:3] == ["d", "running (presumed dead)", "critical"]
    _, out, _ = cli(capsys, "status", "--repo", done, "--loop", "f", "--format", "table")
    row = lines_of(out)[1]
    assert row[1].endswith("(finished)") and row[2] == "healthy"
    _, doc, _ = cli(capsys, "status", "--repo", dead, "--loop", "d")
    sentence = attention(json.loads(doc))
    assert sentence is not None and sentence.startswith("d looks dead:")
    assert "active-run.json is missing" in sentence and "--intent cancel" in sentence
    _, doc, _ = cli(capsys, "status", "--repo", done, "--loop", "f")
    assert attention(json.loads(doc)) is None


def test_fleet_status_table_shows_the_posture_from_health() -> None:
    from ops_manager.cli._table import fleet_status_table

    doc = {
        "generatedAt": "2026-12-07T06:00:00Z",
        "fleet": {"status": "success", "updatedAt": "2026-12-07T06:00:00Z"},
        "loops": [
            {"loopId": "a", "transitionState": "running", "healthStatus": "critical"},
            {"loopId": "b", "transitionState": "running", "healthStatus": "healthy"},
        ],
    }
    health = {"a": {"posture": {"kind": "presumed_dead"}}, "b": None}
    rows = lines_of(fleet_status_table(doc, health=health))
    assert rows[1][:3] == ["a", "running (presumed dead)", "critical"]
    assert rows[2][:3] == ["b", "running", "healthy"]
