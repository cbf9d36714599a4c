"""Fleet registry: fail-closed validation, normalisation, schema, CLI (``fleet.md`` §1, §2.1).

Decision tables pin every message of §1.2 (and ours) in its exact order; normalisation is
checked byte for byte against §1.3 and Appendix A.1 (with DECISIONS 6.1/6.2 applied);
hypothesis feeds arbitrary JSON documents and asserts only ``OpsError`` can come out.
Governance deadlines are relative to an injected ``now`` (DECISIONS 6.17).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_manager._jsonfmt import dumps_compact, dumps_pretty
from ops_manager.cli import main
from ops_manager.engine.fleet_registry import load_registry
from ops_manager.errors import OpsError
from ops_manager.reducers.fleet_registry import (
    RegistryValidationError,
    loop_id_problem,
    normalize_registry,
    parse_fleet_ts,
    validate_registry,
)
from ops_manager.store import FleetPaths, validate_loop_id
from tests.fleet_fixtures import (
    DAY,
    governance,
    guarded_auto_policy,
    loop_entry,
    registry_doc,
    sprite_loop,
    write_registry,
)

SCHEMA = (
    Path(__file__).resolve().parent.parent / "schema" / "ops-manager-fleet.registry.schema.json"
)
#: injected clock for the pure tests: every deadline below is relative to it
NOW = 1_780_000_000
GUARDED = "when policy.mode is guarded_auto"
GOV = "policy.autonomous.governance"
AUTO = "policy.autonomous.rollout.autoPause"
RATE = "must be a number between 0 and 1 when present"
CANARY_MSG = (
    "policy.autonomous.rollout.canaryPercent must be an integer between 0 and 100 when present"
)
PATH_MSG = (
    "loopId must be a single path component "
    "(no '/', '\\', NUL or control characters, not '.' or '..')"
)
RESERVED_MSG = "loopId 'fleet' is reserved (its artifacts would collide with the fleet directory)"
CREDENTIALS_MSG = "service.baseUrl must not embed credentials (name a token with service.tokenEnv)"
TOKEN_MSG = (
    "service.tokenEnv must be the name of an environment variable "
    "(A-Z, 0-9 and _, not starting with a digit), never the token itself"
)


def base() -> dict[str, Any]:
    """A minimal valid registry: two local loops, no policy."""
    return registry_doc(["loop-a", "loop-b"])


def setp(doc: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Set ``a.b.c`` (``loops.0.x`` indexes lists) in a copy of ``doc``, creating objects."""
    out = copy.deepcopy(doc)
    node: Any = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value
    return out


def problems(doc: Any, now: int = NOW) -> list[str]:
    return validate_registry(doc, now=now)


