"""Alert routing and dispatch decisions (``alerts.md`` §1-§3, DECISIONS "Alert sinks"). PURE.

Everything here is a function of data: the parsed config, one escalation line, which secret
env vars are present (as booleans), the previous dispatch state, an ``now`` epoch given by
the shell. Nothing reads files, the clock, the environment or the network. The shell
(:mod:`ops_manager.engine.alert_config`, :mod:`ops_manager.engine.alert_dispatch`) reads,
calls these, and carries out what they return.

The pieces, Alertmanager-style small tables returning named reasons:

- **config checks** (§2.3): ``top_level_problems``, ``sink_common_problems``,
  ``contract_type_problems``, ``routing_problems``; :func:`build_config` then turns a checked
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

import calendar
import email.utils
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, TypeGuard

import attrs

from ops_manager._jsonfmt import as_nonneg_int, dumps_compact, strip_nulls
from ops_manager._timefmt import format_ts, parse_ts
from ops_manager.errors import OpsError
from ops_manager.sinks import AlertEvent

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
_SENSITIVE_HEADER = re.compile(r"(auth|token|secret|key|cookie|signature|password)", re.I)
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


# --- config checks (§2.3) ----------------------------------------------------------------


def top_level_problems(cfg: object) -> list[str]:
    """Why ``cfg`` fails the top-level shape check (empty when it passes).

    Extra top-level keys are allowed (§8 Q-11); ``routing.routes`` may be missing or null.
    Our extension ``delivery`` (retry policy) must be an object when present.
    """
    if not isinstance(cfg, dict):
        return ["the config is not a JSON object"]
    out: list[str] = []
    if cfg.get("schemaVersion") != "v1":
        out.append('schemaVersion must be "v1"')
    if not is_severity(cfg.get("defaultMinSeverity")):
        out.append("defaultMinSeverity must be one of: info, warning, critical")
    sinks = cfg.get("sinks")
    if not isinstance(sinks, dict) or not sinks:
        out.append("sinks must be an object with at least one sink")
    routing = cfg.get("routing")
    if not isinstance(routing, dict):
        out.append("routing must be an object")
    else:
        if not isinstance(routing.get("defaultSinks"), list):
            out.append("routing.defaultSinks must be an array")
        if not isinstance(routing.get("categorySeverity"), dict):
            out.append("routing.categorySeverity must be an object")
        routes = routing.get("routes")
        if routes is not None and not isinstance(routes, list):
            out.append("routing.routes must be an array")
    out.extend(delivery_problems(cfg.get("delivery")))
    return out


def sink_common_problems(sink_id: str, sink: object) -> list[str]:
    """Problems with the fields every sink has (``enabled``, ``type``, ``timeoutSeconds``)."""
    if not isinstance(sink, dict):
        return [f"sink '{sink_id}' must be an object"]
    out: list[str] = []
    if not isinstance(sink.get("enabled"), bool):
        out.append(f"sink '{sink_id}': enabled must be true or false")
    kind = sink.get("type")
    if not isinstance(kind, str) or kind == "":
        out.append(f"sink '{sink_id}': type must be a non-empty string")
    timeout = sink.get("timeoutSeconds")
    if timeout is not None and timeout is not False:
        ok = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if not ok or not (1 <= timeout <= 120):
            out.append(f"sink '{sink_id}': timeoutSeconds must be a number from 1 to 120")
    return out


def _env_ref_ok(value: object) -> bool:
    return isinstance(value, str) and ENV_NAME.match(value) is not None


def contract_type_problems(sink_id: str, sink: Mapping[str, Any]) -> list[str]:
    """The contract's type-specific checks for ``webhook`` / ``slack`` / ``pagerduty_events``.

    They always run for those three types (installed plugin or not), so the contract's
    fail-closed validation does not depend on a plugin's own checks; the plugin's
    ``validate_config`` runs on top.
    """
    kind = sink.get("type")
    contract = TYPE_CONTRACTS.get(kind) if isinstance(kind, str) else None
    if contract is None:
        return []
    out: list[str] = []
    if not _env_ref_ok(sink.get(contract.target_env)):
        out.append(
            f"sink '{sink_id}': {contract.target_env} must name an env var (^[A-Z_][A-Z0-9_]*$)"
        )
    for name in contract.optional_envs:
        value = sink.get(name)
        if value is not None and not _env_ref_ok(value):
            out.append(f"sink '{sink_id}': {name} must name an env var (^[A-Z_][A-Z0-9_]*$)")
    if kind == "webhook":
        headers = sink.get("headers")
        if headers is not None and not (
            isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
        ):
            out.append(f"sink '{sink_id}': headers must be an object of string values")
    return out


def routing_problems(cfg: Mapping[str, Any]) -> list[str]:
    """Problems with ``routing`` once the top level and the sinks passed (§2.3)."""
    sinks = cfg["sinks"]
    routing = cfg["routing"]
    out: list[str] = []
    for sid in routing["defaultSinks"]:
        if not isinstance(sid, str) or sid not in sinks:
            out.append(f"routing.defaultSinks names an unknown sink: {_show(sid)}")
    routes = routing.get("routes")
    for index, route in enumerate(routes if isinstance(routes, list) else []):
        where = f"routing.routes[{index}]"
        if not isinstance(route, dict):
            out.append(f"{where} must be an object")
            continue
        category = route.get("category")
        if not isinstance(category, str) or category == "":
            out.append(f"{where}.category must be a non-empty string")
        if route.get("enabled") is not None and not isinstance(route.get("enabled"), bool):
            out.append(f"{where}.enabled must be true or false")
        if route.get("minSeverity") is not None and not is_severity(route.get("minSeverity")):
            out.append(f"{where}.minSeverity must be one of: info, warning, critical")
        route_sinks = route.get("sinks")
        if route_sinks is not None:
            if not isinstance(route_sinks, list):
                out.append(f"{where}.sinks must be an array")
            else:
                for sid in route_sinks:
                    if not isinstance(sid, str) or sid not in sinks:
                        out.append(f"{where}.sinks names an unknown sink: {_show(sid)}")
    for category, severity in routing["categorySeverity"].items():
        if not is_severity(severity):
            out.append(
                f"routing.categorySeverity.{category} must be one of: info, warning, critical"
            )
    return out


def _show(value: object) -> str:
    return dumps_compact(value) if not isinstance(value, str) else value


# --- the delivery policy (our extension: top-level "delivery") ---------------------------


@attrs.frozen
class DeliveryPolicy:
    """How hard core tries before keeping a notification in the outbox.

    Set with the optional top-level ``delivery`` object of the config; every field is
    optional. Times are seconds.
    """

    #: attempts per notification per run (first try included)
    max_attempts: int = 4
    #: wall-clock budget of one dispatch run for all sending (retries included)
    deadline_seconds: float = 20.0
    #: full-jitter exponential backoff: ``uniform(0, min(max, base * 2**(n-1)))``
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 8.0
    #: a longer ``Retry-After`` is not slept on: the notification waits for a later run
    max_retry_after_seconds: float = 60.0
    #: automatic retries stop this long after a notification was first queued (``gave_up``)
    give_up_after_seconds: float = 86400.0


_DELIVERY_FIELDS: dict[str, tuple[str, float, float, bool]] = {
    # json key: (attribute, min, max, integer)
    "maxAttempts": ("max_attempts", 1, 20, True),
    "deadlineSeconds": ("deadline_seconds", 0, 3600, False),
    "backoffBaseSeconds": ("backoff_base_seconds", 0, 600, False),
    "backoffMaxSeconds": ("backoff_max_seconds", 0, 3600, False),
    "maxRetryAfterSeconds": ("max_retry_after_seconds", 0, 3600, False),
    "giveUpAfterSeconds": ("give_up_after_seconds", 0, 30 * 86400, False),
}


def delivery_problems(raw: object) -> list[str]:
    """Problems with the optional ``delivery`` object."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return ["delivery must be an object"]
    out: list[str] = []
    for key, value in raw.items():
        spec = _DELIVERY_FIELDS.get(key)
        if spec is None:
            out.append(f"delivery.{key} is not a known setting")
            continue
        _, low, high, integer = spec
        number_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not number_ok or (integer and not isinstance(value, int)) or not low <= value <= high:
            kind = "an integer" if integer else "a number"
            out.append(f"delivery.{key} must be {kind} from {low:g} to {high:g}")
    return out


