"""The settings of one ``control`` invocation from its flags and the environment
(``loop.md`` §3.10.1).

:func:`control_settings` takes the raw flag values (``None`` when a flag was not given) and
an environment mapping, validates them in the contract's order (all errors exit 1) and
applies flag > env > default: ``--service-token`` falls back to
``$OPS_MANAGER_SERVICE_TOKEN``, ``--trace-id`` to ``$OPS_MANAGER_TRACE_ID`` (else
:func:`ops_manager.engine.control.run_control` generates one); ``--by`` stays ``None`` when
not given, for ``run_control`` resolves ``$USER`` then ``unknown`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ops_manager.engine.paths import loop_paths
from ops_manager.engine.settings import (
    SERVICE_TOKEN_ENV,
    TRACE_ID_ENV,
    choice,
    flag_or_env,
    nonneg_int,
    positive_int,
    require,
)
from ops_manager.errors import OpsError
from ops_manager.transports import ControlSettings, TransportConfig

TRANSPORTS = ("local", "sprite_service")
INTENTS = ("cancel", "approve", "reject")


@attrs.frozen(kw_only=True)
class ControlFlags:
    """The flags of ``ops-manager control`` as given: ``None`` when absent. Field names are
    the argparse destinations (:data:`CONTROL_FLAG_FIELDS`)."""

    repo: str | None = None
    loop: str | None = None
    intent: str | None = None
    transport: str | None = None
    service_base_url: str | None = None
    service_token: str | None = None
    idempotency_key: str | None = None
    trace_id: str | None = None
    retry_attempts: str | None = None
    retry_backoff_seconds: str | None = None
    by: str | None = None
    note: str | None = None
    timeout_seconds: str | None = None
    interval_seconds: str | None = None
    no_confirm: bool = False


#: every :class:`ControlFlags` field (each one an argparse destination)
CONTROL_FLAG_FIELDS = tuple(field.name for field in attrs.fields(ControlFlags))


def control_settings(flags: ControlFlags, environ: Mapping[str, str]) -> ControlSettings:
    """Validate ``flags`` in the contract's order, resolve the environment fallbacks and
    return the settings :func:`ops_manager.engine.control.run_control` takes."""
    repo_arg = require(flags.repo, "--repo")
    loop_arg = require(flags.loop, "--loop")
    intent = require(flags.intent, "--intent")
    if intent not in INTENTS:
        raise OpsError("intent must be one of: cancel, approve, reject")
    transport = choice(
        flags.transport, TRANSPORTS, "--transport must be local or sprite_service", "local"
    )
    retry_attempts = positive_int(
        flags.retry_attempts, "--retry-attempts must be an integer >= 1", 3
    )
    retry_backoff = nonneg_int(
        flags.retry_backoff_seconds, "--retry-backoff-seconds must be a non-negative integer", 1
    )
    timing_error = "timeout and interval must be non-negative integers"
    timeout = nonneg_int(flags.timeout_seconds, timing_error, 30)
    interval = nonneg_int(flags.interval_seconds, timing_error, 2)
    base_url = flags.service_base_url or None
    if transport == "sprite_service" and not base_url:
        raise OpsError("--service-base-url is required when --transport sprite_service")

    paths = loop_paths(repo_arg, loop_arg)
    return ControlSettings(
        repo=paths.repo,
        loop_id=paths.loop_id,
        intent=intent,
        transport=transport,
        transport_config=TransportConfig(
            service_base_url=base_url,
            service_token=flag_or_env(flags.service_token, environ, SERVICE_TOKEN_ENV),
            retry_attempts=retry_attempts,
            retry_backoff_seconds=retry_backoff,
        ),
        idempotency_key=flags.idempotency_key or None,
        trace_id=flag_or_env(flags.trace_id, environ, TRACE_ID_ENV),
        by=flags.by or None,
        note=flags.note or None,
        timeout_seconds=timeout,
        interval_seconds=interval,
        confirm=not flags.no_confirm,
    )
