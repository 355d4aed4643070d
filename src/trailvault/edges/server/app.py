"""The ASGI app: authorization, limits, error bodies and metrics around every route.

::

    from trailvault import open_vault
    from trailvault.edges.server import create_app
    app = create_app(open_vault("trailvault-data"))   # serve with any ASGI server

The app does not close the vault; whoever opened it does (``trailvault serve``
closes it when uvicorn stops).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from trailvault.core.api_key import Scope
from trailvault.edges.server.archive_routes import ARCHIVE_ROUTES
from trailvault.edges.server.http import JSONResponse, check_query, error_response
from trailvault.edges.server.metrics import CONTENT_TYPE
from trailvault.edges.server.openapi import Accepted, accepted, openapi_document
from trailvault.edges.server.routes import ROUTES, Call, ErrorRenderer, Face, Route
from trailvault.edges.server.state import ServerOptions, ServerState
from trailvault.errors import Forbidden, NotFound, StoreUnavailable, TrailvaultError
from trailvault.workflows.vault.vault import Vault

__all__ = ["create_app"]

_log = logging.getLogger("trailvault.server")


def create_app(vault: Vault, options: ServerOptions | None = None, faces: Iterable[Face] = ()) -> Starlette:
    """Return the ASGI app serving ``vault`` (any app's keys act on their own app's view of it).

    ``faces`` are other systems' wire protocols served beside ``/v1`` (``trailvault serve``
    passes every face of :data:`trailvault.edges.faces.FACES`); their routes need keys,
    scopes and limits as ``/v1`` routes do, and answer errors in their own shape.
    """
    state = ServerState(vault, options or ServerOptions())
    faces = tuple(faces)
    routes = [
        StarletteRoute(route.path, _endpoint(state, route), methods=[route.method], name=route.path)
        for route in ROUTES + ARCHIVE_ROUTES
    ]
    routes += [
        StarletteRoute(route.path, _endpoint(state, route, face.render_error), methods=[route.method], name=route.path)
        for face in faces
        for route in face.routes
    ]
    routes += [
        StarletteRoute("/healthz", _public(state, "/healthz", _health), methods=["GET"]),
        StarletteRoute("/metrics", _public(state, "/metrics", _metrics), methods=["GET"]),
        StarletteRoute("/v1/openapi.json", _public(state, "/v1/openapi.json", _openapi), methods=["GET"]),
    ]
    middleware = []
    if state.options.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(state.options.cors_origins),
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    # A path under a face's first segment (/20181201, /oci) that no route serves is answered in the face's shape.
    roots = {_root(route.path): face.render_error for face in faces for route in face.routes}
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers={HTTPException: functools.partial(_http_error, roots)}
    )
    app.state.trailvault = state
    return app


def _endpoint(
    state: ServerState, route: Route, render_error: ErrorRenderer | None = None
) -> Callable[[Request], Awaitable[Response]]:
    operation = f"{route.method} {route.path}"
    takes = accepted(route.method, route.path) if route.query is None else Accepted(route.query, None)

    async def authorized(request: Request) -> Response:
        key = await state.authenticator.identify(request, state.options.max_request_bytes)
        state.limiter.check(key)
        if route.scope is not None and not key.allows(route.scope):
            raise Forbidden(
                f"scopes: this key lacks the {route.scope.value} scope that {route.method} {route.path} needs",
                field="scopes",
            )
        check_query(request, takes.query, operation)
        call = Call(request, key, state.vault.for_app(key.app), state, takes.body, operation)
        if route.scope is Scope.INGEST:  # the group committer shares writing out among apps already
            return await route.handler(call)
        return await state.app_requests.respond(key.app, lambda: route.handler(call))

    return _measured(state, route.path, authorized, render_error)


def _public(
    state: ServerState, path: str, handler: Callable[[ServerState, Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def public(request: Request) -> Response:
        return await handler(state, request)

    return _measured(state, path, public)


def _measured(
    state: ServerState,
    path: str,
    handler: Callable[[Request], Awaitable[Response]],
    render_error: ErrorRenderer | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """Bound the request's time, turn errors into the error body (``render_error``'s), and count it."""
    latency = state.metrics.latency.labels(path)
    render = render_error or _v1_error

    async def measured(request: Request) -> Response:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(state.options.request_timeout):
                response = await handler(request)
        except TrailvaultError as exc:
            response = render(request, exc)
        except TimeoutError:
            response = render(
                request,
                StoreUnavailable(
                    f"request_timeout: no answer within {state.options.request_timeout:g} s; a post may still "
                    "complete, so resend it with the same event ids (duplicates are recognised)"
                ),
            )
        except Exception:
            _log.exception("unexpected error answering %s %s", request.method, path)
            response = render(request, None)
        latency.observe(time.perf_counter() - started)
        state.metrics.requests.labels(path, request.method, str(response.status_code)).inc()
        return response

    return measured


def _v1_error(request: Request, error: TrailvaultError | None) -> Response:
    """The ``/v1`` error body; an unexpected failure (None) says only that the server log has details."""
    if error is not None:
        return error_response(error)
    return JSONResponse(
        {"error": {"code": "internal", "message": "internal error; the server log has details", "field": None}},
        status_code=500,
    )


async def _health(state: ServerState, request: Request) -> Response:
    """Liveness for anyone; with a key that may read, also the log's size (what its checkpoints show it)."""
    if request.headers.get("authorization") is None:
        return JSONResponse({"status": "ok"})
    key = await state.authenticator.identify(request, state.options.max_request_bytes)
    state.limiter.check(key)
    if not (key.allows(Scope.READ) or key.allows(Scope.ARCHIVE)):
        return JSONResponse({"status": "ok"})
    size = await run_in_threadpool(state.vault.log_size)
    return JSONResponse({"status": "ok", "log_size": size})


async def _metrics(state: ServerState, request: Request) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


async def _openapi(state: ServerState, request: Request) -> Response:
    return JSONResponse(openapi_document())


async def _http_error(roots: Mapping[str, ErrorRenderer], request: Request, exc: Exception) -> Response:
    """Starlette's own answers (no such route, method not allowed) in the same error body, or a face's."""
    assert isinstance(exc, HTTPException)
    message = f"{request.method} {request.url.path[:200]}: {exc.detail}"
    face = roots.get(_root(request.url.path))
    if face is not None:
        error = NotFound(message) if exc.status_code == 404 else TrailvaultError(message)
        error.status = exc.status_code
        return face(request, error)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": None}},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def _root(path: str) -> str:
    """A path's first segment, ``/20181201`` of ``/20181201/auditEvents``."""
    return "/" + path.split("/", 2)[1] if path.startswith("/") and len(path) > 1 else path