def delivery_policy(raw: object) -> DeliveryPolicy:
    """The policy from a checked ``delivery`` object (absent → defaults)."""
    if not isinstance(raw, dict):
        return DeliveryPolicy()
    values = {_DELIVERY_FIELDS[k][0]: v for k, v in raw.items() if k in _DELIVERY_FIELDS}
    return DeliveryPolicy(**values)


# --- the parsed config -------------------------------------------------------------------


@attrs.frozen
class SinkDef:
    """One sink of the catalog, as resolved for output and dispatch."""

    id: str
    type: str
    enabled: bool
    timeout_seconds: int | float
    #: the config entry verbatim (never contains a secret: only env var names)
    raw: Mapping[str, Any]
    #: §2.6 ``secretRefs`` (field name → env var name or ``None``)
    secret_refs: Mapping[str, str | None]
    #: every env var this sink needs set to send (contract fields + the plugin's list)
    secret_envs: tuple[str, ...]

    def view(self) -> JSON:
        """The §2.7 selected-sink object: ``id, type, enabled, timeoutSeconds, secretRefs,
        config``."""
        return {
            "id": self.id,
            "type": self.type,
            "enabled": self.enabled,
            "timeoutSeconds": self.timeout_seconds,
            "secretRefs": dict(self.secret_refs),
            "config": sink_view_config(self.type, self.raw),
        }

    def summary(self) -> JSON:
        """The §2.6 summary-mode sink object: ``id, enabled, type, timeoutSeconds,
        secretRefs``."""
        return {
            "id": self.id,
            "enabled": self.enabled,
            "type": self.type,
            "timeoutSeconds": self.timeout_seconds,
            "secretRefs": dict(self.secret_refs),
        }

    def missing_message(self, missing: Sequence[str]) -> str:
        """The ``missing_secret`` message: the contract's wording for the target env of the
        three contract types, else a list of the unset names."""
        contract = TYPE_CONTRACTS.get(self.type)
        if contract is not None and self.raw.get(contract.target_env) in missing:
            return contract.missing_message
        return "secret env var(s) are unset: " + " ".join(missing)


def redact_headers(headers: Mapping[str, Any]) -> JSON:
    """Header values whose names look like credentials are replaced by ``[redacted]``."""
    return {k: (REDACTED if _SENSITIVE_HEADER.search(k) else v) for k, v in headers.items()}


def sink_view_config(kind: str, raw: Mapping[str, Any]) -> JSON:
    """The §2.7 ``config`` object of a sink (type-specific, contract key order)."""
    if kind == "webhook":
        headers = raw.get("headers")
        return {"headers": redact_headers(headers) if isinstance(headers, dict) else {}}
    if kind == "slack":
        return {k: raw.get(k) for k in ("channel", "username", "iconEmoji")}
    if kind == "pagerduty_events":
        source = raw.get("source")
        return {
            "source": PAGERDUTY_DEFAULT_SOURCE if source is None or source is False else source,
            "component": raw.get("component"),
            "group": raw.get("group"),
            "class": raw.get("class"),
        }
    # a plugin type: its own fields, minus env var refs, credential-looking values redacted
    return {
        k: (REDACTED if _SENSITIVE_HEADER.search(k) else v)
        for k, v in raw.items()
        if k not in SINK_COMMON_KEYS and not k.endswith("Env")
    }


def _secret_refs(kind: str, raw: Mapping[str, Any]) -> dict[str, str | None]:
    contract = TYPE_CONTRACTS.get(kind)
    if contract is not None:
        refs: dict[str, str | None] = {contract.target_env: raw.get(contract.target_env)}
        for name in contract.optional_envs:
            value = raw.get(name)
            refs[name] = value if isinstance(value, str) else None
        return refs
    return {k: v for k, v in raw.items() if k.endswith("Env") and isinstance(v, str)}


@attrs.frozen
class AlertConfig:
    """A validated alert sink config (``source_file`` is the path string as resolved)."""

    source_file: str
    raw: Mapping[str, Any]
    default_min_severity: str
    sinks: tuple[SinkDef, ...]
    default_sinks: tuple[str, ...]
    category_severity: Mapping[str, str]
    routes: tuple[Mapping[str, Any], ...]
    delivery: DeliveryPolicy

    def sink(self, sink_id: str) -> SinkDef | None:
        """The sink named ``sink_id``, or ``None``."""
        for sink in self.sinks:
            if sink.id == sink_id:
                return sink
        return None

    def declared_envs(self) -> list[str]:
        """Every env var name any sink declares, deduplicated, byte-order sorted (§2.4)."""
        names: set[str] = set()
        for sink in self.sinks:
            names.update(v for v in sink.secret_refs.values() if v)
            names.update(sink.secret_envs)
        return sorted(names, key=lambda n: n.encode("utf-8"))


