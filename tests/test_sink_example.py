"""The sink plugin kit: the third-party example plugin, ``ops_manager.testing`` itself, and
the rule that core never imports a sink plugin.

- ``examples/ops-manager-sink-example`` (dist ``ops-manager-ntfy``) follows
  ``docs/writing-a-sink-plugin.md``; it is not installed, so it is imported by path here and
  must pass the same contract suite as our own plugins, register through the hook, and
  declare the ``ops_manager`` entry point. Its own test suite runs too.
- The contract suite must catch the mistakes it exists for (each bad sink below breaks one
  rule), and the fakes (``FakeSink``, ``install_sink``, ``LoopbackReceiver``) behave.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from ops_manager.errors import OpsError
from ops_manager.plugins import get_plugin_manager
from ops_manager.sinks import AlertEvent, SinkConfigError, SinkRequest, get_sink
from ops_manager.testing import (
    ContractCase,
    ContractFailure,
    FakeSink,
    LoopbackReceiver,
    Reply,
    SinkContract,
    check_deterministic,
    check_no_local_paths,
    check_no_secret_leaks,
    check_rejects_broken,
    check_secret_envs,
    check_sink,
    check_trigger_and_resolve,
    event_with_local_paths,
    install_sink,
    make_event,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "ops-manager-sink-example"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "ops_manager_ntfy",
        EXAMPLE / "ops_manager_ntfy" / "__init__.py",
        submodule_search_locations=[str(EXAMPLE / "ops_manager_ntfy")],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("ops_manager_ntfy", module)
    spec.loader.exec_module(module)
    return module


ntfy = _load_example()
NTFY_CONFIG = {
    "enabled": True,
    "type": "ntfy",
    "topicUrlEnv": "OPS_MANAGER_NTFY_TOPIC_URL",
    "tokenEnv": "OPS_MANAGER_NTFY_TOKEN",
}
NTFY_ENV = {
    "OPS_MANAGER_NTFY_TOPIC_URL": "https://ntfy.example.test/ops-s3cr3t-topic",
    "OPS_MANAGER_NTFY_TOKEN": "tk_s3cr3t_token_value",
}


# --------------------------------------------------------------------------- the example


class TestExampleSinkContract(SinkContract):
    """The example third-party plugin passes the contract our own plugins pass."""

    sink = ntfy.NtfySink()
    plugin = ntfy
    sample_config = NTFY_CONFIG
    sample_env = NTFY_ENV
    body_is_json = False


def test_example_declares_the_ops_manager_entry_point() -> None:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["ops_manager"] == {"ntfy": "ops_manager_ntfy"}
    assert "ops-manager>=0.1" in project["dependencies"]
    assert (EXAMPLE / "README.md").is_file()
    assert (EXAMPLE / "ops_manager_ntfy" / "py.typed").is_file()


def test_example_is_found_through_the_plugin_manager_like_an_installed_plugin() -> None:
    with pytest.raises(SinkConfigError, match="sink type 'ntfy' is not installed"):
        get_sink("ntfy")
    pm = get_plugin_manager()
    pm.register(ntfy, name="ops-manager-ntfy-example")
    try:
        sink = get_sink("ntfy")
        assert type(sink).__name__ == "NtfySink"
        request = sink.build_request("ntfy-phone", NTFY_CONFIG, make_event(), NTFY_ENV)
        assert request.url == NTFY_ENV["OPS_MANAGER_NTFY_TOPIC_URL"]
    finally:
        pm.unregister(ntfy)


def test_example_own_test_suite_passes() -> None:
    """What a third party runs in their checkout (``pytest`` with the example's config)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(r"\d+ passed", proc.stdout)


def test_docs_walkthrough_matches_the_example() -> None:
    doc = (ROOT / "docs" / "writing-a-sink-plugin.md").read_text()
    assert "[project.entry-points.ops_manager]" in doc
    assert "class TestNtfyContract(SinkContract)" in doc
    assert "examples/ops-manager-sink-example" in doc


# --------------------------------------------------------------- core never imports plugins


def test_core_never_imports_a_sink_plugin() -> None:
    pattern = re.compile(
        r"^\s*(?:from|import)\s+ops_manager_(?:webhook|slack|pagerduty|ntfy)\b"
        r"|import_module\(\s*[\"']ops_manager_(?:webhook|slack|pagerduty|ntfy)",
        re.MULTILINE,
    )
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "ops_manager").rglob("*.py"))
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_our_plugins_are_separate_distributions_with_the_entry_point() -> None:
    expected = {
        "ops-manager-webhook": ("webhook", "ops_manager_webhook"),
        "ops-manager-slack": ("slack", "ops_manager_slack"),
        "ops-manager-pagerduty": ("pagerduty", "ops_manager_pagerduty"),
    }
    for dist, (name, module) in expected.items():
        project = tomllib.loads((ROOT / "plugins" / dist / "pyproject.toml").read_text())
        assert project["project"]["name"] == dist
        assert project["project"]["entry-points"]["ops_manager"] == {name: module}
        assert (ROOT / "plugins" / dist / "README.md").is_file()
        assert (ROOT / "plugins" / dist / "tests").is_dir()


