"""Path resolution for the front ends: ``cli/``, ``service/`` and ``console/`` name a repo and
a loop; the engine turns those into the store's artifact locations, so the front ends never
import the store themselves (``docs/architecture.md``, layering)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

# public here: the type the front ends annotate the paths they get from this module with
from ops_manager.store import LoopPaths as LoopPaths
from ops_manager.store import resolve_repo as _store_resolve_repo
from ops_manager.store import validate_loop_id as _store_validate_loop_id

if TYPE_CHECKING:
    from ops_manager.store import FleetPaths


def resolve_repo(repo: str) -> Path:
    """``--repo`` as an absolute physical path; raises ``OpsError`` unless it is an existing
    directory (``--repo is required`` when empty)."""
    return _store_resolve_repo(repo)


def validate_loop_id(loop_id: str) -> str:
    """``loop_id`` if it is safe as one path component, else ``OpsError`` (``--loop is
    required`` when empty): for a command that checks ``--loop`` before it resolves ``--repo``."""
    return _store_validate_loop_id(loop_id)


def loop_paths(repo: str, loop_id: str) -> LoopPaths:
    """Every artifact location of loop ``loop_id`` in the repo ``--repo`` names (resolved
    first, then the loop id validated, as :meth:`LoopPaths.for_loop` does)."""
    return LoopPaths.for_loop(_store_resolve_repo(repo), loop_id)


def loop_paths_in(repo: Path, loop_id: str) -> LoopPaths:
    """Every artifact location of loop ``loop_id`` in an already resolved ``repo``."""
    return LoopPaths.for_loop(repo, loop_id)


def fleet_paths(repo: Path) -> FleetPaths:
    """Every fleet-level artifact location of an already resolved ``repo``."""
    # imported here: FleetPaths is an attrs class, and the per-loop commands (status) that
    # import this module need no attrs
    from ops_manager.store import FleetPaths

    return FleetPaths.for_repo(repo)
