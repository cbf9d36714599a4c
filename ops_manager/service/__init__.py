"""The sprite-side HTTP service (``loop.md`` §3.12): snapshot, events and control over HTTP.

Runs inside the sprite next to the Superloop runtime, so a manager outside the sandbox can
observe and control the loop with the ``sprite_service`` transport::

    from ops_manager.service import ServiceConfig, SpriteService

    service = SpriteService(ServiceConfig(repo=Path("/work/repo"), port=0, token="..."))
    threading.Thread(target=service.serve_forever, daemon=True).start()
    ...
    service.shutdown(); service.wait_idle(40); service.close()

Endpoints: ``GET /healthz``, ``GET /ops/snapshot?loopId=``,
``GET /ops/events?loopId=&cursor=&maxEvents=``, ``POST /ops/control``. The endpoint logic
is :class:`ServiceApi` (no HTTP), the plumbing is :class:`SpriteService`.
"""

from ops_manager.engine.service_idempotency import IdempotencyStore
from ops_manager.service._api import (
    DEFAULT_MAX_EVENTS_PER_REQUEST,
    ApiResponse,
    ControlDefaults,
    ServiceApi,
)
from ops_manager.service._server import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_SHUTDOWN_GRACE_SECONDS,
    DEFAULT_SOCKET_TIMEOUT_SECONDS,
    SERVER_VERSION,
    ServiceConfig,
    SpriteService,
    is_loopback,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONCURRENT_REQUESTS",
    "DEFAULT_MAX_EVENTS_PER_REQUEST",
    "DEFAULT_SHUTDOWN_GRACE_SECONDS",
    "DEFAULT_SOCKET_TIMEOUT_SECONDS",
    "SERVER_VERSION",
    "ApiResponse",
    "ControlDefaults",
    "IdempotencyStore",
    "ServiceApi",
    "ServiceConfig",
    "SpriteService",
    "is_loopback",
]
