"""Alert sinks: the interface a sink plugin implements.

A sink is pure: given its config, one :class:`AlertEvent` and the environment, it builds the
HTTP request to send (:class:`SinkRequest`). It never sends anything. ops-manager core sends,
applies timeouts, retries transient failures with backoff (honouring ``Retry-After``), keeps
what still fails in a durable outbox, and paces each sink at its provider's rate. Because a
sink only builds requests, ``ops_manager.testing`` can check any sink — ours or a third
party's — with the same contract suite, no network needed.

Sink plugins are separate distributions registering through
:func:`ops_manager.hookspecs.opsmgr_register_sinks` (entry-point group ``ops_manager``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ops_manager.errors import OpsError

# the contract types live in ``_contract`` (``hookspecs`` names them without importing this
# package, whose lookups load the plugin manager); they are public here
from ops_manager.sinks._contract import SEVERITIES as SEVERITIES
from ops_manager.sinks._contract import AlertEvent as AlertEvent
from ops_manager.sinks._contract import Sink as Sink
from ops_manager.sinks._contract import SinkConfigError as SinkConfigError
from ops_manager.sinks._contract import SinkFactory as SinkFactory
from ops_manager.sinks._contract import SinkRequest as SinkRequest


def available_sinks() -> dict[str, Sink]:
    """Every installed sink type, by ``type`` (sink plugins are separate distributions)."""
    from ops_manager.plugins import get_plugin_manager

    found: dict[str, Sink] = {}

    def register(sink_type: str, factory: SinkFactory) -> None:
        if sink_type in found:
            raise OpsError(f"sink type '{sink_type}' is registered twice")
        found[sink_type] = factory()

    get_plugin_manager().hook.opsmgr_register_sinks(register=register)
    return found


#: which distribution to install for each sink type we know of
KNOWN_SINK_PACKAGES = {
    "webhook": "ops-manager-webhook",
    "slack": "ops-manager-slack",
    "pagerduty_events": "ops-manager-pagerduty",
}


def get_sink(sink_type: str) -> Sink:
    """The sink for ``sink_type``, or a config error naming the package to install."""
    sink = available_sinks().get(sink_type)
    if sink is None:
        package = KNOWN_SINK_PACKAGES.get(sink_type)
        hint = (
            f"install the '{package}' package"
            if package
            else "install a plugin that provides it (entry-point group 'ops_manager')"
        )
        raise SinkConfigError(f"sink type '{sink_type}' is not installed: {hint}")
    return sink


# --- the sink authoring kit: helpers every sink needs, so plugins do not copy them ---------

#: an env var NAME (configs reference secrets by name, never by value)
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")

_ABS_PATH = re.compile(r"(?<![\w.:/\\~-])(?:~/|/|[A-Za-z]:[\\/])[^\s\"'<>|,;]*")


def _last_component(match: re.Match[str]) -> str:
    path = match.group(0)
    tail = re.split(r"[\\/]", path.rstrip("/\\"))[-1]
    return tail if tail and tail != "~" else path


def scrub_local_paths(value: Any) -> Any:
    """``value`` with every absolute local path reduced to its last component.

    Core already removes path fields from ``event.escalation``; a sink that embeds free text
    applies this as its own guard, so no path of the manager's machine leaves it
    (DECISIONS Q-19). Pure; recurses into dicts, lists and tuples.
    """
    if isinstance(value, str):
        return _ABS_PATH.sub(_last_component, value)
    if isinstance(value, Mapping):
        return {scrub_local_paths(k): scrub_local_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_local_paths(v) for v in value]
    return value


def check_env_ref(problems: list[str], sink_id: str, config: Mapping[str, Any], field: str) -> None:
    """Append a problem unless ``config[field]`` names an env var (core's exact wording)."""
    value = config.get(field)
    if not isinstance(value, str) or not ENV_NAME.match(value):
        problems.append(f"sink '{sink_id}': {field} must name an env var ({ENV_NAME.pattern})")


def check_timeout(problems: list[str], sink_id: str, config: Mapping[str, Any]) -> None:
    """Append a problem unless ``timeoutSeconds`` is absent or a number from 1 to 120."""
    value = config.get("timeoutSeconds")
    if value is None or value is False:  # absent/null/false: the default (5 s)
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 120:
        problems.append(f"sink '{sink_id}': timeoutSeconds must be a number from 1 to 120")


def require_secret(env: Mapping[str, str], name: str, what: str, sink_id: str | None = None) -> str:
    """The value of env var ``name``, or :class:`SinkConfigError` ``<what> env is unset: <name>``.

    The message names the variable, never its value.
    """
    value = env.get(name)
    if not value:
        where = f"sink '{sink_id}': " if sink_id else ""
        raise SinkConfigError(f"{where}{what} env is unset: {name}")
    return value
