"""`events.db` (spec §5.1, §4.5–4.7): lifecycle, durability under kill -9 and power-cut images, concurrent
writers, corrupt and foreign files, bounded memory.

The durability tests run real child processes (`_CHILD` below). They print each acknowledgement only after
`EventStore.add`/`delete` returned, with one `write()` per line, so after a SIGKILL the acknowledgement file holds
exactly what the child had been told was durable. Each stored event's data is a function of its idx, batch and
batch size, so the parent can check every surviving row byte for byte and every batch for all-or-nothing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from santacore.errors import SantacoreError
from santacore.santad.event_store import (
    APPLICATION_ID,
    EventRow,
    EventStore,
    IdxCollisionError,
    StoreBusyError,
    StoreError,
)
from santacore.santad.statedir import BENIGN_DIRECTORY_FSYNC_ERRORS, fsync_directory

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL/SIGSTOP")

# The child imports only what the store needs (`import santacore` is lazy), so dozens of kill cycles fit in
# a few seconds.
_CHILD = r"""
import hashlib, json, os, random, sys, time
from santacore.santad.event_store import EventRow, EventStore

def payload(idx, batch, n):
    h = hashlib.sha256(str(idx).encode()).hexdigest()
    pad = h * (70 if idx % 101 == 0 else 1 + idx % 7)
    return json.dumps({"batch": batch, "idx": idx, "n": n, "pad": pad}, sort_keys=True).encode()

def bundle(batch):
    return hashlib.sha256(batch.encode()).hexdigest() if sum(batch.encode()) % 5 == 0 else None

mode, db, ack, seed, prefix, limit, flags = sys.argv[2:9]
rng = random.Random(int(seed)); prefix = int(prefix); limit = int(limit)
out = os.open(ack, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
store = EventStore(db)
if "nockpt" in flags:
    store._db.execute("PRAGMA wal_autocheckpoint = 0")
os.write(out, b"R\n")
if mode == "add":
    used, done, b = set(), 0, 0
    while limit < 0 or done < limit:
        n = rng.randint(1, 40) if limit < 0 else min(rng.randint(1, 30), limit - done)
        batch = f"{prefix}-{b}"; b += 1
        idxs = []
        while len(idxs) < n:
            i = (prefix << 24) | rng.getrandbits(24)
            if i not in used:
                used.add(i); idxs.append(i)
        rows = [EventRow(i, hashlib.sha256(str(i).encode()).hexdigest(), payload(i, batch, n), bundle(batch))
                for i in idxs]
        os.write(out, f"B {batch} 0 {','.join(map(str, idxs))}\n".encode())
        store.add(rows)
        wal = os.path.getsize(db + "-wal") if "walsize" in flags else 0
        os.write(out, f"A {batch} {wal} {','.join(map(str, idxs))}\n".encode())
        done += n
elif mode == "delete":
    idxs = [r.idx for batch in store.pending(1000) for r in batch]
    rng.shuffle(idxs)
    os.write(out, b"G\n")
    while idxs:
        n = rng.randint(1, 25)
        chunk, idxs = idxs[:n], idxs[n:]
        os.write(out, f"T {','.join(map(str, chunk))}\n".encode())
        store.delete(chunk)
        os.write(out, b"D\n")
elif mode in ("stream", "load-all"):  # peak RSS (Linux VmHWM, reset by exec) of reading every row
    def hwm():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) << 10 for line in f if line.startswith("VmHWM:"))
    before = hwm()
    size = 500 if mode == "stream" else 1 << 30
    rows = sum(len(batch) for batch in store.pending(size))
    os.write(out, f"M {rows} {before} {hwm()}\n".encode())
elif mode == "read":
    reads = 0
    while not os.path.exists(ack + ".stop"):
        n = store.count()
        seen = sum(len(b) for b in store.pending(rng.choice([1, 50, 333])))
        assert seen >= n, (seen, n)  # rows are only added while this runs
        reads += 1
        if reads == 1:
            os.write(out, b"P\n")
    os.write(out, f"reads {reads}\n".encode())