# --------------------------------------------------------------------------------------------
# decision table: one row per §1.2 message (plus ours), exact message list
# --------------------------------------------------------------------------------------------
ROWS: list[tuple[str, Any, list[str]]] = [
    # document level (1-5)
    ("schema-missing", {"loops": [{"loopId": "a"}]}, ['schemaVersion must be "v1"']),
    ("schema-v2", setp(base(), "schemaVersion", "v2"), ['schemaVersion must be "v1"']),
    ("fleetId-number", setp(base(), "fleetId", 5), ["fleetId must be a string when present"]),
    ("fleetId-false", setp(base(), "fleetId", False), ["fleetId must be a string when present"]),
    ("loops-missing", {"schemaVersion": "v1"}, ["loops must be an array"]),
    ("loops-object", setp(base(), "loops", {"a": 1}), ["loops must be an array"]),
    ("loops-empty", setp(base(), "loops", []), ["loops must include at least one loop entry"]),
    (
        "loopId-duplicate",
        registry_doc(["a", "b", "a"]),
        ["loopId values must be unique"],
    ),
    # per loop (6.1-6.12)
    ("entry-number", setp(base(), "loops.1", 5), ["loops[1]: entry must be an object"]),
    ("entry-null", setp(base(), "loops.0", None), ["loops[0]: entry must be an object"]),
    ("entry-list", setp(base(), "loops.0", ["x"]), ["loops[0]: entry must be an object"]),
    (
        "loopId-missing",
        setp(base(), "loops.0", {"enabled": True}),
        ["loops[0]: loopId must be a non-empty string"],
    ),
    (
        "loopId-empty",
        setp(base(), "loops.0.loopId", ""),
        ["loops[0]: loopId must be a non-empty string"],
    ),
    (
        "loopId-number",
        setp(base(), "loops.0.loopId", 7),
        ["loops[0]: loopId must be a non-empty string"],
    ),
    (
        "enabled-string",
        setp(base(), "loops.0.enabled", "no"),
        ["loops[0]: enabled must be boolean when present"],
    ),
    (
        "enabled-number",
        setp(base(), "loops.0.enabled", 0),
        ["loops[0]: enabled must be boolean when present"],
    ),
    (
        "transport-ssh",
        setp(base(), "loops.0.transport", "ssh"),
        ["loops[0]: transport must be local or sprite_service"],
    ),
    (
        "transport-false",
        setp(base(), "loops.0.transport", False),
        ["loops[0]: transport must be local or sprite_service"],
    ),
    (
        "transport-list",
        setp(base(), "loops.0.transport", ["local"]),
        ["loops[0]: transport must be local or sprite_service"],
    ),
    (
        "sprite-string",
        setp(base(), "loops.0.sprite", "sp-1"),
        ["loops[0]: sprite must be an object when present"],
    ),
    (
        "sprite-list",
        setp(base(), "loops.0.sprite", []),
        ["loops[0]: sprite must be an object when present"],
    ),
    (
        "sprite-id-empty",
        setp(base(), "loops.0.sprite", {"id": ""}),
        ["loops[0]: sprite.id must be a non-empty string when present"],
    ),
    (
        "sprite-id-number",
        setp(base(), "loops.0.sprite", {"id": 3}),
        ["loops[0]: sprite.id must be a non-empty string when present"],
    ),
    (
        "service-number",
        setp(base(), "loops.0.service", 5),
        ["loops[0]: service must be an object when present"],
    ),
    (
        "tokenEnv-empty",
        setp(base(), "loops.0.service", {"tokenEnv": ""}),
        ["loops[0]: service.tokenEnv must be a non-empty string when present"],
    ),
    (
        "tokenEnv-list",
        setp(base(), "loops.0.service", {"tokenEnv": ["X"]}),
        ["loops[0]: service.tokenEnv must be a non-empty string when present"],
    ),
    (
        "retryAttempts-0",
        setp(base(), "loops.0.service", {"retryAttempts": 0}),
        ["loops[0]: service.retryAttempts must be >= 1 when present"],
    ),
    (
        "retryAttempts-string",
        setp(base(), "loops.0.service", {"retryAttempts": "3"}),
        ["loops[0]: service.retryAttempts must be >= 1 when present"],
    ),
    (
        "retryAttempts-bool",
        setp(base(), "loops.0.service", {"retryAttempts": True}),
        ["loops[0]: service.retryAttempts must be >= 1 when present"],
    ),
    (
        "retryBackoff-negative",
        setp(base(), "loops.0.service", {"retryBackoffSeconds": -1}),
        ["loops[0]: service.retryBackoffSeconds must be >= 0 when present"],
    ),
    (
        "retryBackoff-string",
        setp(base(), "loops.0.service", {"retryBackoffSeconds": "1"}),
        ["loops[0]: service.retryBackoffSeconds must be >= 0 when present"],
    ),
    (
        "timeoutSeconds-zero",
        setp(base(), "loops.0.service", {"timeoutSeconds": 0}),
        ["loops[0]: service.timeoutSeconds must be a number > 0 and <= 300 when present"],
    ),
    (
        "timeoutSeconds-negative",
        setp(base(), "loops.0.service", {"timeoutSeconds": -1}),
        ["loops[0]: service.timeoutSeconds must be a number > 0 and <= 300 when present"],
    ),
    (
        "timeoutSeconds-over-300",
        setp(base(), "loops.0.service", {"timeoutSeconds": 300.5}),
        ["loops[0]: service.timeoutSeconds must be a number > 0 and <= 300 when present"],
    ),
    (
        "timeoutSeconds-string",
        setp(base(), "loops.0.service", {"timeoutSeconds": "30"}),
        ["loops[0]: service.timeoutSeconds must be a number > 0 and <= 300 when present"],
    ),
    (
        "timeoutSeconds-bool",
        setp(base(), "loops.0.service", {"timeoutSeconds": True}),
        ["loops[0]: service.timeoutSeconds must be a number > 0 and <= 300 when present"],
    ),
    (
        "sprite-service-no-url",
        setp(base(), "loops.0", {"loopId": "loop-a", "transport": "sprite_service"}),
        ["loops[0]: sprite_service loops require service.baseUrl or sprite.serviceBaseUrl"],
    ),
    (
        "metadata-list",
        setp(base(), "loops.0.metadata", []),
        ["loops[0]: metadata must be an object when present"],
    ),
    # our additions (ours, in their documented position)
    (
        "loopId-slash",
        setp(base(), "loops.0.loopId", "a/b"),
        [f"loops[0]: {PATH_MSG}"],
    ),
    (
        "loopId-dotdot",
        setp(base(), "loops.0.loopId", ".."),
        [f"loops[0]: {PATH_MSG}"],
    ),
    (
        "loopId-backslash",
        setp(base(), "loops.0.loopId", "a\\b"),
        [f"loops[0]: {PATH_MSG}"],
    ),
    (
        "loopId-newline",
        setp(base(), "loops.0.loopId", "a\nb"),
        [f"loops[0]: {PATH_MSG}"],
    ),
    (
        "loopId-fleet",
        setp(base(), "loops.0.loopId", "fleet"),
        [f"loops[0]: {RESERVED_MSG}"],
    ),
    (
        "sprite-assignment",
        setp(base(), "loops.0.sprite", {"assignment": 3}),
        ["loops[0]: sprite.assignment must be a string when present"],
    ),
    (
        "sprite-url-empty",
        setp(base(), "loops.0.sprite", {"serviceBaseUrl": ""}),
        ["loops[0]: sprite.serviceBaseUrl must be a non-empty string when present"],
    ),
    (
        "service-url-number",
        setp(base(), "loops.0.service", {"baseUrl": 8080}),
        ["loops[0]: service.baseUrl must be a non-empty string when present"],
    ),
    (
        "service-url-credentials",
        setp(base(), "loops.0.service", {"baseUrl": "http://ops:s3cret@sprite.local"}),
        [f"loops[0]: {CREDENTIALS_MSG}"],
    ),
    (
        "tokenEnv-value",
        setp(base(), "loops.0.service", {"tokenEnv": "ghp_16C7e42F292c6912E7710c838347Ae178B4a"}),
        [f"loops[0]: {TOKEN_MSG}"],
    ),
    # policy (7-42)
    ("policy-list", setp(base(), "policy", []), ["policy must be an object when present"]),
    ("policy-false", setp(base(), "policy", False), ["policy must be an object when present"]),
    ("mode", setp(base(), "policy.mode", "auto"), ["policy.mode must be advisory or guarded_auto"]),
    (
        "noiseControls",
        setp(base(), "policy.noiseControls", 5),
        ["policy.noiseControls must be an object when present"],
    ),
    (
        "dedupe-negative",
        setp(base(), "policy.noiseControls.dedupeWindowSeconds", -1),
        ["policy.noiseControls.dedupeWindowSeconds must be an integer >= 0 when present"],
    ),
    (
        "dedupe-fraction",
        setp(base(), "policy.noiseControls.dedupeWindowSeconds", 1.5),
        ["policy.noiseControls.dedupeWindowSeconds must be an integer >= 0 when present"],
    ),
    (
        "dedupe-string",
        setp(base(), "policy.noiseControls.dedupeWindowSeconds", "300"),
        ["policy.noiseControls.dedupeWindowSeconds must be an integer >= 0 when present"],
    ),
    (
        "autonomous",
        setp(base(), "policy.autonomous", []),
        ["policy.autonomous must be an object when present"],
    ),
    (
        "allow",
        setp(base(), "policy.autonomous.allow", "x"),
        ["policy.autonomous.allow must be an object when present"],
    ),
    (
        "categories-string",
        setp(base(), "policy.autonomous.allow.categories", "x"),
        ["policy.autonomous.allow.categories must be an array when present"],
    ),
    (
        "categories-number",
        setp(base(), "policy.autonomous.allow.categories", [1]),
        ["policy.autonomous.allow.categories entries must be strings"],
    ),
    (
        "categories-unknown",
        setp(base(), "policy.autonomous.allow.categories", ["unknown_category"]),
        ["policy.autonomous.allow.categories contains unsupported categories"],
    ),
    (
        "intents-string",
        setp(base(), "policy.autonomous.allow.intents", "cancel"),
        ["policy.autonomous.allow.intents must be an array when present"],
    ),
    (
        "intents-number",
        setp(base(), "policy.autonomous.allow.intents", [1]),
        ["policy.autonomous.allow.intents entries must be strings"],
    ),
    (
        "intents-approve",
        setp(base(), "policy.autonomous.allow.intents", ["cancel", "approve"]),
        ["policy.autonomous.allow.intents contains unsupported intents"],
    ),
    (
        "thresholds",
        setp(base(), "policy.autonomous.thresholds", []),
        ["policy.autonomous.thresholds must be an object when present"],
    ),
    (
        "minSeverity-number",
        setp(base(), "policy.autonomous.thresholds.minSeverity", 1),
        ["policy.autonomous.thresholds.minSeverity must be a string when present"],
    ),
    (
        "minSeverity-high",
        setp(base(), "policy.autonomous.thresholds.minSeverity", "high"),
        ["policy.autonomous.thresholds.minSeverity must be one of critical, warning, info"],
    ),
    (
        "minConfidence-number",
        setp(base(), "policy.autonomous.thresholds.minConfidence", 1),
        ["policy.autonomous.thresholds.minConfidence must be a string when present"],
    ),
    (
        "minConfidence-certain",
        setp(base(), "policy.autonomous.thresholds.minConfidence", "certain"),
        ["policy.autonomous.thresholds.minConfidence must be one of high, medium, low"],
    ),
    (
        "safety",
        setp(base(), "policy.autonomous.safety", 1),
        ["policy.autonomous.safety must be an object when present"],
    ),
    (
        "maxActionsPerRun",
        setp(base(), "policy.autonomous.safety.maxActionsPerRun", -1),
        ["policy.autonomous.safety.maxActionsPerRun must be an integer >= 0 when present"],
    ),
    (
        "maxActionsPerLoop",
        setp(base(), "policy.autonomous.safety.maxActionsPerLoop", 0.5),
        ["policy.autonomous.safety.maxActionsPerLoop must be an integer >= 0 when present"],
    ),
    (
        "cooldownSeconds",
        setp(base(), "policy.autonomous.safety.cooldownSeconds", "60"),
        ["policy.autonomous.safety.cooldownSeconds must be an integer >= 0 when present"],
    ),
    (
        "killSwitch",
        setp(base(), "policy.autonomous.safety.killSwitch", "yes"),
        ["policy.autonomous.safety.killSwitch must be boolean when present"],
    ),
    (
        "governance",
        setp(base(), "policy.autonomous.governance", "x"),
        [f"{GOV} must be an object when present"],
    ),
    (
        "actor",
        setp(base(), "policy.autonomous.governance", {"actor": ""}),
        [f"{GOV}.actor must be a non-empty string when present"],
    ),
    (
        "approvalRef",
        setp(base(), "policy.autonomous.governance", {"approvalRef": 5}),
        [f"{GOV}.approvalRef must be a non-empty string when present"],
    ),
    (
        "rationale",
        setp(base(), "policy.autonomous.governance", {"rationale": []}),
        [f"{GOV}.rationale must be a non-empty string when present"],
    ),
    (
        "changedAt-date-only",
        setp(base(), "policy.autonomous.governance", {"changedAt": "2026-02-23"}),
        [f"{GOV}.changedAt must be an ISO-8601 timestamp when present"],
    ),
    (
        "reviewBy-millis",
        setp(base(), "policy.autonomous.governance", {"reviewBy": "2026-02-23T00:00:00.000Z"}),
        [f"{GOV}.reviewBy must be an ISO-8601 timestamp when present"],
    ),
    (
        "reviewBy-not-after",
        setp(
            base(),
            "policy.autonomous.governance",
            {"changedAt": "2026-02-23T00:00:00Z", "reviewBy": "2026-02-23T00:00:00Z"},
        ),
        [f"{GOV}.reviewBy must be after {GOV}.changedAt"],
    ),
    (
        "guarded-no-governance",
        setp(base(), "policy.mode", "guarded_auto"),
        [
            f"{GOV} is required {GUARDED}",
            f"{GOV}.actor is required {GUARDED}",
            f"{GOV}.approvalRef is required {GUARDED}",
            f"{GOV}.rationale is required {GUARDED}",
            f"{GOV}.changedAt must be an ISO-8601 timestamp {GUARDED}",
            f"{GOV}.reviewBy must be an ISO-8601 timestamp {GUARDED}",
        ],
    ),
    (
        "guarded-governance-not-object",
        setp(setp(base(), "policy.mode", "guarded_auto"), "policy.autonomous.governance", []),
        [
            f"{GOV} must be an object when present",
            f"{GOV} is required {GUARDED}",
            f"{GOV}.actor is required {GUARDED}",
            f"{GOV}.approvalRef is required {GUARDED}",
            f"{GOV}.rationale is required {GUARDED}",
            f"{GOV}.changedAt must be an ISO-8601 timestamp {GUARDED}",
            f"{GOV}.reviewBy must be an ISO-8601 timestamp {GUARDED}",
        ],
    ),
    (
        "guarded-expired",
        setp(
            base(),
            "policy",
            guarded_auto_policy(NOW, gov=governance(NOW, changed_days_ago=30, review_in_days=-1)),
        ),
        [f"{GOV}.reviewBy must be in the future {GUARDED}"],
    ),
    (
        "guarded-reversed-and-past",
        setp(
            base(),
            "policy",
            guarded_auto_policy(NOW, gov=governance(NOW, changed_days_ago=-5, review_in_days=-2)),
        ),
        [
            f"{GOV}.reviewBy must be after {GOV}.changedAt",
            f"{GOV}.reviewBy must be after {GOV}.changedAt {GUARDED}",
            f"{GOV}.reviewBy must be in the future {GUARDED}",
        ],
    ),
    (
        "rollout",
        setp(base(), "policy.autonomous.rollout", []),
        ["policy.autonomous.rollout must be an object when present"],
    ),
    (
        "canary-101",
        setp(base(), "policy.autonomous.rollout.canaryPercent", 101),
        [CANARY_MSG],
    ),
    (
        "canary-fraction",
        setp(base(), "policy.autonomous.rollout.canaryPercent", 50.5),
        [CANARY_MSG],
    ),
    (
        "canary-string",
        setp(base(), "policy.autonomous.rollout.canaryPercent", "50"),
        [CANARY_MSG],
    ),
    (
        "scope",
        setp(base(), "policy.autonomous.rollout.scope", 1),
        ["policy.autonomous.rollout.scope must be an object when present"],
    ),
    (
        "scope-loopIds-string",
        setp(base(), "policy.autonomous.rollout.scope.loopIds", "loop-a"),
        ["policy.autonomous.rollout.scope.loopIds must be an array when present"],
    ),
    (
        "scope-loopIds-number",
        setp(base(), "policy.autonomous.rollout.scope.loopIds", [1]),
        ["policy.autonomous.rollout.scope.loopIds entries must be strings"],
    ),
    (
        "scope-loopIds-empty",
        setp(base(), "policy.autonomous.rollout.scope.loopIds", [""]),
        ["policy.autonomous.rollout.scope.loopIds entries must be non-empty strings"],
    ),
    (
        "scope-loopIds-dup",
        setp(base(), "policy.autonomous.rollout.scope.loopIds", ["loop-a", "loop-a"]),
        ["policy.autonomous.rollout.scope.loopIds entries must be unique"],
    ),
    (
        "scope-loopIds-undeclared",
        setp(base(), "policy.autonomous.rollout.scope.loopIds", ["unknown-loop"]),
        ["policy.autonomous.rollout.scope.loopIds entries must reference declared loopIds"],
    ),
    (
        "selector",
        setp(base(), "policy.autonomous.rollout.selector", "s"),
        ["policy.autonomous.rollout.selector must be an object when present"],
    ),
    (
        "salt-number",
        setp(base(), "policy.autonomous.rollout.selector.salt", 1),
        ["policy.autonomous.rollout.selector.salt must be a string when present"],
    ),
    (
        "salt-empty",
        setp(base(), "policy.autonomous.rollout.selector.salt", ""),
        ["policy.autonomous.rollout.selector.salt must be non-empty when present"],
    ),
    (
        "pause",
        setp(base(), "policy.autonomous.rollout.pause", True),
        ["policy.autonomous.rollout.pause must be an object when present"],
    ),
    (
        "pause-manual",
        setp(base(), "policy.autonomous.rollout.pause.manual", "no"),
        ["policy.autonomous.rollout.pause.manual must be boolean when present"],
    ),
    (
        "autoPause",
        setp(base(), "policy.autonomous.rollout.autoPause", []),
        ["policy.autonomous.rollout.autoPause must be an object when present"],
    ),
    (
        "autoPause-enabled",
        setp(base(), "policy.autonomous.rollout.autoPause.enabled", "false"),
        ["policy.autonomous.rollout.autoPause.enabled must be boolean when present"],
    ),
    (
        "lookback",
        setp(base(), "policy.autonomous.rollout.autoPause.lookbackExecutions", 0),
        [f"{AUTO}.lookbackExecutions must be an integer >= 1 when present"],
    ),
    (
        "minSample",
        setp(base(), "policy.autonomous.rollout.autoPause.minSampleSize", 2.5),
        ["policy.autonomous.rollout.autoPause.minSampleSize must be an integer >= 1 when present"],
    ),
    (
        "ambiguity",
        setp(base(), "policy.autonomous.rollout.autoPause.ambiguityRateThreshold", 1.5),
        [f"{AUTO}.ambiguityRateThreshold {RATE}"],
    ),
    (
        "failure",
        setp(base(), "policy.autonomous.rollout.autoPause.failureRateThreshold", -0.1),
        [f"{AUTO}.failureRateThreshold {RATE}"],
    ),
    (
        "suppressions-list",
        setp(base(), "policy.suppressions", []),
        ["policy.suppressions must be an object mapping loopId to category arrays"],
    ),
    (
        "suppressions-key",
        setp(base(), "policy.suppressions", {"zzz": ["health_critical"]}),
        ["policy.suppressions.zzz key must reference a declared loopId or *"],
    ),
    (
        "suppressions-value",
        setp(base(), "policy.suppressions", {"loop-a": "health_critical"}),
        ["policy.suppressions.loop-a must be an array"],
    ),
    (
        "suppressions-entries",
        setp(base(), "policy.suppressions", {"*": [1]}),
        ["policy.suppressions.* entries must be strings"],
    ),
    (
        "suppressions-unknown",
        setp(base(), "policy.suppressions", {"*": ["health_critical", "unknown_category"]}),
        ["policy.suppressions.* contains unknown categories"],
    ),
    (
        "suppressions-key-control",
        setp(base(), "policy.suppressions", {"a\nb": []}),
        ["policy.suppressions.a\\nb key must reference a declared loopId or *"],
    ),
    ("not-an-object", ["schemaVersion"], ["registry must be a JSON object"]),
]


