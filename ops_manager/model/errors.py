"""The one error type the shell turns into an ``error: ...`` line and exit 1.

Public as :mod:`ops_manager.errors` (which re-exports these same classes, so ``except
OpsError`` catches what a reducer raises, and they say ``ops_manager.errors`` in
``__module__``, as tracebacks and reprs have always shown). They live in the model layer
because the reducers raise them.
"""

from __future__ import annotations


class OpsError(Exception):
    """A fatal, operator-facing error.

    ``message`` is printed as ``error: <message>`` on stderr; ``exit_code`` becomes the
    process exit status. Message fragments are part of the contract (see ``loop.md``),
    so raise them with the exact wording the spec gives.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class CorruptStreamError(OpsError):
    """A complete line in the middle of a stream is not valid JSON (or not an object)."""

    def __init__(self, path: str, line: int, detail: str = "invalid JSON") -> None:
        super().__init__(f"corrupt stream {path}: {detail} at line {line}")
        self.path = path
        self.line = line


#: public as ``ops_manager.errors.<Name>`` (what tracebacks, reprs and pickles name)
for _cls in (OpsError, CorruptStreamError):
    _cls.__module__ = "ops_manager.errors"
