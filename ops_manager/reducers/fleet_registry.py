"""Fleet registry: fail-closed validation and normalisation (``fleet.md`` §1). PURE.

:func:`validate_registry` returns every problem of a parsed registry document, as the
contract's messages in the contract's order (§1.2). :func:`normalize_registry` validates,
then builds the normalised registry (§1.3) every other fleet command consumes, or raises.
Nothing here reads a file or the clock: the shell parses the document and passes ``now``.

Differences from upstream (DECISIONS.md; listed in ``docs/compatibility.md``):

* "present" means "not ``null`` / missing": ``false`` is a value, not an absent key (upstream's
  jq ``//`` treated it as absent). So ``enabled: false`` really disables a loop and
  ``autoPause.enabled: false`` really disables auto-pause (6.1/6.2), and ``transport: false``
  is reported instead of silently defaulting to ``local``.
* A value of the wrong shape anywhere gets the friendly ``... must be ...`` message for that
  field; upstream crashed with a jq error (exit 5) for many of them (6.3).
* Additional checks, each with its own message: loop ids must be a single safe path
  component and not the reserved ``fleet``; ``service.tokenEnv`` must be an environment
  variable *name*; ``service.baseUrl`` / ``sprite.serviceBaseUrl`` must be non-empty strings
  without embedded credentials; ``sprite.assignment`` must be a string.
* Integral numbers are normalised to integers (``40.0`` -> ``40``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from ops_manager.errors import OpsError

SCHEMA_VERSION = "v1"
DEFAULT_FLEET_ID = "default"
TRANSPORTS = ("local", "sprite_service")
POLICY_MODES = ("advisory", "guarded_auto")
CATEGORIES = ("reconcile_failed", "health_critical", "health_degraded")
INTENTS = ("cancel",)
SEVERITIES = ("critical", "warning", "info")
CONFIDENCES = ("high", "medium", "low")
#: loop ids that would make a loop's ``OPS`` directory collide with the fleet directory
RESERVED_LOOP_IDS = ("fleet",)

DEFAULT_RETRY_ATTEMPTS = 3
DEFAULT_RETRY_BACKOFF_SECONDS = 1
DEFAULT_DEDUPE_WINDOW_SECONDS = 300
DEFAULT_ALLOW_CATEGORIES = ("reconcile_failed", "health_critical")
DEFAULT_ALLOW_INTENTS = ("cancel",)
DEFAULT_MIN_SEVERITY = "critical"
DEFAULT_MIN_CONFIDENCE = "high"
DEFAULT_MAX_ACTIONS_PER_RUN = 1
DEFAULT_MAX_ACTIONS_PER_LOOP = 1
DEFAULT_COOLDOWN_SECONDS = 300
DEFAULT_CANARY_PERCENT = 100
DEFAULT_SELECTOR_SALT = "fleet-autonomous-rollout-v1"
DEFAULT_LOOKBACK_EXECUTIONS = 5
DEFAULT_MIN_SAMPLE_SIZE = 3
DEFAULT_AMBIGUITY_RATE_THRESHOLD = 0.4
DEFAULT_FAILURE_RATE_THRESHOLD = 0.4

_GUARDED = "when policy.mode is guarded_auto"
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_FLEET_TS = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})T([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})Z[ \t\n\r\f\v]*"
)


class RegistryValidationError(OpsError):
    """The registry parsed but failed validation (exit 1).

    ``str(err)`` is the contract's report: ``invalid fleet registry: <path>`` followed by one
    `` - <message>`` line per problem; ``problems`` holds the bare messages in order.
    """

    def __init__(self, source_file: str, problems: list[str]) -> None:
        lines = "".join(f"\n - {problem}" for problem in problems)
        super().__init__(f"invalid fleet registry: {source_file}{lines}")
        self.source_file = source_file
        self.problems = list(problems)


# --- small value predicates ---------------------------------------------------------------


def _present(value: Any) -> bool:
    return value is not None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_num(value: Any) -> TypeGuard[int | float]:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _is_int(value: Any) -> TypeGuard[int | float]:
    return _is_num(value) and (isinstance(value, int) or float(value).is_integer())


def _nonempty_str(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value != ""


def _canon(value: Any) -> Any:
    """Integral floats as ints (``40.0`` -> ``40``); anything else unchanged."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _default(value: Any, fallback: Any) -> Any:
    """``value`` unless it is absent (``None``): ``false``/``0``/``""`` are values."""
    return fallback if value is None else value