# ----------------------------------------------------------- the contract catches mistakes

URL_ENV = {"FAKE_SINK_URL": "https://fake.example.test/hook/s3cr3t-fake"}
FAKE_CONFIG = {"enabled": True, "type": "fake", "urlEnv": "FAKE_SINK_URL"}


class TestFakeSinkContract(SinkContract):
    """``FakeSink`` itself abides by the contract it helps test."""

    sink = FakeSink()
    sample_config = FAKE_CONFIG
    sample_env = URL_ENV


def _case(sink: Any) -> ContractCase:
    return ContractCase(sink=sink, config=FAKE_CONFIG, env=URL_ENV)


class _EmbedsEscalation(FakeSink):
    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        base = super().build_request(sink_id, config, event, env)
        return SinkRequest(base.url, json.dumps(event.escalation).encode(), base.headers)


class _ReadsOsEnviron(FakeSink):
    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        return super().build_request(sink_id, config, event, {**env, **os.environ})


class _UsesTheClock(FakeSink):
    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        base = super().build_request(sink_id, config, event, env)
        return SinkRequest(base.url, base.body + str(time.perf_counter_ns()).encode(), base.headers)


class _ReadsAFile(FakeSink):
    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        with open(__file__, encoding="utf-8") as handle:
            handle.read(1)
        return super().build_request(sink_id, config, event, env)


class _SecretInHeader(FakeSink):
    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        base = super().build_request(sink_id, config, event, env)
        return SinkRequest(base.url, base.body, {**base.headers, "X-Debug-Url": base.url})


class _IgnoresAction(FakeSink):
    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        return super().build_request(sink_id, config, make_event(), env)


class _AcceptsAnything(FakeSink):
    def validate_config(self, sink_id: str, config: Mapping[str, Any]) -> list[str]:
        return []


class _VagueMissingEnv(FakeSink):
    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        if not env.get(str(config["urlEnv"])):
            raise SinkConfigError("something is missing")
        return super().build_request(sink_id, config, event, env)


@pytest.mark.parametrize(
    ("sink", "check", "message"),
    [
        (_EmbedsEscalation(), check_no_local_paths, "leaks the local path"),
        (_ReadsOsEnviron(), check_secret_envs, "os.environ"),
        (_UsesTheClock(), check_deterministic, "not deterministic"),
        (_ReadsAFile(), check_deterministic, "tried to open a file"),
        (_SecretInHeader(), check_no_secret_leaks, "leaks into header X-Debug-Url"),
        (_IgnoresAction(), check_trigger_and_resolve, "same request as its trigger"),
        (_AcceptsAnything(), check_rejects_broken, "validate_config accepted"),
        (_VagueMissingEnv(), check_secret_envs, "must name FAKE_SINK_URL"),
    ],
    ids=[
        "embeds-escalation-paths",
        "reads-os-environ",
        "uses-the-clock",
        "reads-a-file",
        "secret-in-header",
        "ignores-action",
        "accepts-anything",
        "vague-missing-env",
    ],
)
def test_the_contract_catches(sink: FakeSink, check: Any, message: str) -> None:
    with pytest.raises(ContractFailure, match=re.escape(message)):
        check(_case(sink))


