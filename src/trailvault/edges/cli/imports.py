"""``trailvault import``: record another system's audit events from the files people have."""

from __future__ import annotations

import sys
from typing import BinaryIO

import click

from trailvault.adapters.importers.datasafe import read_datasafe
from trailvault.edges.cli.output import emit_line
from trailvault.edges.cli.progress import LazyProgress
from trailvault.edges.cli.session import Session
from trailvault.errors import InvalidInput
from trailvault.workflows.imports import ImportResult, import_records, open_if_missing

__all__ = ["import_"]


@click.group("import")
def import_() -> None:
    """Import audit events from another system's exports.

    \b
    Example:
      trailvault import datasafe datasafe.log --channel audit
    """


@import_.command("datasafe")
@click.argument("source", metavar="FILE|-")
@click.option(
    "--channel",
    default="datasafe",
    show_default=True,
    help="Channel to record in; opened with the built-in datasafe schema when it does not exist.",
)
@click.option(
    "--batch-size",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Events posted per all-or-nothing transaction.",
)
@click.pass_obj
def datasafe(session: Session, source: str, channel: str, batch_size: int) -> None:
    """Import OCI Data Safe audit events from FILE (or - for stdin).

    Reads the oci CLI's output (list-audit-events, also several outputs appended
    to one file), the SDK's to_dict output (a JSON array or one object per line)
    and the REST API's JSON (an array, {"items": [...]} or NDJSON). Data Safe's id
    becomes the event's id, so importing again stores nothing twice. Prints
    {"imported", "duplicates", "refused"}; each refused record is named on stderr
    with its position and field, and then the exit code is 1.

    \b
    Example:
      oci data-safe audit-event-summary list-audit-events --compartment-id $C --all >> datasafe.log
      trailvault import datasafe datasafe.log --channel audit
      trailvault --server https://vault.example.com import datasafe - < events.json
    """
    vault = session.vault()
    open_if_missing(vault, channel, "builtin:datasafe")
    progress = LazyProgress()
    done = named = 0

    def advance(result: ImportResult) -> None:
        nonlocal done, named
        total = result.imported + result.duplicates + len(result.refused)
        progress.advance(total - done)
        done = total
        # Named as they come, so a long import shows its refusals before it ends.
        for refusal in result.refused[named:]:
            progress.echo(f"trailvault: refused: {refusal.position}: {refusal.message}")
        named = len(result.refused)

    try:
        if source == "-":
            result = import_records(
                vault, channel, read_datasafe(sys.stdin.buffer), batch_size=batch_size, on_batch=advance
            )
        else:
            with _open(source) as stream:
                result = import_records(vault, channel, read_datasafe(stream), batch_size=batch_size, on_batch=advance)
    finally:
        progress.stop()
    emit_line({"imported": result.imported, "duplicates": result.duplicates, "refused": len(result.refused)})
    if result.refused:
        raise click.exceptions.Exit(1)


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb")  # closed by the caller's with
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise InvalidInput(f"FILE: cannot read {path} ({reason}); check the path", field="FILE") from None
