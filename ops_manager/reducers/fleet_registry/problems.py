"""Fleet registry validation: the schema's failures as the contract's messages (``fleet.md`` §1.2).

The registry is checked against ``schema/ops-manager-fleet.registry.schema.json`` (what users
read). :data:`MESSAGES` maps each failure (field, keyword) to the contract's exact message; its
row order IS the contract's order, and where the contract says "first failing of" the rows
share a group and only the first failing row of a group is reported. The few rules a schema
cannot state (unique loop ids, references to declared loops, credentials in URLs, timestamp
ranges and order, the guarded_auto rules relative to ``now``) are the code below the table;
they report through the same table. PURE: takes the parsed document, returns messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from ops_manager.model.validation import FLEET_REGISTRY_SCHEMA, schema_errors
from ops_manager.reducers.fleet_registry._values import (
    CATEGORIES,
    loop_id_problem,
    parse_fleet_ts,
)

_GOV = "policy.autonomous.governance"
_GUARDED = "when policy.mode is guarded_auto"
_R = "policy.autonomous.rollout"
_ANY = "*"
Message = str | Callable[[Any], str]


Row = tuple[str, str, Message, str]


def _row(field: str, message: Message, keyword: str = _ANY, group: str | None = None) -> Row:
    return (field, keyword, message, group or field.replace("[]", ""))


def _m(field: str, says: str, keyword: str = _ANY, group: str | None = None) -> Row:
    """A row whose message is ``<field> <says>`` (``loops[].`` and ``[]`` left out)."""
    shown = field.removeprefix("loops[].").replace("[]", "")
    return _row(field, f"{shown} {says}", keyword, group)


def _loop_id_message(value: Any) -> str:
    return loop_id_problem(value) or "loopId must be a non-empty string"


_NONEMPTY = "must be a non-empty string when present"
_OBJECT = "must be an object when present"
_BOOL = "must be boolean when present"
_NO_CREDENTIALS = "must not embed credentials (name a token with service.tokenEnv)"
_TIMESTAMP = "must be an ISO-8601 timestamp"
_A = "policy.autonomous"
_S = "policy.autonomous.rollout.scope.loopIds"

#: (field, keyword or *, message, group), in the contract's order. ``loops[]`` rows are
#: prefixed ``loops[<i>]: `` and ordered per entry. Keywords ``x-...`` come from the code below.
MESSAGES: list[Row] = [
    _m("schemaVersion", 'must be "v1"'),
    _m("fleetId", "must be a string when present"),
    _m("loops", "must be an array", "type"),
    _m("loops", "must be an array", "required"),
    _m("loops", "must include at least one loop entry", "minItems"),
    _row("loops", "loopId values must be unique", "x-unique", "loops-unique"),
    _row("loops[]", "entry must be an object"),
    _m("loops[].loopId", "must be a non-empty string"),
    _row("loops[].loopId", _loop_id_message, "pattern"),
    _m("loops[].enabled", _BOOL),
    _m("loops[].transport", "must be local or sprite_service"),
    _m("loops[].sprite", _OBJECT),
    _m("loops[].sprite.id", _NONEMPTY),
    _m("loops[].sprite.assignment", "must be a string when present"),
    _m("loops[].sprite.serviceBaseUrl", _NO_CREDENTIALS, "x-credentials"),
    _m("loops[].sprite.serviceBaseUrl", _NONEMPTY),
    _m("loops[].service", _OBJECT),
    _m("loops[].service.baseUrl", _NO_CREDENTIALS, "x-credentials"),
    _m("loops[].service.baseUrl", _NONEMPTY),
    _m("loops[].service.tokenEnv", _NONEMPTY),
    _m(
        "loops[].service.tokenEnv",
        "must be the name of an environment variable "
        "(A-Z, 0-9 and _, not starting with a digit), never the token itself",
        "pattern",
    ),
    _m("loops[].service.retryAttempts", "must be >= 1 when present"),
    _m("loops[].service.retryBackoffSeconds", "must be >= 0 when present"),
    _m("loops[].service.timeoutSeconds", "must be a number > 0 and <= 300 when present"),
    _row(
        "loops[]",
        "sprite_service loops require service.baseUrl or sprite.serviceBaseUrl",
        "x-sprite-url",
        "sprite-url",
    ),
    _m("loops[].metadata", _OBJECT),
    _m("policy", _OBJECT),
    _m("policy.mode", "must be advisory or guarded_auto"),
    _m("policy.noiseControls", _OBJECT),
    _m("policy.noiseControls.dedupeWindowSeconds", "must be an integer >= 0 when present"),
    _m(_A, _OBJECT),
    _m(f"{_A}.allow", _OBJECT),
    _m(f"{_A}.allow.categories", "must be an array when present"),
    _m(f"{_A}.allow.categories[]", "entries must be strings", "type"),
    _m(f"{_A}.allow.categories[]", "contains unsupported categories"),
    _m(f"{_A}.allow.intents", "must be an array when present"),
    _m(f"{_A}.allow.intents[]", "entries must be strings", "type"),
    _m(f"{_A}.allow.intents[]", "contains unsupported intents"),
    _m(f"{_A}.thresholds", _OBJECT),
    _m(f"{_A}.thresholds.minSeverity", "must be a string when present", "type"),
    _m(f"{_A}.thresholds.minSeverity", "must be one of critical, warning, info"),
    _m(f"{_A}.thresholds.minConfidence", "must be a string when present", "type"),
    _m(f"{_A}.thresholds.minConfidence", "must be one of high, medium, low"),
    _m(f"{_A}.safety", _OBJECT),
    *(
        _m(f"{_A}.safety.{key}", "must be an integer >= 0 when present")
        for key in ("maxActionsPerRun", "maxActionsPerLoop", "cooldownSeconds")
    ),
    _m(f"{_A}.safety.killSwitch", _BOOL),
    _m(_GOV, _OBJECT),
    *(_m(f"{_GOV}.{key}", _NONEMPTY) for key in ("actor", "approvalRef", "rationale")),
    *(_m(f"{_GOV}.{key}", f"{_TIMESTAMP} when present") for key in ("changedAt", "reviewBy")),
    _row(_GOV, f"{_GOV}.reviewBy must be after {_GOV}.changedAt", "x-order", "order"),
    _m(_GOV, f"is required {_GUARDED}", "x-guarded", "g"),
    *(
        _m(f"{_GOV}.{key}", f"is required {_GUARDED}", "x-guarded", f"g-{key}")
        for key in ("actor", "approvalRef", "rationale")
    ),
    *(
        _m(f"{_GOV}.{key}", f"{_TIMESTAMP} {_GUARDED}", "x-guarded", f"g-{key}")
        for key in ("changedAt", "reviewBy")
    ),
    _row(_GOV, f"{_GOV}.reviewBy must be after {_GOV}.changedAt {_GUARDED}", "x-g-order", "g-o"),
    _row(_GOV, f"{_GOV}.reviewBy must be in the future {_GUARDED}", "x-g-future", "g-f"),
    _m(_R, _OBJECT),
    _m(f"{_R}.canaryPercent", "must be an integer between 0 and 100 when present"),
    _m(f"{_R}.scope", _OBJECT),
    _m(_S, "must be an array when present", "type"),
    _m(f"{_S}[]", "entries must be strings", "type"),
    _m(f"{_S}[]", "entries must be non-empty strings"),
    _m(_S, "entries must be unique", "uniqueItems"),
    _m(_S, "entries must reference declared loopIds", "x-declared"),
    _m(f"{_R}.selector", _OBJECT),
    _m(f"{_R}.selector.salt", "must be a string when present", "type"),
    _m(f"{_R}.selector.salt", "must be non-empty when present"),
    _m(f"{_R}.pause", _OBJECT),
    _m(f"{_R}.pause.manual", _BOOL),
    _m(f"{_R}.autoPause", _OBJECT),
    _m(f"{_R}.autoPause.enabled", _BOOL),
    *(
        _m(f"{_R}.autoPause.{key}", "must be an integer >= 1 when present")
        for key in ("lookbackExecutions", "minSampleSize")
    ),
    *(
        _m(f"{_R}.autoPause.{key}", "must be a number between 0 and 1 when present")
        for key in ("ambiguityRateThreshold", "failureRateThreshold")
    ),
]
#: where each (field, keyword) sits in :data:`MESSAGES`; ``*`` rows catch any other keyword
_INDEX = {(row[0], row[1]): rank for rank, row in enumerate(MESSAGES)}
_LOOPS_RANK = _INDEX[("loops[]", _ANY)]
#: problem = (field, keyword, instance, loop index or -1)
_Problem = tuple[str, str, Any, int]


def _field(path: tuple[str | int, ...]) -> str:
    """The table's name of an instance path: ``("loops", 0, "sprite")`` -> ``loops[].sprite``."""
    return (
        ".".join(p for p in path if isinstance(p, str))
        if not any(isinstance(p, int) for p in path)
        else "".join(f".{p}" if isinstance(p, str) else "[]" for p in path)[1:]
    )


