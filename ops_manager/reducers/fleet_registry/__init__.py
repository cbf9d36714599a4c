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

from ops_manager.reducers.fleet_registry._normalize import (
    normalize_loop,
    normalize_policy,
    normalize_registry,
)
from ops_manager.reducers.fleet_registry._values import (
    CATEGORIES,
    CONFIDENCES,
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
    INTENTS,
    POLICY_MODES,
    RESERVED_LOOP_IDS,
    SCHEMA_VERSION,
    SEVERITIES,
    TRANSPORTS,
    RegistryValidationError,
    loop_id_problem,
    parse_fleet_ts,
)
from ops_manager.reducers.fleet_registry.problems import validate_registry

__all__ = [
    "CATEGORIES",
    "CONFIDENCES",
    "DEFAULT_ALLOW_CATEGORIES",
    "DEFAULT_ALLOW_INTENTS",
    "DEFAULT_AMBIGUITY_RATE_THRESHOLD",
    "DEFAULT_CANARY_PERCENT",
    "DEFAULT_COOLDOWN_SECONDS",
    "DEFAULT_DEDUPE_WINDOW_SECONDS",
    "DEFAULT_FAILURE_RATE_THRESHOLD",
    "DEFAULT_FLEET_ID",
    "DEFAULT_LOOKBACK_EXECUTIONS",
    "DEFAULT_MAX_ACTIONS_PER_LOOP",
    "DEFAULT_MAX_ACTIONS_PER_RUN",
    "DEFAULT_MIN_CONFIDENCE",
    "DEFAULT_MIN_SAMPLE_SIZE",
    "DEFAULT_MIN_SEVERITY",
    "DEFAULT_RETRY_ATTEMPTS",
    "DEFAULT_RETRY_BACKOFF_SECONDS",
    "DEFAULT_SELECTOR_SALT",
    "INTENTS",
    "POLICY_MODES",
    "RESERVED_LOOP_IDS",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "TRANSPORTS",
    "RegistryValidationError",
    "loop_id_problem",
    "normalize_loop",
    "normalize_policy",
    "normalize_registry",
    "parse_fleet_ts",
    "validate_registry",
]
