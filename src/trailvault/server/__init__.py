"""The HTTP server: the ``/v1`` API over one vault, served by uvicorn.

``create_app`` returns the ASGI app; ``serve`` runs it until interrupted.
"""

from __future__ import annotations

from trailvault.server.app import create_app
from trailvault.server.state import ServerOptions

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
    """Serve an app from :func:`create_app` on uvicorn (uvloop, httptools) until SIGINT or SIGTERM."""
    import uvicorn

    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        access_log=access_log,
        log_level="info",
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
