"""``schema/ops-manager.contract.schema.json`` against real envelopes from realistic repos."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ops_manager.runtime import EventReader, StreamPosition, build_event_envelope, build_snapshot
from ops_manager.store import LoopPaths
from tests.runtime_fixtures import (
    OUTCOMES,
    event,
    gates,
    make_runtime_repo,
    pending_approval,
    realistic_run_events,
    runtime_heartbeat,
    summary_entry,
    ts,
)

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "ops-manager.contract.schema.json"
NOW = 1_771_754_400  # 2026-02-22T10:00:00Z


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _errors(validator: Draft202012Validator, value: Any) -> list[str]:
    return [e.message for e in validator.iter_errors(value)]


def _paths(repo: Path) -> LoopPaths:
    return LoopPaths.for_loop(repo.resolve(), "demo-loop")


def _event_envelopes(repo: Path, trace_id: str | None = None) -> list[dict[str, Any]]:
    paths = _paths(repo)
    reader = EventReader(paths.events_file, StreamPosition())
    events = list(reader)
    return [
        build_event_envelope(
            (str(paths.repo), paths.loop_id),
            ev,
            total_lines=reader.total_lines,
            now=NOW,
            trace_id=trace_id,
        )
        for ev in events
    ]


def test_schema_is_valid_draft_2020_12(validator: Draft202012Validator) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert len(schema["oneOf"]) == 2


def test_snapshot_with_lifecycle_gate_and_empty_delegation_is_valid(
    validator: Draft202012Validator, tmp_path: Path
) -> None:
    repo = make_runtime_repo(tmp_path, heartbeat=runtime_heartbeat())
    snap = build_snapshot(_paths(repo), now=NOW, trace_id="trace-1", run_id=None)
    assert snap["health"]["gates"]["lifecycle"] == "skipped"
    assert snap["run"]["summary"]["delegation"] == {}
    assert _errors(validator, snap) == []


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_realistic_runs_validate(
    validator: Draft202012Validator, tmp_path: Path, outcome: str
) -> None:
    evs = realistic_run_events(outcome=outcome, iterations=2)
    approval = pending_approval() if outcome == "approval_requested" else None
    entries = [summary_entry("r", 1), summary_entry("r", 2, completion_ok=True)]
    repo = make_runtime_repo(tmp_path, events=evs, summary_entries=entries, approval=approval)
    for trace in (None, "trace-x"):
        snap = build_snapshot(_paths(repo), now=NOW, trace_id=trace, run_id=None)
        assert _errors(validator, snap) == []
        envelopes = _event_envelopes(repo, trace)
        assert len(envelopes) == len(evs)
        for env in envelopes:
            assert _errors(validator, env) == [], env["event"]["name"]


def test_snapshot_without_optional_files_validates(
    validator: Draft202012Validator, tmp_path: Path
) -> None:
    repo = make_runtime_repo(tmp_path, active=None, summary_entries=None, events=[])
    snap = build_snapshot(_paths(repo), now=NOW, trace_id=None, run_id=None)
    assert snap["run"]["status"] == "unknown"
    assert snap["health"]["gates"] is None
    assert _errors(validator, snap) == []


def test_event_payload_accepts_any_json(validator: Draft202012Validator, tmp_path: Path) -> None:
    evs = [
        event("a", ts(1), data=[1, 2]),
        event("b", ts(2), data="text"),
        event("c", ts(3), data=0),
        event("d", ts(4), data=False),
        event("e", ts(5), iteration="7", run_id=None),
    ]
    repo = make_runtime_repo(tmp_path, events=evs)
    envelopes = _event_envelopes(repo)
    assert [e["event"]["payload"] for e in envelopes] == [[1, 2], "text", 0, None, None]
    for env in envelopes:
        assert _errors(validator, env) == []


def test_gates_without_lifecycle_still_validate(
    validator: Draft202012Validator, tmp_path: Path
) -> None:
    entry = summary_entry(gate_values=gates(lifecycle=None))
    repo = make_runtime_repo(tmp_path, summary_entries=[entry])
    snap = build_snapshot(_paths(repo), now=NOW, trace_id=None, run_id=None)
    assert "lifecycle" not in snap["health"]["gates"]
    assert _errors(validator, snap) == []


def _mutations_snapshot(snap: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []

    def mutate(label: str, fn: Any) -> None:
        copy_ = copy.deepcopy(snap)
        fn(copy_)
        out.append((label, copy_))

    mutate("missing run", lambda s: s.pop("run"))
    mutate("missing health.eventCount", lambda s: s["health"].pop("eventCount"))
    mutate("bad status enum", lambda s: s["run"].__setitem__("status", "paused"))
    mutate("bad schemaVersion", lambda s: s.__setitem__("schemaVersion", "v2"))
    mutate("bad sequence source", lambda s: s["sequence"].__setitem__("source", "bytes"))
    mutate("negative cursor", lambda s: s["cursor"].__setitem__("eventLineOffset", -1))
    mutate("extra top-level key", lambda s: s.__setitem__("extra", 1))
    mutate("extra artifact key", lambda s: s["artifacts"]["events"].__setitem__("x", 1))
    mutate("bad sha256", lambda s: s["artifacts"]["events"].__setitem__("sha256", "ABC"))
    mutate("unknown gate", lambda s: s["health"]["gates"].__setitem__("bogus", "ok"))
    mutate("missing gate", lambda s: s["health"]["gates"].pop("tests"))
    mutate("empty loopId", lambda s: s["source"].__setitem__("loopId", ""))
    mutate("string iteration", lambda s: s["run"].__setitem__("iteration", "1"))
    mutate("bad emittedAt", lambda s: s.__setitem__("emittedAt", "yesterday"))
    return out


def test_broken_snapshots_fail(validator: Draft202012Validator, tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path)
    snap = build_snapshot(_paths(repo), now=NOW, trace_id=None, run_id=None)
    assert _errors(validator, snap) == []
    for label, broken in _mutations_snapshot(snap):
        assert _errors(validator, broken), label


def test_broken_events_fail(validator: Draft202012Validator, tmp_path: Path) -> None:
    repo = make_runtime_repo(tmp_path)
    env = _event_envelopes(repo)[0]
    assert _errors(validator, env) == []
    cases: list[tuple[str, Any]] = [
        ("missing event", lambda e: e.pop("event")),
        ("missing raw", lambda e: e["event"].pop("raw")),
        ("empty name", lambda e: e["event"].__setitem__("name", "")),
        ("wrong envelopeType", lambda e: e.__setitem__("envelopeType", "loop_run_snapshot")),
        ("raw not object", lambda e: e["event"].__setitem__("raw", "x")),
        ("negative iteration", lambda e: e["run"].__setitem__("iteration", -1)),
        ("extra run key", lambda e: e["run"].__setitem__("status", "running")),
        ("numeric role", lambda e: e["event"].__setitem__("role", 5)),
        ("empty traceId", lambda e: e.__setitem__("traceId", "")),
    ]
    for label, fn in cases:
        broken = copy.deepcopy(env)
        fn(broken)
        assert _errors(validator, broken), label


# --------------------------------------------------------------------------------------------
# the validator's schemas: the packaged copies are schema/, and every shipped example passes
# --------------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
VALIDATED_SCHEMAS = (
    "ops-manager-fleet.registry.schema.json",
    "ops-manager-alert-sinks.config.schema.json",
)


@pytest.mark.parametrize("name", VALIDATED_SCHEMAS)
def test_packaged_schema_is_the_one_in_schema_dir(name: str) -> None:
    """``schema/`` is the one source: the copy a wheel ships must be byte-identical."""
    from ops_manager.model.validation import load_schema

    packaged = (ROOT / "ops_manager" / "data" / name).read_bytes()
    assert packaged == (ROOT / "schema" / name).read_bytes()
    assert load_schema(name) == json.loads(packaged)


def _json_blocks(*globs: str) -> list[tuple[str, Any]]:
    """Every parsable ```json block of the docs/examples, with where it came from."""
    found: list[tuple[str, Any]] = []
    for pattern in globs:
        for path in sorted(ROOT.glob(pattern)):
            text = path.read_text(encoding="utf-8")
            for index, block in enumerate(text.split("```json")[1:]):
                try:
                    found.append(
                        (f"{path.relative_to(ROOT)}#{index}", json.loads(block.split("```")[0]))
                    )
                except ValueError:
                    continue  # an excerpt or a JSONL sample, not a whole document
    return found


