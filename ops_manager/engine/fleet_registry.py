"""``fleet-registry``: read, validate and normalise the fleet registry (``fleet.md`` §1, §2.1).

Every fleet command starts here: :func:`load_registry` reads the registry file once, parses
it strictly and hands it to the pure
:func:`~ops_manager.reducers.fleet_registry.normalize_registry`. It writes nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ops_manager._jsonfmt import dumps_compact
from ops_manager._timefmt import utc_now_epoch
from ops_manager.engine._schema_memo import known_valid, remember_valid
from ops_manager.errors import OpsError
from ops_manager.model.validation import FLEET_REGISTRY_SCHEMA
from ops_manager.reducers.fleet_registry import normalize_registry
from ops_manager.store import FleetPaths

# a \uD800-\uDFFF escape: the only way a lone surrogate can get into a parsed document
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def parse_strict_json(data: bytes) -> Any:
    """Parse bytes as strict JSON; :class:`ValueError` if they are not.

    Strict means: UTF-8, no ``NaN``/``Infinity``, no number that overflows a double, no
    unpaired surrogate escapes, nesting within Python's limits. Anything else could not be
    printed back faithfully, so fleet commands refuse it where it enters.
    """
    try:
        text = data.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        if _SURROGATE_ESCAPE.search(text):
            dumps_compact(value).encode("utf-8")  # raises on an unpaired surrogate
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    return value


def parse_registry_text(data: bytes, source_file: str) -> Any:
    """Parse registry bytes (:func:`parse_strict_json`), or raise
    ``invalid fleet registry JSON: <path>``."""
    try:
        return parse_strict_json(data)
    except ValueError:  # UnicodeError is a ValueError
        raise OpsError(f"invalid fleet registry JSON: {source_file}") from None


def read_registry_document(path: Path, source_file: str | None = None) -> Any:
    """Read and parse the registry file (not yet validated).

    Raises ``fleet registry file not found: <path>`` when it is missing or not a regular
    file, and ``invalid fleet registry JSON: <path>`` when it does not parse.
    """
    shown = str(path) if source_file is None else source_file
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise OpsError(f"fleet registry file not found: {shown}") from None
    except OSError as exc:
        raise OpsError(f"cannot read fleet registry file: {shown}: {exc.strerror}") from None
    return parse_registry_text(data, shown)


def load_registry(
    repo: Path,
    registry_file: Path | None = None,
    *,
    loop: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The normalised registry of ``repo`` (``fleet.md`` §1.3), validated fail-closed.

    ``registry_file`` replaces the default ``<repo>/.superloop/ops-manager/fleet/registry.v1.json``
    and is echoed verbatim as ``sourceFile`` (a relative path stays relative to the process
    working directory). ``loop`` keeps only that loop. ``now`` (epoch seconds, default the
    clock) is the reference for the guarded_auto ``reviewBy`` deadline.

    Raises :class:`OpsError` (exit 1) with the contract's messages: ``fleet registry file not
    found: <path>``, ``invalid fleet registry JSON: <path>``, ``invalid fleet registry:
    <path>`` plus one `` - <problem>`` line each
    (:class:`~ops_manager.reducers.fleet_registry.RegistryValidationError`), and ``loop not
    found in registry: <id>``.
    """
    path = FleetPaths.for_repo(repo).registry_file if registry_file is None else registry_file
    source = str(path)
    document = read_registry_document(path, source)
    at = utc_now_epoch() if now is None else now
    # a registry that passed its JSON Schema before is not checked against it again (the
    # schema pass over a 1,000-loop registry costs ~0.1 s plus the jsonschema import; the
    # rules in code, the deadline among them, always run). Only passes are remembered.
    known = known_valid(FLEET_REGISTRY_SCHEMA, document)
    registry = normalize_registry(
        document, source_file=source, now=at, loop=loop, schema_known_valid=known
    )
    if not known:
        remember_valid(FLEET_REGISTRY_SCHEMA, document)
    return registry