@pytest.mark.parametrize(
    ("doc", "expected"), [(d, e) for _, d, e in ROWS], ids=[r[0] for r in ROWS]
)
def test_each_message(doc: Any, expected: list[str]) -> None:
    assert problems(doc) == expected


VALID: list[tuple[str, Any]] = [
    ("minimal", base()),
    ("retryAttempts-fraction", setp(base(), "loops.0.service", {"retryAttempts": 1.5})),
    ("timeoutSeconds-max", setp(base(), "loops.0.service", {"timeoutSeconds": 300})),
    ("timeoutSeconds-fraction", setp(base(), "loops.0.service", {"timeoutSeconds": 0.5})),
    ("enabled-false", setp(base(), "loops.0.enabled", False)),
    ("canary-zero", setp(base(), "policy.autonomous.rollout.canaryPercent", 0)),
    ("integral-float", setp(base(), "policy.noiseControls.dedupeWindowSeconds", 60.0)),
    ("nulls-are-absent", setp(setp(base(), "fleetId", None), "loops.0.transport", None)),
    (
        "advisory-expired-governance",
        setp(
            base(),
            "policy.autonomous.governance",
            governance(NOW, changed_days_ago=30, review_in_days=-10),
        ),
    ),
    ("guarded", setp(base(), "policy", guarded_auto_policy(NOW))),
    (
        "sprite-url-from-sprite",
        setp(
            base(),
            "loops.0",
            loop_entry(
                "loop-a", transport="sprite_service", sprite={"serviceBaseUrl": "http://s.local"}
            ),
        ),
    ),
    ("sprite-loop", setp(base(), "loops.0", sprite_loop("loop-a"))),
    ("suppressions", setp(base(), "policy.suppressions", {"*": ["health_degraded"], "loop-a": []})),
    ("unknown-keys-ignored", setp(setp(base(), "extra", 1), "loops.0.future", {"x": 1})),
    (
        "day-overflow",
        setp(base(), "policy.autonomous.governance", {"changedAt": "2026-02-30T00:00:00Z"}),
    ),
]


