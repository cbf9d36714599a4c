"""Fleet registry validation: every problem, in the contract's order (``fleet.md`` §1.2)."""

from __future__ import annotations

import re
from typing import Any

from ops_manager.reducers.fleet_registry._values import (
    CATEGORIES,
    CONFIDENCES,
    INTENTS,
    MAX_TIMEOUT_SECONDS,
    POLICY_MODES,
    SCHEMA_VERSION,
    SEVERITIES,
    TRANSPORTS,
    _default,
    _first_present,
    _has_credentials,
    _is_int,
    _is_num,
    _nonempty_str,
    _obj,
    _present,
    _show,
    loop_id_problem,
    parse_fleet_ts,
)

_GUARDED = "when policy.mode is guarded_auto"
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


# --- validation ---------------------------------------------------------------------------


def _declared_loop_ids(loops: Any) -> set[str]:
    if not isinstance(loops, list):
        return set()
    return {
        entry["loopId"]
        for entry in loops
        if isinstance(entry, dict) and _nonempty_str(entry.get("loopId"))
    }


def _loop_problems(index: int, entry: Any) -> list[str]:
    """The messages of §1.2 item 6 for one loop entry (prefixed ``loops[<i>]: ``)."""
    if not isinstance(entry, dict):
        return [f"loops[{index}]: entry must be an object"]
    out: list[str] = []
    loop_id = entry.get("loopId")
    if not _nonempty_str(loop_id):
        out.append("loopId must be a non-empty string")
    else:
        problem = loop_id_problem(loop_id)
        if problem is not None:
            out.append(problem)
    if _present(entry.get("enabled")) and not isinstance(entry.get("enabled"), bool):
        out.append("enabled must be boolean when present")
    transport = entry.get("transport")
    if _present(transport) and not (isinstance(transport, str) and transport in TRANSPORTS):
        out.append("transport must be local or sprite_service")

    sprite_raw = entry.get("sprite")
    if _present(sprite_raw) and not isinstance(sprite_raw, dict):
        out.append("sprite must be an object when present")
    sprite = _obj(sprite_raw)
    if _present(sprite.get("id")) and not _nonempty_str(sprite.get("id")):
        out.append("sprite.id must be a non-empty string when present")
    if _present(sprite.get("assignment")) and not isinstance(sprite.get("assignment"), str):
        out.append("sprite.assignment must be a string when present")
    out += _url_problems("sprite.serviceBaseUrl", sprite.get("serviceBaseUrl"))

    service_raw = entry.get("service")
    if _present(service_raw) and not isinstance(service_raw, dict):
        out.append("service must be an object when present")
    service = _obj(service_raw)
    out += _url_problems("service.baseUrl", service.get("baseUrl"))
    token_env = service.get("tokenEnv")
    if _present(token_env):
        if not _nonempty_str(token_env):
            out.append("service.tokenEnv must be a non-empty string when present")
        elif not _ENV_NAME.fullmatch(token_env):
            out.append(
                "service.tokenEnv must be the name of an environment variable "
                "(A-Z, 0-9 and _, not starting with a digit), never the token itself"
            )
    attempts = service.get("retryAttempts")
    if _present(attempts) and not (_is_num(attempts) and attempts >= 1):
        out.append("service.retryAttempts must be >= 1 when present")
    backoff = service.get("retryBackoffSeconds")
    if _present(backoff) and not (_is_num(backoff) and backoff >= 0):
        out.append("service.retryBackoffSeconds must be >= 0 when present")
    timeout = service.get("timeoutSeconds")
    if _present(timeout) and not (_is_num(timeout) and 0 < timeout <= MAX_TIMEOUT_SECONDS):
        out.append(
            f"service.timeoutSeconds must be a number > 0 and <= {MAX_TIMEOUT_SECONDS} when present"
        )
    if _default(transport, "local") == "sprite_service":
        base_url = _first_present(service.get("baseUrl"), sprite.get("serviceBaseUrl"))
        if not _nonempty_str(base_url):
            out.append("sprite_service loops require service.baseUrl or sprite.serviceBaseUrl")

    if _present(entry.get("metadata")) and not isinstance(entry.get("metadata"), dict):
        out.append("metadata must be an object when present")
    return [f"loops[{index}]: {message}" for message in out]


def _url_problems(field: str, value: Any) -> list[str]:
    if not _present(value):
        return []
    if not _nonempty_str(value):
        return [f"{field} must be a non-empty string when present"]
    if _has_credentials(value):
        return [f"{field} must not embed credentials (name a token with service.tokenEnv)"]
    return []


