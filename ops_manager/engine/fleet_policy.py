"""Fleet policy, the shell (``fleet.md`` §2.3): read the artifacts, call the reducer, write.

One call of :func:`fleet_policy`:

1. checks the fleet state exists (``fleet state file not found: <path>``), loads the
   normalised registry (its errors propagate: ``error: ...``, exit 1), parses the fleet state
   (``invalid fleet state JSON: <path>``);
2. picks the trace id (``--trace-id`` > fleet state ``traceId`` > ``$OPS_MANAGER_TRACE_ID``
   > a generated uuid4) and the dedupe window (flag > registry
   ``policy.noiseControls.dedupeWindowSeconds`` > 300);
3. under the fleet lock (DECISIONS 6.27): reads the previous policy state, brings the policy
   history index up to date (only the rows appended since the last run are read, see
   below), reads the autonomous execution rows of the handoff telemetry and the last
   governance audit row;
4. calls the pure :func:`~ops_manager.reducers.fleet_policy.evaluate_policy` with ``now``;
5. commits the run as one (``store._commit``, record ``FLEET/.fleet-commit.json``): the
   governance audit event (0 or 1), one history row per candidate, one policy telemetry row,
   the new ``policy-state.json`` and the history index go into one commit record, made
   durable before any of those files is touched, then applied. A kill leaves the previous
   run or this one; the next holder of the fleet lock finishes a record left behind before
   it reads anything (and this command finishes one before it reads the fleet state). A
   repeated audit event is still recognised from the audit stream's last row and not
   appended twice.

**History index.** Dedupe and the autonomous cooldown need, per candidate, the latest
unsuppressed and the latest eligible history row. Re-reading the whole history every run would
make a policy run cost grow with the fleet's age, so the fold is kept in a hidden sidecar
projection beside the stream, ``.<history name>.index.json`` (``{"schemaVersion", "position",
"lastUnsuppressed", "lastEligible"}``), with the stream position it reflects. A run verifies
the position (size and the fingerprint of the last consumed line), reads only the bytes after
it and folds them. A missing, malformed or stale index (the stream was truncated or rewritten)
is rebuilt from the start of the stream: the index is a cache, never the truth.

**Torn tails.** These streams have one writer (this command, under the fleet lock). A write
killed after its commit point is finished from the commit record, so a final line without a
newline left now can only come from elsewhere (an older version, a hand edit, a full disk): it
was never a record. It is ignored when reading and cut off before the next append (reported
through ``warn``), so the next record does not get glued to it; the append is computed after
the cut. Complete records are never rewritten or removed: the governance audit stream is
append-only.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import dumps_compact, nonempty_str
from ops_manager._timefmt import utc_now_epoch
from ops_manager.engine._files import last_jsonl_object
from ops_manager.engine.fleet_registry import load_registry
from ops_manager.errors import CorruptStreamError, OpsError
from ops_manager.reducers._fleet_json import dig, int_or
from ops_manager.reducers.fleet_policy import (
    MODES,
    HistoryIndex,
    PolicyEvaluation,
    PolicyFiles,
    PolicyInputs,
    evaluate_policy,
    index_history,
    policy_mode,
)
from ops_manager.reducers.fleet_rollout import is_autonomous_execution
from ops_manager.store import (
    Append,
    FleetPaths,
    Position,
    Read,
    Replace,
    Stream,
    commit,
    drop_torn_tail,
    finish_pending,
    iter_records,
    json_replace,
    locked,
    read_json_file,
    read_json_or_empty,
    rows_append,
)

PathArg = str | os.PathLike[str]
DEFAULT_DEDUPE_WINDOW_SECONDS = 300
INDEX_SCHEMA_VERSION = "v1"


@attrs.frozen
class FleetPolicyFiles:
    """Overrides of the artifact paths (``None`` = the default under ``<repo>/.superloop``).

    An override is used verbatim: a relative path stays relative to the working directory and
    is echoed as given into ``source``/``noiseControls``/``autonomous`` path fields.
    """

    registry: PathArg | None = None
    fleet_state: PathArg | None = None
    policy_state: PathArg | None = None
    governance_audit: PathArg | None = None
    handoff_telemetry: PathArg | None = None
    policy_telemetry: PathArg | None = None
    policy_history: PathArg | None = None


@attrs.frozen
class _Resolved:
    registry: Path
    fleet_state: Path
    policy_state: Path
    governance_audit: Path
    handoff_telemetry: Path
    policy_telemetry: Path
    policy_history: Path
    lock: Path
    commit_record: Path

    def echo(self) -> PolicyFiles:
        return PolicyFiles(
            registry_file=str(self.registry),
            fleet_state_file=str(self.fleet_state),
            policy_state_file=str(self.policy_state),
            governance_audit_file=str(self.governance_audit),
            handoff_telemetry_file=str(self.handoff_telemetry),
            policy_telemetry_file=str(self.policy_telemetry),
            policy_history_file=str(self.policy_history),
        )


def _pick(value: PathArg | None, default: Path) -> Path:
    return default if value is None else Path(os.fspath(value))


def _resolve(paths: FleetPaths, files: FleetPolicyFiles) -> _Resolved:
    return _Resolved(
        registry=_pick(files.registry, paths.registry_file),
        fleet_state=_pick(files.fleet_state, paths.state_file),
        policy_state=_pick(files.policy_state, paths.policy_state_file),
        governance_audit=_pick(files.governance_audit, paths.policy_governance_file),
        handoff_telemetry=_pick(files.handoff_telemetry, paths.handoff_telemetry_file),
        policy_telemetry=_pick(files.policy_telemetry, paths.policy_telemetry_file),
        policy_history=_pick(files.policy_history, paths.policy_history_file),
        lock=paths.lock_file,
        commit_record=paths.commit_record_file,
    )


def resolve_trace_id(
    flag: str | None, fleet_state: Mapping[str, Any], env: Mapping[str, str]
) -> str:
    """``--trace-id`` > fleet state ``traceId`` > ``$OPS_MANAGER_TRACE_ID`` > uuid4 (§6.16)."""
    return (
        nonempty_str(flag)
        or nonempty_str(fleet_state.get("traceId"))
        or nonempty_str(env.get("OPS_MANAGER_TRACE_ID"))
        or str(uuid.uuid4())
    )


def _records(path: Path, error: str) -> Iterator[dict[str, Any]]:
    """Complete records of a JSONL stream; a bad line -> ``<error>: <path> (line N)``."""
    try:
        for _, record in iter_records(path):
            yield record
    except CorruptStreamError as exc:
        raise OpsError(f"{error}: {path} (line {exc.line})") from None
    except IsADirectoryError:
        raise OpsError(f"{error}: {path}") from None


def _object_file(path: Path, error: str) -> dict[str, Any] | None:
    value = read_json_file(path, error)
    if value is not None and not isinstance(value, dict):
        raise OpsError(f"{error}: {path}")
    return value


def history_index_file(history_file: Path) -> Path:
    """The sidecar index of a policy history stream: ``.<name>.index.json`` beside it."""
    return history_file.with_name(f".{history_file.name}.index.json")


def _records_read(path: Path, read: Read, error: str) -> Iterator[dict[str, Any]]:
    """The records among the lines ``read`` (blank ones skipped, still numbered); a line
    that is not a JSON object raises ``<error>: <path> (line N)``."""
    for number, raw in enumerate(read.lines, read.start.line_offset + 1):
        if raw.strip():
            try:
                value = json.loads(raw)
            except (ValueError, RecursionError):
                value = None
            if not isinstance(value, dict):
                raise OpsError(f"{error}: {path} (line {number})")
            yield value


def _load_history_index(index_file: Path) -> tuple[HistoryIndex | None, Position]:
    """The cached index and its position (checked against the stream when it is read), or
    ``(None, start of stream)``."""
    cached = read_json_or_empty(index_file)
    index = HistoryIndex.from_json(cached)
    position = Position.from_json(cached.get("position"))
    if cached.get("schemaVersion") != INDEX_SCHEMA_VERSION or index is None or position is None:
        return None, Position()
    return index, position


def read_history_index(history_file: Path) -> tuple[HistoryIndex, Position]:
    """The policy history folded up to its last complete record (incremental, see module doc).

    The rows after the cached position are read by :meth:`Stream.read_from
    <ops_manager.store.Stream.read_from>`; a stream truncated or rewritten since (the
    fingerprint check) is folded again from the start, and a missing one is empty. Raises
    ``invalid policy history JSONL: <path> (line N)`` for a bad record after the cached
    position (also when a directory is at the path).
    """
    start_index, start = _load_history_index(history_index_file(history_file))
    stream = Stream(history_file)
    try:
        found = stream.read_from(start)
        if not isinstance(found, Read):
            start_index, found = None, stream.read_from(Position())
    except FileNotFoundError:
        return index_history((), None if start.byte_offset else start_index), Position()
    except IsADirectoryError:
        raise OpsError(f"invalid policy history JSONL: {history_file}") from None
    if not isinstance(found, Read):  # pragma: no cover - the start of a file is intact
        raise OpsError(f"invalid policy history JSONL: {history_file}")
    index = index_history(
        _records_read(history_file, found, "invalid policy history JSONL"), start_index
    )
    return index, found.position_after(len(found.lines))


def _history_index_replace(history_file: Path, index: HistoryIndex, position: Position) -> Replace:
    """The new bytes of the history index: the fold up to ``position`` (this run's rows are
    read back by the next run, from there)."""
    document = {"schemaVersion": INDEX_SCHEMA_VERSION, "position": position.to_json()}
    document.update(index.to_json())
    return Replace(history_index_file(history_file), (dumps_compact(document) + "\n").encode())


def fleet_policy(
    repo: Path,
    *,
    files: FleetPolicyFiles | None = None,
    dedupe_window_seconds: int | None = None,
    trace_id: str | None = None,
    now: int | None = None,
    env: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> PolicyEvaluation:
    """Run the fleet policy for ``repo`` and return the evaluation (``.state`` is printed).

    ``now`` (epoch seconds, default the clock) is the single timestamp of the run;
    ``env`` (default ``os.environ``) supplies ``OPS_MANAGER_TRACE_ID``; ``warn`` receives
    one line per repaired torn tail (default: ignored).
    """
    resolved = _resolve(FleetPaths.for_repo(repo), files or FleetPolicyFiles())
    environ: Mapping[str, str] = os.environ if env is None else env
    at = utc_now_epoch() if now is None else now

    # a fleet run (or a policy run) killed after its commit point is finished first, so the
    # fleet state read below is the committed one
    finish_pending(resolved.lock, resolved.commit_record)
    if not resolved.fleet_state.is_file():
        raise OpsError(f"fleet state file not found: {resolved.fleet_state}")
    registry = load_registry(repo, resolved.registry, now=at)
    fleet_state = _object_file(resolved.fleet_state, "invalid fleet state JSON")
    if fleet_state is None:  # removed between the two checks
        raise OpsError(f"fleet state file not found: {resolved.fleet_state}")
    trace = resolve_trace_id(trace_id, fleet_state, environ)
    mode = policy_mode(registry)
    if mode not in MODES:
        raise OpsError(f"unsupported policy mode: {mode}")
    window = dedupe_window_seconds
    if window is None:
        window = int_or(
            dig(registry, "policy", "noiseControls", "dedupeWindowSeconds"),
            DEFAULT_DEDUPE_WINDOW_SECONDS,
        )
    if window < 0:
        raise OpsError("--dedupe-window-seconds must be a non-negative integer")

    for path in (
        resolved.policy_state,
        resolved.governance_audit,
        resolved.policy_telemetry,
        resolved.policy_history,
    ):
        path.parent.mkdir(parents=True, exist_ok=True)

    with locked(resolved.lock, resolved.commit_record):
        previous = _object_file(resolved.policy_state, "invalid existing policy state JSON")
        history, history_position = read_history_index(resolved.policy_history)
        handoff_rows = [
            row
            for row in _records(resolved.handoff_telemetry, "invalid handoff telemetry JSONL")
            if is_autonomous_execution(row)
        ]
        evaluation = evaluate_policy(
            PolicyInputs(
                registry=registry,
                fleet_state=fleet_state,
                history=history,
                handoff_rows=handoff_rows,
                previous_state=previous,
                now=at,
                trace_id=trace,
                dedupe_window_seconds=window,
                files=resolved.echo(),
                last_audit_row=last_jsonl_object(resolved.governance_audit),
            )
        )
        # the records, the projection that reflects them and the history cache, as one
        # one append per file (two flags may name the same one: its record must hold one
        # offset, or re-applying it would not recognise the second part)
        grouped: dict[Path, list[dict[str, Any]]] = {}
        for path, rows in (
            (resolved.governance_audit, evaluation.audit_rows),
            (resolved.policy_history, evaluation.history_rows),
            (resolved.policy_telemetry, [evaluation.telemetry_row]),
        ):
            if rows:
                grouped.setdefault(path, []).extend(rows)
        appends: list[Append] = []
        for path, rows in grouped.items():
            # cut first: the append's recorded size is the stream's size after the cut
            dropped = drop_torn_tail(path)
            if dropped and warn is not None:
                warn(f"dropped an unterminated final line ({dropped} bytes) of {path}")
            appends.append(rows_append(path, rows))
        commit(
            resolved.commit_record,
            appends,
            [
                json_replace(resolved.policy_state, evaluation.state),
                _history_index_replace(resolved.policy_history, history, history_position),
            ],
        )
    return evaluation
