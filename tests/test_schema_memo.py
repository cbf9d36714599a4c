"""A user's alert sink config that passed its schema once is not re-checked by jsonschema
in later processes (``engine/_schema_memo.py``); one that fails is checked every time."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ops_manager.engine import _schema_memo
from ops_manager.engine.alert_config import PACKAGED_ALERT_SINKS_FILE
from ops_manager.model.validation import ALERT_SINKS_SCHEMA

# load the config in a fresh process; print whether jsonschema was imported, and the error
PROBE = """
import sys
from ops_manager.engine.alert_config import load_alert_config
from ops_manager.errors import OpsError
try:
    load_alert_config(sys.argv[1])
    outcome = "ok"
except OpsError as exc:
    outcome = exc.message
print(("jsonschema" in sys.modules), outcome, sep="|")
"""


def _probe(config: Path, cache: Path) -> tuple[bool, str]:
    env = dict(os.environ, OPS_MANAGER_CACHE_DIR=str(cache))
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    imported, _, outcome = out.partition("|")
    return imported == "True", outcome


def _user_config(tmp_path: Path, **changes: object) -> Path:
    # a copy of the packaged config with one value changed: other bytes than the packaged
    # file, so the packaged shortcut does not apply
    doc = json.loads(PACKAGED_ALERT_SINKS_FILE.read_text())
    doc.update(changes)
    path = tmp_path / "sinks.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def test_a_config_that_passed_is_not_checked_by_jsonschema_again(tmp_path: Path) -> None:
    config = _user_config(tmp_path, defaultMinSeverity="info")
    cache = tmp_path / "cache"
    assert _probe(config, cache) == (True, "ok")
    assert len(list((cache / "schema-valid").iterdir())) == 1
    assert _probe(config, cache) == (False, "ok")
    # the entry names a hash only: nothing of the document is stored
    (entry,) = (cache / "schema-valid").iterdir()
    assert entry.stat().st_size == 0
    assert "info" not in entry.name


def test_the_memo_is_keyed_by_the_document_not_the_file(tmp_path: Path) -> None:
    config = _user_config(tmp_path, defaultMinSeverity="info")
    cache = tmp_path / "cache"
    _probe(config, cache)
    # same path, other content: checked again (and remembered separately)
    _user_config(tmp_path, defaultMinSeverity="critical")
    assert _probe(config, cache) == (True, "ok")
    assert len(list((cache / "schema-valid").iterdir())) == 2
    # reformatting the same document reuses the entry
    config.write_text(json.dumps(json.loads(config.read_text()), indent=4, sort_keys=True))
    assert _probe(config, cache) == (False, "ok")


def test_a_config_that_fails_is_never_remembered(tmp_path: Path) -> None:
    config = _user_config(tmp_path, defaultMinSeverity="loud")
    cache = tmp_path / "cache"
    first = _probe(config, cache)
    assert first[0] is True
    assert first[1].startswith("alert sink config has invalid top-level shape")
    assert _probe(config, cache) == first
    assert not (cache / "schema-valid").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only modes")
def test_an_unwritable_cache_only_means_checking_again(tmp_path: Path) -> None:
    config = _user_config(tmp_path, defaultMinSeverity="info")
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert _probe(config, cache) == (True, "ok")
        assert _probe(config, cache) == (True, "ok")
    finally:
        cache.chmod(stat.S_IRWXU)


def test_a_cache_path_that_is_a_file_only_means_checking_again(tmp_path: Path) -> None:
    config = _user_config(tmp_path, defaultMinSeverity="info")
    cache = tmp_path / "cache"
    cache.write_text("not a directory")
    assert _probe(config, cache) == (True, "ok")
    assert _probe(config, cache) == (True, "ok")


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPS_MANAGER_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert _schema_memo.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("OPS_MANAGER_CACHE_DIR")
    assert _schema_memo.cache_dir() == tmp_path / "x" / "ops-manager"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert _schema_memo.cache_dir() == tmp_path / "h" / ".cache" / "ops-manager"
    monkeypatch.delenv("HOME")
    assert _schema_memo.cache_dir() is None
    assert not _schema_memo.known_valid(ALERT_SINKS_SCHEMA, {"schemaVersion": "v1"})
    _schema_memo.remember_valid(ALERT_SINKS_SCHEMA, {"schemaVersion": "v1"})  # no raise


# the fleet registry: the same memo, for the JSON Schema pass of load_registry
REGISTRY_PROBE = """
import sys
from pathlib import Path
from ops_manager.engine.fleet_registry import load_registry
from ops_manager.errors import OpsError
try:
    outcome = "ok %d" % load_registry(Path(sys.argv[1]))["loopCount"]
except OpsError as exc:
    outcome = exc.message.replace(chr(10), " ")
print(("jsonschema" in sys.modules), outcome, sep="|")
"""


def _registry_probe(repo: Path, cache: Path) -> tuple[bool, str]:
    env = dict(os.environ, OPS_MANAGER_CACHE_DIR=str(cache))
    out = subprocess.run(
        [sys.executable, "-c", REGISTRY_PROBE, str(repo)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    imported, _, outcome = out.partition("|")
    return imported == "True", outcome


def _registry(repo: Path, loops: list[dict[str, object]]) -> None:
    path = repo / ".superloop" / "ops-manager" / "fleet" / "registry.v1.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schemaVersion": "v1", "fleetId": "f", "loops": loops}))


def test_a_registry_that_passed_is_not_checked_by_jsonschema_again(tmp_path: Path) -> None:
    repo, cache = tmp_path / "repo", tmp_path / "cache"
    _registry(repo, [{"loopId": "a"}, {"loopId": "b", "transport": "local"}])
    assert _registry_probe(repo, cache) == (True, "ok 2")
    assert len(list((cache / "schema-valid").iterdir())) == 1
    assert _registry_probe(repo, cache) == (False, "ok 2")
    # other bytes that break the schema: checked, reported, never remembered
    _registry(repo, [{"loopId": "a", "transport": "carrier-pigeon"}])
    for _ in range(2):
        imported, outcome = _registry_probe(repo, cache)
        assert imported and outcome.startswith("invalid fleet registry:")
    assert len(list((cache / "schema-valid").iterdir())) == 1
