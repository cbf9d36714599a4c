"""ops-manager sink plugin: generic JSON webhook (sink type ``webhook``).

Builds ``POST <$urlEnv>`` with the upstream webhook body (``alerts.md`` §5.1) plus, at the
end, ``event.action``, ``event.dedupKey``, ``runId`` and ``reasonCodes``. Headers:
``Content-Type: application/json``, ``Authorization: Bearer <$authTokenEnv>`` when
declared, then the configured ``headers`` (de-duplicated case-insensitively, the config
winning: DECISIONS Q-7), then ``Idempotency-Key: <event.idempotency_key>``.

The sink only builds requests; ops-manager core sends them (timeouts, retries, outbox).
It is registered through the ``ops_manager`` entry-point group (see ``pyproject.toml``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

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

__all__ = ["WebhookSink", "opsmgr_register_sinks", "scrub_local_paths"]

__version__ = "0.1.0"

SINK_TYPE = "webhook"
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: headers the HTTP layer or ops-manager itself controls; a config may not set them
RESERVED_HEADERS = frozenset({"content-length", "host", "transfer-encoding", "idempotency-key"})
CHANNEL = "ops_manager_alert_dispatch"


def repo_label(event: AlertEvent) -> str | None:
    """The repo *name* for ``source.repoPath``: never an absolute local path.

    Core puts the repo's directory name in ``event.repo_name``; a value that still looks
    like a path is reduced to its last component anyway.
    """
    value = event.repo_name
    if not isinstance(value, str) or not value:
        return None
    scrubbed = scrub_local_paths(value)
    return scrubbed if isinstance(scrubbed, str) else None


def compact_json(value: Any) -> bytes:
    """Compact JSON bytes (jq ``-c`` style, raw UTF-8, no trailing newline)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class WebhookSink:
    """The ``webhook`` sink: a JSON POST to a URL held in an env var."""

    type = SINK_TYPE
    package = "ops-manager-webhook"
    #: a generic receiver has no published rate limit: no pacing beyond core's defaults
    min_interval_seconds = 0.0

    def validate_config(self, sink_id: str, config: Mapping[str, Any]) -> list[str]:
        """``urlEnv`` (required) and ``authTokenEnv`` (optional) are env var names;
        ``headers`` maps header names to strings; ``timeoutSeconds`` is 1..120."""
        problems: list[str] = []
        check_env_ref(problems, sink_id, config, "urlEnv")
        if config.get("authTokenEnv") is not None:
            check_env_ref(problems, sink_id, config, "authTokenEnv")
        headers = config.get("headers")
        if headers is not None:
            if not isinstance(headers, Mapping):
                problems.append(f"sink '{sink_id}': headers must be an object of string values")
            else:
                for name, value in headers.items():
                    if not isinstance(name, str) or not HEADER_NAME.match(name):
                        problems.append(f"sink '{sink_id}': headers: invalid header name {name!r}")
                    elif name.lower() in RESERVED_HEADERS:
                        problems.append(
                            f"sink '{sink_id}': headers.{name} is set by ops-manager, "
                            "not the config"
                        )
                    elif not isinstance(value, str):
                        problems.append(f"sink '{sink_id}': headers.{name} must be a string")
                    elif any(c in value for c in "\r\n\0"):
                        problems.append(
                            f"sink '{sink_id}': headers.{name} must not contain line breaks"
                        )
        check_timeout(problems, sink_id, config)
        return problems

    def secret_envs(self, config: Mapping[str, Any]) -> list[str]:
        """``urlEnv``, plus ``authTokenEnv`` when declared (a declared token is required)."""
        names = [str(config["urlEnv"])]
        token = config.get("authTokenEnv")
        if token:
            names.append(str(token))
        return names

    def destination_key(self, config: Mapping[str, Any], env: Mapping[str, str]) -> str:
        """The target URL (a secret: never logged)."""
        return require_secret(env, str(config["urlEnv"]), "webhook url")

    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        """The webhook POST for ``event``. Pure; raises ``SinkConfigError`` on a missing env."""
        url = require_secret(env, str(config["urlEnv"]), "webhook url", sink_id)
        # lowercase name -> (name as sent, value); later entries win, first position is kept
        merged: dict[str, tuple[str, str]] = {"content-type": ("Content-Type", "application/json")}
        token_env = config.get("authTokenEnv")
        if token_env:
            token = require_secret(env, str(token_env), "webhook auth token", sink_id)
            merged["authorization"] = ("Authorization", f"Bearer {token}")
        for name, value in (config.get("headers") or {}).items():
            merged[str(name).lower()] = (str(name), str(value))
        merged["idempotency-key"] = ("Idempotency-Key", event.idempotency_key)
        body: dict[str, Any] = {
            "schemaVersion": "v1",
            "emittedAt": event.emitted_at,
            "source": {
                "repoPath": repo_label(event),
                "loopId": event.loop_id,
                "channel": CHANNEL,
                "traceId": event.trace_id or None,
            },
            "event": {
                "category": event.category,
                "severity": event.severity,
                "action": event.action,
                "dedupKey": event.dedup_key,
            },
            "sink": {"id": sink_id, "type": SINK_TYPE},
            "escalation": scrub_local_paths(event.escalation),
            "runId": event.run_id,
            "reasonCodes": list(event.reason_codes),
        }
        return SinkRequest(url=url, body=compact_json(body), headers=dict(merged.values()))


@hookimpl
def opsmgr_register_sinks(register: Callable[[str, Callable[[], Sink]], None]) -> None:
    """Provide the ``webhook`` sink type."""
    register(SINK_TYPE, WebhookSink)
