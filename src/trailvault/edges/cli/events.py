"""``trailvault events``: list and get events."""

from __future__ import annotations

import sys

import click

from trailvault.core.query import MAX_LIMIT, SORT_FIELDS
from trailvault.edges.cli.output import OUTPUT_CHOICE, emit_json, emit_line, event_table, pick_output, print_table
from trailvault.edges.cli.session import Session

__all__ = ["events"]


@click.group()
def events() -> None:
    """List and get the app's events."""


@events.command("list")
@click.option("--channel", help="Only this channel.")
@click.option("--from", "time_from", help="Start of the time range, inclusive (RFC 3339).")
@click.option("--to", "time_to", help="End of the time range, exclusive (RFC 3339).")
@click.option(
    "--where", "where", multiple=True, metavar="PATH=VALUE", help="Equality on an envelope field or body path."
)
@click.option(
    "--filter",
    "filter_text",
    metavar="SCIM",
    help='A SCIM filter, e.g. \'(time ge "2024-10-07T00:00Z") and (user.email eq "a@example.com")\'.',
)
@click.option(
    "--sort-by",
    default="time",
    show_default=True,
    help=f"{', '.join(SORT_FIELDS)}, or a body field of --channel's schema such as amount.",
)
@click.option(
    "--sort-order", type=click.Choice(["asc", "desc"], case_sensitive=False), default="asc", show_default=True
)
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=100, show_default=True, help="Events per page.")
@click.option("--page", help="The next_page token of the previous page.")
@click.option("--all", "all_pages", is_flag=True, help="Every matching event, not one page.")
@click.option("--output", type=OUTPUT_CHOICE, help="table (default on a terminal), json or ndjson.")
@click.pass_obj
def list_(
    session: Session,
    channel: str | None,
    time_from: str | None,
    time_to: str | None,
    where: tuple[str, ...],
    filter_text: str | None,
    sort_by: str,
    sort_order: str,
    limit: int,
    page: str | None,
    all_pages: bool,
    output: str | None,
) -> None:
    """List events, oldest first, one page at a time (or --all).

    \b
    Example:
      trailvault events list --channel myindex --from 2024-10-07T00:00Z --to 2024-10-08T00:00Z
      trailvault events list --where company=Amalto --where taxes_total=12.5 --output json
      trailvault events list --channel myindex --all --output ndjson > events.ndjson
      trailvault events list --filter '(amount gt 100) and not (company sw "Acme")'
    """
    conditions = dict(_condition(text) for text in where)
    vault = session.vault()
    output = pick_output(output)
    options = {
        "time_from": time_from,
        "time_to": time_to,
        "where": conditions or None,
        "filter": filter_text,
        "sort_by": sort_by,
        "sort_order": sort_order,
    }
    if all_pages:
        if page:
            raise click.UsageError("--all reads every page; leave out --page")
        stream = vault.iter_events(channel, **options)  # type: ignore[arg-type]
        if output == "table":
            print_table(event_table(stream))
        elif output == "ndjson":
            for event in stream:
                emit_line(event.to_dict())
        else:
            _stream_json_items(stream)
        return
    result = vault.events(channel, limit=limit, page=page, **options)  # type: ignore[arg-type]
    if output == "json":
        emit_json({"items": [event.to_dict() for event in result], "next_page": result.next_page})
    elif output == "ndjson":
        for event in result:
            emit_line(event.to_dict())
        if result.next_page:
            click.echo(f"next page: --page {result.next_page}", err=True)
    else:
        print_table(event_table(result))
        if result.next_page:
            click.echo(f"more: --page {result.next_page}")


@events.command("get")
@click.argument("event_id", metavar="ID")
@click.option("--output", type=OUTPUT_CHOICE, help="table (default on a terminal), json or ndjson.")
@click.pass_obj
def get(session: Session, event_id: str, output: str | None) -> None:
    """Show one event by its id.

    \b
    Example:
      trailvault events get 01930a4e-8c1f-7d33-b1a2-6f1e2d3c4b5a
    """
    event = session.vault().get(event_id)
    output = pick_output(output)
    if output == "json":
        emit_json(event.to_dict())
    elif output == "ndjson":
        emit_line(event.to_dict())
    else:
        print_table(event_table([event]))


@events.command("redact")
@click.argument("event_id", metavar="ID")
@click.option("--reason", required=True, help="Why the body is removed (kept in the log).")
@click.pass_obj
def redact(session: Session, event_id: str, reason: str) -> None:
    """Remove an event's body for an erasure request; the log, its tree and its proofs still verify.

    \b
    Example:
      trailvault events redact 01930a4e-8c1f-7d33-b1a2-6f1e2d3c4b5a --reason "GDPR erasure request #4411"
    """
    record = session.vault().redact(event_id, reason)
    emit_line({"redacted": event_id, "record": {"id": record.id, "seq": record.seq}})


def _condition(text: str) -> tuple[str, str]:
    path, sep, value = text.partition("=")
    if not sep or not path:
        raise click.UsageError(f"--where takes PATH=VALUE, got {text!r}")
    return path.strip(), value


def _stream_json_items(stream: object) -> None:
    """Write ``{"items": [...]}`` one event at a time, so --all stays in constant memory."""
    import orjson

    out = sys.stdout
    out.write('{"items": [')
    first = True
    for event in stream:  # type: ignore[attr-defined]
        out.write(("\n  " if first else ",\n  ") + orjson.dumps(event.to_dict()).decode())
        first = False
    out.write('\n], "next_page": null}\n')
