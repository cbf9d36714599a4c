"""The store: atomic projections, append-only streams, torn tails, corruption, loop ids."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ops_manager.errors import CorruptStreamError, OpsError
from ops_manager.store import (
    LoopPaths,
    Stream,
    append_line,
    exclusive_lock,
    iter_records,
    last_complete_line,
    read_json_file,
    validate_loop_id,
    write_json,
)


def test_write_json_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state.json"
    write_json(target, {"b": 1, "a": [1, 2]})
    assert target.read_text() == '{"b":1,"a":[1,2]}\n'
    write_json(target, {"x": "é"}, pretty=True)
    assert target.read_text() == '{\n  "x": "é"\n}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def test_write_json_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_json(target, {"ok": True})
    with pytest.raises(ValueError):
        write_json(target, {"bad": float("nan")})  # not JSON: nothing half-written
    assert target.read_text() == '{"ok":true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_stream_torn_tail_is_ignored_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    append_line(path, {"n": 1})
    append_line(path, {"n": 2})
    with open(path, "ab") as handle:
        handle.write(b'{"n": 3')  # a write in progress
    assert [r["n"] for _, r in iter_records(path)] == [1, 2]
    assert Stream(path).torn_tail_bytes() == len(b'{"n": 3')
    assert last_complete_line(path) == b'{"n":2}'


def test_stream_corruption_in_the_middle_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"n":1}\n\nnot json\n{"n":2}\n')
    with pytest.raises(CorruptStreamError) as info:
        list(iter_records(path))
    assert info.value.line == 3
    assert str(path) in info.value.message


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1E400"])
def test_a_record_with_a_non_json_constant_is_corrupt(tmp_path: Path, constant: bytes) -> None:
    # json.loads accepts these; no writer of ours emits them and none can write a
    # projection holding one back (allow_nan=False): before, a handoff.jsonl row with
    # "executedAt": NaN reached fold_attempts and the handoff-state.json write raised
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"n":1}\n{"executedAt":' + constant + b"}\n")
    with pytest.raises(CorruptStreamError) as info:
        list(iter_records(path))
    assert info.value.line == 2
    path.write_bytes(b'{"n":"NaN","m":1.5e3,"u":"\\u00e9"}\n')  # strings and numbers still parse
    assert [r for _, r in iter_records(path)] == [{"n": "NaN", "m": 1500.0, "u": "é"}]


def test_last_complete_line_skips_blank_lines_and_reads_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    big = b"".join(b'{"i":%d}\n' % i for i in range(20000))
    path.write_bytes(big + b"\n  \n\n")
    assert last_complete_line(path) == b'{"i":19999}'
    path.write_bytes(b"only-torn")
    assert last_complete_line(path) is None
    assert last_complete_line(tmp_path / "missing") is None


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    payload = "x" * 5000

    def writer(k: int) -> None:
        for i in range(200):
            append_line(path, {"w": k, "i": i, "p": payload})

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = [r for _, r in iter_records(path)]
    assert len(records) == 800
    assert all(r["p"] == payload for r in records)


def test_exclusive_lock_serializes_read_modify_write(tmp_path: Path) -> None:
    counter = tmp_path / "counter.json"
    write_json(counter, {"n": 0})
    lock = tmp_path / ".lock"

    def bump() -> None:
        for _ in range(50):
            with exclusive_lock(lock):
                n = read_json_file(counter, "bad")["n"]
                write_json(counter, {"n": n + 1})

    # separate processes, so flock (not the GIL) is what serializes them
    pids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                bump()
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    assert read_json_file(counter, "bad") == {"n": 150}


@pytest.mark.parametrize("bad", ["..", ".", "a/b", "../etc", "/abs", "a\\b", "a\x00b", "a\nb", ""])
def test_loop_ids_that_escape_are_rejected(bad: str) -> None:
    with pytest.raises(OpsError):
        validate_loop_id(bad)


def test_loop_paths_follow_the_contract(tmp_path: Path) -> None:
    p = LoopPaths.for_loop(tmp_path, "demo-loop")
    assert p.events_file == tmp_path / ".superloop/loops/demo-loop/events.jsonl"
    assert p.state_file == tmp_path / ".superloop/ops-manager/demo-loop/state.json"
    assert p.cursor_file.name == "cursor.json"
    assert (
        p.reconcile_telemetry_file
        == tmp_path / ".superloop/ops-manager/demo-loop/telemetry/reconcile.jsonl"
    )
    assert p.transport_health_file.parent == p.telemetry_dir
    assert p.relative(p.heartbeat_file) == ".superloop/loops/demo-loop/heartbeat.v1.json"
    assert p.relative(Path("/elsewhere/x")) == "/elsewhere/x"


def test_read_json_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(OpsError, match=f"invalid state JSON: {bad}"):
        read_json_file(bad, "invalid state JSON")
    assert read_json_file(tmp_path / "none.json", "x") is None


def test_new_trace_ids_are_version_4_uuids() -> None:
    import uuid

    from ops_manager._traceid import new_trace_id

    ids = {new_trace_id() for _ in range(500)}
    assert len(ids) == 500
    for value in ids:
        parsed = uuid.UUID(value)
        assert (str(parsed), parsed.version, parsed.variant) == (value, 4, uuid.RFC_4122)


# --- store._commit: a pass's record, applied idempotently ---------------------------------


def _record(tmp_path: Path, stream: Path, projection: Path) -> Path:
    """A committed record whose apply was never run (the process died at the commit point)."""
    import json as _json

    record = tmp_path / ".pass-commit.json"
    doc = {
        "schemaVersion": "v1",
        "appends": [{"file": str(stream), "sizeBefore": 8, "data": '{"b":2}\n{"c":3}\n'}],
        "replaces": [{"file": str(projection), "data": '{"new":true}\n'}],
    }
    record.write_text(_json.dumps(doc), encoding="utf-8")
    return record


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('{"a":1}\n', '{"a":1}\n{"b":2}\n{"c":3}\n'),  # not applied yet: all of it
        ('{"a":1}\n{"b":2}\n{"c', '{"a":1}\n{"b":2}\n{"c":3}\n'),  # killed mid-append: the rest
        ('{"a":1}\n{"b":2}\n{"c":3}\n', '{"a":1}\n{"b":2}\n{"c":3}\n'),  # applied: untouched
        # applied, then another writer appended: untouched
        ('{"a":1}\n{"b":2}\n{"c":3}\n{"z":9}\n', '{"a":1}\n{"b":2}\n{"c":3}\n{"z":9}\n'),
        # another writer appended first: the pass's rows go after it, none is lost
        ('{"a":1}\n{"z":9}\n', '{"a":1}\n{"z":9}\n{"b":2}\n{"c":3}\n'),
    ],
)
def test_a_pending_record_is_applied_exactly_once(tmp_path: Path, before: str, after: str) -> None:
    from ops_manager.store import apply_pending

    stream, projection = tmp_path / "rows.jsonl", tmp_path / "p.json"
    stream.write_text(before, encoding="utf-8")
    projection.write_text('{"old":true}\n', encoding="utf-8")
    record = _record(tmp_path, stream, projection)
    assert apply_pending(record) is True
    assert stream.read_text(encoding="utf-8") == after
    assert projection.read_text(encoding="utf-8") == '{"new":true}\n'
    assert not record.exists()
    assert apply_pending(record) is False  # nothing left to do
    assert stream.read_text(encoding="utf-8") == after


def test_a_corrupt_record_is_set_aside_and_dead_writers_temps_removed(tmp_path: Path) -> None:
    import subprocess
    import sys

    from ops_manager.store import apply_pending

    record = tmp_path / ".pass-commit.json"
    record.write_text('{"appends": [', encoding="utf-8")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f"..pass-commit.json.tmp.{dead.stdout.strip()}"
    live = tmp_path / f"..pass-commit.json.tmp.{os.getpid()}"
    stale.write_text("x", encoding="utf-8")
    live.write_text("x", encoding="utf-8")
    assert apply_pending(record) is False
    assert not record.exists() and (tmp_path / ".pass-commit.json.corrupt").exists()
    assert not stale.exists(), "a dead writer's temp is removed"
    assert live.exists(), "a live writer's temp is left alone"


def test_a_record_names_files_absolutely_so_another_directory_applies_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json as _json

    from ops_manager.store import Append, Replace, apply_pending, commit

    work, other = tmp_path / "work", tmp_path / "other"
    work.mkdir()
    other.mkdir()
    record = tmp_path / ".fleet-commit.json"
    monkeypatch.chdir(work)
    import ops_manager.store._commit as store_commit

    def die(doc: dict[str, object]) -> None:
        raise OSError("killed after the commit point")

    with monkeypatch.context() as patch:
        patch.setattr(store_commit, "_apply", die)
        with pytest.raises(OSError):
            commit(
                record, [Append(Path("rows.jsonl"), 0, b"{}\n")], [Replace(Path("p.json"), b"1\n")]
            )
    doc = _json.loads(record.read_text(encoding="utf-8"))
    assert [a["file"] for a in doc["appends"]] == [str(work / "rows.jsonl")]
    assert [r["file"] for r in doc["replaces"]] == [str(work / "p.json")]
    monkeypatch.chdir(other)  # the next lock holder, started elsewhere
    assert apply_pending(record) is True
    assert (work / "rows.jsonl").read_bytes() == b"{}\n"
    assert (work / "p.json").read_bytes() == b"1\n"
    assert list(other.iterdir()) == []


def test_finish_pending_takes_the_lock_only_for_a_record(tmp_path: Path) -> None:
    import threading as _threading

    from ops_manager.store import finish_pending, locked

    fleet = tmp_path / "fleet"
    lock, record = fleet / ".lock", fleet / ".fleet-commit.json"
    finish_pending(lock, record)
    assert not fleet.exists(), "nothing to finish: nothing created"
    stream, projection = tmp_path / "rows.jsonl", tmp_path / "p.json"
    stream.write_text('{"a":1}\n', encoding="utf-8")
    fleet.mkdir()
    _record(fleet, stream, projection).rename(record)
    finished = _threading.Event()
    with locked(lock, fleet / ".other-record.json"):
        # a holder of the lock is running: finish_pending waits for it
        waiter = _threading.Thread(target=lambda: (finish_pending(lock, record), finished.set()))
        waiter.start()
        assert not finished.wait(0.2)
        assert stream.read_text(encoding="utf-8") == '{"a":1}\n'
    waiter.join(10)
    assert finished.is_set() and not record.exists()
    assert stream.read_text(encoding="utf-8") == '{"a":1}\n{"b":2}\n{"c":3}\n'
    assert projection.read_text(encoding="utf-8") == '{"new":true}\n'


def test_loop_paths_is_a_frozen_value(tmp_path: Path) -> None:
    """``LoopPaths`` is written by hand (no attrs on the status path): it keeps the value
    semantics of the attrs class it was (equality, hash, repr, frozen, copy and pickle)."""
    import copy
    import pickle

    a = LoopPaths(tmp_path, "one")
    b = LoopPaths.for_loop(tmp_path, "one")
    assert a == b and hash(a) == hash(b) and {a: 1}[b] == 1
    assert a != LoopPaths(tmp_path, "two") and a != LoopPaths(tmp_path / "x", "one")
    assert a != (tmp_path, "one")
    assert repr(a) == f"LoopPaths(repo={tmp_path!r}, loop_id='one')"
    assert copy.copy(a) == a and pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(AttributeError):
        a.loop_id = "two"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del a.repo
    assert a.loop_id == "one" and a.state_file == tmp_path / ".superloop/ops-manager/one/state.json"
    match a:
        case LoopPaths(repo, loop_id):
            assert (repo, loop_id) == (tmp_path, "one")
