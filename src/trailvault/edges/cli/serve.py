"""``trailvault serve``: run the HTTP server on the configured vault."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from trailvault.core.api_key import Scope
from trailvault.core.batches import shown_location
from trailvault.edges.cli.session import Session
from trailvault.edges.config import archive_plan
from trailvault.workflows.archive.automatic import Archiver

if TYPE_CHECKING:
    from trailvault.edges.server.state import ServerOptions

__all__ = ["serve", "server_options"]


@click.command()
@click.option("--host", help="Address to listen on (setting host; default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="TCP port (setting port; default 8080).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate: serve HTTPS.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key of --tls-cert.")
@click.option("--access-log", is_flag=True, help="Log every request (method, path, status).")
@click.pass_obj
def serve(
    session: Session,
    host: str | None,
    port: int | None,
    tls_cert: str | None,
    tls_key: str | None,
    access_log: bool,
) -> None:
    """Serve the vault over HTTP: the /v1 API, /healthz, /metrics, /v1/openapi.json and the OCI face.

    Creates the vault when it does not exist. Stops on Ctrl-C or SIGTERM after
    finishing the requests in flight.

    \b
    Example:
      trailvault serve --port 8080
      trailvault keys create first-admin --scope admin   # in another shell: the first key
      trailvault serve --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem
    """
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    settings = session.settings()
    host = host or settings["host"]
    port = settings["port"] if port is None else port
    vault = session.local_vault(create=True, command="serve")
    scheme = "https" if tls_cert else "http"
    click.echo(f"trailvault: serving {vault.location} at {scheme}://{host}:{port}/v1 (API: /v1/openapi.json)", err=True)
    if not any(key.allows(Scope.ADMIN) and key.revoked_us is None for key in vault.keys()):
        click.echo(
            f"trailvault: app {vault.app!r} has no admin key yet; get one with "
            f"`trailvault keys create first-admin --scope admin` (shown once)",
            err=True,
        )
    plan = archive_plan(settings)
    if plan is not None:
        click.echo(f"trailvault: archiving every {plan.schedule:g} s to {shown_location(plan.destination)}", err=True)
    # Imported here, not at the top: every command loads this module for --help, and only
    # serve needs Starlette, uvicorn and the routes (about 100 ms).
    from trailvault.edges.faces import configured_faces
    from trailvault.edges.server import create_app
    from trailvault.edges.server import serve as run_server

    faces = configured_faces(settings)

    archiver = Archiver(vault, plan)
    archiver.start()
    try:
        run_server(
            create_app(vault, server_options(settings), faces),
            host=host,
            port=port,
            tls_cert=tls_cert,
            tls_key=tls_key,
            access_log=access_log,
        )
    finally:
        archiver.stop()


def server_options(settings: Mapping[str, Any]) -> ServerOptions:
    """Return the server's options from ``settings`` (from :func:`load_settings`)."""
    from trailvault.edges.server.state import ServerOptions

    return ServerOptions(
        max_request_bytes=settings["max_request_bytes"],
        rate_limit=settings["rate_limit"],
        request_timeout=settings["request_timeout"],
        statement_timeout=settings["statement_timeout"],
        app_concurrency=settings["app_concurrency"],
        audit_reads=settings["audit_reads"],
        cors_origins=tuple(origin.strip() for origin in settings["cors_origins"].split(",") if origin.strip()),
    )
