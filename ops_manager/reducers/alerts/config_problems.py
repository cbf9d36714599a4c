"""Alert sink config checks (``alerts.md`` §2.3): the schema's failures as the resolver's messages.

The config is validated against ``schema/ops-manager-alert-sinks.config.schema.json`` (what
users read). The tables below map each failure (field, keyword) to the resolver's message, in
the order the resolver reports them; the contract runs the checks in three phases (top level,
then sinks, then routing), each with its own error fragment, so there is one table per phase.
What a schema cannot say stays as code next to the tables: routing names existing sinks. PURE.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ops_manager.model._json import dumps_compact
from ops_manager.model.validation import ALERT_SINKS_SCHEMA, SchemaError, schema_errors
from ops_manager.reducers.alerts._vocab import TYPE_CONTRACTS

_SEVERITY = "must be one of: info, warning, critical"
_ANY = "*"

#: top-level phase: (path, keyword or *) -> message, in the resolver's order
TOP_LEVEL: dict[tuple[tuple[str, ...], str], str] = {
    (("schemaVersion",), _ANY): 'schemaVersion must be "v1"',
    (("defaultMinSeverity",), _ANY): f"defaultMinSeverity {_SEVERITY}",
    (("sinks",), _ANY): "sinks must be an object with at least one sink",
    (("routing",), _ANY): "routing must be an object",
    (("routing", "defaultSinks"), _ANY): "routing.defaultSinks must be an array",
    (("routing", "categorySeverity"), _ANY): "routing.categorySeverity must be an object",
    (("routing", "routes"), _ANY): "routing.routes must be an array",
    (("delivery",), _ANY): "delivery must be an object",
}
#: sink phase, per sink: field (or ``""`` for the entry itself) -> message after ``sink '<id>'``
SINK_COMMON = {
    "": " must be an object",
    "enabled": ": enabled must be true or false",
    "type": ": type must be a non-empty string",
    "timeoutSeconds": ": timeoutSeconds must be a number from 1 to 120",
}


def _top_level_keys(
    cfg: dict[str, Any], errors: list[SchemaError]
) -> Iterator[tuple[int, int, str]]:
    """(rank, position, message) of every top-level failure; deeper ones wait for later phases."""
    order = list(TOP_LEVEL)
    delivery = cfg.get("delivery")
    keys = list(delivery) if isinstance(delivery, dict) else []
    for error in errors:
        if error.path[:1] == ("delivery",) and len(error.path) == 2:
            # delivery problems follow the keys' order in the file, as the resolver reads them
            yield len(order), keys.index(error.path[1]), _delivery_message(error)
            continue
        key = (tuple(str(p) for p in error.path), _ANY)
        if key in TOP_LEVEL:
            yield order.index(key), 0, TOP_LEVEL[key]


def _delivery_message(error: SchemaError) -> str:
    key = str(error.path[1])
    if error.validator == "additionalProperties":
        return f"delivery.{key} is not a known setting"
    spec = error.schema
    kind = "an integer" if spec.get("type") == "integer" else "a number"
    return f"delivery.{key} must be {kind} from {spec['minimum']:g} to {spec['maximum']:g}"


def top_level_problems(cfg: object, errors: list[SchemaError]) -> list[str]:
    """Why ``cfg`` fails the top-level shape check (empty when it passes)."""
    if not isinstance(cfg, dict):
        return ["the config is not a JSON object"]
    return list(dict.fromkeys(m for _, _, m in sorted(set(_top_level_keys(cfg, errors)))))


def sink_problems(sink_id: str, errors: list[SchemaError]) -> tuple[list[str], list[str]]:
    """(common, type-specific) problems of one sink; type checks count only if common pass."""
    common: dict[str, str] = {}
    typed: dict[int, str] = {}
    for error in errors:
        if error.path[:2] != ("sinks", sink_id):
            continue
        field = str(error.path[2]) if len(error.path) > 2 else ""
        if field in SINK_COMMON and len(error.path) <= 3 and not error.conditional:
            common.setdefault(field, f"sink '{sink_id}'{SINK_COMMON[field]}")
        elif error.conditional and len(error.path) > 2:
            rank, message = _typed_message(sink_id, field)
            typed.setdefault(rank, message)
    ordered = [common[f] for f in SINK_COMMON if f in common]
    return ordered, [typed[r] for r in sorted(typed)]


def _typed_message(sink_id: str, field: str) -> tuple[int, str]:
    if field == "headers":
        return 99, f"sink '{sink_id}': headers must be an object of string values"
    # env var fields in the contract's order: the target, then the optional ones
    order = [n for c in TYPE_CONTRACTS.values() for n in (c.target_env, *c.optional_envs)]
    rank = order.index(field) if field in order else 98
    return rank, f"sink '{sink_id}': {field} must name an env var (^[A-Z_][A-Z0-9_]*$)"


def config_errors(cfg: object) -> list[SchemaError]:
    """Every schema failure of a parsed config (the input of the phase functions)."""
    return list(schema_errors(ALERT_SINKS_SCHEMA, cfg))


def routing_problems(cfg: Mapping[str, Any], errors: list[SchemaError]) -> list[str]:
    """Problems with ``routing`` once the top level and the sinks passed (§2.3)."""
    sinks = cfg["sinks"]
    routing = cfg["routing"]
    shape = {
        (e.path[2], str(e.path[3]) if len(e.path) > 3 else "")
        for e in errors
        if e.path[:2] == ("routing", "routes") and len(e.path) > 2
    }
    out = [
        f"routing.defaultSinks names an unknown sink: {_show(s)}"
        for s in routing["defaultSinks"]
        if not isinstance(s, str) or s not in sinks
    ]
    for index, route in enumerate(routing.get("routes") or []):
        where = f"routing.routes[{index}]"
        if (index, "") in shape and not isinstance(route, dict):
            out.append(f"{where} must be an object")
            continue
        if (index, "category") in shape:
            out.append(f"{where}.category must be a non-empty string")
        if (index, "enabled") in shape:
            out.append(f"{where}.enabled must be true or false")
        if (index, "minSeverity") in shape:
            out.append(f"{where}.minSeverity {_SEVERITY}")
        route_sinks = route.get("sinks")
        if isinstance(route_sinks, list):
            out += [
                f"{where}.sinks names an unknown sink: {_show(s)}"
                for s in route_sinks
                if not isinstance(s, str) or s not in sinks
            ]
        elif (index, "sinks") in shape:
            out.append(f"{where}.sinks must be an array")
    out += [
        f"routing.categorySeverity.{category} {_SEVERITY}"
        for category in routing["categorySeverity"]
        if ("routing", "categorySeverity", category) in {e.path for e in errors}
    ]
    return out


def _show(value: object) -> str:
    return dumps_compact(value) if not isinstance(value, str) else value