store.close()
"""


def payload(idx: int, batch: str, n: int) -> bytes:
    h = hashlib.sha256(str(idx).encode()).hexdigest()
    pad = h * (70 if idx % 101 == 0 else 1 + idx % 7)
    return json.dumps({"batch": batch, "idx": idx, "n": n, "pad": pad}, sort_keys=True).encode()


def bundle(batch: str) -> str | None:
    return hashlib.sha256(batch.encode()).hexdigest() if sum(batch.encode()) % 5 == 0 else None


def make_row(idx: int, batch: str, n: int) -> EventRow:
    return EventRow(idx, hashlib.sha256(str(idx).encode()).hexdigest(), payload(idx, batch, n), bundle(batch))


def spawn(mode: str, db: Path, ack: Path, seed: int, prefix: int = 0, limit: int = -1, flags: str = "-") -> Child:
    args = [sys.executable, "-c", _CHILD, "-", mode, str(db), str(ack), str(seed), str(prefix), str(limit), flags]
    with open(f"{ack}.err", "wb") as err:  # a file, not a pipe: a killed child leaves nothing to drain
        return Child(subprocess.Popen(args, stderr=err), ack)


class Child:
    def __init__(self, proc: subprocess.Popen[bytes], ack: Path) -> None:
        self.proc, self.ack = proc, ack

    def lines(self) -> list[str]:
        """Complete acknowledgement lines written so far (a torn last line cannot occur, but is ignored)."""
        text = self.ack.read_text() if self.ack.exists() else ""
        return text.split("\n")[:-1]

    def wait_ready(self, marker: str = "R") -> None:
        self.wait_for(lambda lines: marker in lines, f"the line {marker!r}")

    def wait_for(self, condition: Callable[[list[str]], bool], what: str) -> list[str]:
        """Poll the acknowledgement lines until `condition` holds; returns them. The deadline only catches a
        hung child: however slow the machine, the test waits for what the child says, never for a time."""
        deadline = time.monotonic() + 120
        while not condition(lines := self.lines()):
            if self.proc.poll() is not None:
                raise AssertionError(f"child exited before {what}: {self.stderr()}")
            assert time.monotonic() < deadline, f"child never wrote {what}"
            time.sleep(0.002)
        return lines

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stderr(self) -> str:
        return Path(f"{self.ack}.err").read_text(errors="replace")


def acked_batches(lines: list[str]) -> dict[str, list[int]]:
    return {p[1]: [int(i) for i in p[3].split(",")] for p in (line.split(" ") for line in lines) if p[0] == "A"}


def rows_of(store: EventStore) -> dict[int, EventRow]:
    return {r.idx: r for batch in store.pending(5000) for r in batch}


class Checker:
    """Checks rows against what the children wrote; a row verified once is remembered, not re-parsed."""

    def __init__(self) -> None:
        self.known: dict[int, tuple[EventRow, str, int]] = {}

    def __call__(self, rows: dict[int, EventRow], acked: dict[str, list[int]]) -> int:
        """Every row intact, every batch all-or-nothing, every acknowledged idx present; returns the batch count."""
        batches: dict[str, list[int]] = defaultdict(list)
        sizes: dict[str, int] = {}
        for idx, row in rows.items():
            known = self.known.get(idx)
            if known is None:
                record = json.loads(row.data)
                known = self.known[idx] = (make_row(idx, record["batch"], record["n"]), record["batch"], record["n"])
            assert row == known[0], f"row {idx} damaged"
            batches[known[1]].append(idx)
            sizes[known[1]] = known[2]
        for batch, idxs in batches.items():
            assert len(idxs) == sizes[batch], f"partial batch {batch}: {len(idxs)} of {sizes[batch]} rows"
        for batch, idxs in acked.items():
            assert all(i in rows for i in idxs), f"acknowledged batch {batch} lost"
        return len(batches)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- lifecycle ------------------------------------------------------------------------------------------------


def test_create_layout_and_permissions(tmp_path: Path) -> None:
    db = tmp_path / "var" / "santa" / "events.db"
    with EventStore(db) as store:
        store.add([make_row(1, "b", 1)])
        assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(db.parent).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(db.parent.parent).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(f"{db}-wal").st_mode) == 0o600  # SQLite copies the database's mode
        pragmas = {
            p: store._db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("synchronous", "fullfsync", "busy_timeout")
        }
        assert pragmas == {"synchronous": 2, "fullfsync": 1, "busy_timeout": 30_000}  # 2 = FULL
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone() == (3,)
    assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert [r[1] for r in conn.execute("PRAGMA table_info(events)")] == ["idx", "filesha256", "eventdata", "bundlehash"]
    assert conn.execute("SELECT value FROM santacore_meta WHERE key = 'schema'").fetchone() == ("1",)
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT * FROM events WHERE bundlehash = 'x'").fetchall()
    assert "events_bundlehash" in plan[0][3]
    conn.close()


def test_lifecycle_batches_delete_and_bundles(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.db")
    rng = random.Random(7)
    idxs = rng.sample(range(2**32), 333)
    assert store.add([make_row(i, f"b{i % 9}", 1) for i in idxs]) == 333
    assert store.count() == 333
    for size in (1, 50, 7, 333, 1000):
        batches = list(store.pending(size))
        assert all(len(b) == size for b in batches[:-1]) and 0 < len(batches[-1]) <= size
        assert [r.idx for b in batches for r in b] == sorted(idxs)  # idx order, each row once
    # A sync: upload batches of 50, the fourth fails and ends the stage; exactly the uploaded rows go.
    uploaded: list[int] = []
    for n, batch in enumerate(store.pending(50)):
        if n == 3:
            break
        assert store.delete(r.idx for r in batch) == len(batch)
        uploaded += [r.idx for r in batch]
    assert len(uploaded) == 150
    assert set(rows_of(store)) == set(idxs) - set(uploaded)
    assert store.delete(uploaded[:10]) == 0  # already gone: deleting again is harmless
    assert store.get(uploaded[0]) is None
    survivor = sorted(set(idxs) - set(uploaded))[0]
    assert store.get(survivor) == make_row(survivor, f"b{survivor % 9}", 1)
    # Bundle events by bundle hash (StoreEvents), and the §4.5 replace of the blocking event.
    bundle_hash = "ab" * 32
    bundle_rows = [EventRow(10 + i, f"{i:064x}", b"{}", bundle_hash) for i in range(5)]
    store.add(bundle_rows)
    assert store.for_bundle(bundle_hash) == bundle_rows
    assert store.for_bundle("cd" * 32) == []
    store.replace([EventRow(survivor, "f" * 64, b'{"bundled":1}', bundle_hash)])
    assert store.get(survivor) == EventRow(survivor, "f" * 64, b'{"bundled":1}', bundle_hash)
    assert len(store.for_bundle(bundle_hash)) == 6
    assert store.clear() == 333 - 150 + 5
    assert store.count() == 0
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count()


def test_add_is_all_or_nothing_and_idempotent(tmp_path: Path) -> None:
    with EventStore(tmp_path / "events.db") as store:
        first = [make_row(i, "one", 3) for i in (1, 2, 3)]
        assert store.add(first) == 3
        assert store.add(first) == 0  # a retried add after an unknown outcome is a no-op
        assert store.add([first[0], make_row(4, "two", 1)]) == 1
        with pytest.raises(IdxCollisionError) as e:
            store.add([make_row(5, "three", 2), EventRow(2, "other", b"different")])
        assert e.value.idxs == [2] and "nothing from this batch was stored" in str(e.value)
        assert store.get(5) is None and store.get(2) == first[1]
        with pytest.raises(IdxCollisionError):  # a duplicate idx inside one call, with different data
            store.add([make_row(6, "x", 1), EventRow(6, "y", b"")])
        assert store.count() == 4
        assert store.add([]) == 0 and store.delete([]) == 0


def test_quarantine_keeps_undecodable_rows(tmp_path: Path) -> None:
    with EventStore(tmp_path / "events.db") as store:
        store.add([make_row(i, "q", 1) for i in range(10)] + [EventRow(99, "x" * 64, b"\x80garbage")])
        assert store.quarantine([99, 12345, 99], reason="not JSON") == 1
        assert 99 not in rows_of(store) and store.count() == 10
        (q,) = store.quarantined()
        assert q.row == EventRow(99, "x" * 64, b"\x80garbage") and q.reason == "not JSON" and q.quarantined_at > 0
        with pytest.raises(IdxCollisionError):  # the idx stays taken while quarantined
            store.add([EventRow(99, "y", b"new")])
        assert store.restore([99, 99]) == 1 and store.get(99) is not None and store.quarantined() == []
        store.quarantine([99], reason="again")
        assert store.purge_quarantine() == 1 and store.quarantined() == []


def test_eventrow_validation() -> None:
    for bad in (-1, 2**32, True, 1.0):
        with pytest.raises(ValueError):
            EventRow(bad, "a", b"")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EventRow(1, "a", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EventRow(1, None, b"")  # type: ignore[arg-type]
    EventRow(2**32 - 1, "a", b"")


def test_threads_share_one_store(tmp_path: Path) -> None:
    with EventStore(tmp_path / "events.db") as store:

        def work(t: int) -> None:
            for k in range(50):
                store.add([make_row(t * 1000 + k, f"t{t}-{k}", 1)])
                store.count()

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert store.count() == 200


# -- durability -----------------------------------------------------------------------------------------------


def acks(lines: list[str]) -> int:
    return sum(1 for line in lines if line.startswith("A "))


def counted(prefix: str, n: int, *, then: str | None = None) -> Callable[[list[str]], bool]:
    """The condition "at least `n` lines start with `prefix`", and with `then` "the last line starts with
    `then`": the child has entered its next operation."""

    def condition(lines: list[str]) -> bool:
        return sum(1 for line in lines if line.startswith(prefix)) >= n and (then is None or lines[-1].startswith(then))

    return condition


