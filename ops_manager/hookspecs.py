"""Every hook ops-manager calls, in one place (pluggy project ``ops_manager``).

Plugins are found through the ``ops_manager`` entry-point group and implement hooks with
:data:`hookimpl`. Hooks take a ``register`` callback (the style of ``llm``): a plugin calls
it once per thing it provides, so one plugin can provide several. Built-in transports are
registered through these same hooks, exactly as a third-party package would.

Hook names carry the ``opsmgr_`` prefix so they never collide with another project's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ops_manager.sinks import SinkFactory
    from ops_manager.transports import TransportFactory

PROJECT = "ops_manager"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def opsmgr_register_transports(register: Callable[[str, TransportFactory], None]) -> None:
    """Register runtime transports by name.

    Call ``register(name, factory)`` for each transport the plugin provides. ``name`` is
    what operators pass to ``--transport`` (``local``, ``sprite_service``, ...); ``factory``
    is called with a :class:`~ops_manager.transports.TransportConfig` and returns an object
    implementing :class:`~ops_manager.transports.Transport`. Registering a name twice is an
    error naming both plugins.
    """


@hookspec
def opsmgr_register_sinks(register: Callable[[str, SinkFactory], None]) -> None:
    """Register alert sink types by name.

    Call ``register(sink_type, factory)`` for each sink type the plugin provides;
    ``sink_type`` is the ``type`` of a sink in the alert sink config (``webhook``, ``slack``,
    ``pagerduty_events``, ...); ``factory()`` returns an object implementing
    :class:`~ops_manager.sinks.Sink`. Sinks build requests; ops-manager core owns delivery
    (timeouts, retries, rate limits, the outbox), so every sink gets the same guarantees.
    """
