"""The control value types of :mod:`ops_manager.transports` (see its ``__getattr__``).

They live here so that importing the transports package (every reconcile pass does) does not
build them; they are public as ``ops_manager.transports.<Name>``, and say so in
``__module__``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import attrs

from ops_manager.store import LoopPaths
from ops_manager.transports._config import TransportConfig


@attrs.frozen
class ControlSettings:
    """One control invocation, validated (the CLI resolves flags and env).

    Defined here, beside :class:`ControlRequest`, because it is part of the plugin contract
    (``opsmgr_fleet_control`` gets one); :mod:`ops_manager.engine.control` re-exports it.
    """

    repo: Path
    loop_id: str
    intent: str
    transport: str = "local"
    transport_config: TransportConfig = attrs.field(factory=TransportConfig)
    #: ``None`` -> ``<intent>-<epoch seconds>-<pid>``
    idempotency_key: str | None = None
    #: ``None`` -> ``$OPS_MANAGER_TRACE_ID``, else a uuid4
    trace_id: str | None = None
    #: ``None`` -> ``$USER``, else ``unknown``
    by: str | None = None
    note: str | None = None
    timeout_seconds: int = 30
    interval_seconds: int = 2
    confirm: bool = True


@attrs.frozen
class ControlRequest:
    """An operator's intent, as a transport receives it (``loop.md`` §3.10)."""

    paths: LoopPaths
    intent: str
    by: str
    note: str | None
    trace_id: str
    idempotency_key: str
    confirm: bool = True
    timeout_seconds: int = 30
    interval_seconds: int = 2
    #: how the local transport confirms once the command ran: the engine passes its choice
    #: (a plugin's ``opsmgr_intent_confirmer``, else snapshot polling), so the transport
    #: never imports the engine or the plugin manager
    confirmer: IntentConfirmer | None = None


@attrs.frozen
class ControlExecution:
    """What executing (and, unless skipped, confirming) an intent produced.

    The engine turns this into the ``intents.jsonl`` entry, the ``control.jsonl`` row and
    the ``control-invocations.jsonl`` audit record; the transport only reports facts.
    """

    #: confirmed | executed_unconfirmed | ambiguous | failed_command (| executed, service echo)
    status: str
    #: the command line (local) or ``POST <url>/ops/control`` (service)
    command: str
    exit_code: int
    confirm_exit_code: int
    confirmed: bool
    #: succeeded | failed_command
    execution_status: str
    #: confirmed | ambiguous | skipped | not_attempted | attempted_unknown
    confirmation_status: str
    confirmation_attempted: bool
    command_output: str | None = None
    #: the confirm-intent outcome object, when confirmation ran
    confirm: dict[str, Any] | None = None
    #: the service answered from its idempotency store
    replayed: bool = False


@attrs.frozen
class ConfirmResult:
    """What confirming an intent produced (``loop.md`` §3.9 / §3.10.2).

    ``exit_code`` 0 = confirmed, anything else = not confirmed (the intent is ``ambiguous``
    with ``confirmExitCode`` = this code). ``outcome`` is the confirmation object (``None``
    when there is none, e.g. a confirm command printed no JSON). ``diagnostic`` says why a
    confirmation could not even run; it is appended to the recorded ``commandOutput``.
    """

    exit_code: int
    outcome: dict[str, Any] | None = None
    diagnostic: str | None = None


class IntentConfirmer(Protocol):
    """Confirms an executed intent from runtime evidence (``opsmgr_intent_confirmer``)."""

    def __call__(
        self, paths: LoopPaths, intent: str, *, timeout_seconds: int, interval_seconds: int
    ) -> ConfirmResult:
        """Wait up to ``timeout_seconds`` for ``intent``'s effect on ``paths``' runtime."""
        ...


for _cls in (ControlSettings, ControlRequest, ControlExecution, ConfirmResult, IntentConfirmer):
    _cls.__module__ = "ops_manager.transports"