@posix_only
def test_kill_9_during_add(tmp_path: Path) -> None:
    """Writer children SIGKILLed inside `add`; after each, every acknowledged event is intact and the batch that
    was inside `add` at the kill is entirely present or entirely absent.

    Each kill is aimed by the child's own lines, not by time: after a random number of acknowledged batches,
    the child is killed as soon as it says it has entered the next `add` ("B"), a random moment later. Kills
    continue (at least 30, at most 200) until 15 have landed inside `add` and over 1000 events were
    acknowledged, so a slow or loaded machine means more kills, never a failed threshold."""
    db, rng = tmp_path / "events.db", random.Random(1)
    EventStore(db).close()
    acked: dict[str, list[int]] = {}
    check, total_batches, in_add = Checker(), 0, {"committed": 0, "rolled back": 0}
    kills = n_acked = 0
    while kills < 30 or sum(in_add.values()) < 15 or n_acked <= 1000:
        assert kills < 200, f"after {kills} kills only {in_add} inside add(), {n_acked} events acknowledged"
        child = spawn("add", db, tmp_path / f"ack{kills}", seed=kills, prefix=kills + 1)
        child.wait_ready()
        target = rng.randint(1, 6)
        child.wait_for(counted("A ", target, then="B "), f"{target} acks")
        time.sleep(rng.uniform(0.0, 0.004))
        child.kill()
        kills += 1
        lines = child.lines()
        acked |= acked_batches(lines)
        n_acked = sum(map(len, acked.values()))
        with EventStore(db) as store:  # recovery, then quick_check
            rows = rows_of(store)
            total_batches = check(rows, acked)
        if lines[-1].startswith("B "):  # killed between starting add() and the acknowledgement
            idxs = [int(i) for i in lines[-1].split(" ")[3].split(",")]
            present = [i in rows for i in idxs]
            assert all(present) or not any(present), "a batch was half stored"
            in_add["committed" if all(present) else "rolled back"] += 1
    with EventStore(db) as store:
        assert store.integrity_check() == ["ok"]
    print(
        f"\nkill -9 during add: {kills} kills, {sum(in_add.values())} inside add() (batch then found whole"
        f" {in_add['committed']}, absent {in_add['rolled back']}), {n_acked} events acknowledged, {len(rows)} found,"
        f" {total_batches} batches intact"
    )
    assert len(rows) >= n_acked