def build_config(
    cfg: Mapping[str, Any],
    source_file: str,
    plugin_secret_envs: Mapping[str, Sequence[str]] | None = None,
) -> AlertConfig:
    """Turn a checked config object into an :class:`AlertConfig`.

    ``plugin_secret_envs`` maps sink id → the env vars its installed plugin says it needs
    (``Sink.secret_envs``); they are added to the contract's own secret fields.
    """
    extra = plugin_secret_envs or {}
    sinks: list[SinkDef] = []
    for sid, raw in cfg["sinks"].items():
        timeout = raw.get("timeoutSeconds")
        kind = str(raw["type"])
        refs = _secret_refs(kind, raw)
        contract = TYPE_CONTRACTS.get(kind)
        needed: list[str] = []
        if contract is not None:
            needed.append(str(raw[contract.target_env]))
            needed.extend(str(raw[n]) for n in contract.optional_envs if raw.get(n))
        needed.extend(extra.get(sid, ()))
        sinks.append(
            SinkDef(
                id=sid,
                type=kind,
                enabled=raw["enabled"] is True,
                timeout_seconds=DEFAULT_TIMEOUT_SECONDS
                if timeout is None or timeout is False
                else timeout,
                raw=raw,
                secret_refs=refs,
                secret_envs=tuple(dict.fromkeys(needed)),
            )
        )
    routing = cfg["routing"]
    routes = routing.get("routes")
    return AlertConfig(
        source_file=source_file,
        raw=cfg,
        default_min_severity=cfg["defaultMinSeverity"],
        sinks=tuple(sinks),
        default_sinks=tuple(routing["defaultSinks"]),
        category_severity=dict(routing["categorySeverity"]),
        routes=tuple(routes) if isinstance(routes, list) else (),
        delivery=delivery_policy(cfg.get("delivery")),
    )


def env_status(config: AlertConfig, present: Mapping[str, bool]) -> JSON:
    """§2.4 ``envStatus``: ``{NAME: {"present": bool}}`` for every declared name, sorted."""
    return {name: {"present": bool(present.get(name))} for name in config.declared_envs()}


def missing_enabled_secrets(config: AlertConfig, present: Mapping[str, bool]) -> list[str]:
    """The fail-closed check of the resolver: unset secrets of every ENABLED sink (sorted)."""
    names = {n for s in config.sinks if s.enabled for n in s.secret_envs if not present.get(n)}
    return sorted(names, key=lambda n: n.encode("utf-8"))


def sink_missing_secrets(
    config: AlertConfig, present: Mapping[str, bool]
) -> dict[str, tuple[str, ...]]:
    """Per sink id, the env vars it needs that are unset (DECISIONS Q-5, per sink)."""
    return {s.id: tuple(n for n in s.secret_envs if not present.get(n)) for s in config.sinks}


# --- routing (§2.7) ----------------------------------------------------------------------


@attrs.frozen
class Route:
    """Where one (category, severity) goes, and why (``reason`` ``None`` = dispatch)."""

    category: str
    event_severity: str
    category_mapped_severity: str | None
    min_severity: str
    should_dispatch: bool
    #: the matched route object (verbatim) and its index in ``routing.routes``
    route: Mapping[str, Any] | None
    route_index: int | None
    selected: tuple[SinkDef, ...]
    dispatchable: tuple[SinkDef, ...]
    reason: str | None


@attrs.frozen
class RouteFailure:
    """A route could not be resolved (invalid config, invalid escalation severity)."""

    message: str


def match_route(config: AlertConfig, category: str) -> tuple[int, Mapping[str, Any]] | None:
    """The first route for ``category`` that is not disabled (BUG-1: ``enabled: false`` never
    matches; absent or ``null`` means enabled)."""
    for index, route in enumerate(config.routes):
        if route.get("category") == category and route.get("enabled") is not False:
            return index, route
    return None


def resolve_route(config: AlertConfig, category: str, severity: str | None = None) -> Route:
    """§2.7 steps 1-8 for ``category`` (and an explicit ``severity``, ``None`` = mapped).

    Raises :class:`OpsError` ``--severity must be one of: info, warning, critical`` for a
    severity outside the enum (the shell turns it into ``route_resolution_failed``).
    """
    if severity is not None and not is_severity(severity):
        raise OpsError(ERR_SEVERITY)
    matched = match_route(config, category)
    route = matched[1] if matched else None
    route_min = route.get("minSeverity") if route else None
    min_severity: str = route_min if is_severity(route_min) else config.default_min_severity
    raw_mapped = config.category_severity.get(category)
    mapped: str | None = raw_mapped if is_severity(raw_mapped) else None
    event_severity: str = severity or mapped or min_severity
    should = SEVERITY_RANK[event_severity] >= SEVERITY_RANK[min_severity]
    route_sinks = route.get("sinks") if route else None
    ids = route_sinks if isinstance(route_sinks, list) and route_sinks else config.default_sinks
    selected = tuple(s for s in (config.sink(i) for i in ids if isinstance(i, str)) if s)
    dispatchable = tuple(s for s in selected if s.enabled) if should else ()
    reason = None
    if not should:
        reason = SEVERITY_BELOW_MIN
    elif not dispatchable:
        reason = NO_DISPATCHABLE_SINKS
    return Route(
        category=category,
        event_severity=event_severity,
        category_mapped_severity=mapped,
        min_severity=min_severity,
        should_dispatch=should,
        route=route,
        route_index=matched[0] if matched else None,
        selected=selected,
        dispatchable=dispatchable,
        reason=reason,
    )


def route_json(config: AlertConfig, route: Route, envs: JSON, env_check: bool) -> JSON:
    """The category-mode resolver output (§2.7), top level null-filtered, contract order."""
    return strip_nulls(
        {
            "schemaVersion": "v1",
            "sourceFile": config.source_file,
            "category": route.category,
            "eventSeverity": route.event_severity,
            "categoryMappedSeverity": route.category_mapped_severity,
            "minSeverity": route.min_severity,
            "shouldDispatch": route.should_dispatch,
            "route": dict(route.route) if route.route is not None else None,
            "selectedSinks": [s.view() for s in route.selected],
            "dispatchableSinks": [s.view() for s in route.dispatchable],
            "envStatus": envs,
            "validation": {"envCheckEnabled": env_check},
        }
    )


def summary_json(config: AlertConfig, envs: JSON, env_check: bool) -> JSON:
    """The summary-mode resolver output (§2.6), not null-filtered, contract order."""
    return {
        "schemaVersion": "v1",
        "sourceFile": config.source_file,
        "defaultMinSeverity": config.default_min_severity,
        "sinks": [s.summary() for s in config.sinks],
        "enabledSinkCount": sum(1 for s in config.sinks if s.enabled),
        "routing": config.raw["routing"],
        "envStatus": envs,
        "validation": {"envCheckEnabled": env_check},
    }


