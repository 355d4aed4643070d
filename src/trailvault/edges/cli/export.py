"""``trailvault export``: a query's events to Parquet, CSV and JSONL.gz files with a proving manifest."""

from __future__ import annotations

import sys
import time

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from trailvault.edges.cli.output import emit_json
from trailvault.edges.cli.session import Session

__all__ = ["export"]


@click.command()
@click.option("--out", type=click.Path(file_okay=False), help="A new or empty folder for the files.")
@click.option(
    "--to-db",
    "to_db",
    metavar="URL",
    help="Load into tables instead: sqlite:///FILE or postgresql://... (one a channel).",
)
@click.option("--channel", help="Only this channel (default: every channel of the app, a file set each).")
@click.option("--from", "time_from", help="Start of the time range, inclusive (RFC 3339).")
@click.option("--to", "time_to", help="End of the time range, exclusive (RFC 3339).")
@click.option("--filter", "filter_text", metavar="SCIM", help="A SCIM filter, e.g. 'type eq \"LOGON\"'.")
@click.option(
    "--format",
    "formats",
    default="parquet,csv,jsonl.gz",
    show_default=True,
    help="Comma-separated: parquet, csv, jsonl.gz.",
)
@click.pass_obj
def export(
    session: Session,
    out: str | None,
    to_db: str | None,
    channel: str | None,
    time_from: str | None,
    time_to: str | None,
    filter_text: str | None,
    formats: str,
) -> None:
    """Export the app's events in seq order, one file per channel and format, with manifest.json and
    proof.bin; `trailvault verify export DIR --key KEY` proves them offline.

    \b
    Example:
      trailvault export --from 2024-10-01T00:00Z --to 2024-11-01T00:00Z --out ./export-2024-10
      trailvault export --channel access --filter 'user.email eq "a@example.com"' --format parquet --out ./alice
      trailvault export --from 2024-10-01T00:00Z --to-db postgresql://analytics@db/audit
    """
    vault = session.vault()
    started = time.monotonic()
    if sys.stderr.isatty():
        with Progress(
            TextColumn("exporting"),
            BarColumn(),
            TextColumn("{task.fields[events]:,} events, {task.fields[rate]:,.0f}/s"),
            TimeRemainingColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("export", total=None, events=0, rate=0.0)

            def progress(events: int, seq: int, size: int) -> None:
                rate = events / max(time.monotonic() - started, 1e-9)
                bar.update(task, completed=seq, total=size, events=events, rate=rate)

            manifest = vault.export(
                out, channel=channel, time_from=time_from, time_to=time_to, filter=filter_text,
                formats=formats, progress=progress, to_db=to_db,
            )  # fmt: skip
    else:
        manifest = vault.export(
            out, channel=channel, time_from=time_from, time_to=time_to, filter=filter_text, formats=formats,
            to_db=to_db,
        )  # fmt: skip
    if to_db is not None:
        emit_json({**manifest, "seconds": round(time.monotonic() - started, 3)})
        return
    emit_json(
        {
            "out": out,
            "count": manifest["count"],
            "checkpoint_size": manifest["size"],
            "files": [
                {"name": item["name"], "count": item["count"], "bytes": item["bytes"]} for item in manifest["files"]
            ],
            "seconds": round(time.monotonic() - started, 3),
        }
    )