@posix_only
def test_kill_9_during_delete(tmp_path: Path) -> None:
    """Children delete random chunks and are SIGKILLed; each chunk is deleted entirely or not at all.

    A child is killed after a random number of acknowledged deletes, once it says it has entered the next
    `delete` ("T"); kills continue (at least 10, at most 60) until 3 have landed inside `delete`."""
    db, rng = tmp_path / "events.db", random.Random(2)
    with EventStore(db) as store:
        expected = {r.idx: r for b in range(1200) for r in [make_row(b * 100 + i, f"p{b}", 25) for i in range(25)]}
        store.add(expected.values())
        present = set(rows_of(store))
    kills = deleted_acked = in_flight = 0
    while kills < 10 or in_flight < 3:
        assert kills < 60, f"after {kills} kills only {in_flight} inside delete()"
        child = spawn("delete", db, tmp_path / f"ack{kills}", seed=kills)
        child.wait_ready("G")  # store open and its idxs read: deleting from now on
        target = rng.randint(1, 12)
        child.wait_for(counted("D", target, then="T "), f"{target} deletes")
        time.sleep(rng.uniform(0.0, 0.004))
        child.kill()
        kills += 1
        lines = child.lines()
        chunks = [{int(i) for i in line[2:].split(",")} for line in lines if line.startswith("T ")]
        done = sum(1 for line in lines if line == "D")
        with EventStore(db) as store:
            now = rows_of(store)
        for chunk in chunks[:done]:
            assert not chunk & now.keys(), "an acknowledged delete left rows"
            deleted_acked += len(chunk)
        untouched = present - set().union(*chunks) if chunks else present
        assert untouched <= now.keys(), "a row outside every delete disappeared"
        if len(chunks) > done:  # the chunk being deleted at the kill: all or nothing
            last = chunks[done]
            assert last <= now.keys() or not last & now.keys(), "a delete was half applied"
            in_flight += 1
        assert all(row == expected[i] for i, row in now.items()), "a row was damaged"
        present = set(now)
    with EventStore(db) as store:
        assert store.integrity_check() == ["ok"]
    print(
        f"\nkill -9 during delete: {kills} kills, {in_flight} inside delete(), {deleted_acked} deletions"
        f" acknowledged, {len(present)} of 30000 rows left intact"
    )
    assert deleted_acked > 0 and present


