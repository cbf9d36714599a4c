"""Documents that already passed their schema, remembered across processes.

Checking a config against its JSON Schema means importing jsonschema, about 60 ms of CPU:
more than the rest of an incremental reconcile pass. A pass checks the same alert sink
config every time, so the outcome of that check is remembered as one empty file per
document that passed, named by a SHA-256 of what the outcome depends on: the schema's bytes,
the ops-manager version and the document (canonical JSON). A later process finds the name
with one ``stat`` and skips the import. Only passes are remembered: a document that fails is
checked (and its errors reported) every time.

The memo is an optimization, never a source of truth: it lives in the user's cache
directory (``$OPS_MANAGER_CACHE_DIR``, else ``$XDG_CACHE_HOME/ops-manager``, else
``~/.cache/ops-manager``), holds no document content (names are hashes; configs name secret
env vars, never their values), and any problem reading or writing it (no home, read-only
disk) only means the schema is checked again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ops_manager._version import VERSION

#: where the packaged schemas are (the same files ``model.validation`` loads)
_SCHEMA_DIR = Path(__file__).resolve().parent.parent / "data"


def cache_dir() -> Path | None:
    """The memo's directory (not created here), or ``None`` when no home is known."""
    explicit = os.environ.get("OPS_MANAGER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "ops-manager"
    home = os.environ.get("HOME")
    return Path(home) / ".cache" / "ops-manager" if home else None


def _entry(schema_name: str, doc: object) -> Path | None:
    base = cache_dir()
    if base is None:
        return None
    try:
        schema = (_SCHEMA_DIR / schema_name).read_bytes()
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (OSError, TypeError, ValueError):
        return None
    digest = hashlib.sha256()
    for part in (VERSION.encode(), schema, canonical.encode("utf-8")):
        digest.update(hashlib.sha256(part).digest())
    return base / "schema-valid" / digest.hexdigest()


def known_valid(schema_name: str, doc: object) -> bool:
    """Whether ``doc`` passed the packaged schema ``schema_name`` in an earlier check."""
    entry = _entry(schema_name, doc)
    return entry is not None and entry.is_file()


def remember_valid(schema_name: str, doc: object) -> None:
    """Record that ``doc`` passed ``schema_name`` (best effort; never raises)."""
    entry = _entry(schema_name, doc)
    if entry is None:
        return
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        # existence is the whole record: an empty file cannot be half-written
        entry.touch()
    except OSError:
        pass
