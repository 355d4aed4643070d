"""The HTTP server: the ``/v1`` API over one vault, served by uvicorn.

``create_app`` returns the ASGI app; ``serve`` runs it until interrupted.
"""

from __future__ import annotations

import copy

from trailvault.edges.server.accesslog import LOGGER_NAME, AccessLog
from trailvault.edges.server.app import create_app
from trailvault.edges.server.state import ServerOptions

__all__ = ["ServerOptions", "create_app", "serve"]


def serve(
    app: object,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    access_log: bool = False,
) -> None:
    """Serve an app from :func:`create_app` on uvicorn (uvloop, httptools) until SIGINT or SIGTERM.

    ``access_log`` logs each request's method, path and status to stdout, never its
    query string (:mod:`trailvault.edges.server.accesslog`).
    """
    import uvicorn
    import uvicorn.config

    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    if access_log:
        app = AccessLog(app)  # type: ignore[arg-type]
        log_config["handlers"][LOGGER_NAME] = {
            "formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stdout",
        }  # fmt: skip
        log_config["loggers"][LOGGER_NAME] = {"handlers": [LOGGER_NAME], "level": "INFO", "propagate": False}
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_config=log_config,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        access_log=False,  # its lines carry the query string: AccessLog writes them instead
        log_level="info",
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
