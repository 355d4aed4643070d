"""Rendering for the CLI: rich tables for people, JSON for programs."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from trailvault.core.event import Event

__all__ = ["OUTPUT_CHOICE", "emit_json", "emit_line", "event_table", "pick_output", "print_table"]

OUTPUT_CHOICE = click.Choice(["table", "json", "ndjson"])
_BODY_WIDTH = 200


def pick_output(output: str | None) -> str:
    """Default to a table on a terminal and to JSON in a pipe."""
    if output is not None:
        return output
    return "table" if sys.stdout.isatty() else "json"


def emit_json(value: Any) -> None:
    """Write one JSON document (indented) to stdout."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def emit_line(value: Any) -> None:
    """Write one compact JSON line to stdout."""
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


def print_table(table: Table) -> None:
    """Print a table; in a pipe, wide enough that bodies are not squeezed out."""
    console = Console(soft_wrap=False)
    if not console.is_terminal:
        console = Console(soft_wrap=False, width=200)
    console.print(table)


def event_table(events: Iterable[Event], title: str | None = None) -> Table:
    """Return a table of events: seq, time, channel, id and the body in compact JSON."""
    table = Table(title=title, show_lines=False)
    for column in ("seq", "time", "channel", "id", "body"):
        if column == "body":
            table.add_column(column, overflow="fold", ratio=1, min_width=24)
        else:
            table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=36)
    for event in events:
        body = "[redacted]" if event.body is None else orjson.dumps(event.body).decode()
        if len(body) > _BODY_WIDTH:
            body = body[: _BODY_WIDTH - 1] + "…"
        record = event.to_dict()
        table.add_row(str(event.seq), record["time"], event.channel, event.id, body)
    return table