def list_sinks_text(config: AlertConfig) -> str:
    """``--list-sinks`` output (§2.5): ``<id>\\t<type>\\t<enabled>`` per sink."""
    return "".join(f"{s.id}\t{s.type}\t{'true' if s.enabled else 'false'}\n" for s in config.sinks)


def explain_route(
    config: AlertConfig,
    category: str,
    severity: str | None,
    missing: Mapping[str, Sequence[str]] | None = None,
) -> JSON:
    """Which sinks would receive (category, severity), and why — the same decision
    dispatch takes (``alert-route-test``). ``missing`` (sink id → unset secret names) is
    given only when secrets are to be checked; then a sink lacking one does not receive.

    Per sink ``reason``: ``routed`` | ``sink_disabled`` | ``severity_below_min`` |
    ``missing_secret``. ``via`` is ``routes[<i>]`` or ``defaultSinks``.
    """
    base: JSON = {"category": category, "severity": severity}
    if severity is not None and not is_severity(severity):
        return {
            **base,
            "decision": "fail",
            "reasonCode": ROUTE_RESOLUTION_FAILED,
            "message": ERR_SEVERITY,
            "sinks": [],
            "receivingSinks": [],
        }
    route = resolve_route(config, category, severity)
    route_sinks = route.route.get("sinks") if route.route is not None else None
    via = (
        f"routes[{route.route_index}]"
        if route.route_index is not None and isinstance(route_sinks, list) and route_sinks
        else "defaultSinks"
    )
    sinks: list[JSON] = []
    for sink in route.selected:
        lacking = list((missing or {}).get(sink.id, ()))
        if not route.should_dispatch:
            reason = SEVERITY_BELOW_MIN
        elif not sink.enabled:
            reason = "sink_disabled"
        elif lacking:
            reason = MISSING_SECRET
        else:
            reason = "routed"
        entry: JSON = {
            "id": sink.id,
            "type": sink.type,
            "enabled": sink.enabled,
            "receives": reason == "routed",
            "reason": reason,
        }
        if lacking:
            entry["missingSecrets"] = lacking
        sinks.append(entry)
    receiving = [e["id"] for e in sinks if e["receives"]]
    if route.reason is not None:
        decision, code = "skip", route.reason
    elif not receiving:
        decision, code = "fail", MISSING_SECRET
    else:
        decision, code = "send", None
    return {
        **base,
        "eventSeverity": route.event_severity,
        "categoryMappedSeverity": route.category_mapped_severity,
        "minSeverity": route.min_severity,
        "matchedRoute": route.route_index,
        "via": via,
        "decision": decision,
        "reasonCode": code,
        "sinks": sinks,
        "receivingSinks": receiving,
    }


# --- escalation rows (§3.3) --------------------------------------------------------------

ROW_BLANK = "blank"
ROW_INVALID = "invalid"
ROW_NO_CATEGORY = "no_category"
ROW_OK = "ok"


@attrs.frozen
class EscalationRow:
    """One line of ``escalations.jsonl``, classified."""

    line: int
    raw: str
    kind: str
    #: the parsed value (an object, or ``None`` for a literal ``null`` line)
    escalation: Any = None
    category: str | None = None
    timestamp: str | None = None
    loop_id: str | None = None
    trace_id: str | None = None
    #: the escalation's own ``severity`` (``None`` when absent or empty; may be invalid)
    severity: Any = None


def _nonempty(value: object) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_row(line: int, raw: str) -> EscalationRow:
    """Classify one line (without its ``\\n``): blank, invalid JSON (BUG-2: JSON that is
    not an object or ``null`` counts as invalid), missing category, or a routable row."""
    if raw.strip() == "":
        return EscalationRow(line=line, raw=raw, kind=ROW_BLANK)
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        return EscalationRow(line=line, raw=raw, kind=ROW_INVALID)
    if value is None:
        return EscalationRow(line=line, raw=raw, kind=ROW_NO_CATEGORY, escalation=None)
    if not isinstance(value, dict):
        return EscalationRow(line=line, raw=raw, kind=ROW_INVALID)
    category = _nonempty(value.get("category"))
    severity = value.get("severity")
    return EscalationRow(
        line=line,
        raw=raw,
        kind=ROW_OK if category else ROW_NO_CATEGORY,
        escalation=value,
        category=category,
        timestamp=value.get("timestamp") if isinstance(value.get("timestamp"), str) else None,
        loop_id=_nonempty(value.get("loopId")),
        trace_id=_nonempty(value.get("traceId")),
        severity=None if severity is None or severity == "" else severity,
    )


@attrs.frozen
class SinkDecision:
    """Send to this sink, or block it with a reason (``missing_secret``)."""

    sink: SinkDef
    send: bool
    reason: str | None = None
    message: str | None = None
    missing_envs: tuple[str, ...] = ()


OUTCOME_SKIP_BLANK = "skip_blank"
OUTCOME_FAIL = "fail"
OUTCOME_SKIP = "skip"
OUTCOME_DELIVER = "deliver"


@attrs.frozen
class RowDecision:
    """What to do with one row: ``skip_blank`` | ``fail`` | ``skip`` | ``deliver``."""

    outcome: str
    reason: str | None
    sinks: tuple[SinkDecision, ...] = ()
    message: str | None = None


def decide(
    row: EscalationRow,
    route: Route | RouteFailure | None,
    sinks_env_status: Mapping[str, Sequence[str]],
) -> RowDecision:
    """The per-row, per-sink decision table (§3.3 steps 1-9, BUG-2, DECISIONS Q-5).

    ``route`` is ``None`` for rows that are not routable (blank, invalid, no category).
    ``sinks_env_status`` maps sink id → its unset secret env var names.
    """
    if row.kind == ROW_BLANK:
        return RowDecision(OUTCOME_SKIP_BLANK, None)
    if row.kind == ROW_INVALID:
        return RowDecision(OUTCOME_FAIL, INVALID_ESCALATION_JSON)
    if row.kind == ROW_NO_CATEGORY:
        return RowDecision(OUTCOME_FAIL, MISSING_ESCALATION_CATEGORY)
    if route is None:
        return RowDecision(OUTCOME_FAIL, ROUTE_RESOLUTION_FAILED, message="no route")
    if isinstance(route, RouteFailure):
        return RowDecision(OUTCOME_FAIL, ROUTE_RESOLUTION_FAILED, message=route.message)
    if route.reason is not None:
        return RowDecision(OUTCOME_SKIP, route.reason)
    decisions = []
    for sink in route.dispatchable:
        missing = tuple(sinks_env_status.get(sink.id, ()))
        if missing:
            decisions.append(
                SinkDecision(
                    sink=sink,
                    send=False,
                    reason=MISSING_SECRET,
                    message=sink.missing_message(missing),
                    missing_envs=missing,
                )
            )
        else:
            decisions.append(SinkDecision(sink=sink, send=True))
    return RowDecision(OUTCOME_DELIVER, None, tuple(decisions))