@pytest.mark.parametrize("doc", [d for _, d in VALID], ids=[v[0] for v in VALID])
def test_valid_documents(doc: Any) -> None:
    assert problems(doc) == []


def test_all_problems_collected_in_contract_order() -> None:
    """R-REG-6/R-REG-8 style: every error is reported, document -> loops -> policy order."""
    doc = {
        "schemaVersion": "v0",
        "fleetId": 1,
        "loops": [
            {"loopId": "a", "transport": "ssh", "enabled": "y", "metadata": 1},
            5,
            {"loopId": "a", "service": {"retryAttempts": 0, "tokenEnv": ""}},
        ],
        "policy": {
            "mode": "guarded_auto",
            "suppressions": {"*": ["nope"]},
            "noiseControls": {"dedupeWindowSeconds": -1},
            "autonomous": {
                "thresholds": {"minConfidence": "certain"},
                "safety": {"maxActionsPerRun": -1},
                "rollout": {
                    "canaryPercent": 101,
                    "scope": {"loopIds": ["unknown-loop"]},
                    "autoPause": {"failureRateThreshold": 1.5},
                },
            },
        },
    }
    assert problems(doc) == [
        'schemaVersion must be "v1"',
        "fleetId must be a string when present",
        "loopId values must be unique",
        "loops[0]: enabled must be boolean when present",
        "loops[0]: transport must be local or sprite_service",
        "loops[0]: metadata must be an object when present",
        "loops[1]: entry must be an object",
        "loops[2]: service.tokenEnv must be a non-empty string when present",
        "loops[2]: service.retryAttempts must be >= 1 when present",
        "policy.noiseControls.dedupeWindowSeconds must be an integer >= 0 when present",
        "policy.autonomous.thresholds.minConfidence must be one of high, medium, low",
        "policy.autonomous.safety.maxActionsPerRun must be an integer >= 0 when present",
        f"{GOV} is required {GUARDED}",
        f"{GOV}.actor is required {GUARDED}",
        f"{GOV}.approvalRef is required {GUARDED}",
        f"{GOV}.rationale is required {GUARDED}",
        f"{GOV}.changedAt must be an ISO-8601 timestamp {GUARDED}",
        f"{GOV}.reviewBy must be an ISO-8601 timestamp {GUARDED}",
        CANARY_MSG,
        "policy.autonomous.rollout.scope.loopIds entries must reference declared loopIds",
        f"{AUTO}.failureRateThreshold {RATE}",
        "policy.suppressions.* contains unknown categories",
    ]


