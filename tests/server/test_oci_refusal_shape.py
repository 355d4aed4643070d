"""The hook for the OCI faces: a refused key or signature under their paths is answered in OCI's error shape."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import trailvault
from trailvault.edges.server import create_app
from trailvault.edges.server.app import _measured
from trailvault.edges.server.http import JSONResponse
from trailvault.edges.server.state import ServerState


def test_a_refusal_under_an_oci_path_is_not_authenticated_in_ocis_shape(tmp_path: Path) -> None:
    """Under /20181201/ a refused signature is 401 {"code": "NotAuthenticated", "message"}; /v1 keeps its body."""
    with trailvault.open_vault(tmp_path / "vault") as vault:
        app = create_app(vault)
        state: ServerState = app.state.trailvault

        async def probe(request: Request) -> Response:
            key = await state.authenticator.identify(request, state.options.max_request_bytes)
            return JSONResponse({"id": key.id})

        path = "/20181201/probe"
        app.router.routes.append(Route(path, _measured(state, path, probe), methods=["GET"]))
        oci, v1 = asyncio.run(_get(app, (path, 'Signature keyId="x",headers="date",signature="AA=="'),
                                   ("/v1/events", "Signature nonsense")))  # fmt: skip
    assert oci.status_code == 401
    assert oci.json() == {"code": "NotAuthenticated", "message": oci.json()["message"]}
    assert "keyId" in oci.json()["message"] and "AA==" not in oci.text
    assert v1.status_code == 401 and v1.json()["error"]["code"] == "unauthorized"


async def _get(app: object, *requests: tuple[str, str]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [await client.get(path, headers={"Authorization": header}) for path, header in requests]
