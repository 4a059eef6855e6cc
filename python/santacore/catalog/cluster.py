"""The catalog scan on a Dask distributed cluster (`santacore catalog scan --scheduler tcp://HOST:PORT`).

Artifacts are the tasks: this process finds them (the same expansion as the local scan), leaves out
the ones the catalog already holds, and submits `scan_artifact(path)` for each; the workers read the
paths themselves (shared storage: every worker must see the artifacts at the same paths) and send
back `ArtifactResult`s, which this process — the catalog's one writer — records as they complete.

A worker that dies mid-task has its tasks rescheduled by the scheduler onto the others; an artifact
that kills every worker it lands on (Dask gives up after `distributed.scheduler.allowed-failures`)
is recorded as failed with that reason. Recording is idempotent (one transaction per artifact, keyed
by SHA-256 and size), so an artifact scanned twice is never recorded twice, and a scan interrupted
here resumes where it stopped.

`distributed` is an optional extra (`pip install 'santacore[cluster]'`), imported only here.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from santacore.catalog.model import ArtifactResult
from santacore.catalog.runner import Plan, Progress, ScanSummary, plan
from santacore.catalog.scan import scan_artifact
from santacore.catalog.store import PathStamp, path_stamp
from santacore.errors import SantacoreError

if TYPE_CHECKING:
    from santacore.catalog.store import CatalogStore

CLUSTER_EXTRA = "pip install 'santacore[cluster]'"
# Tasks in flight per worker thread: enough to keep every worker busy between round trips, few
# enough that results (and futures) held here stay bounded whatever the catalog's size.
IN_FLIGHT_PER_THREAD = 4
CONNECT_TIMEOUT = "20s"


class ClusterError(SantacoreError):
    """The cluster cannot be used: `distributed` missing, the scheduler unreachable or without workers."""


@dataclass
class ClusterScan(ScanSummary):
    """A `ScanSummary`, and what the cluster did."""

    submitted: int = 0
    workers: int = 0


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"--scheduler needs Dask's distributed package: {CLUSTER_EXTRA}") from None
    return distributed


def scan_on_cluster(
    paths: Iterable[str] | Plan,
    store: CatalogStore,
    address: str,
    *,
    progress: Progress | None = None,
    threads: int = 1,
    retry_failed: bool = False,
    connect_timeout: str = CONNECT_TIMEOUT,
) -> ClusterScan:
    """Scan every artifact under `paths` (or the artifacts a `runner.plan` left to do) on the Dask
    cluster at `address` into `store`.

    `threads` is the engine's threads inside one task (default 1: Dask already runs one task per
    worker thread). `progress(path, None)` is called when an artifact is submitted and
    `progress(path, result)` when it is recorded, as for the local scan."""
    distributed = _distributed()
    started = time.perf_counter()
    work = paths if isinstance(paths, Plan) else plan(list(paths), store, retry_failed=retry_failed)
    outcome = ClusterScan(skipped=work.summary.skipped, missing=list(work.summary.missing))
    try:
        client = distributed.Client(address, timeout=connect_timeout, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        workers = client.scheduler_info().get("workers", {})
        outcome.workers = len(workers)
        if work.todo and not workers:
            raise ClusterError(f"the Dask scheduler at {address} has no workers")
        window = max(1, IN_FLIGHT_PER_THREAD * sum(int(w.get("nthreads", 1)) for w in workers.values()))
        _run(distributed, client, work.todo, store, window, threads, outcome, progress)
    finally:
        client.close()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _run(
    distributed: Any,
    client: Any,
    todo: list[str],
    store: CatalogStore,
    window: int,
    threads: int,
    outcome: ClusterScan,
    progress: Progress | None,
) -> None:
    pending = iter(todo)
    in_flight: dict[str, tuple[str, PathStamp | None]] = {}  # task key -> (path, stamp before reading)
    finished = distributed.as_completed(loop=client.loop)
    notify = progress or (lambda path, result: None)

    def submit_one() -> bool:
        path = next(pending, None)
        if path is None:
            return False
        notify(path, None)
        stamp = _stamp(path)  # before a worker reads it: a change while it is read shows next time
        # pure=False: a path's content may change between runs, so the key must not be cached.
        future = client.submit(scan_artifact, path, threads=threads, pure=False)
        in_flight[future.key] = (path, stamp)
        finished.add(future)
        outcome.submitted += 1
        return True

    for _ in range(window):
        if not submit_one():
            break
    for future in finished:
        path, stamp = in_flight.pop(future.key)
        result = _result_of(future, path)
        future.release()
        store.record(result, stamp=stamp)
        outcome.add(result)
        notify(path, result)
        submit_one()


def _stamp(path: str) -> PathStamp | None:
    try:
        return path_stamp(path)
    except OSError:
        return None


def _result_of(future: Any, path: str) -> ArtifactResult:
    """The task's ArtifactResult; a task the cluster gave up on (its workers died, or it raised)
    becomes a failed result for the artifact, identified by its content when it is a file."""
    try:
        result = future.result()
    except Exception as e:  # KilledWorker, or an error scan_artifact should have caught
        reason = f"the Dask cluster could not scan it: {type(e).__name__}: {e}"
        return ArtifactResult(path, *_identity(path), kind="unknown", error=reason)
    if not isinstance(result, ArtifactResult):
        return ArtifactResult(path, *_identity(path), kind="unknown", error="a worker returned no scan result")
    return result


def _identity(path: str) -> tuple[str, int]:
    """A file's SHA-256 and size (a folder's identity is its manifest, which only a scan builds)."""
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return "", 0
            return hashlib.file_digest(f, "sha256").hexdigest(), os.fstat(f.fileno()).st_size
    except OSError:
        return "", 0