def test_validation_error_carries_problems() -> None:
    with pytest.raises(RegistryValidationError) as info:
        normalize_registry(setp(base(), "policy.mode", "x"), source_file="reg.json", now=NOW)
    err = info.value
    assert err.exit_code == 1
    assert err.problems == ["policy.mode must be advisory or guarded_auto"]
    assert (
        str(err)
        == "invalid fleet registry: reg.json\n - policy.mode must be advisory or guarded_auto"
    )


# --------------------------------------------------------------------------------------------
# governance deadlines, relative to now (DECISIONS 6.17)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("review_offset", "ok"),
    [(-DAY, False), (-1, False), (0, False), (1, True), (90 * DAY, True)],
)
def test_guarded_review_deadline_relative_to_now(review_offset: int, ok: bool) -> None:
    from ops_manager._timefmt import format_ts

    gov = governance(NOW, changed_days_ago=10)
    gov["reviewBy"] = format_ts(NOW + review_offset)
    doc = setp(base(), "policy", guarded_auto_policy(NOW, gov=gov))
    expected = [] if ok else [f"{GOV}.reviewBy must be in the future {GUARDED}"]
    assert problems(doc) == expected


def test_expired_registry_fails_closed_later_without_editing_it() -> None:
    """The same registry is valid today and rejected once its review deadline passed."""
    doc = setp(base(), "policy", guarded_auto_policy(NOW, gov=governance(NOW, review_in_days=3)))
    assert problems(doc, now=NOW) == []
    assert problems(doc, now=NOW + 3 * DAY) == [f"{GOV}.reviewBy must be in the future {GUARDED}"]


def test_review_window_days() -> None:
    gov = governance(NOW, changed_days_ago=2, review_in_days=5)
    doc = setp(base(), "policy", guarded_auto_policy(NOW, gov=gov))
    out = normalize_registry(doc, source_file="r", now=NOW)
    assert out["policy"]["autonomous"]["governance"]["reviewWindowDays"] == 7
    partial = setp(
        base(), "policy.autonomous.governance", {"actor": "a", "changedAt": gov["changedAt"]}
    )
    out = normalize_registry(partial, source_file="r", now=NOW)
    assert out["policy"]["autonomous"]["governance"] == {
        "actor": "a",
        "changedAt": gov["changedAt"],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-23T00:00:00Z", 1771804800),
        ("2026-2-3T0:0:0Z", 1770076800),
        ("2026-02-23T00:00:00Z  ", 1771804800),
        ("2026-02-30T00:00:00Z", 1772409600),  # rolls over to Mar 2 (glibc + timegm)
        ("2026-02-23T23:59:61Z", 1771891201),
        ("0000-01-01T00:00:00Z", -62167219200),
        ("2026-02-23T24:00:00Z", None),
        ("2026-13-01T00:00:00Z", None),
        ("2026-02-00T00:00:00Z", None),
        ("2026-02-32T00:00:00Z", None),
        ("2026-02-23T00:00:00.000Z", None),
        ("2026-02-23T00:00:00+00:00", None),
        ("2026-02-23t00:00:00z", None),
        ("2026-02-23", None),
        (" 2026-02-23T00:00:00Z", None),
        ("٢٠٢٦-02-23T00:00:00Z", None),
        (1771804800, None),
        (None, None),
    ],
)
def test_parse_fleet_ts(text: Any, expected: int | None) -> None:
    assert parse_fleet_ts(text) == expected


# --------------------------------------------------------------------------------------------
# normalisation (§1.3), byte for byte
# --------------------------------------------------------------------------------------------
def test_empty_loop_normalises_per_spec_example() -> None:
    out = normalize_registry(registry_doc(["a"]), source_file="r", now=NOW)
    assert dumps_compact(out["loops"][0]) == (
        '{"loopId":"a","enabled":true,"transport":"local","sprite":{},'
        '"service":{"retryAttempts":3,"retryBackoffSeconds":1},"metadata":{}}'
    )


def test_defaults_byte_for_byte() -> None:
    out = normalize_registry(registry_doc(["a"]), source_file="/r/registry.v1.json", now=NOW)
    assert dumps_compact(out) == (
        '{"schemaVersion":"v1","sourceFile":"/r/registry.v1.json","fleetId":"default","loops":'
        '[{"loopId":"a","enabled":true,"transport":"local","sprite":{},"service":{"retryAttempts"'
        ':3,"retryBackoffSeconds":1},"metadata":{}}],"policy":{"mode":"advisory","suppressions":'
        '{},"noiseControls":{"dedupeWindowSeconds":300},"autonomous":{"enabled":false,"allow":'
        '{"categories":["reconcile_failed","health_critical"],"intents":["cancel"]},"thresholds":'
        '{"minSeverity":"critical","minConfidence":"high"},"safety":{"maxActionsPerRun":1,'
        '"maxActionsPerLoop":1,"cooldownSeconds":300,"killSwitch":false},"governance":{},'
        '"rollout":{"canaryPercent":100,"scope":{"loopIds":[]},"selector":{"salt":'
        '"fleet-autonomous-rollout-v1"},"pause":{"manual":false},"autoPause":{"enabled":true,'
        '"lookbackExecutions":5,"minSampleSize":3,"ambiguityRateThreshold":0.4,'
        '"failureRateThreshold":0.4}}}},"loopCount":1}'
    )


