"""Load test of one full sync: many queued events, one SyncServer on loopback, one `full_sync` in a fresh process.

    python -m benches.sync_load [--events 100000 [10000 ...]] [--batch-sizes 500 50] [--trace]

For each event count and each server batch size:

1. queue that many synthetic events in a fresh events.db (cheap `StoredEvent`s whose digests are
   SHA-256/SHA-1 of a counter, stored with `santacore.santad.execution.store_events` in chunks);
2. start a `SyncServer` (google profile, no rules) answering preflight with that `batch_size`;
3. run one full sync in a fresh child interpreter (``python -m benches.sync_load --child CONFIG``), under
   ``/usr/bin/time`` where present so the child's peak RSS is its own (``os.wait4`` would report the
   high-water mark this large parent leaves behind at fork/exec); the child also reports its own VmRSS
   before the sync and VmHWM after it;
4. check that the sync succeeded, the server received every event exactly once in ``ceil(n / batch)``
   eventupload requests, and events.db is empty;
5. print the figures: sync wall time (and the client's CPU time in it: the rest is mostly the server, which
   runs in this process), events/s, peak RSS, RSS growth during the sync, batches.

Comparing two event counts (e.g. ``--events 10000 100000``) shows whether memory grows with the queue.
``--trace`` runs the child under tracemalloc and prints the lines holding the most memory at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from santacore.config.settings import load_config
from santacore.santad.decisions import Decision
from santacore.santad.event_store import EventStore
from santacore.santad.events import Certificate, StoredEvent
from santacore.santad.execution import store_events
from santacore.sync.context import open_sync_context
from santacore.sync.host import HostFacts
from santacore.sync.stages import SyncStatus, full_sync
from santacore.testing import SyncServer

REPO_ROOT = Path(__file__).resolve().parent.parent
GNU_TIME = "/usr/bin/time"
MACHINE = "5A1E0C3D-7B2F-4E6A-9C8D-0F1E2D3C4B5A"
CHUNK = 10_000  # events per store_events transaction
EPOCH = 1718035512.804221


# --------------------------------------------------------------------------------------------------
# Events


def synthetic_event(i: int) -> StoredEvent:
    """A realistic-looking blocked execution; digests from hashlib of the counter. `idx` is the counter + 1:
    random idxs (Santa's arc4random) collide about once in 100,000 events and `store_events` does not retry."""
    seed = str(i).encode()
    return StoredEvent(
        idx=i + 1,
        file_sha256=hashlib.sha256(seed).hexdigest(),
        file_path=f"/Applications/Tool{i % 997}.app/Contents/MacOS/tool-{i}",
        decision=Decision.BLOCK_UNKNOWN if i % 3 else Decision.ALLOW_UNKNOWN,
        occurrence_date=EPOCH + i * 0.001,
        executing_user="bob",
        logged_in_users=("bob",),
        current_sessions=("bob@console", "bob@ttys001"),
        file_bundle_id=f"com.example.tool{i % 997}",
        file_bundle_path=f"/Applications/Tool{i % 997}.app",
        file_bundle_name=f"Tool{i % 997}",
        file_bundle_version="412",
        file_bundle_version_string="4.1.2",
        pid=10_000 + i % 50_000,
        ppid=1,
        parent_name="launchd",
        team_id="ABCDE12345",
        signing_id=f"ABCDE12345:com.example.tool{i % 997}",
        cdhash=hashlib.sha1(seed).hexdigest(),
        signing_chain=(
            Certificate(
                sha256=hashlib.sha256(b"leaf" + seed).hexdigest(),
                cn="Developer ID Application: Example Inc (ABCDE12345)",
                org="Example Inc",
                ou="ABCDE12345",
                valid_from=1647447514,
                valid_until=1805213914,
            ),
        ),
    )


def queue_events(events_db: Path, count: int) -> float:
    """Store `count` events in chunks; returns the seconds it took."""
    started = time.perf_counter()
    with EventStore(events_db) as store:
        for first in range(0, count, CHUNK):
            store_events(store, (synthetic_event(i) for i in range(first, min(count, first + CHUNK))))
        assert store.count() == count
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------------
# The child: one full sync, figures as one JSON line


def _proc_status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def child(config_path: str, trace: bool) -> dict[str, Any]:
    config = load_config(config_path, environ={})
    facts = HostFacts(hostname="load", os_version="14.6.1", os_build="23G93", model_identifier="Mac14,2")
    with open_sync_context(config, machine_id=MACHINE, facts=facts) as ctx:
        rss_before_kb = _proc_status_kb("VmRSS")
        if trace:
            tracemalloc.start(8)
        started, cpu_started = time.perf_counter(), time.process_time()
        result = full_sync(ctx, state_path=os.fspath(config.sync_state_path))
        wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        top: list[str] = []
        if trace:
            snapshot = tracemalloc.take_snapshot()
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            top = [f"traced now {current / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB"]
            top += [str(stat) for stat in snapshot.statistics("lineno")[:12]]
    return {
        "status": result.status.name,
        "error": result.error,
        "events_uploaded": result.events_uploaded,
        "events_left": result.events_left,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "rss_before_mb": rss_before_kb / 1024,
        "hwm_mb": _proc_status_kb("VmHWM") / 1024,
        "trace": top,
    }


# --------------------------------------------------------------------------------------------------
# The parent


@dataclass
class Figures:
    events: int
    batch_size: int
    queue_s: float
    sync_s: float
    client_cpu_s: float
    process_s: float
    peak_rss_mb: float
    rss_before_mb: float
    hwm_mb: float
    batches: int
    trace: list[str]

    @property
    def events_per_s(self) -> float:
        return self.events / self.sync_s

    def line(self) -> str:
        return (
            f"{self.events:>8,} events  batch {self.batch_size:>4}  {self.batches:>5} batches  "
            f"sync {self.sync_s:6.2f} s (client CPU {self.client_cpu_s:5.2f} s)  {self.events_per_s:7,.0f} events/s  "
            f"peak RSS {self.peak_rss_mb:6.1f} MB  (before sync {self.rss_before_mb:5.1f} MB, "
            f"growth {self.hwm_mb - self.rss_before_mb:+6.1f} MB)  queueing {self.queue_s:5.1f} s"
        )


def run_child(config_path: Path, trace: bool) -> tuple[dict[str, Any], float, float]:
    """(child's JSON, process wall seconds, peak RSS MB) of one `--child` run."""
    argv = [sys.executable, "-m", "benches.sync_load", "--child", os.fspath(config_path)]
    if trace:
        argv.append("--trace")
    use_time = os.access(GNU_TIME, os.X_OK)
    with tempfile.NamedTemporaryFile(prefix="sync-load-rss-") as rss_file:
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file.name, *argv] if use_time else argv
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, check=False)
        process_s = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"child exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
        data: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        peak_kb = float(Path(rss_file.name).read_text(encoding="ascii").split()[-1]) if use_time else 0.0
    return data, process_s, peak_kb / 1024 if use_time else float(data["hwm_mb"])


