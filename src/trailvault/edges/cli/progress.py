"""A progress bar on stderr for commands that post many events (``post -``, ``import``)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = ["LazyProgress"]

_PROGRESS_AFTER_SECONDS = 1.0


class LazyProgress:
    """A progress bar on stderr that appears only when posting takes over a second."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._done = 0
        self._bar: Progress | None = None
        self._task: Any = None

    def advance(self, count: int) -> None:
        self._done += count
        if self._bar is None:
            if time.monotonic() - self._started < _PROGRESS_AFTER_SECONDS or not sys.stderr.isatty():
                return
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.completed:,} events"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._bar.add_task("post", total=None, rate="")
            self._bar.start()
        rate = self._done / max(time.monotonic() - self._started, 1e-9)
        self._bar.update(self._task, completed=self._done, rate=f"{rate:,.0f} events/s")

    def echo(self, line: str) -> None:
        """Write a line to stderr, above the bar when it shows."""
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            sys.stderr.write(line + "\n")

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