#: Appendix A.1, with DECISIONS 6.1/6.2 applied (loop-a enabled:false, autoPause.enabled:false)
A1 = (
    '{"schemaVersion":"v1","sourceFile":"/abs/repo/.superloop/ops-manager/fleet/registry.v1.json",'
    '"fleetId":"demo","loops":[{"loopId":"loop-a","enabled":false,"transport":"local","sprite":{},'
    '"service":{"retryAttempts":3,"retryBackoffSeconds":1},"metadata":{"team":"x"}},{"loopId":'
    '"loop-b","enabled":true,"transport":"sprite_service","sprite":{"id":"sp-1","assignment":'
    '"pool-a","serviceBaseUrl":"http://s.local"},"service":{"baseUrl":"http://s.local","tokenEnv":'
    '"TOK","retryAttempts":3,"retryBackoffSeconds":1},"metadata":{}}],"policy":{"mode":'
    '"guarded_auto","suppressions":{},"noiseControls":{"dedupeWindowSeconds":300},"autonomous":'
    '{"enabled":true,"allow":{"categories":["reconcile_failed","health_critical"],"intents":'
    '["cancel"]},"thresholds":{"minSeverity":"critical","minConfidence":"high"},"safety":'
    '{"maxActionsPerRun":1,"maxActionsPerLoop":1,"cooldownSeconds":300,"killSwitch":false},'
    '"governance":{"actor":"ops-user","approvalRef":"CAB-123","rationale":"dogfood guarded auto",'
    '"changedAt":"2026-02-23T00:00:00Z","reviewBy":"2026-12-31T00:00:00Z","reviewWindowDays":311},'
    '"rollout":{"canaryPercent":100,"scope":{"loopIds":[]},"selector":{"salt":'
    '"fleet-autonomous-rollout-v1"},"pause":{"manual":false},"autoPause":{"enabled":false,'
    '"lookbackExecutions":5,"minSampleSize":3,"ambiguityRateThreshold":0.4,'
    '"failureRateThreshold":0.4}}}},"loopCount":2}'
)


def a1_document() -> dict[str, Any]:
    return {
        "schemaVersion": "v1",
        "fleetId": "demo",
        "loops": [
            {"loopId": "loop-a", "enabled": False, "metadata": {"team": "x"}, "owner": "dropped"},
            {
                "loopId": "loop-b",
                "transport": "sprite_service",
                "sprite": {
                    "id": "sp-1",
                    "assignment": "pool-a",
                    "serviceBaseUrl": "http://s.local",
                },
                "service": {"tokenEnv": "TOK"},
            },
        ],
        "policy": {
            "mode": "guarded_auto",
            "autonomous": {
                "governance": {
                    "actor": "ops-user",
                    "approvalRef": "CAB-123",
                    "rationale": "dogfood guarded auto",
                    "changedAt": "2026-02-23T00:00:00Z",
                    "reviewBy": "2026-12-31T00:00:00Z",
                },
                "rollout": {"autoPause": {"enabled": False}},
            },
        },
    }


def test_appendix_a1_byte_for_byte() -> None:
    # the fixture's calendar dates are fine here: the clock is injected (a day after changedAt)
    now = parse_fleet_ts("2026-02-24T00:00:00Z")
    assert now is not None
    source = "/abs/repo/.superloop/ops-manager/fleet/registry.v1.json"
    out = normalize_registry(a1_document(), source_file=source, now=now)
    assert dumps_compact(out) == A1


def test_booleans_are_real_and_cross_filled_urls() -> None:
    doc = registry_doc(
        [
            loop_entry("a", enabled=False),
            loop_entry(
                "b", enabled=True, transport="sprite_service", service={"baseUrl": "http://x"}
            ),
        ],
        policy={
            "autonomous": {
                "rollout": {"autoPause": {"enabled": False}, "pause": {"manual": True}},
                "safety": {"killSwitch": True},
            }
        },
    )
    out = normalize_registry(doc, source_file="r", now=NOW)
    assert [loop["enabled"] for loop in out["loops"]] == [False, True]
    assert out["loops"][1]["sprite"] == {"serviceBaseUrl": "http://x"}
    assert out["loops"][1]["service"]["baseUrl"] == "http://x"
    rollout = out["policy"]["autonomous"]["rollout"]
    assert rollout["autoPause"]["enabled"] is False
    assert rollout["pause"]["manual"] is True
    assert out["policy"]["autonomous"]["safety"]["killSwitch"] is True


def test_timeout_seconds_normalised_only_when_present() -> None:
    """``service.timeoutSeconds`` is optional: kept (integral floats as ints) when present,
    absent (not defaulted) otherwise, so older registries normalise as before."""
    doc = registry_doc(
        [
            sprite_loop("a", timeout_seconds=30.0),
            sprite_loop("b", timeout_seconds=2.5),
            sprite_loop("c"),
            loop_entry("d", service={"timeoutSeconds": None}),
        ]
    )
    out = normalize_registry(doc, source_file="r", now=NOW)
    services = [loop["service"] for loop in out["loops"]]
    assert services[0]["timeoutSeconds"] == 30 and isinstance(services[0]["timeoutSeconds"], int)
    assert services[1]["timeoutSeconds"] == 2.5
    assert "timeoutSeconds" not in services[2] and "timeoutSeconds" not in services[3]
    assert list(services[0]) == [
        "baseUrl",
        "tokenEnv",
        "retryAttempts",
        "retryBackoffSeconds",
        "timeoutSeconds",
    ]


def test_guarded_auto_normalisation_r_reg_3_and_7() -> None:
    """R-REG-3 and R-REG-7 assertions, deadlines relative to now."""
    policy = guarded_auto_policy(
        NOW,
        allow={"categories": ["reconcile_failed", "health_critical"], "intents": ["cancel"]},
        thresholds={"minSeverity": "warning", "minConfidence": "medium"},
        safety={
            "maxActionsPerRun": 3,
            "maxActionsPerLoop": 2,
            "cooldownSeconds": 120,
            "killSwitch": False,
        },
        rollout={"canaryPercent": 40.0, "scope": {"loopIds": ["loop-a"]}},
    )
    out = normalize_registry(
        registry_doc(["loop-a", "loop-b"], policy=policy), source_file="r", now=NOW
    )
    auto = out["policy"]["autonomous"]
    assert out["policy"]["mode"] == "guarded_auto" and auto["enabled"] is True
    assert auto["allow"]["categories"] == ["reconcile_failed", "health_critical"]
    assert auto["thresholds"]["minSeverity"] == "warning"
    assert auto["safety"]["maxActionsPerRun"] == 3
    assert auto["governance"]["actor"] == "ops-user"
    assert auto["governance"]["reviewWindowDays"] == 91
    assert auto["rollout"]["canaryPercent"] == 40 and isinstance(
        auto["rollout"]["canaryPercent"], int
    )
    assert auto["rollout"]["scope"]["loopIds"] == ["loop-a"]
    assert auto["rollout"]["selector"]["salt"] == "fleet-autonomous-rollout-v1"
    assert auto["rollout"]["autoPause"]["enabled"] is True
    assert auto["rollout"]["autoPause"]["lookbackExecutions"] == 5


