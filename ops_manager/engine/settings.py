"""Settings resolution shared by the front ends: flag > environment > default (issue 13.6).

The front ends (``cli/``, ``service/``, ``console/``) parse flags and hand the raw values
(``None`` when a flag was not given) and an environment mapping (``os.environ`` in
production) to the resolvers here or in the per-command modules
(:mod:`ops_manager.engine.reconcile_settings`, :mod:`ops_manager.engine.control_settings`).
Only the engine reads keys from the environment; ``tests/test_layering.py`` checks it.

This module imports nothing beyond the standard library and :mod:`ops_manager.errors`: the
CLI's parser module re-exports its validators, so it is loaded by every command.

Tokens resolved here are returned to the caller only: nothing in this module writes them
anywhere or puts them in an error text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ops_manager.errors import OpsError

#: service token for ``reconcile``, ``control``, ``service-client`` and ``sprite-service``
SERVICE_TOKEN_ENV = "OPS_MANAGER_SERVICE_TOKEN"
#: bearer token of the operator console (``ops-manager console``)
CONSOLE_TOKEN_ENV = "OPS_MANAGER_CONSOLE_TOKEN"
#: bearer token of the ``supervise`` metrics endpoint
METRICS_TOKEN_ENV = "OPS_MANAGER_METRICS_TOKEN"
#: trace id when no ``--trace-id`` is given
TRACE_ID_ENV = "OPS_MANAGER_TRACE_ID"
#: the default output view of commands with ``--format``
FORMAT_ENV = "OPS_MANAGER_FORMAT"
#: when set (non-empty), an internal error re-raises with its traceback
DEBUG_ENV = "OPS_MANAGER_DEBUG"
#: the views commands with ``--format`` can print
FORMATS = ("table", "json")


def require(value: str | None, flag: str) -> str:
    """Return the flag's value or raise the contract's ``<flag> is required``."""
    if value is None or value == "":
        raise OpsError(f"{flag} is required")
    return value


_NONNEG = re.compile(r"^[0-9]+$")


def nonneg_int(value: str | None, message: str, default: int) -> int:
    """Parse a ``^[0-9]+$`` flag value; ``None`` means the default."""
    if value is None:
        return default
    if not _NONNEG.match(value):
        raise OpsError(message)
    return int(value)


def positive_int(value: str | None, message: str, default: int) -> int:
    """Parse an integer >= 1 flag value; ``None`` means the default."""
    result = nonneg_int(value, message, default)
    if result < 1:
        raise OpsError(message)
    return result


def choice(value: str | None, choices: tuple[str, ...], message: str, default: str) -> str:
    """Validate an enumerated flag value; ``None`` means the default."""
    if value is None:
        return default
    if value not in choices:
        raise OpsError(message)
    return value


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's value, or ``None`` when it is unset or empty (an empty variable
    counts as not given, as in the shell contract)."""
    value = environ.get(name)
    return value if value else None


def flag_or_env(flag: str | None, environ: Mapping[str, str], name: str) -> str | None:
    """A non-empty flag value, else the non-empty variable ``name``, else ``None``
    (``--service-token`` / ``--trace-id`` of ``reconcile``, ``control``, ``service-client``:
    an empty flag falls through to the environment)."""
    return flag or env_value(environ, name)


def token_setting(flag: str | None, environ: Mapping[str, str], name: str) -> str | None:
    """The ``--token`` of a server (``console``, ``sprite-service``, ``supervise
    --metrics-token``): a given flag wins even when empty (``--token ''`` turns auth off
    whatever the environment says), else the variable ``name``; empty means no token."""
    token = flag if flag is not None else environ.get(name, "")
    return token or None


def trace_id_setting(flag: str | None, environ: Mapping[str, str]) -> str:
    """``--trace-id``, else ``$OPS_MANAGER_TRACE_ID``, else a fresh lowercase UUID."""
    from ops_manager._traceid import new_trace_id

    return flag or env_value(environ, TRACE_ID_ENV) or new_trace_id()


def output_format_setting(flag: str | None, environ: Mapping[str, str], default: str) -> str:
    """The view to print: ``--format``, else ``$OPS_MANAGER_FORMAT``, else ``default``.

    An unknown value in either place is an error (exit 1) rather than a silent fallback:
    a typo in a shell profile should not quietly change what a script parses.
    """
    if flag is not None:
        if flag not in FORMATS:
            raise OpsError("--format must be table or json")
        return flag
    env = environ.get(FORMAT_ENV)
    if env is None or env == "":
        return default
    if env not in FORMATS:
        raise OpsError(f"{FORMAT_ENV} must be table or json (got {env!r})")
    return env


def color_allowed(environ: Mapping[str, str]) -> bool:
    """Whether the environment permits colour: not with ``NO_COLOR`` set and non-empty
    (no-color.org) nor with ``TERM=dumb``. Whether the stream is a terminal is the caller's
    question."""
    return environ.get("NO_COLOR", "") == "" and environ.get("TERM") != "dumb"


def debug_enabled(environ: Mapping[str, str]) -> bool:
    """``$OPS_MANAGER_DEBUG`` set and non-empty: internal errors keep their traceback."""
    return bool(environ.get(DEBUG_ENV))


def requester_setting(by: str | None, environ: Mapping[str, str], fallback: str) -> str:
    """Who asks for a control intent: ``by`` if non-empty, else ``$USER``, else ``fallback``."""
    return by if by else (environ.get("USER") or fallback)