def test_check_sink_runs_everything_outside_pytest() -> None:
    check_sink(FakeSink(), FAKE_CONFIG, URL_ENV)
    with pytest.raises(ContractFailure):
        check_sink(_EmbedsEscalation(), FAKE_CONFIG, URL_ENV)


def test_the_purity_guard_restores_everything() -> None:
    before = (open, socket.socket.connect, subprocess.Popen.__init__)
    with pytest.raises(ContractFailure):
        check_deterministic(_case(_ReadsAFile()))
    assert (open, socket.socket.connect, subprocess.Popen.__init__) == before
    assert "FAKE_SINK_URL" not in os.environ or os.environ["FAKE_SINK_URL"] != ""


# --------------------------------------------------------------------------- fakes


def test_make_event_defaults_and_overrides() -> None:
    event = make_event(action="resolve", reason_codes=["a", "b"])
    assert (event.action, event.loop_id, event.severity) == ("resolve", "demo-loop", "critical")
    assert event.reason_codes == ("a", "b")
    with pytest.raises(TypeError, match="unknown fields"):
        make_event(colour="red")
    leaky = event_with_local_paths()
    assert any(str(v).startswith("/home/contract-probe") for v in leaky.escalation.values())


def test_fake_sink_records_calls_and_can_fail() -> None:
    sink = FakeSink()
    sink.build_request("s1", FAKE_CONFIG, make_event(), URL_ENV)
    assert [(c.sink_id, c.event.action) for c in sink.calls] == [("s1", "trigger")]
    failing = FakeSink(error=SinkConfigError("boom"))
    with pytest.raises(SinkConfigError, match="boom"):
        failing.build_request("s1", FAKE_CONFIG, make_event(), URL_ENV)
    assert len(failing.calls) == 1


def test_install_sink_registers_for_the_block_only() -> None:
    sink = FakeSink(type="fake_installed")
    with install_sink(sink):
        assert get_sink("fake_installed") is sink
    with pytest.raises(OpsError, match="'fake_installed' is not installed"):
        get_sink("fake_installed")


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    with LoopbackReceiver([503, Reply.retry_after(1), 200], name="scripted") as rx:
        yield rx


def test_loopback_receiver_answers_from_its_script(receiver: LoopbackReceiver) -> None:
    url = receiver.url_for("/hook")
    assert url.startswith("http://127.0.0.1:")
    answers = [requests.post(url, data=b'{"n":%d}' % i, timeout=5) for i in range(4)]
    assert [a.status_code for a in answers] == [503, 429, 200, 200]
    assert answers[1].headers["Retry-After"] == "1"
    got = receiver.requests
    assert [r.status for r in got] == [503, 429, 200, 200]
    assert [r.json()["n"] for r in receiver.accepted()] == [2, 3]
    assert got[0].method == "POST" and got[0].path == "/hook"
    receiver.script(Reply(202, b'{"status":"success"}'), default=500)
    assert requests.post(url, data=b"x", timeout=5).status_code == 202
    assert requests.post(url, data=b"x", timeout=5).status_code == 500
    receiver.clear()
    assert receiver.requests == []


def test_loopback_receiver_always_stops() -> None:
    with pytest.raises(RuntimeError, match="boom"), LoopbackReceiver() as rx:
        port = rx.port
        raise RuntimeError("boom")
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    with pytest.raises(RuntimeError, match="not running"):
        _ = rx.url


def test_loopback_receiver_wait_for_times_out() -> None:
    with LoopbackReceiver() as rx, pytest.raises(TimeoutError, match="expected 1 requests"):
        rx.wait_for(1, timeout=0.2)


def test_loopback_receiver_reads_chunked_bodies() -> None:
    with LoopbackReceiver() as rx:
        requests.post(rx.url_for("/c"), data=iter([b"ab", b"cd"]), timeout=5)
        assert rx.wait_for(1)[0].body == b"abcd"
