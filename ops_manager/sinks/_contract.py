"""The sink contract: what a sink plugin implements and the values it gets and returns.

Public as ``ops_manager.sinks.<Name>`` (the package re-exports them, and they say so in
``__module__``). They live apart from the package's plugin lookups
(:func:`~ops_manager.sinks.available_sinks`, :func:`~ops_manager.sinks.get_sink`) so that
:mod:`ops_manager.hookspecs` can name :data:`SinkFactory` in its hook signature without
depending on the module that loads the plugin manager: that was the ``hookspecs -> sinks ->
plugins -> hookspecs`` import circle. :class:`AlertEvent` is defined in the model layer
(:mod:`ops_manager.model.alert_event`; a reducer builds it) and re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from ops_manager.errors import OpsError
from ops_manager.model.alert_event import AlertEvent as AlertEvent

SEVERITIES = ("info", "warning", "critical")


@attrs.frozen
class SinkRequest:
    """The HTTP request a sink wants sent (always a POST of ``body``)."""

    url: str
    body: bytes
    #: header name -> value; core adds ``Idempotency-Key`` unless the sink set one
    headers: Mapping[str, str] = attrs.field(factory=dict)


class SinkConfigError(OpsError):
    """A sink's config entry is invalid; the message names the sink and the field."""


class Sink(Protocol):
    """What a sink plugin's factory returns."""

    #: the config ``type`` this sink handles
    type: str
    #: the installable distribution that provides it (named in "plugin not installed" errors)
    package: str
    #: provider pacing: the minimum seconds between two requests to one destination
    min_interval_seconds: float

    def validate_config(self, sink_id: str, config: Mapping[str, Any]) -> list[str]:
        """Problems with this sink's config entry (empty list when valid)."""
        ...

    def secret_envs(self, config: Mapping[str, Any]) -> list[str]:
        """Names of the environment variables that must be set for the sink to send."""
        ...

    def destination_key(self, config: Mapping[str, Any], env: Mapping[str, str]) -> str:
        """What the provider rate-limits on (a webhook URL, a routing key); never logged."""
        ...

    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        """The request for ``event``. Pure: no I/O, no clock (``event.emitted_at`` is given)."""
        ...


SinkFactory = Callable[[], Sink]

#: public as ``ops_manager.sinks.<Name>`` (what docs and reprs of the class show)
for _cls in (SinkRequest, SinkConfigError, Sink):
    _cls.__module__ = "ops_manager.sinks"