def test_loop_filter() -> None:
    out = normalize_registry(registry_doc(["a", "b", "c"]), source_file="r", now=NOW, loop="b")
    assert [loop["loopId"] for loop in out["loops"]] == ["b"] and out["loopCount"] == 1
    with pytest.raises(OpsError) as info:
        normalize_registry(registry_doc(["a"]), source_file="r", now=NOW, loop="zzz")
    assert info.value.message == "loop not found in registry: zzz"
    assert info.value.exit_code == 1


def test_suppressions_pass_through_verbatim() -> None:
    sup = {"loop-a": ["reconcile_failed"], "*": ["health_degraded"]}
    out = normalize_registry(
        registry_doc(["loop-a"], policy={"suppressions": sup}), source_file="r", now=NOW
    )
    assert dumps_compact(out["policy"]["suppressions"]) == dumps_compact(sup)


# --------------------------------------------------------------------------------------------
# never crash (DECISIONS 6.3)
# --------------------------------------------------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def _fragment(keys: dict[str, Any]) -> st.SearchStrategy[Any]:
    """An object whose known keys take either a plausible value or any JSON value."""
    return (
        st.fixed_dictionaries({}, optional={k: v | json_values for k, v in keys.items()})
        | json_values
    )


_ts = st.sampled_from(
    ["2026-02-23T00:00:00Z", "2099-01-01T00:00:00Z", "2000-01-01T00:00:00Z", "bad"]
)
loop_strategy = _fragment(
    {
        "loopId": st.sampled_from(["a", "b", "fleet", "..", "x/y", ""]),
        "enabled": st.booleans(),
        "transport": st.sampled_from(["local", "sprite_service", "ssh"]),
        "sprite": _fragment(
            {
                "id": st.text(max_size=3),
                "serviceBaseUrl": st.sampled_from(["http://s", "http://u:p@s", ""]),
            }
        ),
        "service": _fragment(
            {
                "baseUrl": st.sampled_from(["http://s", "http://[", ""]),
                "tokenEnv": st.sampled_from(["TOK", "tok", ""]),
                "retryAttempts": st.integers(-2, 5) | st.floats(-1, 5),
                "retryBackoffSeconds": st.integers(-2, 5),
                "timeoutSeconds": st.integers(-1, 301) | st.floats(-1, 301),
            }
        ),
        "metadata": json_values,
    }
)
policy_strategy = _fragment(
    {
        "mode": st.sampled_from(["advisory", "guarded_auto", "x"]),
        "suppressions": st.dictionaries(st.sampled_from(["*", "a", "zz"]), json_values, max_size=3),
        "noiseControls": _fragment({"dedupeWindowSeconds": st.integers(-1, 5)}),
        "autonomous": _fragment(
            {
                "allow": _fragment(
                    {
                        "categories": st.lists(st.sampled_from(["health_critical", "x"])),
                        "intents": json_values,
                    }
                ),
                "thresholds": _fragment(
                    {
                        "minSeverity": st.sampled_from(["critical", "x"]),
                        "minConfidence": json_values,
                    }
                ),
                "safety": _fragment(
                    {"maxActionsPerRun": st.integers(-1, 3), "killSwitch": st.booleans()}
                ),
                "governance": _fragment(
                    {"actor": st.text(max_size=3), "changedAt": _ts, "reviewBy": _ts}
                ),
                "rollout": _fragment(
                    {
                        "canaryPercent": st.integers(-1, 101) | st.floats(0, 100),
                        "scope": _fragment(
                            {"loopIds": st.lists(st.sampled_from(["a", "b", "", "q"]))}
                        ),
                        "selector": _fragment({"salt": st.text(max_size=3)}),
                        "pause": _fragment({"manual": st.booleans()}),
                        "autoPause": _fragment(
                            {"enabled": st.booleans(), "failureRateThreshold": st.floats(-1, 2)}
                        ),
                    }
                ),
            }
        ),
    }
)
registry_strategy = _fragment(
    {
        "schemaVersion": st.just("v1"),
        "fleetId": st.text(max_size=4),
        "loops": st.lists(loop_strategy, max_size=4),
        "policy": policy_strategy,
    }
)


def _assert_only_ops_error(doc: Any, loop: str | None) -> None:
    try:
        out = normalize_registry(doc, source_file="r.json", now=NOW, loop=loop)
    except OpsError as exc:
        assert exc.exit_code == 1
        assert exc.message.startswith(
            ("invalid fleet registry: r.json\n - ", "loop not found in registry: ")
        )
        return
    assert list(out) == ["schemaVersion", "sourceFile", "fleetId", "loops", "policy", "loopCount"]
    assert out["loopCount"] == len(out["loops"])
    dumps_compact(out)  # always printable


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=json_values, loop=st.none() | st.sampled_from(["a", "b"]))
def test_arbitrary_json_never_crashes(doc: Any, loop: str | None) -> None:
    _assert_only_ops_error(doc, loop)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=registry_strategy, loop=st.none() | st.sampled_from(["a", "b"]))
def test_registry_shaped_documents_never_crash(doc: Any, loop: str | None) -> None:
    _assert_only_ops_error(doc, loop)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=6))
def test_loop_id_rule_matches_store_guard(loop_id: str) -> None:
    """The reducer's path rule is the store's :func:`validate_loop_id` (plus ``fleet``)."""
    if loop_id == "":
        return
    try:
        validate_loop_id(loop_id)
        store_ok = True
    except OpsError:
        store_ok = False
    reducer_ok = loop_id_problem(loop_id) is None
    assert reducer_ok == (store_ok and loop_id != "fleet")


# --------------------------------------------------------------------------------------------
# JSON schema (reference document) agrees with the validator
# --------------------------------------------------------------------------------------------
#: rows whose problem is a shape a JSON schema can express
SCHEMA_REJECTS = {
    name
    for name, _, _ in ROWS
    if name
    not in {
        "loopId-duplicate",  # uniqueness across objects: semantic
        "scope-loopIds-undeclared",
        "suppressions-key",
        "suppressions-key-control",
        "reviewBy-not-after",
        "guarded-expired",
        "guarded-reversed-and-past",
        "service-url-credentials",
        "entry-null",  # null counts as absent at runtime; the schema types it
        "fleetId-false",
        "transport-false",
        "policy-false",
    }
}


@pytest.fixture(scope="module")
def schema_validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    "doc",
    [d for _, d in VALID if "extra" not in d],
    ids=[v[0] for v in VALID if "extra" not in v[1]],
)
def test_schema_accepts_valid_documents(schema_validator: Any, doc: Any) -> None:
    doc = {k: v for k, v in doc.items() if v is not None}
    doc["loops"] = [{k: v for k, v in e.items() if v is not None} for e in doc["loops"]]
    assert list(schema_validator.iter_errors(doc)) == []


