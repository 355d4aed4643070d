"""``trailvault post``: record events from an argument, a file or NDJSON on stdin."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

import click
import orjson

from trailvault.core.event import NewEvent, Posted
from trailvault.core.jsontext import decode_json
from trailvault.edges.cli.output import emit_line
from trailvault.edges.cli.progress import LazyProgress
from trailvault.edges.cli.session import Session, read_argument
from trailvault.errors import BatchRejected, InvalidInput
from trailvault.workflows.api import VaultAPI

__all__ = ["post"]


@click.command()
@click.argument("channel")
@click.argument("values")
@click.option("--id", "event_id", help="The event's own id (idempotency key); default: a new UUIDv7.")
@click.option("--time", "event_time", help="When it happened (RFC 3339); default: the body's time or now.")
@click.option("--envelope", is_flag=True, help='Each input is {"id", "time", "body"} rather than a bare body.')
@click.option(
    "--batch-size",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="From stdin: lines stored per all-or-nothing transaction.",
)
@click.option("--atomic", is_flag=True, help="From stdin: store every line or none (holds all lines in memory).")
@click.option(
    "--receipt",
    "receipt_path",
    type=click.Path(dir_okay=False, writable=True),
    help="One event: wait for its signed checkpoint and write its receipt (JSON) to this file.",
)
@click.pass_obj
def post(
    session: Session,
    channel: str,
    values: str,
    event_id: str | None,
    event_time: str | None,
    envelope: bool,
    batch_size: int,
    atomic: bool,
    receipt_path: str | None,
) -> None:
    """Record events in CHANNEL. VALUES is a JSON object, @FILE, or - for NDJSON on stdin.

    A JSON array in @FILE is stored all or nothing. From stdin, each batch of
    lines is all or nothing; on a refused line, the lines before its batch stay
    stored and the message says which.

    \b
    Example:
      trailvault post myindex '{"company": "Amalto", "amount": 101.12}'
      trailvault post myindex @event.json --id order-1
      trailvault post myindex - < events.ndjson
      trailvault post myindex @event.json --receipt receipt.json
    """
    vault = session.vault()
    if values == "-":
        if event_id or event_time or receipt_path:
            raise click.UsageError("--id, --time and --receipt apply to one event; with -, use --envelope lines")
        _post_stream(vault, channel, sys.stdin, batch_size=batch_size, atomic=atomic, envelope=envelope)
        return
    text = read_argument(values, field="values")
    if text.lstrip().startswith("["):
        if receipt_path:
            raise click.UsageError("--receipt applies to one event; post a single JSON object")
        items = decode_json(text, field="values")
        if event_id or event_time:
            raise click.UsageError("--id and --time apply to one event; give ids inside --envelope items")
        posted = vault.post_many(channel, [_item(item, envelope, None) for item in items])
        emit_line(_summary(posted))
        return
    item = _item(text, envelope, None)
    body, given_id, given_time = (item.body, item.id, item.time) if isinstance(item, NewEvent) else (item, None, None)
    result = vault.post(channel, body, id=event_id or given_id, time=event_time or given_time)
    if receipt_path:
        _write_receipt(receipt_path, vault.receipt(result.id))
    emit_line({"id": result.id, "seq": result.seq, "duplicate": result.duplicate})


def _write_receipt(path: str, receipt: dict[str, Any]) -> None:
    try:
        with open(path, "wb") as handle:
            handle.write(orjson.dumps(receipt, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as exc:
        raise InvalidInput(f"receipt: cannot write {path} ({exc.strerror})", field="receipt") from None


def _item(value: Any, envelope: bool, line: int | None) -> Any:
    """Return what to post for one input: its text, or a NewEvent when it is an envelope."""
    if not envelope:
        return value
    where = f"line {line}" if line is not None else "values"
    return NewEvent.from_envelope(decode_json(value, field=where) if isinstance(value, str) else value, where=where)


def _post_stream(
    vault: VaultAPI, channel: str, stream: TextIO, *, batch_size: int, atomic: bool, envelope: bool
) -> None:
    posted: list[Posted] = []
    items: list[Any] = []
    lines: list[int] = []
    progress = LazyProgress()

    def flush() -> None:
        if not items:
            return
        try:
            posted.extend(vault.post_many(channel, items))
        except BatchRejected as exc:
            raise InvalidInput(_rejected(exc, lines, posted), field=exc.field) from None
        progress.advance(len(items))
        items.clear()
        lines.clear()

    try:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                items.append(_item(line.rstrip("\r\n"), envelope, number))
            except InvalidInput as exc:
                raise InvalidInput(exc.message + _stored_note(posted), field=exc.field) from None
            lines.append(number)
            if not atomic and len(items) >= batch_size:
                flush()
        flush()
    finally:
        progress.stop()
    emit_line(_summary(posted))


def _rejected(exc: BatchRejected, lines: list[int], posted: list[Posted]) -> str:
    shown = "; ".join(f"line {lines[index]}: {error.message}" for index, error in exc.failures[:10])
    more = f"; and {len(exc.failures) - 10} more" if len(exc.failures) > 10 else ""
    count = f"{len(exc.failures)} line{'s' if len(exc.failures) > 1 else ''} refused"
    return f"{count}, so lines {lines[0]}-{lines[-1]} were not stored: {shown}{more}{_stored_note(posted)}"


def _stored_note(posted: list[Posted]) -> str:
    if not posted:
        return "; nothing was stored"
    return f"; the {len(posted)} events before it were stored (up to seq {max(p.seq for p in posted)})"


def _summary(posted: Iterable[Posted]) -> dict[str, Any]:
    results = list(posted)
    new = [p.seq for p in results if not p.duplicate]
    return {
        "posted": len(new),
        "duplicates": len(results) - len(new),
        "first_seq": min(new) if new else None,
        "last_seq": max(new) if new else None,
    }