def _drop_nulls(value: Any) -> Any:
    # "present" means not null (DECISIONS 6.1): a null member is an absent one
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _has_credentials(url: Any) -> bool:
    try:
        return isinstance(url, str) and "@" in urlsplit(url).netloc
    except ValueError:
        return False


def _loop_rules(index: int, entry: dict[str, Any]) -> Iterator[_Problem]:
    sprite, service = _obj(entry.get("sprite")), _obj(entry.get("service"))
    for field, value in (
        ("sprite.serviceBaseUrl", sprite.get("serviceBaseUrl")),
        ("service.baseUrl", service.get("baseUrl")),
    ):
        if _has_credentials(value):
            yield f"loops[].{field}", "x-credentials", value, index
    base_url = service.get("baseUrl", sprite.get("serviceBaseUrl"))
    if entry.get("transport") == "sprite_service" and not (isinstance(base_url, str) and base_url):
        yield "loops[]", "x-sprite-url", entry, index


def _governance_rules(mode: Any, raw: Any, now: int) -> Iterator[_Problem]:
    gov = _obj(raw)
    for key in ("changedAt", "reviewBy"):
        if key in gov and parse_fleet_ts(gov[key]) is None:
            yield f"{_GOV}.{key}", "pattern", gov[key], -1  # a date out of range
    changed, review = parse_fleet_ts(gov.get("changedAt")), parse_fleet_ts(gov.get("reviewBy"))
    ordered_badly = changed is not None and review is not None and review <= changed
    if ordered_badly:
        yield _GOV, "x-order", gov, -1
    if mode != "guarded_auto":
        return
    if not isinstance(raw, dict):
        yield _GOV, "x-guarded", raw, -1
    for key in ("actor", "approvalRef", "rationale"):
        if not (isinstance(gov.get(key), str) and gov[key]):
            yield f"{_GOV}.{key}", "x-guarded", gov.get(key), -1
    for key, value in (("changedAt", changed), ("reviewBy", review)):
        if value is None:
            yield f"{_GOV}.{key}", "x-guarded", gov.get(key), -1
    if ordered_badly:
        yield _GOV, "x-g-order", gov, -1
    if review is not None and review <= now:
        yield _GOV, "x-g-future", gov, -1


