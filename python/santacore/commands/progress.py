"""A progress bar on stderr for long hashing runs, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from santacore._core import Progress

T = TypeVar("T")


def with_progress(work: Callable[[Progress], T]) -> T:
    """Run `work` (which releases the GIL) and, on a terminal, draw a progress bar on stderr
    from its live counters. Without a terminal it just runs."""
    progress = Progress()
    if not sys.stderr.isatty():
        return work(progress)

    from rich.console import Console
    from rich.progress import Progress as Bar
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(work(progress))
        except BaseException as e:
            failure.append(e)

    worker = threading.Thread(target=target, name="santacore-bundleinfo", daemon=True)
    worker.start()
    # transient: the bar disappears when done, leaving only the real output.
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Bar(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("walking")
        while worker.is_alive():
            worker.join(0.1)
            bar.update(
                task,
                description=f"{progress.files_examined:,} files examined, {progress.binaries_found:,} executables, "
                f"{progress.bytes_hashed / 1e6:,.1f} MB hashed",
            )
    if failure:
        raise failure[0]
    return outcome[0]
