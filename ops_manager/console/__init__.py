"""The operator console: one web page and a small JSON API over a repo's artifacts.

``ops-manager console --repo R`` serves it; the library use is::

    from ops_manager.console import ConsoleConfig, ConsoleServer

    server = ConsoleServer(ConsoleConfig(repo=Path("/work/repo"), port=0))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.url)
    ...
    server.shutdown(); server.close()

Endpoints: ``GET /`` (the page), ``GET /api/fleet``, ``GET /api/loops/<loopId>``,
``GET /api/slo``, ``GET /api/backlog``, ``POST /api/backlog/<intentId>/confirm``
(``{"by": ..., "note": ...}``). The logic is :class:`ConsoleApi` (no HTTP); the page is
static (``static/``: HTML, CSS, vanilla JS drawing its charts as inline SVG; nothing is
fetched from the internet).
"""

from ops_manager.console._api import ApiResponse, ConsoleApi, delivery_outcome
from ops_manager.console._server import (
    COOKIE_NAME,
    DEFAULT_PORT,
    MAX_BODY_BYTES,
    ConsoleConfig,
    ConsoleServer,
    is_loopback,
)

__all__ = [
    "COOKIE_NAME",
    "DEFAULT_PORT",
    "MAX_BODY_BYTES",
    "ApiResponse",
    "ConsoleApi",
    "ConsoleConfig",
    "ConsoleServer",
    "delivery_outcome",
    "is_loopback",
]