@pytest.mark.parametrize(
    "doc",
    [d for n, d, _ in ROWS if n in SCHEMA_REJECTS],
    ids=[n for n, _, _ in ROWS if n in SCHEMA_REJECTS],
)
def test_schema_rejects_shape_errors(schema_validator: Any, doc: Any) -> None:
    assert list(schema_validator.iter_errors(doc)) != []


# --------------------------------------------------------------------------------------------
# engine: files and parsing
# --------------------------------------------------------------------------------------------
def test_load_registry_default_path(tmp_path: Path) -> None:
    write_registry(tmp_path, ["a"])
    out = load_registry(tmp_path, now=NOW)
    assert out["sourceFile"] == str(FleetPaths.for_repo(tmp_path).registry_file)


def test_load_registry_missing(tmp_path: Path) -> None:
    with pytest.raises(OpsError) as info:
        load_registry(tmp_path)
    assert (
        info.value.message
        == f"fleet registry file not found: {FleetPaths.for_repo(tmp_path).registry_file}"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b'{"schemaVersion":"v1","loops":[{"loopId":"a","metadata":{"x":NaN}}]}',
        b'{"schemaVersion":"v1","loops":[{"loopId":"a","metadata":{"x":1e400}}]}',
        b'{"schemaVersion":"v1","loops":[{"loopId":"a\\ud800"}]}',
        b'{"schemaVersion":"v1","loops":[{"loopId":"\xff"}]}',
        b"[" * 100_000 + b"]" * 100_000,
        '{"schemaVersion":"v1","loops":[{"loopId":"a"}]}'.encode("utf-16"),
    ],
    ids=["empty", "truncated", "nan", "overflow", "lone-surrogate", "bad-utf8", "deep", "utf16"],
)
def test_load_registry_invalid_json(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "reg.json"
    path.write_bytes(data)
    with pytest.raises(OpsError) as info:
        load_registry(tmp_path, path)
    assert info.value.message == f"invalid fleet registry JSON: {path}"


def test_paired_surrogate_escape_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "reg.json"
    path.write_bytes(
        b'{"schemaVersion":"v1","loops":[{"loopId":"a","metadata":{"e":"\\ud83d\\ude00"}}]}'
    )
    assert load_registry(tmp_path, path, now=NOW)["loops"][0]["metadata"] == {"e": "\U0001f600"}


def test_relative_registry_file_echoed_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write_registry(repo, ["a"], path=tmp_path / "elsewhere" / "reg.json")
    monkeypatch.chdir(tmp_path)
    out = load_registry(repo, Path("elsewhere/reg.json"), now=NOW)
    assert out["sourceFile"] == "elsewhere/reg.json"


# --------------------------------------------------------------------------------------------
# CLI (in-process)
# --------------------------------------------------------------------------------------------
def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["fleet-registry", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_normalised_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_registry(tmp_path, registry_doc(["loop-a", "loop-b"], fleet_id="f1"))
    code, out, err = run_cli(capsys, "--repo", str(tmp_path))
    assert (code, err) == (0, "")
    assert out.endswith("\n") and out.count("\n") == 1
    doc = json.loads(out)
    assert doc["sourceFile"] == str(path) and doc["fleetId"] == "f1" and doc["loopCount"] == 2
    code, pretty, _ = run_cli(capsys, "--repo", str(tmp_path), "--pretty")
    assert code == 0 and pretty == dumps_pretty(doc) + "\n"


def test_cli_loop_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_registry(tmp_path, ["loop-a", "loop-b"])
    code, out, _ = run_cli(capsys, "--repo", str(tmp_path), "--loop", "loop-b")
    assert code == 0 and [x["loopId"] for x in json.loads(out)["loops"]] == ["loop-b"]
    code, out, err = run_cli(capsys, "--repo", str(tmp_path), "--loop", "loop-z")
    assert (code, out, err) == (1, "", "error: loop not found in registry: loop-z\n")


def test_cli_validation_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """R-REG-1/R-REG-2 style: one header line, then ` - <message>` per problem, exit 1."""
    doc = registry_doc(
        [loop_entry("loop-a", transport="sprite_service")],
        policy={"suppressions": {"*": ["health_critical", "unknown_category"]}},
    )
    path = write_registry(tmp_path, doc)
    code, out, err = run_cli(capsys, "--repo", str(tmp_path))
    assert (code, out) == (1, "")
    assert err == (
        f"error: invalid fleet registry: {path}\n"
        " - loops[0]: sprite_service loops require service.baseUrl or sprite.serviceBaseUrl\n"
        " - policy.suppressions.* contains unknown categories\n"
    )


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"schemaVersion": "v1", "loops": [5]}, "loops[0]: entry must be an object"),
        (
            {"schemaVersion": "v1", "loops": [{"loopId": "a", "sprite": "x"}]},
            "loops[0]: sprite must be an object when present",
        ),
        (
            {"schemaVersion": "v1", "loops": [{"loopId": "a"}], "policy": []},
            "policy must be an object when present",
        ),
        (
            {
                "schemaVersion": "v1",
                "loops": [{"loopId": "a"}],
                "policy": {"autonomous": {"rollout": 3}},
            },
            "policy.autonomous.rollout must be an object when present",
        ),
        ([1, 2], "registry must be a JSON object"),
    ],
)
def test_cli_upstream_crash_shapes_are_friendly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: Any, fragment: str
) -> None:
    """§6.3: shapes that crashed upstream with a jq error (exit 5) get the friendly line."""
    path = FleetPaths.for_repo(tmp_path).registry_file
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    code, _, err = run_cli(capsys, "--repo", str(tmp_path))
    assert code == 1
    assert f"\n - {fragment}\n" in err and "Traceback" not in err


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys)[::2] == (1, "error: --repo is required\n")
    code, _, err = run_cli(capsys, "--repo", str(tmp_path))
    assert code == 1
    assert (
        err
        == f"error: fleet registry file not found: {FleetPaths.for_repo(tmp_path).registry_file}\n"
    )
    code, out, err = run_cli(capsys, "--repo", str(tmp_path), "--bogus")
    assert code == 1 and err == "error: unknown argument: --bogus\n" and out.startswith("usage:")
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "--registry-file" in out and "--loop" in out
    code, _, err = run_cli(capsys, "--repo", str(tmp_path / "nope"))
    assert code == 1 and err.startswith("error: ")


def test_cli_token_value_never_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = "ghp_" + "A1b2C3d4" * 4
    write_registry(tmp_path, [loop_entry("a", service={"tokenEnv": token})])
    code, out, err = run_cli(capsys, "--repo", str(tmp_path))
    assert code == 1 and token not in out + err
    assert "service.tokenEnv must be the name of an environment variable" in err


def test_registry_file_flag_relative(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_registry(tmp_path, ["a"], path=tmp_path / "r.json")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "--repo", ".", "--registry-file", "r.json")
    assert code == 0 and json.loads(out)["sourceFile"] == "r.json"
    assert os.path.basename(json.loads(out)["sourceFile"]) == "r.json"
