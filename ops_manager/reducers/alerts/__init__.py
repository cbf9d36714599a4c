"""Alert routing and dispatch decisions (``alerts.md`` §1-§3, DECISIONS "Alert sinks"). PURE.

Everything here is a function of data: the parsed config, one escalation line, which secret
env vars are present (as booleans), the previous dispatch state, an ``now`` epoch given by
the shell. Nothing reads files, the clock, the environment or the network. The shell
(:mod:`ops_manager.engine.alert_config`, :mod:`ops_manager.engine.alert_dispatch`) reads,
calls these, and carries out what they return.

The pieces, Alertmanager-style small tables returning named reasons:

- **config checks** (§2.3): :mod:`~ops_manager.reducers.alerts.config_problems` (the schema's
  failures as the resolver's messages); :func:`build_config` then turns a checked
  object into an :class:`AlertConfig`;
- **routing** (§2.7): :func:`resolve_route` → :class:`Route` with ``reason`` =
  ``None`` (dispatch) | ``severity_below_min`` | ``no_dispatchable_sinks``; BUG-1 fixed (a
  route with ``enabled: false`` does not match);
- **row decisions** (§3.3): :func:`parse_row` then :func:`decide` →
  :class:`RowDecision` (``invalid_escalation_json`` — BUG-2: valid JSON that is not an
  object is invalid too —, ``missing_escalation_category``, ``route_resolution_failed``,
  ``severity_below_min``, ``no_dispatchable_sinks``, or deliver with per-sink
  ``missing_secret`` blocks, DECISIONS Q-5);
- **episodes** (DECISIONS Q-8): one ``dedup_key`` per (loop, category family) problem,
  opened by a trigger and closed with a ``resolve`` when :class:`Conditions` say it cleared;
- **delivery arithmetic**: HTTP status classes, ``Retry-After`` parsing, full-jitter
  backoff, per-destination pacing;
- **the outbox fold**: the pending set is a fold of ``alert-outbox.jsonl``;
- **record builders**: the dispatch state and the T-* telemetry rows of §3.5, in contract
  key order, with our extra keys at the end.
"""

from __future__ import annotations

