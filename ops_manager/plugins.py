"""The plugin manager: built-ins plus everything in the ``ops_manager`` entry-point group."""

from __future__ import annotations

import functools

import pluggy

from ops_manager import hookspecs

#: modules shipped inside ops_manager that register through the public hooks
BUILTIN_PLUGINS = ("ops_manager.transports.local",)


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (built-ins + installed entry points), created once."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    import importlib

    for name in BUILTIN_PLUGINS:
        module = importlib.import_module(name)
        pm.register(module, name=name)
    pm.load_setuptools_entrypoints(hookspecs.PROJECT)
    return pm


def plugin_names() -> list[str]:
    """Names of every registered plugin (built-in and installed), sorted."""
    pm = get_plugin_manager()
    return sorted(str(pm.get_name(p)) for p in pm.get_plugins())
