"""A scan of many artifacts into one catalog, resumable: `plan` decides what still needs scanning
(unchanged paths and content already done are skipped), `scan_local` scans the rest on this
machine — a process per core, each artifact written in its own transaction as soon as it is done
— and `ScanSummary` says what happened. `santacore.catalog.cluster.scan_on_cluster` runs the same
plan on a Dask cluster.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from santacore.catalog.discover import artifacts
from santacore.catalog.model import ArtifactResult
from santacore.catalog.scan import scan_artifact
from santacore.catalog.store import CatalogStore, PathStamp, path_stamp


@dataclass
class ScanSummary:
    """What one `catalog scan` did."""

    scanned: int = 0
    skipped: int = 0
    failed: int = 0
    bundles: int = 0
    binaries: int = 0
    bytes: int = 0
    seconds: float = 0.0
    missing: list[tuple[str, str]] = field(default_factory=list)
    """(PATH, why) for each command-line path that could not be used."""

    def add(self, result: ArtifactResult) -> None:
        self.scanned += 1
        self.failed += result.error is not None
        self.bundles += len(result.bundles)
        self.binaries += len(result.binaries)
        self.bytes += result.size

    def line(self) -> str:
        return (
            f"{self.scanned} artifacts scanned, {self.skipped} skipped (already in the catalog), "
            f"{self.failed} failed; {self.bundles} bundles, {self.binaries} binaries, "
            f"{self.bytes} bytes in {self.seconds:.1f} s"
        )


@dataclass
class Plan:
    todo: list[str]
    summary: ScanSummary


def _file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def plan(paths: list[str], store: CatalogStore, *, retry_failed: bool = False) -> Plan:
    """The artifacts below `paths` that need scanning. A path recorded with its current size and
    mtime is skipped without reading it; a file whose size matches an artifact already done is
    hashed and, if its content is that artifact, only linked (a copy, a rename, a touched file)."""
    summary = ScanSummary()
    todo: list[str] = []
    for given in paths:
        try:
            found = list(artifacts([given]))
        except OSError as e:
            summary.missing.append((given, e.strerror or str(e)))
            continue
        for path in found:
            if not store.needs_scan(path, retry_failed=retry_failed):
                summary.skipped += 1
                continue
            if os.path.isfile(path):
                try:
                    stamp = path_stamp(path)
                except OSError:
                    todo.append(path)
                    continue
                if store.has_size(stamp.size):
                    digest = _file_sha256(path)
                    if (
                        digest
                        and store.is_done(digest, stamp.size)
                        and store.link_path(path, digest, stamp.size, stamp)
                    ):
                        summary.skipped += 1
                        continue
            todo.append(path)
    return Plan(todo, summary)


Progress = Callable[[str, ArtifactResult | None], None]
"""Called with (path, None) when an artifact starts and (path, result) when it is recorded."""


def scan_local(
    work: Plan, store: CatalogStore, *, workers: int | None = None, progress: Progress | None = None
) -> ScanSummary:
    """Scan `work.todo` with `workers` processes (default: one per core; 1 scans in this process)
    and record each result as it arrives."""
    started = time.perf_counter()
    summary = work.summary
    workers = workers or os.cpu_count() or 1
    notify = progress or (lambda path, result: None)
    if workers == 1 or len(work.todo) <= 1:
        for path in work.todo:
            notify(path, None)
            stamp = _stamp(path)  # before reading: a change while it is read shows next time
            result = scan_artifact(path, threads=workers)
            store.record(result, stamp=stamp)
            summary.add(result)
            notify(path, result)
    else:
        _scan_pool(work.todo, store, workers, summary, notify)
    summary.seconds = time.perf_counter() - started
    return summary


def _stamp(path: str) -> PathStamp | None:
    try:
        return path_stamp(path)
    except OSError:
        return None


def _scan_pool(todo: list[str], store: CatalogStore, workers: int, summary: ScanSummary, notify: Progress) -> None:
    """Keep at most 2×workers artifacts in flight. A worker that dies (a crash in a parser, the
    OOM killer) breaks the pool: the artifacts it held are retried one at a time, alone, and the
    one that kills its process again is recorded as failed."""
    pending = list(reversed(todo))
    retry: list[str] = []
    pool = ProcessPoolExecutor(max_workers=workers)
    in_flight: dict[Future[ArtifactResult], tuple[str, PathStamp | None]] = {}
    try:
        while pending or in_flight:
            while pending and len(in_flight) < 2 * workers:
                path = pending.pop()
                notify(path, None)
                in_flight[pool.submit(scan_artifact, path, threads=1)] = (path, _stamp(path))
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                path, stamp = in_flight.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    retry.append(path)
                    continue
                store.record(result, stamp=stamp)
                summary.add(result)
                notify(path, result)
            if retry:
                retry += [p for p, _ in in_flight.values()]
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                for path in retry:
                    _scan_alone(path, store, summary, notify)
                retry.clear()
                pool = ProcessPoolExecutor(max_workers=workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _scan_alone(path: str, store: CatalogStore, summary: ScanSummary, notify: Progress) -> None:
    stamp = _stamp(path)
    with ProcessPoolExecutor(max_workers=1) as alone:
        try:
            result = alone.submit(scan_artifact, path, threads=1).result()
        except BrokenProcessPool:
            sha256 = _file_sha256(path) or ""
            size = os.path.getsize(path) if os.path.isfile(path) else 0
            result = ArtifactResult(path, sha256, size, "unknown", error="the scanning process died reading it")
    store.record(result, stamp=stamp)
    summary.add(result)
    notify(path, result)
