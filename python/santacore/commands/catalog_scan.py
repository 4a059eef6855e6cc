"""`santacore catalog scan`: every artifact below the paths into the catalog, resumable; a live bar
on a terminal (rich, loaded only then), a summary line at the end."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from santacore.catalog.runner import Plan, ScanSummary, plan, scan_local
from santacore.catalog.store import CatalogError, CatalogStore
from santacore.commands import EXIT_ERROR, EXIT_OK

TYPE_CHECKING = False
if TYPE_CHECKING:
    from santacore.catalog.model import ArtifactResult

CLUSTER_EXTRA = "pip install 'santacore[cluster]'"


def run(args: argparse.Namespace) -> int:
    try:
        store = CatalogStore.open(args.db)
    except (CatalogError, OSError, sqlite3.Error) as e:
        print(f"santacore catalog scan: {args.db}: {e}", file=sys.stderr)
        return EXIT_ERROR
    with store:
        work = plan(args.paths, store, retry_failed=args.retry_failed)
        for path, why in work.summary.missing:
            print(f"santacore catalog scan: {path}: {why}", file=sys.stderr)
        if args.scheduler:
            summary = _on_cluster(work, store, args.scheduler)
            if summary is None:
                return EXIT_ERROR
        else:
            summary = _with_bar(work, store, args.threads)
    print(summary.line())
    return EXIT_ERROR if summary.missing else EXIT_OK


def _on_cluster(work: Plan, store: CatalogStore, address: str) -> ScanSummary | None:
    try:
        from santacore.catalog.cluster import scan_on_cluster  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        print(
            f"santacore catalog scan: --scheduler needs Dask's distributed client ({CLUSTER_EXTRA}): {e}",
            file=sys.stderr,
        )
        return None
    from santacore.errors import SantacoreError

    try:
        summary: ScanSummary = scan_on_cluster(work, store, address)
    except SantacoreError as e:  # ClusterError: distributed missing, scheduler unreachable, no workers
        print(f"santacore catalog scan: {e}", file=sys.stderr)
        return None
    return summary


def _with_bar(work: Plan, store: CatalogStore, threads: int | None) -> ScanSummary:
    """A bar of the bytes of artifacts done (directories count as 0), with the artifacts done out
    of all and the one started last."""
    if not sys.stderr.isatty() or not work.todo:
        return scan_local(work, store, workers=threads)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    total_bytes = sum(os.path.getsize(p) for p in work.todo if os.path.isfile(p))
    count = len(work.todo)
    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(f"0/{count} artifacts", total=total_bytes or None, current="")
        done = [0]

        def step(path: str, result: ArtifactResult | None) -> None:
            if result is None:
                bar.update(task, current=os.path.basename(path)[-50:])
                return
            done[0] += 1
            grew = result.size if os.path.isfile(path) else 0
            bar.update(task, advance=grew, description=f"{done[0]}/{count} artifacts")

        return scan_local(work, store, workers=threads, progress=step)
