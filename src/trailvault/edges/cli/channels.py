"""``trailvault channels``: open, list and show channels."""

from __future__ import annotations

from collections.abc import Iterator

import click
from rich.table import Table

from trailvault.core.schema import Field
from trailvault.edges.cli.output import OUTPUT_CHOICE, emit_json, emit_line, pick_output, print_table
from trailvault.edges.cli.session import Session

__all__ = ["channels"]


@click.group()
def channels() -> None:
    """Open, list and show the app's channels."""


@channels.command("open")
@click.argument("name")
@click.option(
    "--schema",
    required=True,
    help="Schema file (a path, file: URI or URL; BigQuery or Elasticsearch), or a built-in: builtin:datasafe.",
)
@click.pass_obj
def open_(session: Session, name: str, schema: str) -> None:
    """Create channel NAME with a schema, or add NULLABLE fields to its schema.

    \b
    Example:
      trailvault channels open myindex --schema file:///etc/audit/myindex.json
      trailvault channels open audit --schema builtin:datasafe
    """
    vault = session.vault()
    vault.open(name, schema)
    channel = vault.channel(name)
    emit_json({"opened": True, "channel": channel.name, "version": channel.version})


@channels.command("list")
@click.option("--output", type=OUTPUT_CHOICE, help="table (default on a terminal), json or ndjson.")
@click.pass_obj
def list_(session: Session, output: str | None) -> None:
    """List the app's channels with their schema versions.

    \b
    Example:
      trailvault channels list --output json
    """
    found = session.vault().channels()
    output = pick_output(output)
    if output == "json":
        emit_json({"items": [channel.to_dict() for channel in found]})
    elif output == "ndjson":
        for channel in found:
            emit_line(channel.to_dict())
    else:
        table = Table("channel", "version", "fields", "created")
        for channel in found:
            created = channel.to_dict()["created"]
            table.add_row(channel.name, str(channel.version), str(len(channel.schema.fields)), created)
        print_table(table)


@channels.command("show")
@click.argument("name")
@click.option("--output", type=OUTPUT_CHOICE, help="table (default on a terminal), json or ndjson.")
@click.pass_obj
def show(session: Session, name: str, output: str | None) -> None:
    """Show one channel and its current schema.

    \b
    Example:
      trailvault channels show myindex
    """
    channel = session.vault().channel(name)
    output = pick_output(output)
    if output in ("json", "ndjson"):
        (emit_json if output == "json" else emit_line)(channel.to_dict())
        return
    table = Table("field", "type", "mode", "index", "sensitive", title=f"{channel.name} (version {channel.version})")
    for path, field in _walk(channel.schema.fields, ""):
        flags = ("yes" if field.index else "", "yes" if field.sensitive else "")
        table.add_row(path, str(field.type), str(field.mode), *flags)
    print_table(table)


def _walk(fields: tuple[Field, ...], prefix: str) -> Iterator[tuple[str, Field]]:
    for field in fields:
        path = prefix + field.name
        yield path, field
        yield from _walk(field.fields, path + ".")