def _first_present(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _show(text: str) -> str:
    """A key as it appears inside a one-line message (control characters escaped)."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        return text.encode("unicode_escape").decode("ascii")
    return text


def loop_id_problem(loop_id: str) -> str | None:
    """Why ``loop_id`` cannot name a loop directory, or ``None`` if it can.

    Same rule as :func:`ops_manager.store.validate_loop_id` (single path component: no
    ``/``, ``\\``, NUL or control characters, not ``.``/``..``), plus the reserved ``fleet``.
    """
    if (
        loop_id in (".", "..")
        or any(ch in loop_id for ch in ("/", "\\"))
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in loop_id)
    ):
        return (
            "loopId must be a single path component "
            "(no '/', '\\', NUL or control characters, not '.' or '..')"
        )
    if loop_id in RESERVED_LOOP_IDS:
        return (
            f"loopId {loop_id!r} is reserved (its artifacts would collide with the fleet directory)"
        )
    return None


def _has_credentials(url: str) -> bool:
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return False
    return "@" in netloc


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year; day may overflow)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_fleet_ts(value: Any) -> int | None:
    """Epoch seconds of a fleet timestamp, or ``None`` if it is not one (``fleet.md`` §0.3).

    Only ``YYYY-MM-DDTHH:MM:SSZ`` is accepted, with upstream's (glibc ``strptime``)
    leniencies: 1-2 digit fields, trailing whitespace, a day past the month's end (rolls over,
    ``2026-02-30`` is Mar 2) and seconds up to 61. No fractions, offsets or lower-case ``t``/``z``.
    """
    if not isinstance(value, str):
        return None
    match = _FLEET_TS.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 61):
        return None
    days = _days_from_civil(year, month, 1) + day - 1
    return days * 86400 + hour * 3600 + minute * 60 + second


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


# --- normalisation ------------------------------------------------------------------------


def _drop_nulls(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if value is not None}


def normalize_loop(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One validated loop entry in normalised form (§1.3; unknown keys dropped)."""
    sprite = _obj(entry.get("sprite"))
    service = _obj(entry.get("service"))
    enabled = entry.get("enabled")
    return {
        "loopId": entry["loopId"],
        "enabled": enabled if isinstance(enabled, bool) else True,
        "transport": _default(entry.get("transport"), "local"),
        "sprite": _drop_nulls(
            {
                "id": sprite.get("id"),
                "assignment": sprite.get("assignment"),
                "serviceBaseUrl": _first_present(
                    sprite.get("serviceBaseUrl"), service.get("baseUrl")
                ),
            }
        ),
        "service": _drop_nulls(
            {
                "baseUrl": _first_present(service.get("baseUrl"), sprite.get("serviceBaseUrl")),
                "tokenEnv": service.get("tokenEnv"),
                "retryAttempts": _canon(
                    _default(service.get("retryAttempts"), DEFAULT_RETRY_ATTEMPTS)
                ),
                "retryBackoffSeconds": _canon(
                    _default(service.get("retryBackoffSeconds"), DEFAULT_RETRY_BACKOFF_SECONDS)
                ),
            }
        ),
        "metadata": _default(entry.get("metadata"), {}),
    }


def _normalize_governance(gov: Mapping[str, Any]) -> dict[str, Any]:
    out = _drop_nulls(
        {
            key: gov.get(key)
            for key in ("actor", "approvalRef", "rationale", "changedAt", "reviewBy")
        }
    )
    changed = parse_fleet_ts(gov.get("changedAt"))
    review = parse_fleet_ts(gov.get("reviewBy"))
    if changed is not None and review is not None:
        out["reviewWindowDays"] = (review - changed) // 86400
    return out


