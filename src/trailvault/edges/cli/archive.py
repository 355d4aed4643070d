"""``trailvault archive <verb>``: Cloudera CDP's pull-based archiving verbs, and purge; ``trailvault hold``."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from trailvault.edges.cli.output import OUTPUT_CHOICE, emit_json, pick_output, print_table
from trailvault.edges.cli.session import Session
from trailvault.edges.config import archive_plan
from trailvault.errors import InvalidInput
from trailvault.workflows.archive.automatic import archive_once
from trailvault.workflows.archive.files import audit_events_json
from trailvault.workflows.vault.vault import Vault

__all__ = ["archive", "hold"]


@click.group()
def archive() -> None:
    """Pull-based archiving with CDP's verbs and JSON: batch, list, read, mark archived; then purge.

    \b
    Example:
      trailvault archive batch-events-for-archiving --from-timestamp 2024-03-01T00:00:00Z \\
          --to-timestamp 2024-04-01T00:00:00Z
      trailvault archive list-outstanding-archive-batches
      trailvault archive list-events-in-archive-batch --archive-id ID --output-dir ./archives
      trailvault archive mark-archive-batches-as-successful --archive-ids ID
      trailvault archive purge
    """


@archive.command("batch-events-for-archiving")
@click.option("--from-timestamp", required=True, help="Start of the range, inclusive (RFC 3339).")
@click.option("--to-timestamp", required=True, help="End of the range, exclusive (RFC 3339).")
@click.pass_obj
def batch_events_for_archiving(session: Session, from_timestamp: str, to_timestamp: str) -> None:
    """Group the app's events of the range into archive batches; print {"taskId"}.

    On a local vault the task runs in this process before the command returns; on a
    server (--server) it runs there in the background. One task per app at a time.

    \b
    Example:
      trailvault archive batch-events-for-archiving --from-timestamp 2024-03-01T00:00:00Z \\
          --to-timestamp 2024-04-01T00:00:00Z
    """
    vault = session.vault()
    task_id = vault.batch_events_for_archiving(from_timestamp, to_timestamp, wait=isinstance(vault, Vault))
    emit_json({"taskId": task_id})


@archive.command("get-batch-events-for-archiving-status")
@click.option("--task-id", required=True, help="The taskId that batch-events-for-archiving printed.")
@click.pass_obj
def get_batch_events_for_archiving_status(session: Session, task_id: str) -> None:
    """Print the task's {"status": OPEN|COMPLETED|FAILED, "eventBatches": [...]}; exit 1 when FAILED.

    \b
    Example:
      trailvault archive get-batch-events-for-archiving-status --task-id 0b67c29c-bce9-4bbd-ac3e-8445df029f4f
    """
    task = session.vault().get_batch_events_for_archiving_status(task_id)
    emit_json(task.to_dict())
    if task.error is not None:
        click.echo(f"trailvault: the batching task failed: {task.error}", err=True)
        sys.exit(1)


@archive.command("list-outstanding-archive-batches")
@click.option("--from-timestamp", help="Only batches whose range overlaps [from, to).")
@click.option("--to-timestamp", help="Only batches whose range overlaps [from, to).")
@click.option("--page-size", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--starting-token", help="The nextPageToken of the previous page.")
@click.option("--output", type=OUTPUT_CHOICE, help="json (default in a pipe) or table.")
@click.pass_obj
def list_outstanding_archive_batches(
    session: Session,
    from_timestamp: str | None,
    to_timestamp: str | None,
    page_size: int,
    starting_token: str | None,
    output: str | None,
) -> None:
    """List the batches not marked archived yet: {"eventBatches": [...], "nextPageToken"}.

    \b
    Example:
      trailvault archive list-outstanding-archive-batches --page-size 50 --output table
    """
    page = session.vault().list_outstanding_archive_batches(
        from_timestamp, to_timestamp, page_size=page_size, starting_token=starting_token
    )
    if pick_output(output) != "table":
        emit_json(page.to_dict())
        return
    table = Table()
    for column in ("archiveId", "events", "from", "to", "seqs"):
        table.add_column(column)
    for batch in page.event_batches:
        shown = batch.to_dict()
        table.add_row(
            batch.archive_id,
            f"{batch.event_count:,}",
            shown["fromTimestamp"],
            shown["toTimestamp"],
            f"{batch.first_seq}-{batch.last_seq}",
        )
    print_table(table)
    if page.next_page_token:
        click.echo(f"next page: --starting-token {page.next_page_token}", err=True)


@archive.command("list-events-in-archive-batch")
@click.option("--archive-id", required=True, help="The batch's archiveId.")
@click.option(
    "--output-dir",
    metavar="DIR_OR_URL",
    help="Write <accountId>_<YYYYmmddTHHMM>Z_<archiveId>.json.gz and its manifest there (a folder or fsspec URL) "
    "instead of printing the events.",
)
@click.pass_obj
def list_events_in_archive_batch(session: Session, archive_id: str, output_dir: str | None) -> None:
    """Stream the batch's events as {"auditEvents": [...]}, or write them as an archive file with manifest.

    \b
    Example:
      trailvault archive list-events-in-archive-batch --archive-id c5b57c79-... > batch.json
      trailvault archive list-events-in-archive-batch --archive-id c5b57c79-... --output-dir ./archives
    """
    vault = session.vault()
    if output_dir is not None:
        emit_json(vault.write_archive_batch(archive_id, output_dir).to_dict())
        return
    for piece in audit_events_json(vault.archive_lines(archive_id)):
        sys.stdout.buffer.write(piece)


@archive.command("mark-archive-batches-as-successful")
@click.option("--archive-ids", "archive_ids", multiple=True, required=True, help="archiveIds (repeat, or list them).")
@click.argument("more", nargs=-1, metavar="[ARCHIVE_ID]...")
@click.pass_obj
def mark_archive_batches_as_successful(session: Session, archive_ids: tuple[str, ...], more: tuple[str, ...]) -> None:
    """Mark batches archived, so purge removes their events after the retention: {"archiveIds", "archiveTimestamp"}.

    As in CDP, `--archive-ids A B C` lists several; commas work too.

    \b
    Example:
      trailvault archive mark-archive-batches-as-successful --archive-ids c5b57c79-... 9d3c0f1e-...
    """
    ids = [part for value in (*archive_ids, *more) for part in value.replace(",", " ").split()]
    emit_json(session.vault().mark_archive_batches_as_successful(ids))


@archive.command("purge")
@click.pass_obj
def purge(session: Session) -> None:
    """Remove the rows of archived events past the retention and under no legal hold (run it on a schedule).

    \b
    Example:
      trailvault archive purge
    """
    emit_json(session.vault().purge().to_dict())


@archive.command("run")
@click.pass_obj
def run(session: Session) -> None:
    """Run automated archiving once over every app, as the [archive] section says (for cron).

    Batches, writes <app>/yyyy/MM/dd/<file>.json.gz with manifest to the destination,
    reads both back, marks, then purges. Exit 1, naming each problem on stderr, when any
    batch could not be archived or events were left unbatched (another batching task open).

    \b
    Example:
      trailvault --config /etc/trailvault.toml archive run
    """
    settings = session.settings()
    plan = archive_plan(settings)
    if plan is None:
        raise InvalidInput("archive.destination: set [archive] destination in the config file first", field="archive")
    report = archive_once(session.local_vault(command="archive run"), plan)
    emit_json(report.to_dict())
    if not report.ok:
        for problem in report.problems:
            click.echo(f"archive run: {problem}", err=True)
        sys.exit(1)


@click.group()
def hold() -> None:
    """Legal holds: while one is set, purge leaves every event it covers in the vault.

    \b
    Example:
      trailvault hold set case-2024-17 --reason "litigation hold, ticket LEGAL-17" --from 2024-01-01T00:00Z
      trailvault hold list
      trailvault hold clear case-2024-17
    """


@hold.command("set")
@click.argument("name")
@click.option("--reason", required=True, help="Why the events are held (kept on record).")
@click.option("--channel", help="Only this channel (default: every channel of the app).")
@click.option("--from", "time_from", help="Only events at or after this time (RFC 3339).")
@click.option("--to", "time_to", help="Only events before this time (RFC 3339).")
@click.pass_obj
def set_hold(
    session: Session, name: str, reason: str, channel: str | None, time_from: str | None, time_to: str | None
) -> None:
    """Set the legal hold NAME.

    \b
    Example:
      trailvault hold set case-2024-17 --reason "litigation hold, LEGAL-17" --channel access --from 2024-01-01T00:00Z
    """
    emit_json(session.vault().set_hold(name, reason, channel=channel, time_from=time_from, time_to=time_to).to_dict())


@hold.command("clear")
@click.argument("name")
@click.pass_obj
def clear_hold(session: Session, name: str) -> None:
    """Clear the legal hold NAME (it stays on record).

    \b
    Example:
      trailvault hold clear case-2024-17
    """
    emit_json(session.vault().clear_hold(name).to_dict())


@hold.command("list")
@click.option("--all", "include_cleared", is_flag=True, help="Cleared holds too.")
@click.pass_obj
def list_holds(session: Session, include_cleared: bool) -> None:
    """List the app's legal holds.

    \b
    Example:
      trailvault hold list --all
    """
    emit_json({"holds": [item.to_dict() for item in session.vault().holds(include_cleared=include_cleared)]})
