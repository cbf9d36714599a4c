"""The quiet dispatch: a run with nothing to send, without importing the alert stack.

Most reconcile passes end with a dispatch that has nothing to do: no new escalation row,
nothing in the outbox, no open episode whose condition cleared. Such a run still writes
``alert-dispatch-state.json`` (a new ``updatedAt`` and ``traceId``, the counts reset to 0),
so it cannot simply be skipped; but importing the alert stack to write it (the sink config
loader, the reducers, pluggy and every sink plugin) cost a CLI pass about a third of its
CPU. :func:`try_quiet_dispatch` recognises that run with the standard library and the store
only, and writes exactly the bytes :func:`ops_manager.engine.alert_dispatch.dispatch` writes
for it (``tests/test_quiet_dispatch.py`` runs both on the same inputs and compares every
file). Anything else, or any doubt, returns ``False`` before writing and the full dispatch
runs. The sink config must be known to load, from the memo of an earlier process
(:func:`ops_manager.engine._schema_memo.alert_config_known_ok`): a config that does not load
is a ``config_invalid`` run, which only the full dispatch writes.

Also here, because the quiet path needs them without the alert stack: where the sink config
is (``alerts.md`` §1.1) and the dispatch's own paths in ``OPS/``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ops_manager._jsonfmt import as_nonneg_int
from ops_manager.reducers.alert_dispatch_state import RunCounts, dispatch_state
from ops_manager.store import (
    LoopPaths,
    Position,
    Stream,
    apply_pending,
    commit,
    exclusive_lock,
    json_replace,
    read_file_bytes,
    read_json_or_empty,
    remove_dead_temps,
    replace_bytes,
    rows_append,
)

#: environment variable naming the config file (flag > env > packaged default)
ALERT_SINKS_FILE_ENV = "OPS_MANAGER_ALERT_SINKS_FILE"

#: the config shipped inside the package (``config/`` holds a symlink to it); every sink off
PACKAGED_ALERT_SINKS_FILE = (
    Path(__file__).resolve().parent.parent / "data" / "ops-manager-alert-sinks.v1.json"
)


def config_path(flag_value: str | None, environ: Mapping[str, str] | None = None) -> str:
    """§1.1 precedence: a non-empty flag value, else ``$OPS_MANAGER_ALERT_SINKS_FILE`` if set
    and non-empty, else the packaged default. The string is used (and echoed) as given."""
    if flag_value:
        return flag_value
    env = os.environ if environ is None else environ
    value = env.get(ALERT_SINKS_FILE_ENV, "")
    return value if value else str(PACKAGED_ALERT_SINKS_FILE)


def outbox_path(paths: LoopPaths) -> Path:
    """``OPS/alert-outbox.jsonl``: notifications queued, retried, kept."""
    return paths.ops("alert-outbox.jsonl")


def lock_path(paths: LoopPaths) -> Path:
    """``OPS/.alert-dispatch.lock``: serializes dispatch, replay and their outbox writes."""
    return paths.ops(".alert-dispatch.lock")


def commit_record_path(paths: LoopPaths) -> Path:
    """``OPS/.alert-dispatch-commit.json``: a dispatch run's telemetry rows and state, as one."""
    return paths.ops(".alert-dispatch-commit.json")


def commit_run(
    record: Path, telemetry: Path, state_file: Path, rows: list[dict[str, Any]], state: Any
) -> None:
    """A dispatch run's telemetry rows and its state (the new offset), durable as one.

    The one place a dispatch commits (the full run's ``alert_dispatch._commit`` calls it):
    the quiet run cannot write other bytes than the full one by committing differently.
    With no rows to append (a run that found nothing to do) the state alone is the commit
    and its own durable rename is the commit point: a record around it would only cost
    another file creation, rename and unlink per loop of a fleet pass. A temp a kill leaves
    is removed by the next run (``remove_dead_temps``, under the lock).
    """
    replace = json_replace(state_file, state)
    if rows:
        commit(record, [rows_append(telemetry, rows)], [replace])
        return
    try:
        if read_file_bytes(state_file) == replace.data:
            return
    except OSError:
        pass
    replace_bytes(state_file, replace.data, durable=True)


def config_known_ok(path: str) -> bool:
    """Whether the sink config at ``path`` is known to load, without loading it.

    ``True`` only from the cross-process memo, and only while this process has not built
    the plugin manager: a library caller may have registered a sink plugin in process, and
    then only a real load says what that plugin accepts.
    """
    if "ops_manager.plugins" in sys.modules:
        return False
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    from ops_manager.engine._schema_memo import alert_config_known_ok

    return alert_config_known_ok(path, data)


# --- the quiet run -------------------------------------------------------------------------

#: the keys of one stored episode, in the order ``Episode.to_json`` writes them
_EPISODE_KEYS = [
    "dedupKey",
    "openedAt",
    "openedLine",
    "lastLine",
    "category",
    "severity",
    "escalationTraceId",
    "sinks",
]
_SEVERITIES = ("info", "warning", "critical")


def _nonneg_int(value: object) -> bool:
    return type(value) is int and value >= 0


