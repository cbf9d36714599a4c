"""The quiet dispatch (``engine/_alert_quiet.py``) writes exactly what the full dispatch
writes for a run with nothing to send, and declines (writing nothing) for any other run.

Each case builds a realistic loop (a runtime repo, reconciled hours after its last event so
health is critical and an escalation was dispatched), copies it twice, runs the full
``dispatch`` on one copy and ``try_quiet_dispatch`` on the other with the same clock, and
compares every file of the two trees byte for byte. The cross-process memo that lets a CLI
pass trust its sink config is tested at the end, in fresh processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ops_manager._timefmt import parse_ts
from ops_manager.engine._alert_quiet import PACKAGED_ALERT_SINKS_FILE, try_quiet_dispatch
from ops_manager.engine.alert_dispatch import DispatchEffects, DispatchSettings, dispatch
from ops_manager.engine.reconcile import AlertOptions, ReconcileSettings, reconcile
from ops_manager.store import LoopPaths
from tests.runtime_fixtures import make_runtime_repo

LOOP = "demo-loop"
#: the fixture's events end at 2026-02-22T10:00:xx; the pass runs five hours later
PASS_AT = parse_ts("2026-02-22T15:00:00Z") or 0
#: the dispatch under test runs two hours after that
LATER = PASS_AT + 7200


def _reconciled(root: Path) -> Path:
    repo = make_runtime_repo(root / "repo")
    settings = ReconcileSettings(repo=repo, loop_id=LOOP, trace_id="t-pass", alerts=AlertOptions())
    reconcile(settings, clock=lambda: PASS_AT)
    return repo


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reconciled loop whose dispatch consumed its escalation and opened an episode."""
    repo = _reconciled(tmp_path_factory.mktemp("quiet"))
    state = json.loads(LoopPaths.for_loop(repo, LOOP).alert_dispatch_state_file.read_text())
    assert state["escalationsLineOffset"] >= 1
    assert "health" in state["episodes"], state
    return repo


def _tree(repo: Path) -> dict[str, bytes]:
    """Every file under ``repo``; the copy's own path (artifacts name absolute paths) reads
    as ``<repo>`` so two copies compare."""
    out: dict[str, bytes] = {}
    for path in sorted(repo.rglob("*")):
        if path.is_file():
            data = path.read_bytes().replace(str(repo).encode(), b"<repo>")
            out[str(path.relative_to(repo))] = data
    return out


def _paths(repo: Path) -> LoopPaths:
    return LoopPaths.for_loop(repo, LOOP)


def _full(repo: Path, at: float = LATER) -> None:
    dispatch(
        DispatchSettings(
            repo=repo,
            loop_id=LOOP,
            trace_id="t-later",
            escalations_file=_paths(repo).escalations_file,
        ),
        DispatchEffects(clock=lambda: at, environ={}),
    )


def _quiet(repo: Path, at: float = LATER, ok: bool = True) -> bool:
    return try_quiet_dispatch(
        _paths(repo),
        trace_id="t-later",
        config_file=None,
        state_file=None,
        telemetry_file=None,
        clock=lambda: at,
        environ={},
        config_ok=lambda path: ok and path == str(PACKAGED_ALERT_SINKS_FILE),
    )


def _copies(template: Path, tmp_path: Path, edit: Callable[[Path], None]) -> tuple[Path, Path]:
    a, b = tmp_path / "full", tmp_path / "quiet"
    for copy in (a, b):
        shutil.copytree(template, copy)
        edit(copy)  # each copy its own (a commit record names absolute paths)
    return a, b


def _state_file(repo: Path) -> Path:
    return _paths(repo).alert_dispatch_state_file


def _edit_state(repo: Path, change: Callable[[dict[str, Any]], None], indent: int | None = None):
    path = _state_file(repo)
    state = json.loads(path.read_text())
    change(state)
    path.write_text(json.dumps(state, indent=indent) + "\n")


def _nothing(repo: Path) -> None:
    pass


def _pretty_state(repo: Path) -> None:
    # an operator (or an older version) left the state pretty-printed
    _edit_state(repo, lambda s: None, indent=2)