def _string_list_problems(field: str, value: Any, allowed: tuple[str, ...], what: str) -> list[str]:
    """First failing of: array / entries strings / entries in ``allowed`` (§1.2 items 13-14)."""
    if not _present(value):
        return []
    if not isinstance(value, list):
        return [f"{field} must be an array when present"]
    if not all(isinstance(item, str) for item in value):
        return [f"{field} entries must be strings"]
    if any(item not in allowed for item in value):
        return [f"{field} contains unsupported {what}"]
    return []


def _enum_problems(field: str, value: Any, allowed: tuple[str, ...]) -> list[str]:
    if not _present(value):
        return []
    if not isinstance(value, str):
        return [f"{field} must be a string when present"]
    if value not in allowed:
        return [f"{field} must be one of {', '.join(allowed)}"]
    return []


def _object_problem(field: str, value: Any) -> list[str]:
    if _present(value) and not isinstance(value, dict):
        return [f"{field} must be an object when present"]
    return []


def _int_at_least(field: str, value: Any, low: int) -> list[str]:
    if _present(value) and not (_is_int(value) and value >= low):
        return [f"{field} must be an integer >= {low} when present"]
    return []


def _bool_problem(field: str, value: Any) -> list[str]:
    if _present(value) and not isinstance(value, bool):
        return [f"{field} must be boolean when present"]
    return []


def _rate_problem(field: str, value: Any) -> list[str]:
    if _present(value) and not (_is_num(value) and 0 <= value <= 1):
        return [f"{field} must be a number between 0 and 1 when present"]
    return []


def _governance_problems(mode: Any, governance_raw: Any, now: int) -> list[str]:
    """§1.2 items 23-27."""
    base = "policy.autonomous.governance"
    out = _object_problem(base, governance_raw)
    gov = _obj(governance_raw)
    text_keys = ("actor", "approvalRef", "rationale")
    for key in text_keys:
        if _present(gov.get(key)) and not _nonempty_str(gov.get(key)):
            out.append(f"{base}.{key} must be a non-empty string when present")
    for key in ("changedAt", "reviewBy"):
        if _present(gov.get(key)) and parse_fleet_ts(gov.get(key)) is None:
            out.append(f"{base}.{key} must be an ISO-8601 timestamp when present")
    changed = parse_fleet_ts(gov.get("changedAt"))
    review = parse_fleet_ts(gov.get("reviewBy"))
    ordered_badly = changed is not None and review is not None and review <= changed
    if ordered_badly:
        out.append(f"{base}.reviewBy must be after {base}.changedAt")
    if mode == "guarded_auto":
        if not isinstance(governance_raw, dict):
            out.append(f"{base} is required {_GUARDED}")
        for key in text_keys:
            if not _nonempty_str(gov.get(key)):
                out.append(f"{base}.{key} is required {_GUARDED}")
        if changed is None:
            out.append(f"{base}.changedAt must be an ISO-8601 timestamp {_GUARDED}")
        if review is None:
            out.append(f"{base}.reviewBy must be an ISO-8601 timestamp {_GUARDED}")
        if ordered_badly:
            out.append(f"{base}.reviewBy must be after {base}.changedAt {_GUARDED}")
        if review is not None and review <= now:
            out.append(f"{base}.reviewBy must be in the future {_GUARDED}")
    return out


def _scope_loop_ids_problems(value: Any, declared: set[str]) -> list[str]:
    """§1.2 item 31: first failing check of ``rollout.scope.loopIds``."""
    field = "policy.autonomous.rollout.scope.loopIds"
    if not _present(value):
        return []
    if not isinstance(value, list):
        return [f"{field} must be an array when present"]
    if not all(isinstance(item, str) for item in value):
        return [f"{field} entries must be strings"]
    if any(item == "" for item in value):
        return [f"{field} entries must be non-empty strings"]
    if len(set(value)) != len(value):
        return [f"{field} entries must be unique"]
    if any(item not in declared for item in value):
        return [f"{field} entries must reference declared loopIds"]
    return []


