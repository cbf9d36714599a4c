"""Transports are chosen through the plugin registry, built-ins included."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ops_manager.errors import OpsError
from ops_manager.hookspecs import hookimpl
from ops_manager.plugins import get_plugin_manager, plugin_names
from ops_manager.runtime import StreamPosition
from ops_manager.transports import (
    EventTuple,
    ObserveRequest,
    ReadExtent,
    RuntimeView,
    TransportConfig,
    TransportFactory,
    available_transports,
    get_transport,
)


def test_local_is_a_builtin_plugin_registered_through_the_hook() -> None:
    assert "ops_manager.transports.local" in plugin_names()
    assert "local" in available_transports()
    transport = get_transport("local", TransportConfig())
    assert transport.name == "local"


def test_builtin_transport_table_matches_what_the_plugin_manager_registers() -> None:
    # get_transport resolves built-in names from BUILTIN_TRANSPORTS without the plugin
    # manager; the table must name exactly the transports the built-in plugins register,
    # each from the module that registers it, with the same factory
    from ops_manager.transports import BUILTIN_TRANSPORTS

    builtins = available_transports(builtin_only=True)
    assert set(BUILTIN_TRANSPORTS) == set(builtins)
    for name, module in BUILTIN_TRANSPORTS.items():
        assert builtins[name].__module__ == module
        assert type(get_transport(name, TransportConfig())) is builtins[name]


def test_a_local_pass_does_not_import_the_service_client() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from ops_manager.transports import TransportConfig, get_transport\n"
        "get_transport('local', TransportConfig())\n"
        "print(sorted(m for m in ('ops_manager.service_client', 'ops_manager.plugins',"
        " 'ops_manager.transports.sprite_service') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_transport_names_what_is_available() -> None:
    with pytest.raises(OpsError, match=r"transport 'carrier_pigeon' is not available.*local"):
        get_transport("carrier_pigeon", TransportConfig())


class _ScriptedObservation:
    def __init__(self, events: list[EventTuple]) -> None:
        self.view = RuntimeView(
            repo_path="/nowhere",
            run_id="r",
            iteration=1,
            status="running",
            summary=None,
            superloop_state={"active": True, "current_loop_id": "demo-loop"},
            approval=None,
            heartbeat=None,
            last_event=events[-1][1] if events else None,
        )
        self._events = events

    @property
    def events(self) -> Iterator[EventTuple]:
        yield from self._events

    def extent(self) -> ReadExtent:
        last = self._events[-1][0] if self._events else 0
        return ReadExtent(
            position=StreamPosition(line_offset=last),
            total_lines=last,
            events_emitted=len(self._events),
        )


class _ScriptedTransport:
    name = "scripted"

    def __init__(self, config: TransportConfig) -> None:
        self.config = config

    def observe(self, request: ObserveRequest) -> _ScriptedObservation:
        raw = {"timestamp": "2026-11-22T00:00:00Z", "event": "iteration_start", "run_id": "r"}
        return _ScriptedObservation([(1, raw, "iteration_start", raw["timestamp"])])


class _ThirdPartyPlugin:
    @hookimpl
    def opsmgr_register_transports(self, register: Callable[[str, TransportFactory], None]) -> None:
        register("scripted", _ScriptedTransport)


@pytest.fixture
def third_party() -> Iterator[None]:
    pm = get_plugin_manager()
    plugin = _ThirdPartyPlugin()
    pm.register(plugin, name="third-party-scripted")
    try:
        yield
    finally:
        pm.unregister(plugin)


def test_a_third_party_transport_drives_reconcile(third_party: None, tmp_path: Path) -> None:
    from ops_manager.engine.reconcile import ReconcileSettings, reconcile

    settings = ReconcileSettings(
        repo=tmp_path, loop_id="demo-loop", trace_id="t", transport="scripted"
    )
    result = reconcile(settings, clock=lambda: 1_790_000_000)
    assert result.ok
    assert result.output["transition"]["currentState"] == "running"
    assert result.output["health"]["transport"]["mode"] == "scripted"
    assert result.events_ingested == 1


def test_registering_a_name_twice_is_an_error(third_party: None) -> None:
    pm = get_plugin_manager()

    class Dup:
        @hookimpl
        def opsmgr_register_transports(self, register: Callable[[str, Any], None]) -> None:
            register("local", _ScriptedTransport)

    dup = Dup()
    pm.register(dup, name="dup")
    try:
        with pytest.raises(OpsError, match="registered twice"):
            available_transports()
    finally:
        pm.unregister(dup)


def test_entry_point_discovery_finds_what_importlib_metadata_finds() -> None:
    """The plugin manager reads entry_points.txt itself (importlib.metadata costs ~45 ms of
    CPU per process); it must see exactly the entry points importlib.metadata lists, with
    each one's distribution name and version."""
    from importlib.metadata import entry_points

    from ops_manager.plugins import get_plugin_manager, plugin_distribution

    expected = {
        ep.name: (ep.dist.metadata["Name"], ep.dist.version)
        for ep in entry_points(group="ops_manager")
        if ep.dist is not None
    }
    assert expected, "the sink plugins are installed in the test venv"
    pm = get_plugin_manager()
    found = {}
    for name, _ in expected.items():
        plugin = pm.get_plugin(name)
        assert plugin is not None, name
        found[name] = plugin_distribution(plugin)
    assert found == expected
