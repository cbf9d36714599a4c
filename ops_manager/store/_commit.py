"""A pass that commits as one: one commit record, made durable once, then applied idempotently.

A reconcile pass changes several files: it appends rows to streams (escalations, telemetry)
and replaces projections (state, health, cursor, ...). Written one by one, a crash between
two of them leaves a mix of the old pass and the new one, which the next pass misreads (it
re-ingested the log, paged ``ordering_drift_detected`` and repeated ``health_critical``).

So a pass first writes everything it is about to change into ONE commit record,
``OPS/.pass-commit.json``: for each stream, its size before the pass and the exact bytes to
append; for each projection, its exact new bytes. That record is written to a temp file,
fsynced and renamed into place (then its directory fsynced): **the rename is the commit
point**. Then the record is applied and removed.

Applying is idempotent, so it can be repeated after a crash at any instruction:

- a stream already holding the pass's bytes at the recorded offset is left alone; one holding
  only a prefix of them (a kill mid-append) gets the rest; one still at the recorded size
  gets them all (a stream that another writer moved on meanwhile gets them at its end: a row
  is never lost);
- a projection whose bytes already match is not rewritten.

Whoever takes the loop's lock next (a reconcile pass, ``rebuild``, ``profile-drift``,
``project-state``) first applies a record left behind, so the loop is always either at the
previous pass or at the next one, never in between.

The fleet commands do the same under the fleet lock, all through one record,
``FLEET/.fleet-commit.json`` (:func:`locked` takes the lock and applies it first;
:func:`finish_pending` before a read outside the lock).

The fsync policy: the commit record is fsynced (file and directory); stream appends (all
through :meth:`~ops_manager.store.Stream.append_bytes`) and projection replacements are
not. After a process kill that loses nothing: the page cache holds every completed write
and the record re-applies the rest. After a power
loss the record, if present, is re-applied; projections are replaced by rename, which ext4
and xfs order after the data they name, and every projection is read leniently and can be
re-derived (``rebuild``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import dumps, json_text_bytes
from ops_manager.store._atomic import replace_bytes, write_atomic
from ops_manager.store._lock import exclusive_lock
from ops_manager.store._projection import read_file_bytes
from ops_manager.store._stream import Stream, encode_rows


@attrs.frozen
class Append:
    """Bytes a pass appends to a stream, and the stream's size before the pass."""

    path: Path
    size_before: int
    data: bytes


@attrs.frozen
class Replace:
    """The new bytes of a projection.

    ``current``, when the pass already read the projection under the lock it holds, is
    the bytes it found (``None``: not known). A commit then drops a replace whose bytes are
    unchanged and writes the others without reading each file again to compare.
    """

    path: Path
    data: bytes
    current: bytes | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)


def rows_append(path: Path, rows: Sequence[Mapping[str, Any]]) -> Append:
    """An :class:`Append` of ``rows`` as compact JSON lines, from the stream's size now."""
    return Append(path, stream_size(path), encode_rows(rows))


def json_replace(
    path: Path, value: Any, pretty: bool = False, *, current: bytes | None = None
) -> Replace:
    """A :class:`Replace` of ``path`` with ``value`` as JSON plus a newline (as ``write_json``)."""
    return Replace(path, json_text_bytes(dumps(value, pretty) + "\n"), current=current)


def stream_size(path: Path) -> int:
    """The size of a stream file (0 when it does not exist yet)."""
    return Stream(path).size()