def _string_booleans(repo: Path) -> None:
    # open drift / ordering / divergence episodes whose conditions read as strings: unknown,
    # so not cleared (the runtime writes "true"/"false" strings in places)
    def add(state: dict[str, Any]) -> None:
        health = state["episodes"]["health"]
        for family, category in (
            ("drift", "profile_drift_detected"),
            ("ordering", "ordering_drift_detected"),
            ("divergence", "divergence_detected"),
        ):
            state["episodes"][family] = {
                **health,
                "dedupKey": f"{LOOP}:{family}:2026-02-22T09:00:00Z:L1",
                "openedAt": "2026-02-22T09:00:00Z",
                "category": category,
                "severity": "warning",
            }

    _edit_state(repo, add)
    paths = _paths(repo)
    paths.drift_state_file.write_text(json.dumps({"driftActive": "false"}, indent=2) + "\n")
    seq = json.loads(paths.sequence_state_file.read_text())
    seq["driftActive"] = "false"
    paths.sequence_state_file.write_text(json.dumps(seq) + "\n")
    state = json.loads(paths.state_file.read_text())
    state["divergence"] = {"any": "false"}
    paths.state_file.write_text(json.dumps(state, indent=2) + "\n")


def _hours_old(repo: Path) -> None:
    def old(state: dict[str, Any]) -> None:
        state["updatedAt"] = "2026-02-22T04:00:00Z"
        state["episodes"]["health"]["openedAt"] = "2026-02-22T03:12:09Z"
        state["episodes"]["health"]["escalationTraceId"] = None
        state["episodes"]["health"]["sinks"] = ["slack-default"]

    _edit_state(repo, old)


def _torn_tail(repo: Path) -> None:
    # a writer is mid-append: the final line has no newline yet, so it is not consumed
    with open(_paths(repo).escalations_file, "ab") as handle:
        handle.write(b'{"timestamp":"2026-02-22T16:59:59Z","loopId":"demo-loop","cat')


def _empty_outbox(repo: Path) -> None:
    (_paths(repo).ops_dir / "alert-outbox.jsonl").write_bytes(b"")


def _never_escalated(repo: Path) -> None:
    # a loop that never escalated: an empty escalations file and no dispatch state yet
    _paths(repo).escalations_file.write_bytes(b"")
    _state_file(repo).unlink()


def _pending_commit(repo: Path) -> None:
    # a dispatch killed after its commit point (record written, not yet applied): both
    # runs finish it first, then run
    state_file = _state_file(repo)
    state = json.loads(state_file.read_text())
    state["updatedAt"] = "2026-02-22T15:30:00Z"
    doc = {
        "schemaVersion": "v1",
        "appends": [],
        "replaces": [{"file": str(state_file), "data": json.dumps(state) + "\n"}],
    }
    record = _paths(repo).ops_dir / ".alert-dispatch-commit.json"
    record.write_text(json.dumps(doc, separators=(",", ":")) + "\n")


QUIET_CASES = {
    "as_reconciled": _nothing,
    "pretty_printed_state": _pretty_state,
    "string_booleans": _string_booleans,
    "hours_old_timestamps": _hours_old,
    "torn_tail": _torn_tail,
    "empty_outbox": _empty_outbox,
    "never_escalated": _never_escalated,
}


@pytest.mark.parametrize("case", sorted(QUIET_CASES))
def test_the_quiet_run_writes_the_bytes_of_the_full_run(
    template: Path, tmp_path: Path, case: str
) -> None:
    full, quiet = _copies(template, tmp_path, QUIET_CASES[case])
    assert _tree(full) == _tree(quiet)
    _full(full)
    assert _quiet(quiet) is True
    a, b = _tree(full), _tree(quiet)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], name
    # and the run did write: a new updatedAt / traceId, the counts of a run with nothing new
    state = json.loads(_state_file(quiet).read_text())
    assert state["traceId"] == "t-later"
    assert state["status"] == "no_new_escalations"
    assert state["updatedAt"] == "2026-02-22T17:00:00Z"


