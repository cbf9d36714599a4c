"""Alert sink config: the delivery policy and the parsed :class:`AlertConfig`. PURE.

The checks are :mod:`ops_manager.reducers.alerts.config_problems` (the schema + a table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ops_manager.reducers.alerts._vocab import (
    DEFAULT_TIMEOUT_SECONDS,
    JSON,
    PAGERDUTY_DEFAULT_SOURCE,
    REDACTED,
    SENSITIVE_HEADER,
    SINK_COMMON_KEYS,
    TYPE_CONTRACTS,
)

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


#: ``delivery`` JSON keys -> :class:`DeliveryPolicy` attributes (bounds live in the schema)
_DELIVERY_FIELDS = {
    "maxAttempts": "max_attempts",
    "deadlineSeconds": "deadline_seconds",
    "backoffBaseSeconds": "backoff_base_seconds",
    "backoffMaxSeconds": "backoff_max_seconds",
    "maxRetryAfterSeconds": "max_retry_after_seconds",
    "giveUpAfterSeconds": "give_up_after_seconds",
}


def delivery_policy(raw: object) -> DeliveryPolicy:
    """The policy from a checked ``delivery`` object (absent → defaults)."""
    if not isinstance(raw, dict):
        return DeliveryPolicy()
    values = {_DELIVERY_FIELDS[k]: v for k, v in raw.items() if k in _DELIVERY_FIELDS}
    if "max_attempts" in values:  # JSON Schema's integer admits 3.0: a count is an int
        values["max_attempts"] = int(values["max_attempts"])
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
    return {k: (REDACTED if SENSITIVE_HEADER.search(k) else v) for k, v in headers.items()}


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
        k: (REDACTED if SENSITIVE_HEADER.search(k) else v)
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