def normalize_policy(policy_raw: Any) -> dict[str, Any]:
    """The normalised ``policy`` object of a validated registry (§1.3)."""
    policy = _obj(policy_raw)
    mode = _default(policy.get("mode"), "advisory")
    noise = _obj(policy.get("noiseControls"))
    autonomous = _obj(policy.get("autonomous"))
    allow = _obj(autonomous.get("allow"))
    thresholds = _obj(autonomous.get("thresholds"))
    safety = _obj(autonomous.get("safety"))
    rollout = _obj(autonomous.get("rollout"))
    auto = _obj(rollout.get("autoPause"))
    auto_enabled = auto.get("enabled")
    return {
        "mode": mode,
        "suppressions": _default(policy.get("suppressions"), {}),
        "noiseControls": {
            "dedupeWindowSeconds": _canon(
                _default(noise.get("dedupeWindowSeconds"), DEFAULT_DEDUPE_WINDOW_SECONDS)
            )
        },
        "autonomous": {
            "enabled": mode == "guarded_auto",
            "allow": {
                "categories": _default(allow.get("categories"), list(DEFAULT_ALLOW_CATEGORIES)),
                "intents": _default(allow.get("intents"), list(DEFAULT_ALLOW_INTENTS)),
            },
            "thresholds": {
                "minSeverity": _default(thresholds.get("minSeverity"), DEFAULT_MIN_SEVERITY),
                "minConfidence": _default(thresholds.get("minConfidence"), DEFAULT_MIN_CONFIDENCE),
            },
            "safety": {
                "maxActionsPerRun": _canon(
                    _default(safety.get("maxActionsPerRun"), DEFAULT_MAX_ACTIONS_PER_RUN)
                ),
                "maxActionsPerLoop": _canon(
                    _default(safety.get("maxActionsPerLoop"), DEFAULT_MAX_ACTIONS_PER_LOOP)
                ),
                "cooldownSeconds": _canon(
                    _default(safety.get("cooldownSeconds"), DEFAULT_COOLDOWN_SECONDS)
                ),
                "killSwitch": _default(safety.get("killSwitch"), False),
            },
            "governance": _normalize_governance(_obj(autonomous.get("governance"))),
            "rollout": {
                "canaryPercent": _canon(
                    _default(rollout.get("canaryPercent"), DEFAULT_CANARY_PERCENT)
                ),
                "scope": {"loopIds": _default(_obj(rollout.get("scope")).get("loopIds"), [])},
                "selector": {
                    "salt": _default(
                        _obj(rollout.get("selector")).get("salt"), DEFAULT_SELECTOR_SALT
                    )
                },
                "pause": {"manual": _default(_obj(rollout.get("pause")).get("manual"), False)},
                "autoPause": {
                    "enabled": auto_enabled if isinstance(auto_enabled, bool) else True,
                    "lookbackExecutions": _canon(
                        _default(auto.get("lookbackExecutions"), DEFAULT_LOOKBACK_EXECUTIONS)
                    ),
                    "minSampleSize": _canon(
                        _default(auto.get("minSampleSize"), DEFAULT_MIN_SAMPLE_SIZE)
                    ),
                    "ambiguityRateThreshold": _canon(
                        _default(
                            auto.get("ambiguityRateThreshold"), DEFAULT_AMBIGUITY_RATE_THRESHOLD
                        )
                    ),
                    "failureRateThreshold": _canon(
                        _default(auto.get("failureRateThreshold"), DEFAULT_FAILURE_RATE_THRESHOLD)
                    ),
                },
            },
        },
    }


def normalize_registry(
    doc: object, *, source_file: str, now: int, loop: str | None = None
) -> dict[str, Any]:
    """Validate ``doc`` and return the normalised registry of ``fleet.md`` §1.3.

    ``source_file`` is echoed as ``sourceFile``; ``now`` (epoch seconds) is the reference for
    the guarded_auto ``reviewBy`` deadline; ``loop`` keeps only that loop (exact match).

    Raises :class:`RegistryValidationError` (an :class:`OpsError`, exit 1) listing every
    problem, or :class:`OpsError` ``loop not found in registry: <id>`` (exit 1) when ``loop``
    matches nothing. Nothing else can escape, whatever JSON value ``doc`` is. Passthrough
    values (``metadata``, ``suppressions``, lists) are shared with ``doc``, not copied.
    """
    problems = validate_registry(doc, now=now)
    if problems:
        raise RegistryValidationError(source_file, problems)
    assert isinstance(doc, dict)  # validate_registry guarantees it
    loops = [normalize_loop(entry) for entry in doc["loops"]]
    if loop is not None:
        loops = [entry for entry in loops if entry["loopId"] == loop]
        if not loops:
            raise OpsError(f"loop not found in registry: {loop}")
    return {
        "schemaVersion": SCHEMA_VERSION,
        "sourceFile": source_file,
        "fleetId": _default(doc.get("fleetId"), DEFAULT_FLEET_ID),
        "loops": loops,
        "policy": normalize_policy(doc.get("policy")),
        "loopCount": len(loops),
    }
