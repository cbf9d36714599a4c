"""Fakes for core and plugin tests: :class:`FakeSink` and :func:`install_sink`."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from ops_manager.sinks import AlertEvent, Sink, SinkConfigError, SinkRequest
from ops_manager.testing._events import ENV_NAME_PATTERN

# --------------------------------------------------------------------------- fakes


@attrs.frozen
class FakeSinkCall:
    """One ``build_request`` call seen by a :class:`FakeSink` (env values are not kept)."""

    sink_id: str
    config: Mapping[str, Any]
    event: AlertEvent


class FakeSink:
    """A minimal, contract-abiding sink for core tests; it records every ``build_request``.

    Config: ``urlEnv`` (required env-var name holding the target URL). The body is a compact
    JSON summary of the event. Set ``error`` to make ``build_request`` raise it.
    """

    def __init__(
        self,
        type: str = "fake",
        *,
        package: str = "ops-manager-fake-sink",
        min_interval_seconds: float = 0.0,
        error: Exception | None = None,
    ) -> None:
        self.type = type
        self.package = package
        self.min_interval_seconds = min_interval_seconds
        self.error = error
        self.calls: list[FakeSinkCall] = []

    def validate_config(self, sink_id: str, config: Mapping[str, Any]) -> list[str]:
        """``urlEnv`` must be an env-var name; ``timeoutSeconds`` 1..120 when present."""
        problems: list[str] = []
        url_env = config.get("urlEnv")
        if not isinstance(url_env, str) or not ENV_NAME_PATTERN.match(url_env):
            problems.append(f"sink '{sink_id}': urlEnv must be an env var name")
        timeout = config.get("timeoutSeconds")
        if (
            timeout is not None
            and timeout is not False
            and (
                isinstance(timeout, bool)
                or not isinstance(timeout, int | float)
                or not 1 <= timeout <= 120
            )
        ):
            problems.append(f"sink '{sink_id}': timeoutSeconds must be a number from 1 to 120")
        return problems

    def secret_envs(self, config: Mapping[str, Any]) -> list[str]:
        """The ``urlEnv`` name."""
        return [str(config["urlEnv"])]

    def destination_key(self, config: Mapping[str, Any], env: Mapping[str, str]) -> str:
        """The target URL."""
        return self._url(config, env)

    def _url(self, config: Mapping[str, Any], env: Mapping[str, str]) -> str:
        name = str(config["urlEnv"])
        url = env.get(name)
        if not url:
            raise SinkConfigError(f"fake sink url env is unset: {name}")
        return url

    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        """Record the call, then build ``POST <url>`` with a JSON summary of ``event``."""
        self.calls.append(FakeSinkCall(sink_id, copy.deepcopy(dict(config)), event))
        if self.error is not None:
            raise self.error
        body = {
            "sinkId": sink_id,
            "action": event.action,
            "loopId": event.loop_id,
            "runId": event.run_id,
            "traceId": event.trace_id,
            "category": event.category,
            "severity": event.severity,
            "reasonCodes": list(event.reason_codes),
            "dedupKey": event.dedup_key,
        }
        return SinkRequest(
            url=self._url(config, env),
            body=json.dumps(body, separators=(",", ":")).encode("utf-8"),
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": event.idempotency_key,
            },
        )


@contextlib.contextmanager
def install_sink(sink: Sink, *, name: str | None = None) -> Iterator[Sink]:
    """Register ``sink`` in the process plugin manager for the ``with`` block.

    Core code then finds it through :func:`ops_manager.sinks.get_sink`, exactly like an
    installed plugin. It is unregistered on exit, even on error.
    """
    from ops_manager.hookspecs import hookimpl
    from ops_manager.plugins import get_plugin_manager

    class _Plugin:
        @hookimpl
        def opsmgr_register_sinks(
            self, register: Callable[[str, Callable[[], Sink]], None]
        ) -> None:
            register(sink.type, lambda: sink)

    pm = get_plugin_manager()
    plugin = _Plugin()
    pm.register(plugin, name=name or f"testing-sink-{sink.type}-{id(plugin)}")
    try:
        yield sink
    finally:
        pm.unregister(plugin)