def measure(count: int, batch_size: int, workdir: Path, trace: bool) -> Figures:
    workdir.mkdir(parents=True)
    state = workdir / "state"
    with SyncServer(batch_size=batch_size) as server:
        config_path = workdir / "santacore.toml"
        config_path.write_text(
            f'SyncBaseURL = "{server.base_url}"\nMachineID = "{MACHINE}"\nStateDirectory = "{state}"\n',
            encoding="utf-8",
        )
        config = load_config(config_path, environ={})
        queue_s = queue_events(config.events_db, count)
        data, process_s, peak_mb = run_child(config_path, trace)

        if data["status"] != SyncStatus.SUCCESS.name:
            raise AssertionError(f"sync failed: {data['status']} {data['error']}")
        received = server.events.get(MACHINE, [])
        assert len(received) == count, f"the server received {len(received)} of {count} events"
        assert len({e["file_sha256"] for e in received}) == count, "duplicates or missing events on the server"
        batches = len(server.requests_for("eventupload"))
        assert batches == math.ceil(count / batch_size), batches
        assert data["events_uploaded"] == count and data["events_left"] == 0
        with EventStore(config.events_db) as store:
            assert store.count() == 0, "events.db is not empty after the sync"
        assert server.errors == []
    return Figures(
        events=count,
        batch_size=batch_size,
        queue_s=queue_s,
        sync_s=float(data["wall_s"]),
        client_cpu_s=float(data["cpu_s"]),
        process_s=process_s,
        peak_rss_mb=peak_mb,
        rss_before_mb=float(data["rss_before_mb"]),
        hwm_mb=float(data["hwm_mb"]),
        batches=batches,
        trace=list(data["trace"]),
    )


def runs(counts: Sequence[int], batch_sizes: Sequence[int], trace: bool) -> Iterator[Figures]:
    with tempfile.TemporaryDirectory(prefix="santacore-sync-load-") as tmp:
        for count in counts:
            for batch_size in batch_sizes:
                yield measure(count, batch_size, Path(tmp) / f"{count}-{batch_size}", trace)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benches.sync_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[100_000], help="event counts (default 100000)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[500, 50], help="server batch sizes")
    parser.add_argument("--trace", action="store_true", help="tracemalloc in the child; print the top lines")
    parser.add_argument("--child", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.trace)))
        return 0
    print(f"one full sync in a fresh process; peak RSS from {GNU_TIME if os.access(GNU_TIME, os.X_OK) else 'VmHWM'}")
    results: list[Figures] = []
    for figures in runs(args.events, args.batch_sizes, args.trace):
        results.append(figures)
        print(figures.line(), flush=True)
        for line in figures.trace:
            print("    " + line)
    if len({f.events for f in results}) > 1:
        print("RSS growth with the queue (same batch size):")
        for batch_size in args.batch_sizes:
            same = sorted((f for f in results if f.batch_size == batch_size), key=lambda f: f.events)
            small, big = same[0], same[-1]
            ratio = (big.hwm_mb - big.rss_before_mb) / max(0.1, small.hwm_mb - small.rss_before_mb)
            print(
                f"  batch {batch_size}: {small.events:,} → {big.events:,} events: peak {small.peak_rss_mb:.1f} → "
                f"{big.peak_rss_mb:.1f} MB, growth during the sync ×{ratio:.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
