"""``fleet-status``: read the fleet artifacts and build the posture view (writes nothing).

Order of checks (``fleet.md`` §2.4): the fleet state file must exist (checked before the
registry), the registry must validate (fail closed, exactly as ``fleet-registry``), the fleet
state must parse as a JSON object, then the policy state and the handoff state, each only if
its file exists (``invalid policy state JSON: <path>`` / ``invalid handoff state JSON:
<path>``). Both states are optional (``null`` sections when absent). The fleet reconcile and
handoff telemetry streams are optional too: only their last complete line is read (O(1) in
the file's length); a missing, blank or unparseable last line gives ``latestTelemetry`` /
``latestHandoffTelemetry`` ``null``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ops_manager._timefmt import utc_now_epoch
from ops_manager.engine.fleet_registry import load_registry, parse_strict_json
from ops_manager.errors import OpsError
from ops_manager.reducers.fleet_status import (
    SectionBuilder,
    build_fleet_status,
    fleet_state_problem,
)
from ops_manager.store import FleetPaths, last_complete_line


@attrs.frozen
class FleetStatusFiles:
    """The files fleet-status reads; ``None`` takes the default under ``FLEET/``.

    A path given here (a CLI flag) is used and echoed verbatim in ``files``.
    """

    registry: Path | None = None
    fleet_state: Path | None = None
    policy_state: Path | None = None
    fleet_telemetry: Path | None = None
    handoff_state: Path | None = None
    handoff_telemetry: Path | None = None

    def resolve(self, fleet: FleetPaths) -> dict[str, Path]:
        """Resolved paths keyed by their ``files.*`` name in the status output (in order)."""
        return {
            "registryFile": self.registry or fleet.registry_file,
            "fleetStateFile": self.fleet_state or fleet.state_file,
            "policyStateFile": self.policy_state or fleet.policy_state_file,
            "fleetTelemetryFile": self.fleet_telemetry or fleet.reconcile_telemetry_file,
            "handoffStateFile": self.handoff_state or fleet.handoff_state_file,
            "handoffTelemetryFile": self.handoff_telemetry or fleet.handoff_telemetry_file,
        }


def read_fleet_state(path: Path) -> dict[str, Any]:
    """The fleet ``state.json`` as an object.

    Raises ``fleet state file not found: <path>`` when missing and ``invalid fleet state JSON:
    <path>`` when it does not parse (strict JSON) or has the wrong shape (the reason is
    appended in parentheses).
    """
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise OpsError(f"fleet state file not found: {path}") from None
    except OSError as exc:
        raise OpsError(f"cannot read fleet state file: {path}: {exc.strerror}") from None
    try:
        value = parse_strict_json(data)
    except ValueError:
        raise OpsError(f"invalid fleet state JSON: {path}") from None
    problem = fleet_state_problem(value)
    if problem is not None:
        raise OpsError(f"invalid fleet state JSON: {path} ({problem})")
    assert isinstance(value, dict)
    return value


def read_optional_state(path: Path, what: str) -> dict[str, Any] | None:
    """An optional state document (``policy`` / ``handoff``) as an object, ``None`` if absent.

    Raises ``invalid <what> state JSON: <path>`` when the file exists but is not strict JSON
    (or cannot be read), with ``(the <what> state must be a JSON object)`` appended when it
    is JSON of another type.
    """
    error = f"invalid {what} state JSON: {path}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        raise OpsError(error) from None
    try:
        value = parse_strict_json(data)
    except ValueError:
        raise OpsError(error) from None
    if not isinstance(value, dict):
        raise OpsError(f"{error} (the {what} state must be a JSON object)")
    return value


def last_jsonl_row(path: Path) -> dict[str, Any] | None:
    """The last complete non-blank line of a JSONL file as an object, else ``None``.

    Never raises for a missing file or a bad line (status treats both as "no row").
    """
    try:
        line = last_complete_line(path)
    except OSError:
        return None
    if line is None:
        return None
    try:
        value = parse_strict_json(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def fleet_status(
    repo: Path,
    *,
    files: FleetStatusFiles | None = None,
    now: int | None = None,
    extra_sections: tuple[SectionBuilder, ...] = (),
) -> dict[str, Any]:
    """The fleet status document of ``fleet.md`` §2.4 for ``repo`` (an absolute repo path).

    ``now`` (epoch seconds, default the clock) stamps ``generatedAt`` and is the reference
    for the registry's governance deadline and the governance posture (``review_due_soon``,
    ``review_expired``). Raises :class:`OpsError` (exit 1) as listed in
    the module docstring.
    """
    from ops_manager.engine.supervise_shards import merged_shard_state, shard_section

    fleet = FleetPaths.for_repo(repo)
    resolved = (files or FleetStatusFiles()).resolve(fleet)
    state_path = resolved["fleetStateFile"]
    # a sharded fleet (``supervise --shard K/N``) has no state.json: its shards' states
    # are merged instead, unless --fleet-state-file names a file explicitly
    merged = None
    if files is None or files.fleet_state is None:
        merged = merged_shard_state(fleet.repo) if not state_path.is_file() else None
    if merged is None and not state_path.is_file():
        raise OpsError(f"fleet state file not found: {state_path}")
    at = utc_now_epoch() if now is None else now
    registry = load_registry(fleet.repo, resolved["registryFile"], now=at)
    fleet_state = merged if merged is not None else read_fleet_state(state_path)
    policy_state = read_optional_state(resolved["policyStateFile"], "policy")
    handoff_state = read_optional_state(resolved["handoffStateFile"], "handoff")
    doc = build_fleet_status(
        registry,
        fleet_state,
        now=at,
        repo_path=str(fleet.repo),
        files={key: str(path) for key, path in resolved.items()},
        latest_telemetry=last_jsonl_row(resolved["fleetTelemetryFile"]),
        policy_state=policy_state,
        handoff_state=handoff_state,
        latest_handoff_telemetry=last_jsonl_row(resolved["handoffTelemetryFile"]),
        extra_sections=extra_sections,
    )
    shards = shard_section(fleet.repo, registry, at)
    if shards is not None:
        # only when a sharded supervisor ever ran: unsharded output is unchanged
        doc["shards"] = shards
    return doc
