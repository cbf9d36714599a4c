"""Loading the threshold-profile catalog from disk (the shell side of ``reducers.thresholds``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from ops_manager.errors import OpsError
from ops_manager.reducers.thresholds import (
    ResolvedProfile,
    apply_precedence,
    profile_names,
    resolve_profile,
    validate_catalog,
    validate_thresholds,
)
from ops_manager.reducers.thresholds import Thresholds as Thresholds

#: environment variable naming a catalog file (flag > env > packaged default)
PROFILES_FILE_ENV = "OPS_MANAGER_THRESHOLD_PROFILES_FILE"

#: environment variable naming the profile when no flag does (flag > env > catalog default)
PROFILE_ENV = "OPS_MANAGER_THRESHOLD_PROFILE"

#: the catalog shipped inside the package (``config/`` holds a symlink to it)
PACKAGED_PROFILES_FILE = (
    Path(__file__).resolve().parent.parent / "data" / "ops-manager-threshold-profiles.v1.json"
)


def default_profiles_path(environ: Mapping[str, str] | None = None) -> Path:
    """The catalog path when no flag is given: ``$OPS_MANAGER_THRESHOLD_PROFILES_FILE`` if
    set and non-empty, else the packaged catalog."""
    env = os.environ if environ is None else environ
    value = env.get(PROFILES_FILE_ENV, "")
    return Path(value) if value else PACKAGED_PROFILES_FILE


def profiles_path(flag_value: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """Apply the full precedence: a non-empty flag value, else :func:`default_profiles_path`."""
    return Path(flag_value) if flag_value else default_profiles_path(environ)


def load_catalog(path: Path) -> dict[str, Any]:
    """Read and shape-check a catalog file.

    Errors: ``threshold profiles file not found: <path>``, ``invalid threshold profiles
    JSON: <path>``, ``threshold profiles file has invalid shape``.
    """
    try:
        text = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise OpsError(f"threshold profiles file not found: {path}") from None
    try:
        catalog = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise OpsError(f"invalid threshold profiles JSON: {path}") from None
    validate_catalog(catalog, str(path))
    return cast("dict[str, Any]", catalog)  # validate_catalog proved it is an object


def resolve_from_file(path: Path, name: str | None) -> ResolvedProfile:
    """Load the catalog at ``path`` and resolve ``name`` (empty/None = the default profile)."""
    return resolve_profile(load_catalog(path), name)


def names_from_file(path: Path) -> list[str]:
    """Load the catalog at ``path`` and return its profile names, sorted by code point."""
    return profile_names(load_catalog(path))


def load_profile(
    profiles_flag: str | None, profile_flag: str | None, environ: Mapping[str, str] | None = None
) -> tuple[ResolvedProfile, frozenset[str]]:
    """The profile a pass applies, and every profile name the catalog knows.

    Both settings follow flag > env > default: the catalog file (``--thresholds-file``,
    :data:`PROFILES_FILE_ENV`, the packaged catalog) and the profile name
    (``--threshold-profile``, :data:`PROFILE_ENV`, the catalog's ``defaultProfile``).
    """
    env = os.environ if environ is None else environ
    name = profile_flag or env.get(PROFILE_ENV) or None
    catalog = load_catalog(profiles_path(profiles_flag, env))
    return resolve_profile(catalog, name), frozenset(catalog["profiles"])


def thresholds_from_flags(values: Mapping[str, int], profile: str | None) -> Thresholds:
    """Thresholds given one by one (``ops-manager health``: ``values`` maps
    :class:`Thresholds` field names to flag values, every field present), validated."""
    thresholds = Thresholds(profile=profile, **values)
    validate_thresholds(thresholds)
    return thresholds


def thresholds_over_profile(
    resolved: ResolvedProfile, explicit: Mapping[str, int | None]
) -> Thresholds:
    """A pass's thresholds: an explicit flag (``explicit`` maps :class:`Thresholds` field
    names to a value, ``None`` when not given) wins over the profile; validated."""
    heartbeat = ("degraded_heartbeat_lag_seconds", "critical_heartbeat_lag_seconds")
    thresholds = apply_precedence(
        resolved,
        {field: value for field, value in explicit.items() if field not in heartbeat},
        explicit.get(heartbeat[0]),
        explicit.get(heartbeat[1]),
    )
    validate_thresholds(thresholds)
    return thresholds
