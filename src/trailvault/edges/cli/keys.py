"""``trailvault keys``: create, list and revoke the app's API keys."""

from __future__ import annotations

from typing import TextIO

import click
from rich.table import Table

from trailvault.edges.cli.output import OUTPUT_CHOICE, emit_json, pick_output, print_table
from trailvault.edges.cli.session import Session

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """API keys of the app: bearer tokens with scopes, for the HTTP API."""


@keys.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="ingest, read, archive, admin or unmask (repeat, or comma-separate).",
)
@click.option("--channel", "channels", multiple=True, help="Limit the key to this channel (repeat for more).")
@click.option(
    "--oci-public-key",
    "oci_public_key",
    type=click.File("r"),
    help="PEM file of an RSA public key: the key's holder may sign requests as OCI clients do.",
)
@click.pass_obj
def create(
    session: Session, name: str, scopes: tuple[str, ...], channels: tuple[str, ...], oci_public_key: TextIO | None
) -> None:
    """Create an API key named NAME and print its token, which is shown this once only.

    With --oci-public-key, also print the public key's fingerprint: the last part of
    the keyId an OCI client signs with (``fingerprint`` in its config file).

    \b
    Example:
      trailvault keys create first-admin --scope admin
      trailvault keys create billing-producer --scope ingest --channel invoices
      trailvault keys create datasafe-reader --scope read --oci-public-key oci_api_key_public.pem
    """
    public_key = None if oci_public_key is None else oci_public_key.read()
    key, token = session.vault(create=True).create_key(name, scopes, list(channels) or None, public_key)
    emit_json({"key": key.to_dict(), "token": token})
    click.echo("trailvault: keep the token now; only its hash is stored, it cannot be shown again", err=True)
    if key.oci_fingerprint is not None:
        click.echo(f"trailvault: OCI fingerprint {key.oci_fingerprint}", err=True)


@keys.command("list")
@click.option("--output", type=OUTPUT_CHOICE, help="table (default on a terminal) or json.")
@click.pass_obj
def list_(session: Session, output: str | None) -> None:
    """List the app's API keys, revoked ones included (never their tokens).

    \b
    Example:
      trailvault keys list
    """
    found = session.vault().keys()
    if pick_output(output) != "table":
        emit_json({"keys": [key.to_dict() for key in found]})
        return
    table = Table()
    for column in ("id", "name", "scopes", "channels", "created", "revoked", "oci fingerprint"):
        table.add_column(column)
    for key in found:
        shown = key.to_dict()
        table.add_row(
            key.id,
            key.name,
            ",".join(shown["scopes"]),
            "all" if key.channels is None else ",".join(key.channels),
            shown["created"],
            shown["revoked"] or "",
            key.oci_fingerprint or "",
        )
    print_table(table)


@keys.command("revoke")
@click.argument("key_id")
@click.pass_obj
def revoke(session: Session, key_id: str) -> None:
    """Revoke the API key KEY_ID; it fails from then on (kept, for the record).

    \b
    Example:
      trailvault keys revoke 3f2a9c0d1e4b5a6f
    """
    emit_json(session.vault().revoke_key(key_id).to_dict())
