"""The access log of ``trailvault serve --access-log``: method, path and status of each request, nothing more.

uvicorn's own access log writes the query string, where a filter's values or a
misplaced ``password=`` would land in the log; this middleware replaces it. The path
is logged as it came (still percent-encoded), so it cannot break a log line.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LOGGER_NAME", "AccessLog"]

#: The logger the lines go to, at INFO.
LOGGER_NAME = "trailvault.access"

_log = logging.getLogger(LOGGER_NAME)


class AccessLog:
    """ASGI middleware logging ``METHOD path status`` after each HTTP request (status 500 when none was sent)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            raw = scope.get("raw_path")
            path = raw.decode("latin-1") if isinstance(raw, bytes) else scope["path"]
            # Some servers put the query in raw_path; it never reaches the log.
            _log.info("%s %s %d", scope["method"], path.split("?", 1)[0], status)
