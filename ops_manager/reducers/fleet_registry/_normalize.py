"""Fleet registry normalisation: the registry every other fleet command consumes (§1.3)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ops_manager.model.errors import OpsError
from ops_manager.reducers.fleet_registry._values import (
    DEFAULT_ALLOW_CATEGORIES,
    DEFAULT_ALLOW_INTENTS,
    DEFAULT_AMBIGUITY_RATE_THRESHOLD,
    DEFAULT_CANARY_PERCENT,
    DEFAULT_COOLDOWN_SECONDS,
    DEFAULT_DEDUPE_WINDOW_SECONDS,
    DEFAULT_FAILURE_RATE_THRESHOLD,
    DEFAULT_FLEET_ID,
    DEFAULT_LOOKBACK_EXECUTIONS,
    DEFAULT_MAX_ACTIONS_PER_LOOP,
    DEFAULT_MAX_ACTIONS_PER_RUN,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_SAMPLE_SIZE,
    DEFAULT_MIN_SEVERITY,
    DEFAULT_RETRY_ATTEMPTS,
    DEFAULT_RETRY_BACKOFF_SECONDS,
    DEFAULT_SELECTOR_SALT,
    SCHEMA_VERSION,
    RegistryValidationError,
    parse_fleet_ts,
)
from ops_manager.reducers.fleet_registry.problems import validate_registry


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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
                # optional: absent stays absent (no default), so older registries normalise
                # byte-identically
                "timeoutSeconds": _canon(service.get("timeoutSeconds")),
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
    doc: object,
    *,
    source_file: str,
    now: int,
    loop: str | None = None,
    schema_known_valid: bool = False,
) -> dict[str, Any]:
    """Validate ``doc`` and return the normalised registry of ``fleet.md`` §1.3.

    ``source_file`` is echoed as ``sourceFile``; ``now`` (epoch seconds) is the reference for
    the guarded_auto ``reviewBy`` deadline; ``loop`` keeps only that loop (exact match).

    Raises :class:`RegistryValidationError` (an :class:`OpsError`, exit 1) listing every
    problem, or :class:`OpsError` ``loop not found in registry: <id>`` (exit 1) when ``loop``
    matches nothing. Nothing else can escape, whatever JSON value ``doc`` is. Passthrough
    values (``metadata``, ``suppressions``, lists) are shared with ``doc``, not copied.
    ``schema_known_valid``: see :func:`validate_registry`.
    """
    problems = validate_registry(doc, now=now, schema_known_valid=schema_known_valid)
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