def _documents(key: str) -> list[tuple[str, Any]]:
    files = [
        (str(p.relative_to(ROOT)), json.loads(p.read_text(encoding="utf-8")))
        for pattern in ("config/*.json", "examples/**/*.json", "ops_manager/data/*.json")
        for p in sorted(ROOT.glob(pattern))
    ]
    blocks = _json_blocks("docs/**/*.md", "examples/**/*.md", "README.md")
    return [
        (where, doc)
        for where, doc in files + blocks
        if isinstance(doc, dict) and doc.get("schemaVersion") == "v1" and key in doc
    ]


REGISTRIES = _documents("loops")
ALERT_CONFIGS = _documents("routing")


def test_examples_were_found() -> None:
    assert REGISTRIES, "no example registry found in config/, examples/ or docs/"
    assert ALERT_CONFIGS, "no example alert sink config found in config/, examples/ or docs/"


@pytest.mark.parametrize(("where", "doc"), REGISTRIES, ids=[w for w, _ in REGISTRIES])
def test_every_example_registry_validates(where: str, doc: Any) -> None:
    from ops_manager.reducers.fleet_registry import validate_registry

    # far past every example's changedAt, before any reviewBy that is meant to be live
    assert validate_registry(doc, now=0) == [], where


@pytest.mark.parametrize(("where", "doc"), ALERT_CONFIGS, ids=[w for w, _ in ALERT_CONFIGS])
def test_every_example_alert_config_validates_against_the_schema(where: str, doc: Any) -> None:
    from ops_manager.model.validation import ALERT_SINKS_SCHEMA, schema_errors

    assert list(schema_errors(ALERT_SINKS_SCHEMA, doc)) == [], where