def _snapshot(db: Path, dest: Path) -> None:
    # Main file first, then the WAL, as SQLite's recovery reads them; not the -shm, which after a power cut is
    # stale shared memory that SQLite discards and rebuilds from the WAL.
    dest.mkdir()
    shutil.copyfile(db, dest / "events.db")
    if os.path.exists(f"{db}-wal"):
        shutil.copyfile(f"{db}-wal", dest / "events.db-wal")


@posix_only
def test_power_cut_images(tmp_path: Path) -> None:
    """Copies of the files taken while a writer runs open consistent, with every event acknowledged before.

    Method: a file copy of a live database is only an instant's image if nothing writes during the copy, so
    the writer is frozen with SIGSTOP, the main file and then the WAL are copied, and it resumes with SIGCONT.
    The frozen files are exactly what the kernel had at an arbitrary instruction of the writer (mid-commit,
    mid-checkpoint, mid-WAL-reset). A power cut can further lose writes not yet fsynced. With synchronous=FULL
    that is only WAL bytes appended after the last completed commit, so a second writer runs with automatic
    checkpoints off, acknowledging each commit with the WAL size at that moment; its images are also opened
    with the WAL cut at a random point past the last acknowledged size, and with that tail overwritten by
    random bytes (torn sectors). Every image must pass integrity_check, show each batch all-or-nothing and
    contain every batch acknowledged before the freeze.

    Each freeze waits for the writer to acknowledge one to three more batches, then comes a random moment
    later. Freezes continue (at least 12 per writer, at most 80) until the second writer has been frozen at
    least once with WAL bytes past its last acknowledged commit, the case the cut and torn images need.
    """
    rng, kinds, acked_total = random.Random(3), Counter[str](), 0
    for flags in ("-", "nockpt,walsize"):
        check = Checker()
        work = tmp_path / flags.replace(",", "_")
        work.mkdir()
        db = work / "events.db"
        EventStore(db).close()
        child = spawn("add", db, work / "ack", seed=len(flags), prefix=1, flags=flags)
        child.wait_ready()
        images: list[tuple[Path, dict[str, list[int]], int]] = []
        past_commit = "nockpt" not in flags  # only that writer's images are cut
        while len(images) < 12 or not past_commit:
            assert len(images) < 80, "the writer was never frozen with uncommitted WAL bytes"
            target = acks(child.lines()) + rng.randint(1, 3)
            child.wait_for(counted("A ", target), f"{target} acks")
            time.sleep(rng.uniform(0.0, 0.02))
            image = work / f"img{len(images)}"
            os.kill(child.proc.pid, signal.SIGSTOP)
            try:
                lines = child.lines()
                _snapshot(db, image)
            finally:
                os.kill(child.proc.pid, signal.SIGCONT)
            acked_lines = [line for line in lines if line.startswith("A ")]
            synced = int(acked_lines[-1].split(" ")[2]) if acked_lines else 0
            wal = image / "events.db-wal"
            past_commit = past_commit or (wal.exists() and wal.stat().st_size > synced)
            images.append((image, acked_batches(lines), synced))
        child.kill()
        for image, acked, synced in images:
            variants = [image]
            wal = image / "events.db-wal"
            if "nockpt" in flags and wal.exists() and wal.stat().st_size > synced:
                size = wal.stat().st_size
                for torn in (False, True):
                    v = image.with_name(f"{image.name}-{'torn' if torn else 'cut'}")
                    shutil.copytree(image, v)
                    cut = rng.randint(synced, size)
                    with open(v / "events.db-wal", "r+b") as f:
                        f.truncate(cut)
                        if torn:
                            f.seek(cut)
                            f.write(rng.randbytes(size - cut))
                    variants.append(v)
            for v in variants:
                with EventStore(v / "events.db") as store:
                    assert store.integrity_check() == ["ok"], v
                    check(rows_of(store), acked)
                kinds[v.name.partition("-")[2] or ("frozen" if flags == "-" else "frozen, no checkpoints")] += 1
                acked_total += sum(map(len, acked.values()))
    print(f"\npower-cut images: {dict(kinds)}; {acked_total} acknowledged events found across them")
    assert sum(kinds.values()) >= 24 and kinds["cut"] > 0 and kinds["torn"] > 0


