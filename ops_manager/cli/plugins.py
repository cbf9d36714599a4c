"""``ops-manager plugins``: every registered plugin, where it comes from, what it provides."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ops_manager._jsonfmt import dumps
from ops_manager.cli._format import add_format_flag, output_format
from ops_manager.cli._parser import CommandParser

HELP = """List every plugin registered with ops-manager: the built-in ones and those installed
through the 'ops_manager' entry-point group, with their distribution and version, the hooks
they implement and the transports / sink types they register."""

#: register-style hooks → the key under "provides"
_REGISTER_HOOKS = {
    "opsmgr_register_transports": "transports",
    "opsmgr_register_sinks": "sinks",
}


def configure(p: CommandParser) -> None:
    """Declare the flags of ``plugins``."""
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--pretty", action="store_true", help="pretty-print the JSON")
    add_format_flag(p, default="table")


def _provides(pm: Any, plugin: object) -> dict[str, list[str]]:
    """What ``plugin`` registers, by calling only its own register-style hook impls."""
    out: dict[str, list[str]] = {}
    for hook_name, key in _REGISTER_HOOKS.items():
        caller = getattr(pm.hook, hook_name, None)
        if caller is None:
            continue
        names: list[str] = []

        def register(name: str, factory: Callable[..., Any], _names: list[str] = names) -> None:
            _names.append(str(name))

        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                impl.function(register=register)
        if names:
            out[key] = names
    return out


def plugin_inventory() -> list[dict[str, Any]]:
    """Every registered plugin: ``name, distribution, version, builtin, hooks, provides``.

    Built-in plugins report distribution ``built-in`` and the ops-manager version.
    Sorted by name.
    """
    from importlib.metadata import PackageNotFoundError, version

    from ops_manager.plugins import BUILTIN_PLUGINS, get_plugin_manager, plugin_distribution

    pm = get_plugin_manager()
    try:
        own_version = version("ops-manager")
    except PackageNotFoundError:
        own_version = None
    out: list[dict[str, Any]] = []
    for plugin in pm.get_plugins():
        name = str(pm.get_name(plugin))
        dist = plugin_distribution(plugin)
        builtin = name in BUILTIN_PLUGINS
        distribution: str | None
        dist_version: str | None
        if dist is not None:
            distribution, dist_version = dist
        elif builtin:
            distribution, dist_version = "built-in", own_version
        else:
            distribution, dist_version = None, None  # registered in-process (tests, embedding)
        hooks = sorted(caller.name for caller in (pm.get_hookcallers(plugin) or []))
        out.append(
            {
                "name": name,
                "distribution": distribution,
                "version": dist_version,
                "builtin": builtin,
                "hooks": hooks,
                "provides": _provides(pm, plugin),
            }
        )
    return sorted(out, key=lambda p: p["name"])


def run(args: argparse.Namespace) -> int:
    """Print the inventory."""
    # plugins has always printed a table by default; --json is kept as --format json
    fmt = "json" if args.json and args.format is None else output_format(args, default="table")
    plugins = plugin_inventory()
    if fmt == "json":
        sys.stdout.write(dumps({"plugins": plugins}, bool(args.pretty)) + "\n")
    else:
        from ops_manager.cli._table import plugins_table

        sys.stdout.write(plugins_table(plugins))
    return 0
