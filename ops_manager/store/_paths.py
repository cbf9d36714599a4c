"""Where every artifact of the contract lives, and the guard on loop ids.

``OPS = <repo>/.superloop/ops-manager/<loop>``, ``TEL = OPS/telemetry``,
``LOOPDIR = <repo>/.superloop/loops/<loop>`` (``loop.md`` notation).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ops_manager.errors import OpsError

_FORBIDDEN = ("/", "\\", "\x00")


def validate_loop_id(loop_id: str) -> str:
    """Return ``loop_id`` if it is safe to use as one path component, else raise.

    Rejects the empty string, ``.``/``..``, separators, NUL and control characters, so a
    loop id can never make a path escape ``.superloop/``.
    """
    if loop_id == "":
        raise OpsError("--loop is required")
    bad = (
        loop_id in (".", "..")
        or any(ch in loop_id for ch in _FORBIDDEN)
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in loop_id)
        or os.path.isabs(loop_id)
    )
    if bad:
        shown = loop_id.encode("unicode_escape").decode("ascii")
        raise OpsError(
            f"invalid loop id '{shown}': must be a single path component "
            "(no '/', '\\', NUL or control characters, not '.' or '..')"
        )
    return loop_id


def resolve_repo(repo: str) -> Path:
    """Resolve ``--repo`` to an absolute physical path; it must be an existing directory."""
    if repo == "":
        raise OpsError("--repo is required")
    path = Path(repo)
    if not path.is_dir():
        raise OpsError(f"repo directory not found: {repo}")
    return path.resolve()


class LoopPaths:
    """Every per-loop artifact location (runtime inputs and manager outputs).

    A frozen value of two fields (equality, hash and repr by value, as an ``attrs.frozen``
    class gives them), written by hand because it is on the path of every command: ``status``
    would otherwise import ``attrs`` for this class alone.
    """

    # __dict__: the cached_property paths below are stored there (computed once per object)
    __slots__ = ("__dict__", "loop_id", "repo")
    __match_args__ = ("repo", "loop_id")

    repo: Path
    loop_id: str

    def __init__(self, repo: Path, loop_id: str) -> None:
        object.__setattr__(self, "repo", repo)
        object.__setattr__(self, "loop_id", loop_id)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"LoopPaths is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"LoopPaths is frozen: cannot delete {name!r}")

    def __reduce__(self) -> tuple[type[LoopPaths], tuple[Path, str]]:
        # pickle/copy rebuild through __init__ (the frozen __setattr__ would refuse a restore)
        return (LoopPaths, (self.repo, self.loop_id))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LoopPaths) or other.__class__ is not self.__class__:
            return NotImplemented
        return self.repo == other.repo and self.loop_id == other.loop_id

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash((LoopPaths, self.repo, self.loop_id))

    def __repr__(self) -> str:
        return f"LoopPaths(repo={self.repo!r}, loop_id={self.loop_id!r})"

    @classmethod
    def for_loop(cls, repo: Path, loop_id: str) -> LoopPaths:
        """Build paths for a validated loop id under an already-resolved repo.

        The same (immutable) object comes back for the loops used last: a fleet pass asks
        for one loop's paths in its reconcile, its health check and its dispatch, and each
        path is computed once per object (``cached_property``).
        """
        if cls is LoopPaths:
            return _recent_loop_paths(repo, loop_id)
        return cls(repo=repo, loop_id=validate_loop_id(loop_id))

    # --- runtime (read-only inputs) ---------------------------------------------------
    @functools.cached_property
    def superloop_dir(self) -> Path:
        return self.repo / ".superloop"

    @functools.cached_property
    def loop_dir(self) -> Path:
        return self.superloop_dir / "loops" / self.loop_id

    @functools.cached_property
    def events_file(self) -> Path:
        return self.loop_dir / "events.jsonl"

    @functools.cached_property
    def run_summary_file(self) -> Path:
        return self.loop_dir / "run-summary.json"

    @functools.cached_property
    def runtime_state_file(self) -> Path:
        return self.superloop_dir / "state.json"

    @functools.cached_property
    def active_run_file(self) -> Path:
        return self.superloop_dir / "active-run.json"

    @functools.cached_property
    def approval_file(self) -> Path:
        return self.loop_dir / "approval.json"

    @functools.cached_property
    def heartbeat_file(self) -> Path:
        return self.loop_dir / "heartbeat.v1.json"

    @functools.cached_property
    def default_poll_cursor_file(self) -> Path:
        return self.loop_dir / "ops-manager.cursor.json"

    # --- manager outputs ----------------------------------------------------------------
    @functools.cached_property
    def ops_dir(self) -> Path:
        return self.superloop_dir / "ops-manager" / self.loop_id

    @functools.cached_property
    def telemetry_dir(self) -> Path:
        return self.ops_dir / "telemetry"

    def ops(self, name: str) -> Path:
        return self.ops_dir / name

    def tel(self, name: str) -> Path:
        return self.telemetry_dir / name

    @functools.cached_property
    def state_file(self) -> Path:
        return self.ops("state.json")

    @functools.cached_property
    def cursor_file(self) -> Path:
        return self.ops("cursor.json")

    @functools.cached_property
    def health_file(self) -> Path:
        return self.ops("health.json")

    @functools.cached_property
    def heartbeat_state_file(self) -> Path:
        return self.ops("heartbeat.json")

    @functools.cached_property
    def sequence_state_file(self) -> Path:
        return self.ops("sequence-state.json")

    @functools.cached_property
    def intents_file(self) -> Path:
        return self.ops("intents.jsonl")

    @functools.cached_property
    def escalations_file(self) -> Path:
        return self.ops("escalations.jsonl")

    @functools.cached_property
    def drift_state_file(self) -> Path:
        return self.ops("profile-drift.json")

    @functools.cached_property
    def alert_dispatch_state_file(self) -> Path:
        return self.ops("alert-dispatch-state.json")

    @functools.cached_property
    def service_idempotency_file(self) -> Path:
        return self.ops("service-idempotency.json")

    @functools.cached_property
    def stream_state_file(self) -> Path:
        """Our own projection of ``events.jsonl``: the verified read position and the fold."""
        return self.ops("stream-state.json")

    @functools.cached_property
    def lock_file(self) -> Path:
        return self.ops(".lock")

    @functools.cached_property
    def pass_commit_file(self) -> Path:
        """The loop's commit record while it is being applied (store._commit): a reconcile
        pass's, or a control's rows and stored result (one record under the loop lock)."""
        return self.ops(".pass-commit.json")

    @functools.cached_property
    def reconcile_telemetry_file(self) -> Path:
        return self.tel("reconcile.jsonl")

    @functools.cached_property
    def control_telemetry_file(self) -> Path:
        return self.tel("control.jsonl")

    @functools.cached_property
    def control_invocations_file(self) -> Path:
        return self.tel("control-invocations.jsonl")

    @functools.cached_property
    def heartbeat_telemetry_file(self) -> Path:
        return self.tel("heartbeat.jsonl")

    @functools.cached_property
    def sequence_telemetry_file(self) -> Path:
        return self.tel("sequence.jsonl")

    @functools.cached_property
    def drift_history_file(self) -> Path:
        return self.tel("profile-drift.jsonl")

    @functools.cached_property
    def alert_telemetry_file(self) -> Path:
        return self.tel("alerts.jsonl")

    @functools.cached_property
    def transport_health_file(self) -> Path:
        return self.tel("transport-health.json")

    def relative(self, path: Path) -> str:
        """``path`` relative to the repo when it is inside it, else absolute (artifactRef)."""
        try:
            return str(path.relative_to(self.repo))
        except ValueError:
            return str(path)


@functools.lru_cache(maxsize=256)
def _recent_loop_paths(repo: Path, loop_id: str) -> LoopPaths:
    # bounded: a fleet of 10,000 loops must not keep 10,000 path tables alive
    return LoopPaths(repo=repo, loop_id=validate_loop_id(loop_id))
