"""Alert vocabulary: severities, sink type contracts, error messages, reason codes. PURE."""

from __future__ import annotations

import re
from typing import Any, TypeGuard

import attrs

# --- vocabulary ---------------------------------------------------------------------------

SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
SEVERITY_RANK: dict[str, int] = {"info": 1, "warning": 2, "critical": 3}
#: the sink types the contract defines (plugins may add more)
CONTRACT_SINK_TYPES: tuple[str, ...] = ("webhook", "slack", "pagerduty_events")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
DEFAULT_TIMEOUT_SECONDS = 5
PAGERDUTY_DEFAULT_SOURCE = "superloop-ops-manager"
#: the keys every sink entry shares (everything else is type-specific)
SINK_COMMON_KEYS: tuple[str, ...] = ("enabled", "type", "timeoutSeconds")

ERR_TOP_LEVEL = "alert sink config has invalid top-level shape"
ERR_SINKS = "alert sink config sink definitions are invalid"
ERR_ROUTING = "alert sink config routing is invalid"
ERR_SEVERITY = "--severity must be one of: info, warning, critical"

# row reason codes (§6)
INVALID_ESCALATION_JSON = "invalid_escalation_json"
MISSING_ESCALATION_CATEGORY = "missing_escalation_category"
ROUTE_RESOLUTION_FAILED = "route_resolution_failed"
SEVERITY_BELOW_MIN = "severity_below_min"
NO_DISPATCHABLE_SINKS = "no_dispatchable_sinks"
PARTIAL_DISPATCH_FAILURE = "partial_dispatch_failure"
DISPATCH_FAILED = "dispatch_failed"
ALERT_DISPATCH_FAILED = "alert_dispatch_failed"
#: the sink config cannot be loaded (missing, not JSON, invalid): new rows are NOT consumed
#: (the offset stays), so every row read meanwhile is delivered once the config is fixed
ALERT_CONFIG_INVALID = "alert_config_invalid"
#: ``alert-dispatch-state.json`` ``status`` of a run that found the config unusable
STATUS_CONFIG_INVALID = "config_invalid"
# sink reason codes (§6, plus our delivery extensions)
MISSING_SECRET = "missing_secret"
HTTP_ERROR = "http_error"
REQUEST_FAILED = "request_failed"
SINK_DISPATCH_FAILED = "sink_dispatch_failed"
#: not attempted in this run (the destination failed earlier, the run's deadline passed, or
#: an earlier notification of the same episode to the same sink is still pending); kept
DELIVERY_DEFERRED = "delivery_deferred"
#: the sink of a kept notification is no longer configured / enabled
SINK_NOT_CONFIGURED = "sink_not_configured"
SINK_DISABLED = "sink_disabled"
#: the automatic retry budget (``delivery.giveUpAfterSeconds``) is spent
RETRY_BUDGET_EXHAUSTED = "retry_budget_exhausted"
INVALID_SINK_REQUEST = "invalid_sink_request"

#: header names whose values are never echoed (resolver output, telemetry)
SENSITIVE_HEADER = re.compile(r"(auth|token|secret|key|cookie|signature|password)", re.I)
REDACTED = "[redacted]"

JSON = dict[str, Any]


@attrs.frozen
class _TypeContract:
    """What the contract fixes for one of its three sink types."""

    #: env var name field that holds the target (URL / routing key)
    target_env: str
    #: optional env var name fields (declared → needed)
    optional_envs: tuple[str, ...]
    #: the exact ``missing_secret`` message (§5.1)
    missing_message: str


TYPE_CONTRACTS: dict[str, _TypeContract] = {
    "webhook": _TypeContract("urlEnv", ("authTokenEnv",), "webhook url env is unset"),
    "slack": _TypeContract("webhookUrlEnv", (), "slack webhook env is unset"),
    "pagerduty_events": _TypeContract("routingKeyEnv", (), "pagerduty routing key env is unset"),
}


def is_severity(value: object) -> TypeGuard[str]:
    """``value`` is one of ``info | warning | critical``."""
    return isinstance(value, str) and value in SEVERITY_RANK