def row_outcome(successes: Sequence[bool]) -> tuple[str, str | None]:
    """Row ``status`` and ``reasonCode`` from its sink results (§3.3 step 10)."""
    ok = sum(1 for s in successes if s)
    if successes and ok == len(successes):
        return "dispatched", None
    if ok:
        return "partial", PARTIAL_DISPATCH_FAILURE
    return "failed", DISPATCH_FAILED


def summary_status(processed: int, dispatched: int, failed: int) -> str:
    """The run's ``status`` (§3.4); a run where everything was skipped is ``success``."""
    if processed == 0:
        return "no_new_escalations"
    if failed > 0 and dispatched == 0:
        return "failed"
    if failed > 0:
        return "partial"
    return "success"


# --- episodes (DECISIONS Q-8) ------------------------------------------------------------

#: escalation category → episode family; health_degraded and health_critical are one
EPISODE_FAMILIES: dict[str, str] = {
    "health_degraded": "health",
    "health_critical": "health",
    "profile_drift_detected": "drift",
    "divergence_detected": "divergence",
    "ordering_drift_detected": "ordering",
}
_MAX_DEDUP_KEY = 255  # PagerDuty's limit


@attrs.frozen
class Episode:
    """One open problem of one loop: every trigger shares ``dedup_key`` until it clears."""

    family: str
    dedup_key: str
    opened_at: str | None
    opened_line: int
    last_line: int
    category: str
    severity: str
    escalation_trace_id: str | None
    #: sinks that were sent (or queued) a trigger: the resolve goes to them
    sinks: tuple[str, ...] = ()

    def to_json(self) -> JSON:
        """The ``episodes.<family>`` object of ``alert-dispatch-state.json``."""
        return {
            "dedupKey": self.dedup_key,
            "openedAt": self.opened_at,
            "openedLine": self.opened_line,
            "lastLine": self.last_line,
            "category": self.category,
            "severity": self.severity,
            "escalationTraceId": self.escalation_trace_id,
            "sinks": list(self.sinks),
        }

    @classmethod
    def from_json(cls, family: str, obj: object) -> Episode | None:
        """Read one stored episode; ``None`` when it is unusable."""
        if not isinstance(obj, dict):
            return None
        key = obj.get("dedupKey")
        category = obj.get("category")
        if not isinstance(key, str) or not key or not isinstance(category, str):
            return None
        sinks = obj.get("sinks")
        severity = obj.get("severity")
        return cls(
            family=family,
            dedup_key=key,
            opened_at=_nonempty(obj.get("openedAt")),
            opened_line=as_nonneg_int(obj.get("openedLine")) or 0,
            last_line=as_nonneg_int(obj.get("lastLine")) or 0,
            category=category,
            severity=severity if is_severity(severity) else "warning",
            escalation_trace_id=_nonempty(obj.get("escalationTraceId")),
            sinks=tuple(s for s in sinks if isinstance(s, str)) if isinstance(sinks, list) else (),
        )


Episodes = dict[str, Episode]


def episodes_from_json(obj: object) -> Episodes:
    """The ``episodes`` key of a dispatch state (anything unusable is dropped)."""
    if not isinstance(obj, dict):
        return {}
    out: Episodes = {}
    for family, value in obj.items():
        episode = Episode.from_json(str(family), value)
        if episode is not None:
            out[str(family)] = episode
    return out


def episodes_to_json(episodes: Mapping[str, Episode]) -> JSON:
    """The ``episodes`` object (family → episode)."""
    return {family: ep.to_json() for family, ep in episodes.items()}


def dedup_key_for(loop_id: str, family: str, opened_at: str | None, line: int) -> str:
    """``<loop>:<family>:<openedAt>:L<line>``; hashed down when over 255 characters."""
    key = f"{loop_id}:{family}:{opened_at or ''}:L{line}"
    if len(key) <= _MAX_DEDUP_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{key[: _MAX_DEDUP_KEY - 65]}~{digest}"


def episode_for_trigger(
    episodes: Mapping[str, Episode],
    *,
    loop_id: str,
    row: EscalationRow,
    severity: str,
) -> tuple[Episodes, str]:
    """Open (or continue) the episode of ``row``'s category; returns the new map and the
    row's ``dedup_key``. Categories outside the known families get a one-off key."""
    assert row.category is not None
    family = EPISODE_FAMILIES.get(row.category)
    new = dict(episodes)
    if family is None:
        return new, dedup_key_for(loop_id, row.category, row.timestamp, row.line)
    current = episodes.get(family)
    if current is None:
        current = Episode(
            family=family,
            dedup_key=dedup_key_for(loop_id, family, row.timestamp, row.line),
            opened_at=row.timestamp or None,
            opened_line=row.line,
            last_line=row.line,
            category=row.category,
            severity=severity,
            escalation_trace_id=row.trace_id,
        )
    else:
        current = attrs.evolve(
            current,
            last_line=row.line,
            category=row.category,
            severity=severity,
            escalation_trace_id=row.trace_id or current.escalation_trace_id,
        )
    new[family] = current
    return new, current.dedup_key


def note_episode_sinks(
    episodes: Mapping[str, Episode], category: str, sink_ids: Iterable[str]
) -> Episodes:
    """Remember that ``sink_ids`` got (or have queued) a trigger of ``category``'s episode."""
    family = EPISODE_FAMILIES.get(category)
    new = dict(episodes)
    if family is None or family not in new:
        return new
    ep = new[family]
    new[family] = attrs.evolve(ep, sinks=tuple(dict.fromkeys((*ep.sinks, *sink_ids))))
    return new


@attrs.frozen
class Conditions:
    """The loop's current conditions as the dispatcher read them (``None`` = unknown)."""

    #: ``health.json`` ``status``
    health_status: str | None = None
    #: ``profile-drift.json`` ``driftActive``
    profile_drift_active: bool | None = None
    #: ``sequence-state.json`` ``driftActive``
    ordering_drift_active: bool | None = None
    #: ``state.json`` ``divergence.any``
    divergence_active: bool | None = None


def episode_cleared(episode: Episode, conditions: Conditions) -> bool:
    """Whether the condition behind ``episode`` has cleared (unknown → not cleared)."""
    if episode.family == "health":
        return conditions.health_status == "healthy"
    if episode.family == "drift":
        return conditions.profile_drift_active is False
    if episode.family == "ordering":
        return conditions.ordering_drift_active is False
    if episode.family == "divergence":
        return conditions.divergence_active is False
    return False


