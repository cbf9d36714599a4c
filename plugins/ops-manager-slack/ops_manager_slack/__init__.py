"""ops-manager sink plugin: Slack incoming webhook (sink type ``slack``).

Builds ``POST <$webhookUrlEnv>`` with ``{text, channel?, username?, icon_emoji?, blocks}``
(``alerts.md`` §5.1) using **real newlines** in the mrkdwn section (DECISIONS Q-6). The
message carries loop id, run id, trace id, category, severity and reason codes; a
``resolve`` event renders as a resolved message (``[resolved]`` prefix).

Slack accepts about one message per second per webhook, so ``min_interval_seconds = 1.0``
and the destination core paces on is the webhook URL. The sink only builds requests; core
sends them. Registered through the ``ops_manager`` entry-point group.
"""

from __future__ import annotations

import json
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
)

__all__ = ["SlackSink", "opsmgr_register_sinks"]

__version__ = "0.1.0"

SINK_TYPE = "slack"
#: Block Kit limit for a section's text
SECTION_TEXT_LIMIT = 3000
OPTIONAL_STRINGS = (("channel", "channel"), ("username", "username"), ("iconEmoji", "icon_emoji"))


def mrkdwn_escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    """``text`` as an inline code span (escaped; backticks cannot occur inside)."""
    return "`" + mrkdwn_escape(text.replace("`", "'")) + "`"


def headline(event: AlertEvent) -> str:
    """The one-line ``text`` (also the notification fallback), mrkdwn-escaped.

    ``[ops-manager][SEV] CAT loop=LOOP run=RUN trace=TRACE``, ``run=`` only when known,
    prefixed by ``[resolved] `` for a resolve event.
    """
    parts = [f"[ops-manager][{event.severity}] {event.category}", f"loop={event.loop_id}"]
    if event.run_id:
        parts.append(f"run={event.run_id}")
    parts.append(f"trace={event.trace_id}")
    line = " ".join(parts)
    if event.action == "resolve":
        line = "[resolved] " + line
    return mrkdwn_escape(line)


def section_text(event: AlertEvent) -> str:
    """The mrkdwn section: a title, then one ``Label: `value``` line per identifier.

    ``event.summary`` is not rendered: core's summary restates these same fields.
    """
    title = "*Ops Manager Alert resolved*" if event.action == "resolve" else "*Ops Manager Alert*"
    lines = [
        title,
        f"Category: {_code(event.category)}",
        f"Severity: {_code(event.severity)}",
        f"Loop: {_code(event.loop_id)}",
    ]
    if event.run_id:
        lines.append(f"Run: {_code(event.run_id)}")
    lines.append(f"Trace: {_code(event.trace_id)}")
    if event.reason_codes:
        lines.append("Reason codes: " + ", ".join(_code(c) for c in event.reason_codes))
    text = "\n".join(lines)
    if len(text) > SECTION_TEXT_LIMIT:
        text = text[: SECTION_TEXT_LIMIT - 1] + "…"
    return text


class SlackSink:
    """The ``slack`` sink: Block Kit message to an incoming webhook."""

    type = SINK_TYPE
    package = "ops-manager-slack"
    #: Slack: about 1 message per second per webhook (429 + Retry-After above that)
    min_interval_seconds = 1.0

    def validate_config(self, sink_id: str, config: Mapping[str, Any]) -> list[str]:
        """``webhookUrlEnv`` is an env var name; ``channel``, ``username``, ``iconEmoji``
        are strings when set; ``timeoutSeconds`` is 1..120."""
        problems: list[str] = []
        check_env_ref(problems, sink_id, config, "webhookUrlEnv")
        for field, _ in OPTIONAL_STRINGS:
            value = config.get(field)
            if value is not None and not isinstance(value, str):
                problems.append(f"sink '{sink_id}': {field} must be a string (got {value!r})")
        check_timeout(problems, sink_id, config)
        return problems

    def secret_envs(self, config: Mapping[str, Any]) -> list[str]:
        """``webhookUrlEnv``: the incoming-webhook URL is the secret."""
        return [str(config["webhookUrlEnv"])]

    def destination_key(self, config: Mapping[str, Any], env: Mapping[str, str]) -> str:
        """The webhook URL (Slack rate-limits per webhook; a secret: never logged)."""
        return require_secret(env, str(config["webhookUrlEnv"]), "slack webhook")

    def build_request(
        self, sink_id: str, config: Mapping[str, Any], event: AlertEvent, env: Mapping[str, str]
    ) -> SinkRequest:
        """The incoming-webhook POST for ``event``. Pure; ``SinkConfigError`` on missing env."""
        url = require_secret(env, str(config["webhookUrlEnv"]), "slack webhook", sink_id)
        body: dict[str, Any] = {"text": headline(event)}
        for field, wire in OPTIONAL_STRINGS:
            value = config.get(field)
            if isinstance(value, str) and value:
                body[wire] = value
        stamp = event.escalation_timestamp
        body["blocks"] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": section_text(event)}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"Escalation timestamp: {_code(stamp)}"
                        if stamp
                        else "Escalation timestamp unavailable",
                    },
                    {"type": "mrkdwn", "text": f"Trace: {_code(event.trace_id)}"},
                ],
            },
        ]
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return SinkRequest(url=url, body=data, headers={"Content-Type": "application/json"})


@hookimpl
def opsmgr_register_sinks(register: Callable[[str, Callable[[], Sink]], None]) -> None:
    """Provide the ``slack`` sink type."""
    register(SINK_TYPE, SlackSink)
