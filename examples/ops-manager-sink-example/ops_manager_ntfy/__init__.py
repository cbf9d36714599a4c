"""Example third-party ops-manager sink: push notifications through ntfy (sink type ``ntfy``).

This package is the worked example of ``docs/writing-a-sink-plugin.md``. It publishes one
plain-text message per alert to an ntfy topic URL (``https://ntfy.sh/<topic>`` or a
self-hosted server), using ntfy's ``Title``, ``Priority`` and ``Tags`` headers.

Config entry::

    "ntfy-phone": {
      "enabled": true, "type": "ntfy",
      "topicUrlEnv": "OPS_MANAGER_NTFY_TOPIC_URL",    # required: env var holding the topic URL
      "tokenEnv": "OPS_MANAGER_NTFY_TOKEN",           # optional: env var holding an access token
      "timeoutSeconds": 5
    }

The topic URL is a secret (anyone who knows a public topic can read it), so it lives in an
env var like every other secret; the config only names the variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ops_manager.hookspecs import hookimpl
from ops_manager.sinks import AlertEvent, Sink, SinkConfigError, SinkRequest

__version__ = "0.1.0"

SINK_TYPE = "ntfy"
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
#: our severity -> ntfy priority (1 min .. 5 max)
PRIORITY = {"info": "3", "warning": "4", "critical": "5"}
#: our severity -> ntfy tag (ntfy renders known tags as emoji)
TAG = {"info": "information_source", "warning": "warning", "critical": "rotating_light"}


def _ascii(text: str) -> str:
    """HTTP header values must be plain ASCII here: anything else becomes ``?``."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _env_value(env: Mapping[str, str], name: str, sink_id: str | None) -> str:
    value = env.get(name)
    if not value:
        where = f"sink '{sink_id}': " if sink_id else ""
        raise SinkConfigError(f"{where}ntfy env is unset: {name}")
    return value


class NtfySink:
    """Publishes alerts to an ntfy topic."""

    type = SINK_TYPE
    package = "ops-manager-ntfy"
    #: be gentle with the public ntfy.sh server: at most one message per second per topic
    min_interval_seconds = 1.0

    def validate_config(self, sink_id: str, config: Mapping[str, Any]) -> list[str]:
        """Problems with the config entry; each names the sink id and the field."""
        problems: list[str] = []
        for field, required in (("topicUrlEnv", True), ("tokenEnv", False)):
            value = config.get(field)
            if value is None and not required:
                continue
            if not isinstance(value, str) or not ENV_NAME.match(value):
                problems.append(
                    f"sink '{sink_id}': {field} must be the name of an env var matching "
                    f"{ENV_NAME.pattern}"
                )
        timeout = config.get("timeoutSeconds")
        if timeout is not None and timeout is not False:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float):
                problems.append(f"sink '{sink_id}': timeoutSeconds must be a number")
            elif not 1 <= timeout <= 120:
                problems.append(f"sink '{sink_id}': timeoutSeconds must be from 1 to 120")
        return problems

    def secret_envs(self, config: Mapping[str, Any]) -> list[str]:
        """The topic URL variable, and the token variable when one is configured."""
        names = [str(config["topicUrlEnv"])]
        if config.get("tokenEnv"):
            names.append(str(config["tokenEnv"]))
        return names

    def destination_key(self, config: Mapping[str, Any], env: Mapping[str, str]) -> str:
        """ntfy rate-limits per topic: the topic URL."""
        return _env_value(env, str(config["topicUrlEnv"]), None)

    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        """A plain-text publish for ``event``: pure, deterministic, no I/O."""
        url = _env_value(env, str(config["topicUrlEnv"]), sink_id)
        resolved = event.action == "resolve"
        title = f"{event.category} on {event.loop_id}"
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            "Title": _ascii(("[resolved] " if resolved else "") + title),
            "Priority": "3" if resolved else PRIORITY.get(event.severity, "3"),
            "Tags": "white_check_mark,ops-manager"
            if resolved
            else f"{TAG.get(event.severity, 'warning')},ops-manager",
        }
        if config.get("tokenEnv"):
            token = _env_value(env, str(config["tokenEnv"]), sink_id)
            headers["Authorization"] = f"Bearer {token}"
        lines = [
            ("resolved: " if resolved else "")
            + f"{event.category} ({event.severity}) on loop {event.loop_id}",
        ]
        if event.run_id:
            lines.append(f"run: {event.run_id}")
        lines.append(f"trace: {event.trace_id}")
        if event.reason_codes:
            lines.append("reasons: " + ", ".join(event.reason_codes))
        if event.summary:
            lines.append(event.summary)
        return SinkRequest(url=url, body="\n".join(lines).encode("utf-8"), headers=headers)


@hookimpl
def opsmgr_register_sinks(register: Callable[[str, Callable[[], Sink]], None]) -> None:
    """Tell ops-manager about the ``ntfy`` sink type."""
    register(SINK_TYPE, NtfySink)