def cleared_episodes(episodes: Mapping[str, Episode], conditions: Conditions) -> list[Episode]:
    """The open episodes whose condition cleared, in the order they are stored."""
    return [ep for ep in episodes.values() if episode_cleared(ep, conditions)]


def close_episode(episodes: Mapping[str, Episode], family: str) -> Episodes:
    """``episodes`` without ``family``."""
    return {f: ep for f, ep in episodes.items() if f != family}


# --- notifications -----------------------------------------------------------------------


def notification_key(loop_id: str, dedup_key: str, action: str, sequence: str) -> str:
    """The idempotency key of one notification: sha256 of (loop, dedup key, action, seq).

    ``sequence`` is ``L<escalation line>`` for a trigger and ``r<last trigger line>`` for a
    resolve, so a retry, a replay or a re-run after a crash yields the same key.
    """
    material = "\x1f".join((loop_id, dedup_key, action, sequence))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


_PATH_KEY_SUFFIXES = ("File", "Path", "Dir", "Directory")


def redact_escalation(value: Any, repo: str) -> Any:
    """The escalation as it may leave the machine (DECISIONS Q-19).

    Every value of a key ending in ``File``/``Path``/``Dir`` that is an absolute path is made
    relative to ``repo`` when inside it, and dropped otherwise. Other values are kept.
    """
    if isinstance(value, list):
        return [redact_escalation(v, repo) for v in value]
    if not isinstance(value, dict):
        return value
    out: JSON = {}
    root = PurePosixPath(repo)
    for key, item in value.items():
        if isinstance(item, str) and key.endswith(_PATH_KEY_SUFFIXES) and item.startswith("/"):
            try:
                rel = PurePosixPath(item).relative_to(root)
            except ValueError:
                continue
            out[key] = str(rel) if str(rel) != "." else "."
            continue
        out[key] = redact_escalation(item, repo)
    return out


def escalation_reason_codes(escalation: Mapping[str, Any], category: str) -> tuple[str, ...]:
    """The reason codes an operator needs, per escalation category."""
    codes: list[str] = []
    raw_codes = escalation.get("reasonCodes")
    if isinstance(raw_codes, list):
        codes.extend(c for c in raw_codes if isinstance(c, str))
    sequence = escalation.get("sequence")
    if isinstance(sequence, dict) and isinstance(sequence.get("violations"), list):
        codes.extend(v for v in sequence["violations"] if isinstance(v, str))
    flags = escalation.get("divergenceFlags")
    if isinstance(flags, dict):
        codes.extend(k for k, v in flags.items() if v is True)
    reason = escalation.get("reasonCode")
    if isinstance(reason, str) and reason:
        codes.append(reason)
    if not codes:
        codes.append(category)
    return tuple(dict.fromkeys(codes))


def build_event(
    *,
    action: str,
    loop_id: str,
    category: str,
    severity: str,
    trace_id: str,
    escalation: Mapping[str, Any],
    escalation_timestamp: str | None,
    emitted_at: str,
    dedup_key: str,
    sequence: str,
    run_id: str | None,
    repo: str,
) -> AlertEvent:
    """The :class:`~ops_manager.sinks.AlertEvent` every sink of one notification gets."""
    redacted = redact_escalation(dict(escalation), repo)
    summary = (
        f"ops-manager {category} ({severity}) loop={loop_id}"
        if action == "trigger"
        else f"ops-manager {category} resolved loop={loop_id}"
    )
    return AlertEvent(
        action=action,
        loop_id=loop_id,
        category=category,
        severity=severity,
        trace_id=trace_id,
        escalation=redacted,
        escalation_timestamp=escalation_timestamp or None,
        emitted_at=emitted_at,
        dedup_key=dedup_key,
        idempotency_key=notification_key(loop_id, dedup_key, action, sequence),
        run_id=run_id,
        reason_codes=escalation_reason_codes(escalation, category),
        summary=summary,
        # the repo's directory NAME only, for sinks that show it (webhook
        # source.repoPath); passed when this AlertEvent version has the field
        **({"repo_name": PurePosixPath(repo).name} if "repo_name" in _EVENT_FIELDS else {}),
    )


_EVENT_FIELDS = frozenset(attrs.fields_dict(AlertEvent))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def event_to_json(event: AlertEvent) -> JSON:
    """An :class:`AlertEvent` as a JSON object (camelCase keys, every field)."""
    out: JSON = {}
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        out[_camel(field.name)] = list(value) if isinstance(value, tuple) else value
    return out


def event_from_json(obj: Mapping[str, Any]) -> AlertEvent:
    """The inverse of :func:`event_to_json` (unknown keys ignored). Raises ``ValueError``."""
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(AlertEvent):
        key = _camel(field.name)
        if key in obj:
            value = obj[key]
            kwargs[field.name] = tuple(value) if isinstance(value, list) else value
    try:
        return AlertEvent(**kwargs)
    except TypeError as exc:
        raise ValueError(f"invalid alert event: {exc}") from None


# --- delivery arithmetic -----------------------------------------------------------------

HTTP_SUCCESS = "success"
HTTP_RETRYABLE = "retryable"
HTTP_TERMINAL = "terminal"
RETRYABLE_STATUSES = frozenset({408, 425, 429})


def classify_http_status(status: int) -> str:
    """2xx ``success``; 408/425/429/5xx ``retryable``; anything else (3xx: redirects are not
    followed; other 4xx) ``terminal``."""
    if 200 <= status <= 299:
        return HTTP_SUCCESS
    if status in RETRYABLE_STATUSES or 500 <= status <= 599:
        return HTTP_RETRYABLE
    return HTTP_TERMINAL


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None``
    when absent or unparseable. A date in the past is 0."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        parsed = email.utils.parsedate_tz(text)
    except (TypeError, ValueError):
        return None
    if parsed is None:
        return None
    epoch = calendar.timegm(parsed[:9]) - (parsed[9] or 0)
    return max(0.0, float(epoch) - now)


def backoff_delay(attempt: int, base: float, cap: float, u: float) -> float:
    """Full jitter: ``u * min(cap, base * 2**(attempt-1))`` with ``u`` in [0, 1)."""
    exponent = min(attempt - 1, 30)
    return max(0.0, u) * min(cap, base * math.pow(2, exponent))


def pacing_delay(last_sent: float | None, now: float, min_interval: float) -> float:
    """Seconds to wait before the next request to one destination."""
    if last_sent is None or min_interval <= 0:
        return 0.0
    return max(0.0, last_sent + min_interval - now)


