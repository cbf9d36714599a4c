"""ops-manager sink plugin: PagerDuty Events API v2 (sink type ``pagerduty_events``).

``trigger`` events become ``{routing_key, event_action: "trigger", dedup_key, payload}``
with ``payload.summary|severity|source|timestamp|component|group|class|custom_details``;
``resolve`` events are ``{routing_key, event_action: "resolve", dedup_key}`` with the same
``dedup_key`` (stable for one loop/category episode, DECISIONS Q-8). The endpoint defaults
to ``https://events.pagerduty.com/v2/enqueue`` and can be set per sink (``endpoint``), so
tests point it at loopback and EU accounts at ``events.eu.pagerduty.com``.

PagerDuty accepts about 120 events per minute per routing key: ``min_interval_seconds =
0.5`` and the destination core paces on is the routing key (a secret: never logged).
The sink only builds requests; core sends them. Registered through the ``ops_manager``
entry-point group.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ops_manager.hookspecs import hookimpl
from ops_manager.sinks import (
    AlertEvent,
    Sink,
    SinkRequest,
    check_env_ref,
    check_timeout,
    require_secret,
    scrub_local_paths,
)

__all__ = ["PagerDutySink", "opsmgr_register_sinks", "scrub_local_paths"]

__version__ = "0.1.0"

SINK_TYPE = "pagerduty_events"
DEFAULT_ENDPOINT = "https://events.pagerduty.com/v2/enqueue"
#: field -> default, applied when the config leaves it out (an explicit "" is sent as "")
PAYLOAD_DEFAULTS = {
    "source": "superloop-ops-manager",
    "component": "ops-manager",
    "group": "loop-run",
    "class": "escalation",
}
#: our alert severity -> PagerDuty's (``error`` is PagerDuty-only and never produced)
SEVERITY_MAP = {"info": "info", "warning": "warning", "critical": "critical"}
SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255


def wire_dedup_key(key: str) -> str:
    """``key`` if it fits PagerDuty's 255 characters, else a stable shortened form.

    The shortened form keeps a readable prefix and appends a SHA-256 digest of the whole
    key, so it stays unique and identical across retries, replays and the resolve.
    """
    if len(key) <= DEDUP_KEY_LIMIT:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: DEDUP_KEY_LIMIT - 33]}~{digest}"


def summary_line(event: AlertEvent) -> str:
    """``ops-manager CAT (SEV) loop=LOOP run=RUN reasons=a,b`` (<= 1024 characters).

    Upstream's summary plus the run id and reason codes. ``event.summary`` is not used: it
    restates the same fields.
    """
    line = f"ops-manager {event.category} ({event.severity}) loop={event.loop_id}"
    if event.run_id:
        line += f" run={event.run_id}"
    if event.reason_codes:
        line += " reasons=" + ",".join(event.reason_codes)
    if len(line) > SUMMARY_LIMIT:
        line = line[: SUMMARY_LIMIT - 1] + "…"
    return line


def _field(config: Mapping[str, Any], name: str) -> str:
    value = config.get(name)
    return value if isinstance(value, str) else PAYLOAD_DEFAULTS[name]


class PagerDutySink:
    """The ``pagerduty_events`` sink: PagerDuty Events API v2."""

    type = SINK_TYPE
    package = "ops-manager-pagerduty"
    #: PagerDuty: about 120 events per minute per routing key
    min_interval_seconds = 0.5

    def validate_config(self, sink_id: str, config: Mapping[str, Any]) -> list[str]:
        """``routingKeyEnv`` is an env var name; ``source``, ``component``, ``group``,
        ``class`` are strings when set; ``endpoint`` is an http(s) URL when set;
        ``timeoutSeconds`` is 1..120."""
        problems: list[str] = []
        check_env_ref(problems, sink_id, config, "routingKeyEnv")
        for name in PAYLOAD_DEFAULTS:
            value = config.get(name)
            if value is not None and not isinstance(value, str):
                problems.append(f"sink '{sink_id}': {name} must be a string (got {value!r})")
        endpoint = config.get("endpoint")
        if endpoint is not None:
            parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(
                    f"sink '{sink_id}': endpoint must be an http(s) URL (got {endpoint!r})"
                )
        check_timeout(problems, sink_id, config)
        return problems

    def secret_envs(self, config: Mapping[str, Any]) -> list[str]:
        """``routingKeyEnv``: the integration key travels in the body."""
        return [str(config["routingKeyEnv"])]

    def destination_key(self, config: Mapping[str, Any], env: Mapping[str, str]) -> str:
        """The routing key (PagerDuty rate-limits per key; a secret: never logged)."""
        return require_secret(env, str(config["routingKeyEnv"]), "pagerduty routing key")

    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        """The Events v2 POST for ``event``. Pure; ``SinkConfigError`` on a missing env."""
        body: dict[str, Any] = {
            "routing_key": require_secret(
                env, str(config["routingKeyEnv"]), "pagerduty routing key", sink_id
            ),
            "event_action": "resolve" if event.action == "resolve" else "trigger",
            "dedup_key": wire_dedup_key(event.dedup_key),
        }
        if event.action != "resolve":
            body["payload"] = {
                "summary": summary_line(event),
                "severity": SEVERITY_MAP.get(event.severity, "warning"),
                "source": _field(config, "source"),
                "timestamp": event.escalation_timestamp or event.emitted_at,
                "component": _field(config, "component"),
                "group": _field(config, "group"),
                "class": _field(config, "class"),
                "custom_details": {
                    "loopId": event.loop_id,
                    "runId": event.run_id,
                    "traceId": event.trace_id,
                    "category": event.category,
                    "reasonCodes": list(event.reason_codes),
                    "escalation": scrub_local_paths(event.escalation),
                },
            }
        endpoint = config.get("endpoint")
        url = endpoint if isinstance(endpoint, str) and endpoint else DEFAULT_ENDPOINT
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return SinkRequest(url=url, body=data, headers={"Content-Type": "application/json"})


@hookimpl
def opsmgr_register_sinks(register: Callable[[str, Callable[[], Sink]], None]) -> None:
    """Provide the ``pagerduty_events`` sink type."""
    register(SINK_TYPE, PagerDutySink)