def _suppression_problems(value: Any, declared: set[str]) -> list[str]:
    """§1.2 item 42 (keys are loop ids, so a per-key rule the schema cannot name)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return ["policy.suppressions must be an object mapping loopId to category arrays"]
    out: list[str] = []
    for key, categories in value.items():
        field = f"policy.suppressions.{_show(key)}"
        if key != "*" and key not in declared:
            out.append(f"{field} key must reference a declared loopId or *")
        elif not isinstance(categories, list):
            out.append(f"{field} must be an array")
        elif not all(isinstance(item, str) for item in categories):
            out.append(f"{field} entries must be strings")
        elif any(item not in CATEGORIES for item in categories):
            out.append(f"{field} contains unknown categories")
    return out


def _show(text: str) -> str:
    """A key as it appears inside a one-line message (control characters escaped)."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        return text.encode("unicode_escape").decode("ascii")
    return text


def _code_rules(doc: dict[str, Any], now: int) -> Iterator[_Problem]:
    loops = doc.get("loops")
    entries = loops if isinstance(loops, list) else []
    ids = [e["loopId"] for e in entries if isinstance(e, dict) and isinstance(e.get("loopId"), str)]
    if len(set(ids)) != len(ids):
        yield "loops", "x-unique", ids, -1
    declared = set(ids_of(doc))
    for index, entry in enumerate(entries):
        if isinstance(entry, dict):
            yield from _loop_rules(index, entry)
    policy = _obj(doc.get("policy"))
    autonomous = _obj(policy.get("autonomous"))
    yield from _governance_rules(policy.get("mode"), autonomous.get("governance"), now)
    scope = _obj(_obj(autonomous.get("rollout")).get("scope")).get("loopIds")
    if isinstance(scope, list) and any(isinstance(i, str) and i not in declared for i in scope):
        yield f"{_R}.scope.loopIds", "x-declared", scope, -1