def excerpt(text: str, limit: int = 300) -> str | None:
    """§3.6 body excerpt: ``\\n`` → space, first ``limit`` characters, ``None`` if empty."""
    out = text.replace("\n", " ")[:limit]
    return out or None


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (4+ characters) replaced by ``[redacted]``."""
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


# --- the outbox fold ---------------------------------------------------------------------

OUTBOX_QUEUED = "queued"
OUTBOX_RETRYING = "retrying"
OUTBOX_TERMINAL = "terminal"
OUTBOX_GAVE_UP = "gave_up"
OUTBOX_DELIVERED = "delivered"
OUTBOX_STATUSES = (
    OUTBOX_QUEUED,
    OUTBOX_RETRYING,
    OUTBOX_TERMINAL,
    OUTBOX_GAVE_UP,
    OUTBOX_DELIVERED,
)
#: retried automatically by later dispatch runs
PENDING_STATUSES = (OUTBOX_QUEUED, OUTBOX_RETRYING)
#: kept for ``alert-replay --include-terminal``
STOPPED_STATUSES = (OUTBOX_TERMINAL, OUTBOX_GAVE_UP)


@attrs.frozen
class OutboxEntry:
    """The folded state of one (idempotency key, sink) delivery."""

    key: str
    sink_id: str
    sink_type: str
    status: str
    attempts: int
    event: Mapping[str, Any]
    first_queued_at: str | None
    next_attempt_at: str | None
    #: position of its first ``queued`` record (outbox order = send order)
    order: int
    last: Mapping[str, Any]
    #: the ``queued`` record that holds the event (kept for compaction)
    queued_record: Mapping[str, Any]

    @property
    def dedup_key(self) -> str:
        """The episode key of the notification."""
        return str(self.event.get("dedupKey", ""))

    @property
    def pending(self) -> bool:
        """Retried automatically by later runs."""
        return self.status in PENDING_STATUSES

    def due(self, now: float) -> bool:
        """Whether a pending entry may be attempted at ``now``."""
        due_at = parse_ts(self.next_attempt_at) if self.next_attempt_at else None
        return due_at is None or due_at <= now


def outbox_step(
    current: OutboxEntry | None, rec: Mapping[str, Any], position: int
) -> OutboxEntry | None:
    """Apply one outbox record to the entry it belongs to (``None``: the record is ignored).

    A ``queued`` record carries the event and (re)opens the entry; later records update
    its status. Records for an entry never queued, or with an unknown status, are ignored.
    """
    key, sink_id, status = rec.get("idempotencyKey"), rec.get("sinkId"), rec.get("status")
    if not isinstance(key, str) or not isinstance(sink_id, str) or status not in OUTBOX_STATUSES:
        return None
    attempts = as_nonneg_int(rec.get("attempts"))
    if status == OUTBOX_QUEUED and isinstance(rec.get("event"), dict):
        return OutboxEntry(
            key=key,
            sink_id=sink_id,
            sink_type=str(rec.get("sinkType", "")),
            status=status,
            attempts=attempts if attempts is not None else (current.attempts if current else 0),
            event=rec["event"],
            first_queued_at=current.first_queued_at if current else _nonempty(rec.get("timestamp")),
            next_attempt_at=_nonempty(rec.get("nextAttemptAt")),
            order=current.order if current else position,
            last=rec,
            queued_record=rec,
        )
    if current is None:
        return None
    return attrs.evolve(
        current,
        status=status,
        attempts=attempts if attempts is not None else current.attempts,
        next_attempt_at=_nonempty(rec.get("nextAttemptAt")),
        last=rec,
    )


def fold_outbox(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], OutboxEntry]:
    """Fold ``alert-outbox.jsonl`` records into one entry per (key, sink), in queue order."""
    out: dict[tuple[str, str], OutboxEntry] = {}
    for position, rec in enumerate(records):
        ident = (rec.get("idempotencyKey"), rec.get("sinkId"))
        entry = outbox_step(out.get(ident), rec, position)  # type: ignore[arg-type]
        if entry is not None:
            out[(entry.key, entry.sink_id)] = entry
    return out


def outbox_record(
    *,
    now: float,
    status: str,
    key: str,
    sink_id: str,
    sink_type: str,
    event: Mapping[str, Any] | None,
    attempts: int,
    trace_id: str,
    http_status: int | None = None,
    reason_code: str | None = None,
    message: str | None = None,
    retry_after_seconds: float | None = None,
    next_attempt_at: float | None = None,
    source: str | None = None,
) -> JSON:
    """One ``alert-outbox.jsonl`` record (null-filtered; the event only on ``queued``)."""
    return strip_nulls(
        {
            "timestamp": format_ts(int(now)),
            "status": status,
            "idempotencyKey": key,
            "sinkId": sink_id,
            "sinkType": sink_type,
            "loopId": event.get("loopId") if event else None,
            "action": event.get("action") if event else None,
            "category": event.get("category") if event else None,
            "dedupKey": event.get("dedupKey") if event else None,
            "attempts": attempts,
            "httpStatus": http_status,
            "reasonCode": reason_code,
            "message": message,
            "retryAfterSeconds": retry_after_seconds,
            "nextAttemptAt": format_ts(math.ceil(next_attempt_at))
            if next_attempt_at is not None
            else None,
            "traceId": trace_id,
            "source": source,
            "event": dict(event) if event is not None and status == OUTBOX_QUEUED else None,
        }
    )


def outbox_counts(entries: Iterable[OutboxEntry]) -> JSON:
    """``pendingCount`` / ``terminalCount`` / ``gaveUpCount`` of the folded outbox."""
    pending = terminal = gave_up = 0
    for entry in entries:
        if entry.pending:
            pending += 1
        elif entry.status == OUTBOX_TERMINAL:
            terminal += 1
        elif entry.status == OUTBOX_GAVE_UP:
            gave_up += 1
    return {"pendingCount": pending, "terminalCount": terminal, "gaveUpCount": gave_up}


# --- records: dispatch state and telemetry rows (§3.4, §3.5) -----------------------------


@attrs.frozen
class SinkResult:
    """One sink's outcome for one notification (a §3.5 ``sinks[]`` entry plus extras)."""

    sink_id: str
    sink_type: str
    success: bool
    reason_code: str | None = None
    http_status: int | None = None
    message: str | None = None
    attempts: int = 0
    retry_after_seconds: float | None = None
    #: what the outbox holds for it now: delivered | queued | retrying | terminal | gave_up
    outbox_status: str | None = None

    def to_json(self) -> JSON:
        """Contract key order (success: ``status, httpStatus, reasonCode, message``; failure:
        ``status, reasonCode, httpStatus, message``), then ``attempts``,
        ``retryAfterSeconds`` (when one was received) and ``outboxStatus``."""
        out: JSON = {"id": self.sink_id, "type": self.sink_type}
        if self.success:
            out.update(
                status="success",
                httpStatus=self.http_status,
                reasonCode=None,
                message=self.message,
            )
        else:
            out.update(
                status="failed",
                reasonCode=self.reason_code or SINK_DISPATCH_FAILED,
                httpStatus=self.http_status,
                message=self.message,
            )
        out["attempts"] = self.attempts
        if self.retry_after_seconds is not None:
            out["retryAfterSeconds"] = self.retry_after_seconds
        if self.outbox_status is not None:
            out["outboxStatus"] = self.outbox_status
        return out