def test_validation_imports_jsonschema_lazily() -> None:
    """Importing the reducers costs no jsonschema import; validating once does (issue 14.3)."""
    import subprocess
    import sys

    code = (
        "import sys; import ops_manager.reducers.fleet_registry as r; "
        "before = 'jsonschema' in sys.modules; "
        "r.validate_registry({'schemaVersion': 'v1', 'loops': [{'loopId': 'a'}]}, now=0); "
        "print(before, 'jsonschema' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_default_alert_config_pass_does_not_import_jsonschema(tmp_path: Path) -> None:
    """The packaged default config loads without jsonschema; a copy that differs validates."""
    import subprocess
    import sys

    from ops_manager.engine.alert_config import PACKAGED_ALERT_SINKS_FILE

    edited = tmp_path / "alerts.json"
    edited.write_bytes(PACKAGED_ALERT_SINKS_FILE.read_bytes() + b"\n")
    code = (
        "import sys; from ops_manager.engine.alert_config import load_alert_config as load; "
        "load(sys.argv[1]); print('jsonschema' in sys.modules)"
    )
    # an empty schema memo: the edited copy has not passed before (test_schema_memo.py)
    env = dict(os.environ, OPS_MANAGER_CACHE_DIR=str(tmp_path / "cache"))
    for path, imported in ((str(PACKAGED_ALERT_SINKS_FILE), "False"), (str(edited), "True")):
        out = subprocess.run(
            [sys.executable, "-c", code, path], capture_output=True, text=True, check=True, env=env
        )
        assert out.stdout.strip() == imported, path
