"""``TransportConfig``, public as :class:`ops_manager.transports.TransportConfig`.

In its own module so that :mod:`ops_manager.transports._control` can use it without
importing the package that imports it lazily.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class TransportConfig:
    """Settings a transport is built with (flags of ``reconcile`` / ``control``)."""

    service_base_url: str | None = None
    service_token: str | None = attrs.field(default=None, repr=False)
    retry_attempts: int = 3
    retry_backoff_seconds: int = 1
    #: per-request read timeout in seconds (registry ``service.timeoutSeconds``); connect
    #: timeout is ``min(5, timeout_seconds)``. ``None`` = the service client's defaults.
    timeout_seconds: float | None = None


TransportConfig.__module__ = "ops_manager.transports"
