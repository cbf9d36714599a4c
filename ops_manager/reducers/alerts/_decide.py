"""Routing (§2.7) and escalation-row decisions (§3.3): per-row and per-sink outcomes. PURE."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ops_manager.model._json import strip_nulls
from ops_manager.model.errors import OpsError
from ops_manager.reducers.alerts._config import (
    AlertConfig,
    SinkDef,
)
from ops_manager.reducers.alerts._vocab import (
    DISPATCH_FAILED,
    ERR_SEVERITY,
    INVALID_ESCALATION_JSON,
    JSON,
    MISSING_ESCALATION_CATEGORY,
    MISSING_SECRET,
    NO_DISPATCHABLE_SINKS,
    PARTIAL_DISPATCH_FAILURE,
    ROUTE_RESOLUTION_FAILED,
    SEVERITY_BELOW_MIN,
    SEVERITY_RANK,
    is_severity,
)

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


def nonempty_str(value: object) -> str | None:
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
    category = nonempty_str(value.get("category"))
    severity = value.get("severity")
    return EscalationRow(
        line=line,
        raw=raw,
        kind=ROW_OK if category else ROW_NO_CATEGORY,
        escalation=value,
        category=category,
        timestamp=value.get("timestamp") if isinstance(value.get("timestamp"), str) else None,
        loop_id=nonempty_str(value.get("loopId")),
        trace_id=nonempty_str(value.get("traceId")),
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
