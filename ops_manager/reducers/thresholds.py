"""Health thresholds and the threshold-profile catalog (``loop.md`` §3.4, §3.5, §3.8.1).

Pure: the catalog arrives as an already-parsed object (``ops_manager.engine.profiles``
reads the file). Errors are :class:`~ops_manager.errors.OpsError` with the contract's
exact wording.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ops_manager.model._json import as_nonneg_int, strip_nulls
from ops_manager.model.errors import OpsError

#: profile value keys, in the order the resolver prints them (§3.5)
PROFILE_VALUE_KEYS: tuple[str, ...] = (
    "degradedIngestLagSeconds",
    "criticalIngestLagSeconds",
    "degradedTransportFailureStreak",
    "criticalTransportFailureStreak",
)

#: camelCase contract name -> :class:`Thresholds` field name (the six thresholds)
_FIELD_FOR_KEY: dict[str, str] = {
    "degradedIngestLagSeconds": "degraded_ingest_lag_seconds",
    "criticalIngestLagSeconds": "critical_ingest_lag_seconds",
    "degradedHeartbeatLagSeconds": "degraded_heartbeat_lag_seconds",
    "criticalHeartbeatLagSeconds": "critical_heartbeat_lag_seconds",
    "degradedTransportFailureStreak": "degraded_transport_failure_streak",
    "criticalTransportFailureStreak": "critical_transport_failure_streak",
}

#: (degraded field, critical field, message) — checked in this order (§3.4 / §3.8.1)
_PAIRS: tuple[tuple[str, str, str], ...] = (
    (
        "degraded_ingest_lag_seconds",
        "critical_ingest_lag_seconds",
        "critical ingest lag threshold must be >= degraded threshold",
    ),
    (
        "degraded_heartbeat_lag_seconds",
        "critical_heartbeat_lag_seconds",
        "critical heartbeat lag threshold must be >= degraded threshold",
    ),
    (
        "degraded_transport_failure_streak",
        "critical_transport_failure_streak",
        "critical transport failure threshold must be >= degraded threshold",
    ),
)


@attrs.frozen
class Thresholds:
    """The six health thresholds plus the applied profile label.

    Defaults are the ``balanced`` profile and the flag defaults for heartbeat lag (profiles
    carry no heartbeat thresholds).
    """

    profile: str | None = None
    degraded_ingest_lag_seconds: int = 300
    critical_ingest_lag_seconds: int = 900
    degraded_heartbeat_lag_seconds: int = 120
    critical_heartbeat_lag_seconds: int = 300
    degraded_transport_failure_streak: int = 2
    critical_transport_failure_streak: int = 4

    def to_json(self) -> dict[str, Any]:
        """The health ``thresholds`` object, keys in §3.4 order."""
        return {
            "profile": self.profile,
            "degradedIngestLagSeconds": self.degraded_ingest_lag_seconds,
            "criticalIngestLagSeconds": self.critical_ingest_lag_seconds,
            "degradedHeartbeatLagSeconds": self.degraded_heartbeat_lag_seconds,
            "criticalHeartbeatLagSeconds": self.critical_heartbeat_lag_seconds,
            "degradedTransportFailureStreak": self.degraded_transport_failure_streak,
            "criticalTransportFailureStreak": self.critical_transport_failure_streak,
        }

    @classmethod
    def from_json(cls, obj: object) -> Thresholds:
        """The inverse of :meth:`to_json` (a reconcile row's recorded ``inputs.thresholds``).

        Raises ``ValueError`` unless ``obj`` has exactly the seven keys, ``profile`` a
        string or ``null`` and the six thresholds non-negative integers, so a value that
        would not round-trip byte for byte is refused rather than guessed.
        """
        if not isinstance(obj, dict) or set(obj) != {"profile", *_FIELD_FOR_KEY}:
            raise ValueError("thresholds: not a thresholds object")
        profile = obj["profile"]
        if profile is not None and not isinstance(profile, str):
            raise ValueError("thresholds: profile must be a string or null")
        fields: dict[str, int] = {}
        for key, field in _FIELD_FOR_KEY.items():
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"thresholds: {key} must be a non-negative integer")
            fields[field] = value
        return cls(profile=profile, **fields)


def validate_thresholds(t: Thresholds) -> None:
    """Raise the contract error for the first pair with critical < degraded.

    Checked in the order ingest lag, heartbeat lag, transport failure streak.
    """
    for degraded, critical, message in _PAIRS:
        if getattr(t, critical) < getattr(t, degraded):
            raise OpsError(message)


@attrs.frozen
class ResolvedProfile:
    """One profile picked out of the catalog, with its four validated values."""

    name: str
    #: the four values in :data:`PROFILE_VALUE_KEYS` order (non-negative ints)
    values: dict[str, int]
    description: str | None = None

    def to_json(self, source_file: str) -> dict[str, Any]:
        """The resolver's output object (§3.5, **[strip]**: ``description`` omitted when absent)."""
        return strip_nulls(
            {
                "schemaVersion": "v1",
                "sourceFile": source_file,
                "profile": self.name,
                "values": dict(self.values),
                "description": self.description,
            }
        )


def validate_catalog(obj: object, path: str = "") -> None:
    """Check the catalog shape: ``schemaVersion == "v1"`` and a non-empty ``profiles`` object.

    ``path`` is accepted for the caller's convenience; the contract message does not name it.
    """
    del path  # the contract's message is path-free
    if (
        not isinstance(obj, dict)
        or obj.get("schemaVersion") != "v1"
        or not isinstance(obj.get("profiles"), dict)
        or not obj["profiles"]
    ):
        raise OpsError("threshold profiles file has invalid shape")


def profile_names(catalog: Mapping[str, Any]) -> list[str]:
    """The catalog's profile names, sorted by code point (``threshold-profile --list``)."""
    profiles = catalog.get("profiles")
    return sorted(profiles) if isinstance(profiles, dict) else []


def resolve_profile(catalog: Mapping[str, Any], name: str | None) -> ResolvedProfile:
    """Pick profile ``name`` (or the catalog's ``defaultProfile`` when ``name`` is empty).

    The catalog must already have passed :func:`validate_catalog`. The four values must be
    non-negative integers with critical >= degraded for both pairs; the contract only asks
    for "numbers", but a fractional or negative threshold can never be applied (the
    reconcile flag check would reject it later), so it is refused here, where the profile
    is named.
    """
    chosen = name if name else catalog.get("defaultProfile")
    if not isinstance(chosen, str) or chosen == "":
        raise OpsError("profile name is required and defaultProfile is missing")
    profiles = catalog.get("profiles")
    entry = profiles.get(chosen) if isinstance(profiles, dict) else None
    if entry is None:
        raise OpsError(f"unknown threshold profile: {chosen}")
    values: dict[str, int] = {}
    if isinstance(entry, dict):
        for key in PROFILE_VALUE_KEYS:
            value = as_nonneg_int(entry.get(key))
            if value is None:
                break
            values[key] = value
    if len(values) != len(PROFILE_VALUE_KEYS) or (
        values["criticalIngestLagSeconds"] < values["degradedIngestLagSeconds"]
        or values["criticalTransportFailureStreak"] < values["degradedTransportFailureStreak"]
    ):
        raise OpsError(f"threshold profile values are invalid: {chosen}")
    description = entry.get("description") if isinstance(entry, dict) else None
    return ResolvedProfile(
        name=chosen,
        values=values,
        description=description if isinstance(description, str) else None,
    )


def apply_precedence(
    resolved: ResolvedProfile,
    explicit: Mapping[str, int | None],
    heartbeat_degraded: int | None,
    heartbeat_critical: int | None,
) -> Thresholds:
    """Combine thresholds: explicit flag > resolved profile (which already fell back to the
    catalog default); heartbeat thresholds come only from flags (defaults 120/300).

    ``explicit`` maps profile value keys (camelCase, e.g. ``criticalIngestLagSeconds``; the
    snake_case field names are accepted too) to a flag value or ``None`` when the flag was
    not given. The result is not validated: call :func:`validate_thresholds`.
    """
    fields: dict[str, Any] = {}
    for key in PROFILE_VALUE_KEYS:
        fields[_FIELD_FOR_KEY[key]] = resolved.values[key]
    for key, value in explicit.items():
        field = _FIELD_FOR_KEY.get(key, key)
        if field not in _FIELD_FOR_KEY.values():
            raise ValueError(f"unknown threshold: {key}")
        if value is not None:
            fields[field] = value
    if heartbeat_degraded is not None:
        fields["degraded_heartbeat_lag_seconds"] = heartbeat_degraded
    if heartbeat_critical is not None:
        fields["critical_heartbeat_lag_seconds"] = heartbeat_critical
    return Thresholds(profile=resolved.name, **fields)
