"""A progress bar on stderr for long hashing runs, drawn only when stderr is a terminal: a
spinner with counters while the walk finds executables, then a bar of bytes hashed out of their
total size with an estimate of the time left. rich is imported only when there is a bar to draw."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from santacore._core import Progress

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: start-up stays cheap
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


def with_progress(work: Callable[[Progress], T]) -> T:
    """Run `work` (which releases the GIL) and, on a terminal, draw a progress bar on stderr
    from its live counters. Without a terminal it just runs."""
    progress = Progress()
    if not sys.stderr.isatty():
        return work(progress)

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(work(progress))
        except BaseException as e:
            failure.append(e)

    worker = threading.Thread(target=target, name="santacore-bundleinfo", daemon=True)
    worker.start()
    # transient: the bar disappears when done, leaving only the real output. While the walk is
    # finding executables only the spinner and counters move; once it has ended their total size is
    # known, and the bar fills by bytes hashed with an estimate of the time left.
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
    )
    with Bar(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("walking", total=None)
        while worker.is_alive():
            worker.join(0.1)
            found = f"{progress.files_examined:,} files, {progress.binaries_found:,} executables"
            if progress.walk_finished:
                bar.update(
                    task,
                    description=f"{found}, hashing",
                    total=max(progress.bytes_found, 1),
                    completed=progress.bytes_hashed,
                )
            else:
                bar.update(task, description=f"{found} (walking)", completed=progress.bytes_hashed)
    if failure:
        raise failure[0]
    return outcome[0]