def commit(record: Path, appends: Sequence[Append], replaces: Sequence[Replace]) -> None:
    """Make the pass durable as one record, then apply it (see the module docstring)."""
    # a projection the pass read under its lock and would rewrite with the same bytes is
    # left out: there is nothing to make durable or to apply
    replaces = [r for r in replaces if r.current is None or r.current != r.data]
    # absolute paths: a path given on the command line may be relative, and the record may
    # be applied by another command started in another directory
    doc: dict[str, Any] = {
        "schemaVersion": "v1",
        "appends": [
            {
                "file": str(a.path.absolute()),
                "sizeBefore": a.size_before,
                "data": a.data.decode("utf-8"),
            }
            for a in appends
            if a.data
        ],
        "replaces": [
            {"file": str(r.path.absolute()), "data": r.data.decode("utf-8")} for r in replaces
        ],
    }
    write_atomic(record, json.dumps(doc, separators=(",", ":")) + "\n")
    # applied from the bytes in hand (the record holds the same ones, as text); a replace
    # whose current bytes are known to differ is written without reading it to compare
    for item, a in zip(doc["appends"], [a for a in appends if a.data], strict=True):
        item["bytes"] = a.data
    for item, r in zip(doc["replaces"], replaces, strict=True):
        item["bytes"] = r.data
        item["changed"] = r.current is not None
    _apply(doc)
    _remove(record)


def apply_pending(record: Path) -> bool:
    """Finish a pass whose commit record a crash left behind; ``True`` if there was one.

    A record that cannot be parsed was never committed (the rename is atomic, so this only
    happens if someone edits it): it is set aside as ``<record>.corrupt`` and ignored.
    """
    remove_dead_temps(record)
    try:
        raw = record.read_bytes()
    except FileNotFoundError:
        return False
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except ValueError:
        with contextlib.suppress(OSError):
            os.replace(record, record.with_name(record.name + ".corrupt"))
        return False
    _apply(doc)
    for target in _targets(doc):
        remove_dead_temps(target)
    _remove(record)
    return True


@contextlib.contextmanager
def locked(lock: Path, record: Path) -> Iterator[None]:
    """Hold ``lock`` with the record its previous holder may have left applied first.

    For artifacts that several commands write under one lock (the fleet lock): each of them
    commits through the same ``record``, so whichever takes the lock next finishes it.
    """
    with exclusive_lock(lock):
        apply_pending(record)
        yield


def finish_pending(lock: Path, record: Path) -> None:
    """Apply a record left behind before reading outside ``lock`` (a cheap no-op without one).

    The lock is taken only when the record exists, so a read-only failure path (a missing
    input) creates nothing.
    """
    if record.exists():
        with locked(lock, record):
            pass


def _targets(doc: dict[str, Any]) -> list[Path]:
    replaces = doc.get("replaces")
    items = replaces if isinstance(replaces, list) else []
    return [Path(str(item["file"])) for item in items if isinstance(item, dict) and "file" in item]


def remove_dead_temps(path: Path) -> None:
    """Remove ``.<name>.tmp.<pid>`` files a killed writer of ``path`` left behind.

    Only temps of a process that no longer exists: a live writer (another command that
    writes the same projection outside the loop lock) keeps its temp until its rename.
    """
    prefix = f".{path.name}.tmp."
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        pid = name[len(prefix) :]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(path.parent / name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, but not ours to signal
    return True


def _data(item: dict[str, Any]) -> bytes:
    # ``bytes``: set in memory by commit() (never in a record on disk, which is JSON)
    data = item.get("bytes")
    return data if isinstance(data, bytes) else json_text_bytes(str(item["data"]))


def _apply(doc: dict[str, Any]) -> None:
    appends = doc.get("appends")
    for item in appends if isinstance(appends, list) else []:
        _append_once(Path(str(item["file"])), int(item["sizeBefore"]), _data(item))
    replaces = doc.get("replaces")
    for item in replaces if isinstance(replaces, list) else []:
        # ``changed``: commit() knows the file holds other bytes (no read to compare)
        changed = item.get("changed") is True and isinstance(item.get("bytes"), bytes)
        _replace(Path(str(item["file"])), _data(item), changed=changed)


def _append_once(path: Path, size_before: int, data: bytes) -> None:
    # a name of its own: the crash tests interrupt the pass at each of its writes
    Stream(path).append_bytes(data, size_before)


def _replace(path: Path, data: bytes, *, changed: bool = False) -> None:
    if not changed:
        try:
            if read_file_bytes(path) == data:
                return
        except OSError:
            pass
    replace_bytes(path, data, durable=False)


def _remove(record: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        record.unlink()