@posix_only
def test_concurrent_writers_and_reader(tmp_path: Path) -> None:
    """Three writers and a reader start together on a store none of them created; nothing fails or is lost."""
    db = tmp_path / "sub" / "events.db"
    (tmp_path / "sub").mkdir()
    writers = [spawn("add", db, tmp_path / f"w{k}", seed=k, prefix=k + 1, limit=3000) for k in range(3)]
    reader = spawn("read", db, tmp_path / "r", seed=9)
    for w in writers:
        assert w.proc.wait(timeout=300) == 0, w.stderr()
    reader.wait_ready("P")  # at least one full pass, however late the reader started
    (tmp_path / "r.stop").touch()
    assert reader.proc.wait(timeout=60) == 0, reader.stderr()
    reads = int(reader.lines()[-1].split(" ")[1])
    acked: dict[str, list[int]] = {}
    for w in writers:
        assert w.stderr() == ""
        acked |= acked_batches(w.lines())
    with EventStore(db) as store:
        rows = rows_of(store)
        assert store.integrity_check() == ["ok"]
        assert store.count() == len(rows) == 9000
    Checker()(rows, acked)
    assert sorted(rows) == sorted(i for idxs in acked.values() for i in idxs)  # each exactly once
    for batch in acked:
        if bundle(batch) is not None:
            assert {r.idx for r in store_for(db, bundle(batch))} == set(acked[batch])
    print(f"\nconcurrent: 3 writers x 3000 events in {len(acked)} transactions, reader passes {reads}")
    assert reads > 0


def store_for(db: Path, bundle_hash: str | None) -> list[EventRow]:
    assert bundle_hash is not None
    with EventStore(db, check=False) as store:
        return store.for_bundle(bundle_hash)