def _schema_rules(doc: dict[str, Any]) -> Iterator[_Problem]:
    for error in schema_errors(FLEET_REGISTRY_SCHEMA, doc):
        # the conditional rules (guarded_auto, sprite_service) are restated in code above
        if error.conditional or error.path[:2] == ("policy", "suppressions"):
            continue
        index = error.path[1] if error.path[:1] == ("loops",) and len(error.path) > 1 else -1
        yield _field(error.path), error.validator, error.instance, int(index)


def validate_registry(doc: object, *, now: int, schema_known_valid: bool = False) -> list[str]:
    """Every problem of a parsed registry document, in the order of ``fleet.md`` §1.2.

    An empty list means the document is valid. ``now`` (epoch seconds) is the reference for
    the guarded_auto ``reviewBy must be in the future`` check. ``schema_known_valid`` (the
    caller remembers that this very document raised no schema problem before) skips the
    JSON Schema pass; the rules in code always run. Never raises.
    """
    if not isinstance(doc, dict):
        return ["registry must be a JSON object"]
    present = _drop_nulls(doc)
    best: dict[tuple[str, int], tuple[int, str]] = {}
    schema = () if schema_known_valid else _schema_rules(present)
    for field, keyword, instance, index in (*schema, *_code_rules(present, now)):
        rank = _INDEX.get((field, keyword), _INDEX.get((field, _ANY)))
        if rank is None:  # a schema rule without a contract message: still fail closed
            rank, message = len(MESSAGES), f"{field} is invalid ({keyword})"
        else:
            text = MESSAGES[rank][2]
            message = text if isinstance(text, str) else text(instance)
        if index >= 0:
            message = f"loops[{index}]: {message}"
        group = (MESSAGES[rank][3] if rank < len(MESSAGES) else message, index)
        if group not in best or rank < best[group][0]:
            best[group] = (rank, message)

    def order(item: tuple[tuple[str, int], tuple[int, str]]) -> tuple[int, int, int]:
        (_, index), (rank, _) = item
        return (_LOOPS_RANK if index >= 0 else rank, index, rank)

    out = [message for _, (_, message) in sorted(best.items(), key=order)]
    suppressions = _obj(doc.get("policy")).get("suppressions")
    return out + _suppression_problems(suppressions, set(ids_of(doc)))


def ids_of(doc: dict[str, Any]) -> list[str]:
    """The non-empty string loop ids a registry document declares (for reference checks)."""
    loops = doc.get("loops")
    entries = loops if isinstance(loops, list) else []
    return [
        e["loopId"]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("loopId"), str) and e["loopId"]
    ]
