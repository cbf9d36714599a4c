"""The plugin manager: built-ins plus everything in the ``ops_manager`` entry-point group.

Entry points are discovered lazily: scanning installed distributions costs ~20 ms, which a
``reconcile`` over a built-in transport should not pay on every call (bench/reconcile.py).
"""

from __future__ import annotations

import functools
import importlib
import threading

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
                pm.load_setuptools_entrypoints(hookspecs.PROJECT)
                _entry_points_loaded = True
    return pm


def plugin_names() -> list[str]:
    """Names of every registered plugin (built-in and installed), sorted."""
    pm = get_plugin_manager()
    return sorted(str(pm.get_name(p)) for p in pm.get_plugins())
