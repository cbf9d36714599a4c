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


def _recorded(entry: Path | None) -> bool:
    return entry is not None and entry.is_file()


def _record(entry: Path | None) -> None:
    """Create the memo entry (best effort; never raises)."""
    if entry is None:
        return
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        # existence is the whole record: an empty file cannot be half-written
        entry.touch()
    except OSError:
        pass


def known_valid(schema_name: str, doc: object) -> bool:
    """Whether ``doc`` passed the packaged schema ``schema_name`` in an earlier check."""
    return _recorded(_entry(schema_name, doc))


def remember_valid(schema_name: str, doc: object) -> None:
    """Record that ``doc`` passed ``schema_name`` (best effort; never raises)."""
    _record(_entry(schema_name, doc))


# --- alert sink configs that loaded -------------------------------------------------------
#
# A second memo, in its own directory: an alert sink config that *loaded* (steps 4-8 of
# alerts.md §2.2: JSON, schema, each sink's plugin checks, routing) in an earlier process.
# The outcome depends on more than the schema, so the name also covers the installed sink
# plugins (each entry point, its distribution's metadata and its module sources) and the
# sources of the code that checks a config (size and mtime, so an edited checkout never
# trusts an outcome its old code reached). A reconcile pass that finds its config here
# knows the config is usable without importing the alert stack, pluggy or any plugin.

_PACKAGE_DIR = Path(__file__).resolve().parent.parent

#: files and directories (their ``*.py``) of ops_manager whose code decides whether a config
#: loads: the loader, the pure config reducers, the sink plugin API, the schemas
_ALERT_CONFIG_SOURCES = (
    "engine/alert_config.py",
    "engine/_schema_memo.py",
    "reducers/alerts",
    "sinks",
    "plugins.py",
    "hookspecs.py",
    "model/validation.py",
    "data/ops-manager-alert-sinks.config.schema.json",
)


def _stamp(path: str) -> bytes:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:missing".encode()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}".encode()


def _dir_stamps(directory: str) -> list[bytes]:
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".py"))
    except OSError:
        return [f"{directory}:missing".encode()]
    return [_stamp(os.path.join(directory, n)) for n in names]


def _plugin_stamps() -> list[bytes]:
    import importlib.util

    from ops_manager._entry_points import entry_points

    out: list[bytes] = []
    for name, value, dist_dir in entry_points("ops_manager"):
        out.append(f"ep:{name}={value}@{dist_dir}".encode())
        out.append(_stamp(os.path.join(dist_dir, "METADATA")))
        top = value.partition(":")[0].strip().split(".")[0]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            out.append(f"module:{top}:missing".encode())
            continue
        for location in spec.submodule_search_locations or ():
            out.extend(_dir_stamps(location))
        if spec.origin:
            out.append(_stamp(spec.origin))
    return out


def _alert_config_entry(path: str, data: bytes) -> Path | None:
    base = cache_dir()
    if base is None:
        return None
    digest = hashlib.sha256()
    parts = [VERSION.encode(), os.path.abspath(path).encode(), data]
    for source in _ALERT_CONFIG_SOURCES:
        full = str(_PACKAGE_DIR / source)
        parts.extend(_dir_stamps(full) if os.path.isdir(full) else [_stamp(full)])
    parts.extend(_plugin_stamps())
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return base / "alert-config-ok" / digest.hexdigest()


#: (path, bytes) -> its memo entry, computed once per process (a pass that checks its config
#: and then loads it asks twice; the plugins and the code do not change under a process)
_ENTRIES: dict[tuple[str, str, bytes], Path | None] = {}


def _alert_config_entry_once(path: str, data: bytes) -> Path | None:
    key = (str(cache_dir()), os.path.abspath(path), data)
    if key not in _ENTRIES:
        if len(_ENTRIES) > 64:
            _ENTRIES.clear()
        _ENTRIES[key] = _alert_config_entry(path, data)
    return _ENTRIES[key]


def alert_config_known_ok(path: str, data: bytes) -> bool:
    """Whether the config at ``path`` with these bytes loaded in an earlier process, with
    the same installed sink plugins and the same ops-manager code."""
    return _recorded(_alert_config_entry_once(path, data))


def remember_alert_config_ok(path: str, data: bytes) -> None:
    """Record that the config at ``path`` with these bytes loaded (best effort)."""
    _record(_alert_config_entry_once(path, data))
