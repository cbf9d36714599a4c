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
    resolve_profile,
    validate_catalog,
)

#: environment variable naming a catalog file (flag > env > packaged default)
PROFILES_FILE_ENV = "OPS_MANAGER_THRESHOLD_PROFILES_FILE"

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