def t_invalid(now: int, loop_id: str, trace_id: str, raw: str) -> JSON:
    """T-INVALID (not null-filtered)."""
    return {
        "timestamp": format_ts(now),
        "loopId": loop_id,
        "traceId": trace_id,
        "category": "alert_dispatch",
        "status": "failed",
        "reasonCode": INVALID_ESCALATION_JSON,
        "rawLine": raw,
    }


def t_nocat(now: int, loop_id: str, trace_id: str, escalation: Any) -> JSON:
    """T-NOCAT (not null-filtered)."""
    return {
        "timestamp": format_ts(now),
        "loopId": loop_id,
        "traceId": trace_id,
        "category": "alert_dispatch",
        "status": "failed",
        "reasonCode": MISSING_ESCALATION_CATEGORY,
        "escalation": escalation,
    }


def t_routefail(now: int, loop_id: str, trace_id: str, row: EscalationRow, message: str) -> JSON:
    """T-ROUTEFAIL (null-filtered; ``message`` cut to 300 characters, newlines → spaces)."""
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id,
            "escalationTraceId": row.trace_id or trace_id,
            "category": "alert_dispatch",
            "escalationCategory": row.category,
            "escalationTimestamp": row.timestamp or None,
            "status": "failed",
            "reasonCode": ROUTE_RESOLUTION_FAILED,
            "message": excerpt(message),
            "escalation": row.escalation,
        }
    )


def t_skip(
    now: int,
    loop_id: str,
    trace_id: str,
    row: EscalationRow,
    route: Route,
    route_obj: JSON,
    extra: JSON,
) -> JSON:
    """T-SKIP (null-filtered), then our extras (``dedupKey``)."""
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id,
            "escalationTraceId": row.trace_id or trace_id,
            "category": "alert_dispatch",
            "escalationCategory": row.category,
            "escalationTimestamp": row.timestamp or None,
            "eventSeverity": route.event_severity,
            "status": "skipped",
            "reasonCode": route.reason,
            "escalation": row.escalation,
            "route": route_obj,
            "sinkCount": 0,
            "dispatchedSinkCount": 0,
            "failedSinkCount": 0,
            **extra,
        }
    )


def t_delivery(
    now: int,
    *,
    loop_id: str,
    trace_id: str,
    escalation_trace_id: str,
    escalation_category: str,
    escalation_timestamp: str | None,
    event_severity: str,
    escalation: Any,
    route_obj: JSON | None,
    results: Sequence[SinkResult],
    extra: JSON,
) -> JSON:
    """T-DELIVERY (null-filtered), then our extras (``action``, ``dedupKey``,
    ``idempotencyKey``, ``source``). Also used for resolves and outbox retries (``route``
    is then absent)."""
    status, reason = row_outcome([r.success for r in results])
    ok = sum(1 for r in results if r.success)
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id,
            "escalationTraceId": escalation_trace_id,
            "category": "alert_dispatch",
            "escalationCategory": escalation_category,
            "escalationTimestamp": escalation_timestamp or None,
            "eventSeverity": event_severity,
            "status": status,
            "reasonCode": reason,
            "escalation": escalation,
            "route": route_obj,
            "sinks": [r.to_json() for r in results],
            "sinkCount": len(results),
            "dispatchedSinkCount": ok,
            "failedSinkCount": len(results) - ok,
            **extra,
        }
    )


def t_wrapper(now: int, loop_id: str, trace_id: str, message: str | None) -> JSON:
    """T-WRAPPER (null-filtered): dispatch failed inside reconcile."""
    return strip_nulls(
        {
            "timestamp": format_ts(now),
            "loopId": loop_id,
            "traceId": trace_id,
            "category": "alert_dispatch",
            "status": "failed_command",
            "reasonCode": ALERT_DISPATCH_FAILED,
            "message": message or None,
        }
    )


@attrs.frozen
class RunCounts:
    """The counters of one dispatch run (§3.3)."""

    processed: int = 0
    dispatched: int = 0
    skipped: int = 0
    failed: int = 0
    failure_codes: frozenset[str] = frozenset()
    resolves: int = 0
    retried: int = 0
    delivered_from_outbox: int = 0


def dispatch_state(
    *,
    now: int,
    loop_id: str,
    trace_id: str,
    escalations_file: str,
    telemetry_file: str,
    status: str,
    counts: RunCounts,
    offset: int,
    line_count: int,
    position: JSON | None,
    outbox: JSON,
    episodes: Mapping[str, Episode],
) -> JSON:
    """``alert-dispatch-state.json`` (§3.4): the contract keys in order, then ours:
    ``escalationsPosition`` (byte offset + fingerprint of the last consumed line, so the
    next run seeks instead of re-reading), ``resolveCount``, ``outbox`` and, last,
    ``episodes``."""
    return {
        "schemaVersion": "v1",
        "updatedAt": format_ts(now),
        "loopId": loop_id,
        "traceId": trace_id or None,
        "escalationsFile": escalations_file,
        "dispatchTelemetryFile": telemetry_file,
        "status": status,
        "processedCount": counts.processed,
        "dispatchedCount": counts.dispatched,
        "skippedCount": counts.skipped,
        "failedCount": counts.failed,
        "failureReasonCodes": sorted(counts.failure_codes, key=lambda c: c.encode("utf-8")),
        "escalationsLineOffset": offset,
        "escalationsLineCount": line_count,
        "escalationsPosition": position,
        "resolveCount": counts.resolves,
        "outbox": {
            **outbox,
            "retriedCount": counts.retried,
            "deliveredFromOutboxCount": counts.delivered_from_outbox,
        },
        "episodes": episodes_to_json(episodes),
    }


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
    "contract_type_problems",
    "decide",
    "dedup_key_for",
    "delivery_policy",
    "delivery_problems",
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
    "outbox_record",
    "outbox_step",
    "pacing_delay",
    "parse_retry_after",
    "parse_row",
    "redact_escalation",
    "redact_text",
    "resolve_route",
    "route_json",
    "routing_problems",
    "row_outcome",
    "sink_common_problems",
    "sink_missing_secrets",
    "summary_json",
    "summary_status",
    "t_delivery",
    "t_invalid",
    "t_nocat",
    "t_routefail",
    "t_skip",
    "t_wrapper",
    "top_level_problems",
]
