"""The one error type the shell turns into an ``error: ...`` line and exit 1.

Defined in :mod:`ops_manager.model.errors` (the reducers raise them); these are the same
classes, and their ``__module__`` says ``ops_manager.errors``.
"""

from __future__ import annotations

from ops_manager.model.errors import CorruptStreamError, OpsError

__all__ = ["CorruptStreamError", "OpsError"]