def _opt_nonempty_str(value: object) -> bool:
    return value is None or (isinstance(value, str) and value != "")


def _episode_as_written(value: object) -> bool:
    """Whether reading this stored episode and writing it back gives the same JSON."""
    return (
        isinstance(value, dict)
        and list(value) == _EPISODE_KEYS
        and isinstance(value["dedupKey"], str)
        and value["dedupKey"] != ""
        and _opt_nonempty_str(value["openedAt"])
        and _nonneg_int(value["openedLine"])
        and _nonneg_int(value["lastLine"])
        and isinstance(value["category"], str)
        and value["severity"] in _SEVERITIES
        and _opt_nonempty_str(value["escalationTraceId"])
        and isinstance(value["sinks"], list)
        and all(isinstance(s, str) for s in value["sinks"])
    )


def _cleared(family: str, paths: LoopPaths) -> bool:
    """``reducers.alerts.episode_cleared`` on what ``read_conditions`` reads."""
    if family == "health":
        return read_json_or_empty(paths.health_file).get("status") == "healthy"
    if family == "drift":
        return read_json_or_empty(paths.drift_state_file).get("driftActive") is False
    if family == "ordering":
        return read_json_or_empty(paths.sequence_state_file).get("driftActive") is False
    if family == "divergence":
        divergence = read_json_or_empty(paths.state_file).get("divergence")
        return isinstance(divergence, dict) and divergence.get("any") is False
    return False


def _previous_state(path: Path) -> dict[str, Any] | None:
    """``read_dispatch_state`` where it would not raise; ``None`` where it would."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError:
        return None
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else {}


def _unchanged_position(escalations: Path, prev_offset: int, stored: object) -> tuple[bool, Any]:
    """``(True, position)`` when the escalations file has no complete line after line
    ``prev_offset`` and the stored position of that line verifies (the full run then keeps
    ``dict(stored)``; ``None`` before any line); ``(False, None)`` otherwise.

    The same read as the full run's ``read_new_lines`` (``Stream.read_after_line``), cut
    down to the one answer the gate needs: a rescanned position would be written back
    changed, so only a hint that verifies in place counts as quiet.
    """
    hint = Position.from_json(stored) if prev_offset else None
    if prev_offset and hint is None:
        return False, None
    try:
        found = Stream(escalations).read_after_line(prev_offset, hint)
    except OSError:
        return False, None  # no file ("no_source"), a directory: the full run
    if isinstance(found, int) or found.lines:
        return False, None  # ahead of the file (an error) or new rows: the full run
    if not prev_offset:
        return True, None
    if found.start != hint or not isinstance(stored, dict):
        return False, None
    return True, dict(stored)


def try_quiet_dispatch(
    paths: LoopPaths,
    *,
    trace_id: str,
    config_file: str | Path | None,
    state_file: Path | None,
    telemetry_file: Path | None,
    clock: Callable[[], float] = time.time,
    environ: Mapping[str, str] | None = None,
    config_ok: Callable[[str], bool] = config_known_ok,
) -> bool:
    """Write the state of a dispatch run that has nothing to do, and return ``True``; or
    return ``False`` having written nothing (but what the full run also does first: the
    directories, a left-over commit applied, dead temps removed) and let it run.

    The same inputs as ``run_dispatch_after_reconcile``; ``clock`` and ``environ`` as in
    ``DispatchEffects``. ``config_ok`` says whether the sink config path loads.
    """
    env = os.environ if environ is None else environ
    if not paths.repo.is_dir():
        return False
    if not config_ok(config_path(str(config_file) if config_file else None, env)):
        return False
    escalations = paths.escalations_file
    state_path = state_file or paths.alert_dispatch_state_file
    telemetry = telemetry_file or paths.alert_telemetry_file
    record = commit_record_path(paths)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    telemetry.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(lock_path(paths)):
        apply_pending(record)
        remove_dead_temps(state_path)
        previous = _previous_state(state_path)
        if previous is None:
            return False
        prev_offset = as_nonneg_int(previous.get("escalationsLineOffset")) or 0
        quiet, position = _unchanged_position(
            escalations, prev_offset, previous.get("escalationsPosition")
        )
        if not quiet:
            return False
        try:
            if outbox_path(paths).stat().st_size:
                return False  # an outbox to fold (and maybe retry): the full run
        except FileNotFoundError:
            pass
        stored = previous.get("episodes")
        episodes: dict[str, Any] = {}
        if isinstance(stored, dict):
            for family, value in stored.items():
                if not _episode_as_written(value) or _cleared(family, paths):
                    return False
                episodes[family] = value
        state = dispatch_state(
            now=int(clock()),
            loop_id=paths.loop_id,
            trace_id=trace_id,
            escalations_file=str(escalations),
            telemetry_file=str(telemetry),
            status="no_new_escalations",
            counts=RunCounts(),
            offset=prev_offset,
            line_count=prev_offset,
            position=position,
            # reducers.alerts.outbox_counts of an empty outbox (the gate requires one)
            outbox={"pendingCount": 0, "terminalCount": 0, "gaveUpCount": 0},
            episodes=episodes,
        )
        commit_run(record, telemetry, state_path, [], state)
        return True
