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
import threading

import pluggy

from ops_manager import hookspecs
from ops_manager._entry_points import dist_name_version as _dist_name_version
from ops_manager._entry_points import entry_points as _entry_points

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
        # a built-in on the reconcile path leaves its hooks unmarked (it does not import
        # pluggy); marking them now is what the decorator would have done at import
        for hook in getattr(module, "OPSMGR_HOOKIMPLS", ()):
            hookspecs.hookimpl(getattr(module, hook))
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


def plugin_names() -> list[str]:
    """Names of every registered plugin (built-in and installed), sorted."""
    pm = get_plugin_manager()
    return sorted(str(pm.get_name(p)) for p in pm.get_plugins())