def test_busy_timeout_expires_as_store_busy_error(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    EventStore(db).close()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with EventStore(db, busy_timeout=0.2) as store:
            t = time.monotonic()
            with pytest.raises(StoreBusyError, match="busy timeout"):
                store.add([make_row(1, "b", 1)])
            assert time.monotonic() - t >= 0.15
            assert store.count() == 0  # reads are not blocked by a writer (WAL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


# -- corrupt and foreign files --------------------------------------------------------------------------------


Make = Callable[[Path], object]


def _sql(*statements: str, wal: bool = False) -> Make:
    def run(path: Path) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        for s in statements:
            conn.execute(s)
        conn.close()

    return run


def _store(rows: int = 2000) -> Make:
    def run(path: Path) -> None:
        with EventStore(path) as store:
            store.add([make_row(i, f"c{i // 10}", 10) for i in range(rows)])

    return run


def _corrupt_page(table: str) -> Make:
    """Overwrite the root b-tree page of `table` (sqlite_master's is page 1, past its file header). SQLite has no
    checksums, so only damage to the tree structure is detectable: garbage inside a payload passes quick_check."""

    def run(path: Path) -> None:
        conn = sqlite3.connect(path)
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone() or (1,)
        conn.close()
        with open(path, "r+b") as f:
            f.seek(4096 * (root - 1) + (100 if root == 1 else 0))
            f.write(random.Random(root).randbytes(3000))

    return run


def _steps(*steps: Make) -> Make:
    return lambda path: [step(path) for step in steps]


SANTA_V3 = "CREATE TABLE 'events' ('idx' INTEGER PRIMARY KEY, 'filesha256' TEXT NOT NULL, 'eventdata' BLOB)"
CASES: dict[str, tuple[Make, str]] = {
    "random bytes": (lambda p: p.write_bytes(random.Random(0).randbytes(8192)), "not an SQLite database"),
    "text file": (lambda p: p.write_text("idx,filesha256\n1,abc\n"), "not an SQLite database"),
    "truncated header": (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x10\x00"), "not an SQLite database"),
    "magic then garbage": (
        lambda p: p.write_bytes(b"SQLite format 3\x00" + random.Random(1).randbytes(8000)),
        "not an SQLite database",
    ),
    "store truncated": (_steps(_store(), lambda p: os.truncate(p, os.path.getsize(p) // 2)), "corrupt|malformed"),
    "events root page overwritten": (_steps(_store(), _corrupt_page("events")), "corrupt|malformed"),
    "schema page overwritten": (_steps(_store(), _corrupt_page("sqlite_master")), "corrupt|malformed"),
    "foreign schema": (_sql("CREATE TABLE foo (x)"), "not a santacore event store"),
    "foreign schema, WAL": (_sql("CREATE TABLE foo (x)", wal=True), "not a santacore event store"),
    "foreign application_id": (_sql("CREATE TABLE foo (x)", "PRAGMA application_id = 7"), "0x7"),
    "Santa v3 events.db": (
        _sql(SANTA_V3, "INSERT INTO events VALUES (1, 'abc', x'62706c6973743030')", "PRAGMA user_version = 3"),
        "a Santa events.db",
    ),
    "newer user_version": (_steps(_store(1), _sql("PRAGMA user_version = 4")), "newer events schema"),
    "newer santacore schema": (
        _steps(_store(1), _sql("UPDATE santacore_meta SET value = '2'")),
        "santacore schema '2' not supported",
    ),
    "extra trigger": (
        _steps(_store(1), _sql("CREATE TRIGGER t AFTER INSERT ON events BEGIN DELETE FROM events; END")),
        r"unexpected schema \(extra \['t'\]",
    ),
    "column renamed ([N] v5)": (
        _steps(_store(1), _sql("ALTER TABLE events RENAME COLUMN filesha256 TO uniqueid")),
        "table events has columns idx INTEGER PRIMARY KEY, uniqueid",
    ),
    "empty with stray WAL": (_steps(Path.touch, lambda p: Path(f"{p}-wal").write_bytes(b"x" * 100)), "non-empty"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_files_raise_and_stay_untouched(tmp_path: Path, case: str) -> None:
    path = tmp_path / "events.db"
    make, message = CASES[case]
    make(path)
    before = {p.name: sha(p) for p in tmp_path.iterdir()}
    for create in (True, False):
        with pytest.raises(StoreError, match=message) as e:
            EventStore(path, create=create)
        assert str(path) in str(e.value) and isinstance(e.value, SantacoreError)
    after = {p.name: sha(p) for p in tmp_path.iterdir()}
    # The files are byte-for-byte unchanged; SQLite may add empty -wal/-shm beside a WAL-mode database it read.
    assert {n: h for n, h in after.items() if n in before} == before
    assert all(os.path.getsize(tmp_path / n) in (0, 32768) for n in set(after) - set(before)), after


def test_hot_rollback_journal_is_not_rolled_back(tmp_path: Path) -> None:
    """A foreign rollback-journal database with an unfinished transaction: reading it read-write would roll the
    journal back into the file; santacore reads read-only and refuses it."""
    path = tmp_path / "events.db"
    script = (
        "import sqlite3, os, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('CREATE TABLE t (x)')\n"
        "c.execute('BEGIN'); c.executemany('INSERT INTO t VALUES (?)', [(os.urandom(400),)] * 500)\n"
        "c.execute('COMMIT'); c.execute('PRAGMA cache_size = 1')\n"
        "c.execute('BEGIN'); c.execute('UPDATE t SET x = randomblob(400)')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    journal = Path(f"{path}-journal")
    assert journal.stat().st_size > 0
    before = (sha(path), sha(journal))
    with pytest.raises(StoreError, match="unfinished transaction"):
        EventStore(path)
    assert (sha(path), sha(journal)) == before


def test_other_refusals(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "events.db"
    with pytest.raises(StoreError, match="no event store"):
        EventStore(missing, create=False)
    assert not missing.parent.exists()
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="not a regular file"):
        EventStore(tmp_path / "dir.db")
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StoreError, match="empty file"):
        EventStore(empty, create=False)
    assert empty.stat().st_size == 0
    EventStore(empty).close()  # an empty file holds nothing to lose: it is initialised
    assert EventStore(empty, create=False).count() == 0
    shared = tmp_path / "shared.db"
    EventStore(shared).close()
    os.chmod(shared, 0o666)
    with pytest.raises(StoreError, match="world-writable"):
        EventStore(shared)


# -- directory fsync ------------------------------------------------------------------------------------------


def _fail_directory_fsync(monkeypatch: pytest.MonkeyPatch, code: int) -> list[int]:
    """Make os.fsync of a directory fail with `code` (files still sync); returns the directories tried."""
    real, tried = os.fsync, list[int]()

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            tried.append(fd)
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return tried


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC, errno.EDQUOT])
def test_directory_fsync_failure_is_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """A failed directory fsync may have lost the new entry (the file would vanish at a power cut): reported."""
    tried = _fail_directory_fsync(monkeypatch, code)
    with pytest.raises(OSError) as e:
        fsync_directory(str(tmp_path))
    assert (e.value.errno, e.value.filename) == (code, str(tmp_path))
    assert "fsync of the directory failed" in str(e.value) and str(tmp_path) in str(e.value)
    with pytest.raises(OSError) as e:  # a new store: the directory it creates is fsynced in its parent first
        EventStore(tmp_path / "state" / "events.db")
    assert (e.value.errno, e.value.filename) == (code, str(tmp_path))
    assert len(tried) == 2


@pytest.mark.parametrize("code", sorted(BENIGN_DIRECTORY_FSYNC_ERRORS))
def test_directory_fsync_unsupported_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """A file system that cannot fsync a directory (EINVAL, EROFS, EBADF, ENOTSUP) offers nothing more to ask."""
    tried = _fail_directory_fsync(monkeypatch, code)
    fsync_directory(str(tmp_path))
    with EventStore(tmp_path / "state" / "events.db") as store:
        store.add([make_row(1, "b", 1)])
        assert store.count() == 1
    assert len(tried) >= 3  # the call above, the new directory's parent, the directory of the new file


def test_directory_that_cannot_be_opened_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OSError) as e:
        fsync_directory(str(tmp_path / "gone"))
    assert (e.value.errno, e.value.filename) == (errno.ENOENT, str(tmp_path / "gone"))
    (tmp_path / "file").touch()
    with pytest.raises(OSError) as e:
        fsync_directory(str(tmp_path / "file"))
    assert e.value.errno == errno.ENOTDIR


# -- memory ---------------------------------------------------------------------------------------------------


def test_pending_streams_100k_rows_in_bounded_memory(tmp_path: Path) -> None:
    """Python allocations while streaming stay under one batch's worth; on Linux a fresh child's peak RSS
    (VmHWM) barely moves while streaming, and moves by tens of MiB when the same rows are loaded at once."""
    db = tmp_path / "events.db"
    with EventStore(db) as store:
        payload_bytes = 0
        for start in range(0, 100_000, 10_000):
            rows = [make_row(i, f"m{i // 50}", 50) for i in range(start, start + 10_000)]
            payload_bytes += sum(len(r.data) + len(r.unique_id) for r in rows)
            store.add(rows)
        del rows
        tracemalloc.start()
        try:
            seen = sum(len(batch) for batch in store.pending(500))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert seen == 100_000
    assert peak < 4 << 20 and peak < payload_bytes // 10
    figures = f"Python peak {peak >> 10} KiB"
    if os.path.exists("/proc/self/status"):
        growth = {}
        for mode in ("stream", "load-all"):
            child = spawn(mode, db, tmp_path / mode, seed=0)
            assert child.proc.wait(timeout=60) == 0, child.stderr()
            _, rows_read, before, after = child.lines()[-1].split(" ")
            assert int(rows_read) == 100_000
            growth[mode] = int(after) - int(before)
        assert growth["stream"] < 16 << 20, growth
        assert growth["load-all"] > 32 << 20, growth  # the control: the measurement does see a loaded table
        figures += f", peak RSS +{growth['stream'] >> 20} MiB streaming vs +{growth['load-all'] >> 20} MiB loading all"
    print(f"\npending over 100k rows ({payload_bytes >> 20} MiB of data): {figures}")