def _new_row(repo: Path) -> None:
    line = _paths(repo).escalations_file.read_bytes().splitlines(keepends=True)[-1]
    with open(_paths(repo).escalations_file, "ab") as handle:
        handle.write(line)


def _healthy(repo: Path) -> None:
    path = _paths(repo).health_file
    health = json.loads(path.read_text())
    health["status"] = "healthy"
    path.write_text(json.dumps(health) + "\n")


def _pending_outbox(repo: Path) -> None:
    (_paths(repo).ops_dir / "alert-outbox.jsonl").write_text(
        json.dumps({"idempotencyKey": "k", "sinkId": "s", "status": "queued"}) + "\n"
    )


def _episode(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda repo: _edit_state(repo, lambda s: change(s["episodes"]["health"]))


def _fingerprint(repo: Path) -> None:
    _edit_state(repo, lambda s: s["escalationsPosition"].update(lastLineSha256="0" * 64))


def _not_json(repo: Path) -> None:
    _state_file(repo).write_text("{not json")


def _no_escalations_file(repo: Path) -> None:
    _paths(repo).escalations_file.unlink()


DECLINED_CASES: dict[str, Callable[[Path], None]] = {
    "new_escalation_row": _new_row,
    "episode_cleared": _healthy,
    "outbox_to_fold": _pending_outbox,
    "unknown_severity": _episode(lambda e: e.update(severity="bogus")),
    "float_line_number": _episode(lambda e: e.update(openedLine=1.0)),
    "extra_episode_key": _episode(lambda e: e.update(note="x")),
    "empty_opened_at": _episode(lambda e: e.update(openedAt="")),
    "fingerprint_mismatch": _fingerprint,
    "state_not_json": _not_json,
    "no_escalations_file": _no_escalations_file,
}


@pytest.mark.parametrize("case", sorted(DECLINED_CASES))
def test_any_other_run_is_left_to_the_full_dispatch(
    template: Path, tmp_path: Path, case: str
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(template, repo)
    DECLINED_CASES[case](repo)
    before = _tree(repo)
    assert _quiet(repo) is False
    assert _tree(repo) == before


def test_a_config_not_known_to_load_is_left_to_the_full_dispatch(
    template: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(template, repo)
    before = _tree(repo)
    assert _quiet(repo, ok=False) is False
    assert _tree(repo) == before


def test_a_left_over_commit_is_finished_as_the_full_run_finishes_it(
    template: Path, tmp_path: Path
) -> None:
    full, quiet = _copies(template, tmp_path, _pending_commit)
    _full(full)
    assert _quiet(quiet) is True
    assert _tree(full) == _tree(quiet)


# --- through the CLI: the memo, and what a quiet pass imports ------------------------------

PROBE = """
import contextlib, io, json, sys
from ops_manager.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    rc = main(["reconcile", "--repo", sys.argv[1], "--loop", "demo-loop"])
heavy = ("ops_manager.engine.alert_dispatch", "ops_manager.engine.alert_config",
         "ops_manager.reducers.alerts", "ops_manager.plugins", "jsonschema", "requests")
print(json.dumps([rc, [m for m in heavy if m in sys.modules]]))
"""


def _cli_pass(repo: Path, cache: Path, config: Path | None = None) -> tuple[int, list[str]]:
    env = dict(os.environ, OPS_MANAGER_CACHE_DIR=str(cache), OPS_MANAGER_TRACE_ID="t-cli")
    env.pop("OPS_MANAGER_ALERT_SINKS_FILE", None)
    if config is not None:
        env["OPS_MANAGER_ALERT_SINKS_FILE"] = str(config)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(repo)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    rc, imported = json.loads(out.stdout)
    return rc, imported


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "updatedAt"}


def test_a_quiet_cli_pass_imports_no_alert_stack_and_writes_the_same_state(
    template: Path, tmp_path: Path
) -> None:
    fast, slow = tmp_path / "fast", tmp_path / "slow"
    shutil.copytree(template, fast)
    shutil.copytree(template, slow)
    cache = tmp_path / "cache"
    # first process: the config is not in the memo yet, so it is loaded (and remembered)
    rc, imported = _cli_pass(fast, cache)
    assert rc == 0
    assert "ops_manager.engine.alert_config" in imported
    assert len(list((cache / "alert-config-ok").iterdir())) == 1
    # second: known to load, nothing to send: no alert stack, no pluggy, no plugin
    rc, imported = _cli_pass(fast, cache)
    assert (rc, imported) == (0, [])
    # the same pass with no usable memo (a cache dir that is a file) runs the full dispatch
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    _cli_pass(slow, blocked)
    rc, imported = _cli_pass(slow, blocked)
    assert "ops_manager.engine.alert_dispatch" in imported
    fast_state = json.loads(_state_file(fast).read_text().replace(str(fast), "<repo>"))
    slow_state = json.loads(_state_file(slow).read_text().replace(str(slow), "<repo>"))
    assert _comparable(fast_state) == _comparable(slow_state)
    assert fast_state["status"] == "no_new_escalations"


def _user_config(tmp_path: Path) -> Path:
    doc = json.loads(PACKAGED_ALERT_SINKS_FILE.read_text())
    doc["defaultMinSeverity"] = "info"
    path = tmp_path / "sinks.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def test_the_memo_is_keyed_by_the_config_bytes(template: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(template, repo)
    cache, config = tmp_path / "cache", _user_config(tmp_path)
    _cli_pass(repo, cache, config)
    assert _cli_pass(repo, cache, config)[1] == []
    # other bytes: loaded again (and a config that stops loading is reported by health)
    config.write_text(config.read_text().replace('"info"', '"critical"'))
    assert "ops_manager.engine.alert_config" in _cli_pass(repo, cache, config)[1]
    config.write_text("{}")
    _, imported = _cli_pass(repo, cache, config)
    assert "ops_manager.engine.alert_config" in imported
    health = json.loads(_paths(repo).health_file.read_text())
    assert "alert_config_invalid" in health["reasonCodes"]
    assert len(list((cache / "alert-config-ok").iterdir())) == 2


def test_the_memo_is_keyed_by_the_code_that_checks_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops_manager.engine import _schema_memo

    monkeypatch.setenv("OPS_MANAGER_CACHE_DIR", str(tmp_path / "cache"))
    config = _user_config(tmp_path)
    data = config.read_bytes()
    name = _schema_memo._alert_config_entry(str(config), data)
    assert name is not None
    assert _schema_memo._alert_config_entry(str(config), data) == name
    assert _schema_memo._alert_config_entry(str(tmp_path / "other.json"), data) != name
    assert _schema_memo._alert_config_entry(str(config), data + b" ") != name
    # an edited checker (here: a touched source file) never trusts the old outcome
    source = Path(_schema_memo.__file__).parent / "alert_config.py"
    stat = source.stat()
    try:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert _schema_memo._alert_config_entry(str(config), data) != name
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _schema_memo._alert_config_entry(str(config), data) == name


def test_an_outcome_reached_with_an_in_process_plugin_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops_manager.engine import alert_config
    from ops_manager.plugins import get_plugin_manager
    from tests.test_alert_config import FakeSinksPlugin

    monkeypatch.setenv("OPS_MANAGER_CACHE_DIR", str(tmp_path / "cache"))
    config = _user_config(tmp_path)
    pm = get_plugin_manager()
    plugin = FakeSinksPlugin()
    pm.register(plugin, name="quiet-test-fake-sinks")
    try:
        alert_config.load_alert_config(str(config))
    finally:
        pm.unregister(plugin)
    assert not (tmp_path / "cache" / "alert-config-ok").exists()
    alert_config.load_alert_config(str(config))
    assert len(list((tmp_path / "cache" / "alert-config-ok").iterdir())) == 1


def test_the_position_check_is_the_full_runs(template: Path) -> None:
    # the quiet run verifies the stored fingerprint as read_new_lines does
    state = json.loads(_state_file(template).read_text())
    position = state["escalationsPosition"]
    data = _paths(template).escalations_file.read_bytes()
    last = data[position["byteOffset"] - position["lastLineBytes"] : position["byteOffset"]]
    assert hashlib.sha256(last).hexdigest() == position["lastLineSha256"]