def _rollout_problems(rollout_raw: Any, declared: set[str]) -> list[str]:
    """§1.2 items 28-41."""
    base = "policy.autonomous.rollout"
    out = _object_problem(base, rollout_raw)
    rollout = _obj(rollout_raw)
    canary = rollout.get("canaryPercent")
    if _present(canary) and not (_is_int(canary) and 0 <= canary <= 100):
        out.append(f"{base}.canaryPercent must be an integer between 0 and 100 when present")
    out += _object_problem(f"{base}.scope", rollout.get("scope"))
    out += _scope_loop_ids_problems(_obj(rollout.get("scope")).get("loopIds"), declared)
    out += _object_problem(f"{base}.selector", rollout.get("selector"))
    salt = _obj(rollout.get("selector")).get("salt")
    if _present(salt):
        if not isinstance(salt, str):
            out.append(f"{base}.selector.salt must be a string when present")
        elif salt == "":
            out.append(f"{base}.selector.salt must be non-empty when present")
    out += _object_problem(f"{base}.pause", rollout.get("pause"))
    out += _bool_problem(f"{base}.pause.manual", _obj(rollout.get("pause")).get("manual"))
    out += _object_problem(f"{base}.autoPause", rollout.get("autoPause"))
    auto = _obj(rollout.get("autoPause"))
    out += _bool_problem(f"{base}.autoPause.enabled", auto.get("enabled"))
    out += _int_at_least(f"{base}.autoPause.lookbackExecutions", auto.get("lookbackExecutions"), 1)
    out += _int_at_least(f"{base}.autoPause.minSampleSize", auto.get("minSampleSize"), 1)
    for key in ("ambiguityRateThreshold", "failureRateThreshold"):
        out += _rate_problem(f"{base}.autoPause.{key}", auto.get(key))
    return out


def _suppression_problems(value: Any, declared: set[str]) -> list[str]:
    """§1.2 item 42."""
    if not _present(value):
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


def _policy_problems(policy_raw: Any, declared: set[str], now: int) -> list[str]:
    """§1.2 items 7-42."""
    out = _object_problem("policy", policy_raw)
    policy = _obj(policy_raw)
    mode = _default(policy.get("mode"), "advisory")
    if not (isinstance(mode, str) and mode in POLICY_MODES):
        out.append("policy.mode must be advisory or guarded_auto")
    out += _object_problem("policy.noiseControls", policy.get("noiseControls"))
    noise = _obj(policy.get("noiseControls"))
    dedupe = noise.get("dedupeWindowSeconds")
    out += _int_at_least("policy.noiseControls.dedupeWindowSeconds", dedupe, 0)

    base = "policy.autonomous"
    out += _object_problem(base, policy.get("autonomous"))
    autonomous = _obj(policy.get("autonomous"))
    out += _object_problem(f"{base}.allow", autonomous.get("allow"))
    allow = _obj(autonomous.get("allow"))
    out += _string_list_problems(
        f"{base}.allow.categories", allow.get("categories"), CATEGORIES, "categories"
    )
    out += _string_list_problems(f"{base}.allow.intents", allow.get("intents"), INTENTS, "intents")
    out += _object_problem(f"{base}.thresholds", autonomous.get("thresholds"))
    thresholds = _obj(autonomous.get("thresholds"))
    out += _enum_problems(
        f"{base}.thresholds.minSeverity", thresholds.get("minSeverity"), SEVERITIES
    )
    out += _enum_problems(
        f"{base}.thresholds.minConfidence", thresholds.get("minConfidence"), CONFIDENCES
    )
    out += _object_problem(f"{base}.safety", autonomous.get("safety"))
    safety = _obj(autonomous.get("safety"))
    for key in ("maxActionsPerRun", "maxActionsPerLoop", "cooldownSeconds"):
        out += _int_at_least(f"{base}.safety.{key}", safety.get(key), 0)
    out += _bool_problem(f"{base}.safety.killSwitch", safety.get("killSwitch"))
    out += _governance_problems(mode, autonomous.get("governance"), now)
    out += _rollout_problems(autonomous.get("rollout"), declared)
    out += _suppression_problems(policy.get("suppressions"), declared)
    return out


def validate_registry(doc: object, *, now: int) -> list[str]:
    """Every problem of a parsed registry document, in the order of ``fleet.md`` §1.2.

    An empty list means the document is valid. ``now`` (epoch seconds) is the reference for
    the guarded_auto ``reviewBy must be in the future`` check. Never raises.
    """
    if not isinstance(doc, dict):
        return ["registry must be a JSON object"]
    out: list[str] = []
    if doc.get("schemaVersion") != SCHEMA_VERSION:
        out.append('schemaVersion must be "v1"')
    if _present(doc.get("fleetId")) and not isinstance(doc.get("fleetId"), str):
        out.append("fleetId must be a string when present")
    loops = doc.get("loops")
    if not isinstance(loops, list):
        out.append("loops must be an array")
    elif not loops:
        out.append("loops must include at least one loop entry")
    if isinstance(loops, list):
        ids = [
            e["loopId"] for e in loops if isinstance(e, dict) and isinstance(e.get("loopId"), str)
        ]
        if len(set(ids)) != len(ids):
            out.append("loopId values must be unique")
        for index, entry in enumerate(loops):
            out += _loop_problems(index, entry)
    out += _policy_problems(doc.get("policy"), _declared_loop_ids(loops), now)
    return out
