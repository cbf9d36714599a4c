"""The plugin manager: built-ins plus everything in the ``ops_manager`` entry-point group.

Entry points are discovered lazily, and without :mod:`importlib.metadata`: importing it
(it pulls in ``email``, ``zipfile`` and ``csv``) and walking every distribution through it
cost a process ~45 ms of CPU, about twice a bare ``python -c pass``, on every command that
needs a sink or a third-party transport. :func:`_entry_points` reads the same files it would
(``<dist>.dist-info/entry_points.txt`` on ``sys.path``, in path order) directly.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from collections.abc import Iterator

import pluggy

from ops_manager import hookspecs

#: modules shipped inside ops_manager that register through the public hooks
BUILTIN_PLUGINS = (
    "ops_manager.transports.local",
    "ops_manager.transports.sprite_service",
    # $OPS_MANAGER_CONTROL_SCRIPT / $OPS_MANAGER_CONFIRM_SCRIPT (selection hooks, tryfirst)
    "ops_manager.transports.external_command",
)

_entry_points_loaded = False
#: id(plugin) -> (distribution name, version) of each plugin loaded from an entry point
_distributions: dict[int, tuple[str, str]] = {}
#: the sprite service confirms intents in request threads; entry points load once
_entry_points_lock = threading.Lock()


@functools.cache
def _manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a built-in not shipped in this build; never hide a broken import
        pm.register(module, name=name)
    return pm


def get_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """The process-wide plugin manager.

    Built-in plugins are always registered. Installed plugins (the ``ops_manager``
    entry-point group) are loaded on the first call that asks for them, once per process.
    """
    global _entry_points_loaded
    pm = _manager()
    if load_entry_points and not _entry_points_loaded:
        with _entry_points_lock:
            if not _entry_points_loaded:
                _load_entry_points(pm, hookspecs.PROJECT)
                _entry_points_loaded = True
    return pm


def plugin_distribution(plugin: object) -> tuple[str, str] | None:
    """``(name, version)`` of the distribution that installed ``plugin``; ``None`` for a
    built-in or an in-process registration."""
    return _distributions.get(id(plugin))


def _load_entry_points(pm: pluggy.PluginManager, group: str) -> None:
    # what pluggy's load_setuptools_entrypoints does: first registration of a name wins,
    # a blocked name is skipped, a broken plugin's import error propagates
    for name, value, dist_dir in _entry_points(group):
        if pm.get_plugin(name) or pm.is_blocked(name):
            continue
        module_name, _, attr = value.partition(":")
        plugin: object = importlib.import_module(module_name.strip())
        for part in attr.strip().split(".") if attr.strip() else ():
            plugin = getattr(plugin, part)
        pm.register(plugin, name=name)
        _distributions[id(plugin)] = _dist_name_version(dist_dir)


def _entry_points(group: str) -> Iterator[tuple[str, str, str]]:
    """``(name, "module:attr", dist-info dir)`` of every entry point in ``group``."""
    for entry in sys.path:
        try:
            children = sorted(os.listdir(entry or "."))
        except OSError:
            continue  # a zip, a missing dir
        for child in children:
            if not child.endswith((".dist-info", ".egg-info")):
                continue
            dist_dir = os.path.join(entry or ".", child)
            try:
                with open(os.path.join(dist_dir, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            section = None
            for raw in text.splitlines():
                line = raw.strip()
                if not line or line[0] in "#;":
                    continue
                if line.startswith("[") and line.endswith("]"):
                    section = line[1:-1].strip()
                elif section == group and "=" in line:
                    name, _, value = line.partition("=")
                    yield name.strip(), value.split("[", 1)[0].strip(), dist_dir


def _dist_name_version(dist_dir: str) -> tuple[str, str]:
    name = version = ""
    for metadata in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(dist_dir, metadata), encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        break  # end of the headers
                    key, _, value = line.partition(":")
                    if key == "Name" and not name:
                        name = value.strip()
                    elif key == "Version" and not version:
                        version = value.strip()
        except OSError:
            continue
        break
    return name, version


def plugin_names() -> list[str]:
    """Names of every registered plugin (built-in and installed), sorted."""
    pm = get_plugin_manager()
    return sorted(str(pm.get_name(p)) for p in pm.get_plugins())
