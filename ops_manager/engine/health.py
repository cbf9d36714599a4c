"""``ops-manager health`` as a use case: read the artifact files the flags name and compute
the health projection with :func:`ops_manager.reducers.health.compute_health`. Writes
nothing (reconcile is what writes ``OPS/health.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ops_manager._jsonfmt import nonempty_str
from ops_manager.engine._files import last_jsonl_object
from ops_manager.errors import OpsError
from ops_manager.reducers.health import HealthInputs, compute_health
from ops_manager.reducers.thresholds import Thresholds
from ops_manager.store import read_json_file

#: (HealthInputs field, error prefix) of the JSON artifacts, in the order they are read
ARTIFACTS: tuple[tuple[str, str], ...] = (
    ("state", "invalid state JSON"),
    ("heartbeat_state", "invalid heartbeat state JSON"),
    ("sequence_state", "invalid sequence state JSON"),
    ("transport_health", "invalid transport health JSON"),
)


@attrs.frozen
class HealthRequest:
    """The validated flags of ``ops-manager health``; ``files`` maps an :data:`ARTIFACTS`
    field to the path given for it (absent, empty or a missing file -> ``{}``)."""

    now: int
    trace_id: str | None
    transport: str
    ingest_status: str
    failure_code: str | None
    thresholds: Thresholds
    files: dict[str, str | None]
    intents_file: str | None


def _read_object(value: str | None, error: str) -> dict[str, Any]:
    """An input artifact: absent flag or missing file -> ``{}``; bad JSON -> ``<error>: <p>``."""
    if not value:
        return {}
    path = Path(value)
    parsed = read_json_file(path, error)
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        # a projection is always an object; anything else is as unusable as bad JSON
        raise OpsError(f"{error}: {path}")
    return parsed


def _last_control_status(value: str | None) -> str | None:
    """``status`` of the last complete intents row (a torn final line is not read)."""
    if not value:
        return None
    row = last_jsonl_object(Path(value))
    return nonempty_str(row.get("status")) if row is not None else None


def health_from_files(request: HealthRequest) -> dict[str, Any]:
    """Read every input artifact, in the contract's order, and return the health object."""
    read = {field: _read_object(request.files.get(field), err) for field, err in ARTIFACTS}
    return compute_health(
        HealthInputs(
            now=request.now,
            trace_id=request.trace_id,
            transport=request.transport,
            ingest_status=request.ingest_status,
            failure_code=request.failure_code,
            thresholds=request.thresholds,
            state=read["state"],
            heartbeat_state=read["heartbeat_state"],
            sequence_state=read["sequence_state"],
            transport_health=read["transport_health"],
            last_control_status=_last_control_status(request.intents_file),
        )
    )