from ops_manager.reducers.alert_dispatch_state import RunCounts, dispatch_state
from ops_manager.reducers.alerts._config import (
    AlertConfig,
    DeliveryPolicy,
    SinkDef,
    build_config,
    delivery_policy,
    env_status,
    missing_enabled_secrets,
    sink_missing_secrets,
)
from ops_manager.reducers.alerts._config import (
    redact_headers as redact_headers,
)
from ops_manager.reducers.alerts._config import (
    sink_view_config as sink_view_config,
)
from ops_manager.reducers.alerts._decide import (
    OUTCOME_DELIVER as OUTCOME_DELIVER,
)
from ops_manager.reducers.alerts._decide import (
    OUTCOME_FAIL as OUTCOME_FAIL,
)
from ops_manager.reducers.alerts._decide import (
    OUTCOME_SKIP as OUTCOME_SKIP,
)
from ops_manager.reducers.alerts._decide import (
    OUTCOME_SKIP_BLANK as OUTCOME_SKIP_BLANK,
)
from ops_manager.reducers.alerts._decide import (
    ROW_BLANK as ROW_BLANK,
)
from ops_manager.reducers.alerts._decide import (
    ROW_INVALID as ROW_INVALID,
)
from ops_manager.reducers.alerts._decide import (
    ROW_NO_CATEGORY as ROW_NO_CATEGORY,
)
from ops_manager.reducers.alerts._decide import (
    ROW_OK as ROW_OK,
)
from ops_manager.reducers.alerts._decide import (
    EscalationRow,
    Route,
    RouteFailure,
    RowDecision,
    SinkDecision,
    decide,
    explain_route,
    list_sinks_text,
    match_route,
    parse_row,
    resolve_route,
    route_json,
    row_outcome,
    summary_json,
    summary_status,
)
from ops_manager.reducers.alerts._episodes import (
    EPISODE_FAMILIES,
    Conditions,
    Episode,
    cleared_episodes,
    close_episode,
    dedup_key_for,
    episode_for_trigger,
    episodes_from_json,
    note_episode_sinks,
)
from ops_manager.reducers.alerts._episodes import (
    Episodes as Episodes,
)
from ops_manager.reducers.alerts._episodes import (
    episode_cleared as episode_cleared,
)
from ops_manager.reducers.alerts._episodes import (
    episodes_to_json as episodes_to_json,
)
from ops_manager.reducers.alerts._events import (
    HTTP_RETRYABLE as HTTP_RETRYABLE,
)
from ops_manager.reducers.alerts._events import (
    HTTP_SUCCESS as HTTP_SUCCESS,
)
from ops_manager.reducers.alerts._events import (
    HTTP_TERMINAL as HTTP_TERMINAL,
)
from ops_manager.reducers.alerts._events import (
    RETRYABLE_STATUSES as RETRYABLE_STATUSES,
)
from ops_manager.reducers.alerts._events import (
    backoff_delay,
    build_event,
    classify_http_status,
    event_from_json,
    event_to_json,
    notification_key,
    pacing_delay,
    parse_retry_after,
    redact_escalation,
    redact_text,
)
from ops_manager.reducers.alerts._events import (
    escalation_reason_codes as escalation_reason_codes,
)
from ops_manager.reducers.alerts._events import (
    excerpt as excerpt,
)
from ops_manager.reducers.alerts._outbox import (
    OUTBOX_DELIVERED as OUTBOX_DELIVERED,
)
from ops_manager.reducers.alerts._outbox import (
    OUTBOX_GAVE_UP as OUTBOX_GAVE_UP,
)
from ops_manager.reducers.alerts._outbox import (
    OUTBOX_QUEUED as OUTBOX_QUEUED,
)
from ops_manager.reducers.alerts._outbox import (
    OUTBOX_RETRYING as OUTBOX_RETRYING,
)
from ops_manager.reducers.alerts._outbox import (
    OUTBOX_STATUSES as OUTBOX_STATUSES,
)
from ops_manager.reducers.alerts._outbox import (
    OUTBOX_TERMINAL as OUTBOX_TERMINAL,
)
from ops_manager.reducers.alerts._outbox import (
    PENDING_STATUSES as PENDING_STATUSES,
)
from ops_manager.reducers.alerts._outbox import (
    STOPPED_STATUSES as STOPPED_STATUSES,
)
from ops_manager.reducers.alerts._outbox import (
    OutboxEntry,
    fold_outbox,
    outbox_counts,
    outbox_ident,
    outbox_record,
    outbox_step,
)
from ops_manager.reducers.alerts._rows import (
    SinkResult,
    config_error_json,
    t_config_invalid,
    t_delivery,
    t_invalid,
    t_nocat,
    t_routefail,
    t_skip,
    t_wrapper,
)
from ops_manager.reducers.alerts._vocab import (
    ALERT_CONFIG_INVALID as ALERT_CONFIG_INVALID,
)
from ops_manager.reducers.alerts._vocab import (
    ALERT_DISPATCH_FAILED as ALERT_DISPATCH_FAILED,
)
from ops_manager.reducers.alerts._vocab import (
    CONTRACT_SINK_TYPES,
    ERR_ROUTING,
    ERR_SEVERITY,
    ERR_SINKS,
    ERR_TOP_LEVEL,
    SEVERITIES,
    SEVERITY_RANK,
    TYPE_CONTRACTS,
)
from ops_manager.reducers.alerts._vocab import (
    DEFAULT_TIMEOUT_SECONDS as DEFAULT_TIMEOUT_SECONDS,
)
from ops_manager.reducers.alerts._vocab import (
    DELIVERY_DEFERRED as DELIVERY_DEFERRED,
)
from ops_manager.reducers.alerts._vocab import (
    DISPATCH_FAILED as DISPATCH_FAILED,
)
from ops_manager.reducers.alerts._vocab import (
    ENV_NAME as ENV_NAME,
)
from ops_manager.reducers.alerts._vocab import (
    HTTP_ERROR as HTTP_ERROR,
)
from ops_manager.reducers.alerts._vocab import (
    INVALID_ESCALATION_JSON as INVALID_ESCALATION_JSON,
)
from ops_manager.reducers.alerts._vocab import (
    INVALID_SINK_REQUEST as INVALID_SINK_REQUEST,
)
from ops_manager.reducers.alerts._vocab import (
    JSON as JSON,
)
from ops_manager.reducers.alerts._vocab import (
    MISSING_ESCALATION_CATEGORY as MISSING_ESCALATION_CATEGORY,
)
from ops_manager.reducers.alerts._vocab import (
    MISSING_SECRET as MISSING_SECRET,
)
from ops_manager.reducers.alerts._vocab import (
    NO_DISPATCHABLE_SINKS as NO_DISPATCHABLE_SINKS,
)
from ops_manager.reducers.alerts._vocab import (
    PAGERDUTY_DEFAULT_SOURCE as PAGERDUTY_DEFAULT_SOURCE,
)
from ops_manager.reducers.alerts._vocab import (
    PARTIAL_DISPATCH_FAILURE as PARTIAL_DISPATCH_FAILURE,
)
from ops_manager.reducers.alerts._vocab import (
    REDACTED as REDACTED,
)
from ops_manager.reducers.alerts._vocab import (
    REQUEST_FAILED as REQUEST_FAILED,
)
from ops_manager.reducers.alerts._vocab import (
    RETRY_BUDGET_EXHAUSTED as RETRY_BUDGET_EXHAUSTED,
)
from ops_manager.reducers.alerts._vocab import (
    ROUTE_RESOLUTION_FAILED as ROUTE_RESOLUTION_FAILED,
)
from ops_manager.reducers.alerts._vocab import (
    SEVERITY_BELOW_MIN as SEVERITY_BELOW_MIN,
)
from ops_manager.reducers.alerts._vocab import (
    SINK_COMMON_KEYS as SINK_COMMON_KEYS,
)
from ops_manager.reducers.alerts._vocab import (
    SINK_DISABLED as SINK_DISABLED,
)
from ops_manager.reducers.alerts._vocab import (
    SINK_DISPATCH_FAILED as SINK_DISPATCH_FAILED,
)
from ops_manager.reducers.alerts._vocab import (
    SINK_NOT_CONFIGURED as SINK_NOT_CONFIGURED,
)
from ops_manager.reducers.alerts._vocab import (
    STATUS_CONFIG_INVALID as STATUS_CONFIG_INVALID,
)
from ops_manager.reducers.alerts._vocab import (
    is_severity as is_severity,
)

