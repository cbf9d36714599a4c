"""Every hook ops-manager calls, in one place (pluggy project ``ops_manager``).

Plugins are found through the ``ops_manager`` entry-point group and implement hooks with
:data:`hookimpl`. Hooks take a ``register`` callback (the style of ``llm``): a plugin calls
it once per thing it provides, so one plugin can provide several. Built-in transports are
registered through these same hooks, exactly as a third-party package would.

Two hooks select instead of register (``firstresult``): :func:`opsmgr_control_executor` and
:func:`opsmgr_intent_confirmer` each return one replacement for a built-in step, or ``None``
to leave it to the next plugin and finally to ops-manager itself. The built-in plugin
:mod:`ops_manager.transports.external_command` answers them when ``$OPS_MANAGER_CONTROL_SCRIPT``
/ ``$OPS_MANAGER_CONFIRM_SCRIPT`` are set (the upstream override variables), ahead of every
other plugin.

Hook names carry the ``opsmgr_`` prefix so they never collide with another project's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    # the contract types, from the modules that define them: not from the ``sinks`` and
    # ``transports`` packages, whose lookups load the plugin manager, which loads this module
    from ops_manager.sinks._contract import SinkFactory
    from ops_manager.transports._contract import ControlOutcome, TransportFactory
    from ops_manager.transports._control import ControlSettings, IntentConfirmer

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


@hookspec(firstresult=True)
def opsmgr_control_executor(
    env: Mapping[str, str],
) -> Callable[[ControlSettings], ControlOutcome] | None:
    """Take over the loop-level control calls ``fleet-handoff`` makes, or return ``None``.

    The returned callable gets one :class:`~ops_manager.transports.ControlSettings` per
    intent (trace id, idempotency key, transport and service settings already resolved;
    ``transport_config.service_token`` only when the registry's ``tokenEnv`` names a set
    variable) and returns an object with ``exit_code`` (0 -> executed, 2 -> ambiguous, else
    failed), ``entry`` (the control's JSON document or ``None``) and optionally ``message``
    (one line saying why it failed; handoff prints it as a ``warning:``). It must not raise
    for a failed control. ``env`` is the environment the handoff runs with. Without any plugin
    answering, handoff calls :func:`~ops_manager.engine.control.run_control`.
    """


@hookspec(firstresult=True)
def opsmgr_intent_confirmer(env: Mapping[str, str]) -> IntentConfirmer | None:
    """Take over confirming an executed intent (``loop.md`` §3.10.2), or return ``None``.

    Called by the local transport's control after the runtime command succeeded (so also
    inside the sprite service, which runs the local control). The returned
    :class:`~ops_manager.transports.IntentConfirmer` answers a
    :class:`~ops_manager.transports.ConfirmResult`; exit code 0 -> ``confirmed``, else
    ``ambiguous``. Without any plugin answering, ops-manager polls fresh runtime snapshots
    (:func:`~ops_manager.engine.control.confirm_intent`).
    """