__all__ = [
    "CONTRACT_SINK_TYPES",
    "EPISODE_FAMILIES",
    "ERR_ROUTING",
    "ERR_SEVERITY",
    "ERR_SINKS",
    "ERR_TOP_LEVEL",
    "SEVERITIES",
    "SEVERITY_RANK",
    "TYPE_CONTRACTS",
    "AlertConfig",
    "Conditions",
    "DeliveryPolicy",
    "Episode",
    "EscalationRow",
    "OutboxEntry",
    "Route",
    "RouteFailure",
    "RowDecision",
    "RunCounts",
    "SinkDecision",
    "SinkDef",
    "SinkResult",
    "backoff_delay",
    "build_config",
    "build_event",
    "classify_http_status",
    "cleared_episodes",
    "close_episode",
    "config_error_json",
    "decide",
    "dedup_key_for",
    "delivery_policy",
    "dispatch_state",
    "env_status",
    "episode_for_trigger",
    "episodes_from_json",
    "event_from_json",
    "event_to_json",
    "explain_route",
    "fold_outbox",
    "list_sinks_text",
    "match_route",
    "missing_enabled_secrets",
    "note_episode_sinks",
    "notification_key",
    "outbox_counts",
    "outbox_ident",
    "outbox_record",
    "outbox_step",
    "pacing_delay",
    "parse_retry_after",
    "parse_row",
    "redact_escalation",
    "redact_text",
    "resolve_route",
    "route_json",
    "row_outcome",
    "sink_missing_secrets",
    "summary_json",
    "summary_status",
    "t_config_invalid",
    "t_delivery",
    "t_invalid",
    "t_nocat",
    "t_routefail",
    "t_skip",
    "t_wrapper",
]
