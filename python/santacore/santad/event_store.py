"""Santa's `events.db` (spec §5.1, §4.5–4.7): pending events as opaque rows, durable once `add` returns.

The store knows nothing of the event model: a row is an `idx`, a unique ID (the file SHA-256), the event's
encoded record and an optional bundle hash. The layout (Santa's v3 table plus santacore's additions) and the
checks an existing file must pass are `santacore.santad.event_store_schema`. (`eventdata` holds santacore's
JSON, not Santa's NSKeyedArchiver archive, so the file is not for santad, nor is santad's for santacore.)

Durability: WAL journal, `synchronous=FULL` (the WAL is fsynced before a commit returns) and `fullfsync` (macOS's
fsync does not flush the drive cache). Every write is one `BEGIN IMMEDIATE` transaction, so concurrent writers queue
on the busy timeout instead of failing, and a batch is stored entirely or not at all.

Deviations from Santa, all to avoid losing events:
* Santa deletes and recreates an `events.db` it cannot open or whose `user_version` is newer. santacore raises
  `StoreError` naming the file and the problem and leaves the file byte-for-byte unchanged. (For a WAL-mode foreign
  database SQLite may create empty `-wal`/`-shm` files beside it while it is read.)
* Santa commits the rows before the first failing insert of a call and silently drops the rest. `add` is all or
  nothing: an `idx` already holding a *different* event rejects the whole call (`IdxCollisionError`); re-adding an
  identical row is a no-op, so retrying an `add` whose outcome is unknown is safe.
* Santa deletes rows whose blob cannot be decoded; santacore moves them to `quarantine` (restorable).
* Santa `VACUUM`s after every delete; santacore lets SQLite reuse the freed pages (`vacuum()` exists).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from santacore.errors import StoreError
from santacore.santad.event_store_schema import APPLICATION_ID, SCHEMA, check_schema, inspect_file
from santacore.santad.statedir import create_private_file, fsync_directory

__all__ = [
    "APPLICATION_ID",
    "EventRow",
    "EventStore",
    "IdxCollisionError",
    "QuarantinedRow",
    "StoreBusyError",
    "StoreError",
]

DEFAULT_BUSY_TIMEOUT = 30.0

_T = TypeVar("_T")
_MAX_IDX = 0xFFFFFFFF
_COLUMNS = "idx, filesha256, eventdata, bundlehash"
# Per connection: commits fsync the WAL (F_FULLFSYNC on macOS); the WAL is trimmed to 64 MiB after checkpoints.
_PRAGMAS = (
    "synchronous = FULL",
    "fullfsync = ON",
    "checkpoint_fullfsync = ON",
    "journal_size_limit = 67108864",
    "trusted_schema = OFF",
    "cell_size_check = ON",
)


class StoreBusyError(StoreError):
    """Another process held the write lock longer than the busy timeout."""


class IdxCollisionError(StoreError):
    """`add` was given an `idx` that already holds a different event; nothing from that call was stored."""

    def __init__(self, path: str, idxs: Sequence[int]) -> None:
        shown = ", ".join(str(i) for i in idxs[:10]) + (", ..." if len(idxs) > 10 else "")
        super().__init__(f"{path}: idx already holds a different event: {shown}; nothing from this batch was stored")
        self.idxs = list(idxs)


@dataclass(frozen=True, slots=True)
class EventRow:
    """One stored event. `data` is the encoded event record, opaque to the store."""

    idx: int  # the event's unique ID, unsigned 32-bit (Santa: arc4random())
    unique_id: str  # column `filesha256`: the file SHA-256 for execution events
    data: bytes  # column `eventdata`
    bundle_hash: str | None = None  # column `bundlehash`: BUNDLE_BINARY events and events carrying a bundle hash

    def __post_init__(self) -> None:
        if type(self.idx) is not int or not 0 <= self.idx <= _MAX_IDX:
            raise ValueError(f"idx must be an unsigned 32-bit int, got {self.idx!r}")
        if not isinstance(self.unique_id, str):
            raise TypeError(f"unique_id must be str, got {type(self.unique_id).__name__}")
        if not isinstance(self.data, bytes):
            raise TypeError(f"data must be bytes, got {type(self.data).__name__}")
        if self.bundle_hash is not None and not isinstance(self.bundle_hash, str):
            raise TypeError(f"bundle_hash must be str or None, got {type(self.bundle_hash).__name__}")


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    row: EventRow
    reason: str
    quarantined_at: float  # Unix time


class EventStore:
    """Santa's `events.db` at `path` (the file, e.g. `/var/db/santa/events.db`).

    `create`: make the file (0600; missing directories 0700) if it does not exist or is empty.
    `busy_timeout`: seconds a write waits for another connection's write lock before `StoreBusyError`.
    `check`: run `PRAGMA quick_check` on open (reads every page: 0.05 s for 100,000 events / 68 MB, warm cache).
    One instance may be shared by threads; it is not fork-safe (open a new one in the child).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        check: bool = True,
        read_only: bool = False,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self.read_only = read_only
        if read_only:
            create = False
        if not os.path.lexists(self.path):
            if not create:
                raise StoreError(f"{self.path}: no event store here")
            create_private_file(self.path)
        empty = inspect_file(
            self.path, check=check, connect=lambda uri: self._connect(uri, uri=True), error=self._error
        )
        if empty and not create:
            raise StoreError(f"{self.path}: empty file, not an initialised event store")
        if read_only:
            self._conn: sqlite3.Connection | None = self._open_read_only()
            return
        try:
            conn = self._connect(self.path, uri=False)
        except sqlite3.Error as e:
            raise self._error(e) from e
        try:
            # Re-check on the connection we keep (the file may have changed since inspect_file) before any write.
            empty = check_schema(conn, self.path)
            if empty and not create:
                raise StoreError(f"{self.path}: empty file, not an initialised event store")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL journal mode (got {mode!r})")
            for pragma in _PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
            if empty:
                self._initialise(conn)
        except sqlite3.Error as e:
            conn.close()
            raise self._error(e) from e
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # -- opening ----------------------------------------------------------------------------------------------

    def _open_read_only(self) -> sqlite3.Connection:
        """`read_only=True`: a ``mode=ro`` connection with `query_only`, for commands that only look (a read-only
        state directory works; nothing is created, migrated or switched to WAL; a write raises StoreError)."""
        try:
            conn = self._connect(f"file:{urllib.parse.quote(self.path)}?mode=ro", uri=True)
        except sqlite3.Error as e:
            raise self._error(e) from e
        try:
            if check_schema(conn, self.path):
                raise StoreError(f"{self.path}: empty file, not an initialised event store")
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA trusted_schema = OFF")
        except sqlite3.Error as e:
            conn.close()
            raise self._error(e) from e
        except BaseException:
            conn.close()
            raise
        return conn

    def writable(self) -> str | None:
        """None when a write can be committed here; else why not (a read-only open, file or directory). Tried with
        a real write that is rolled back, so it also catches what permissions alone do not tell."""
        if self.read_only:
            return f"{self.path}: opened read-only"
        with self._lock:
            conn = self._db
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                    conn.execute(f"PRAGMA user_version = {version}")
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            except sqlite3.Error as e:
                return str(self._error(e))
        return None

    def _connect(self, target: str, *, uri: bool) -> sqlite3.Connection:
        return sqlite3.connect(
            target, uri=uri, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )

    def _initialise(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if check_schema(conn, self.path):  # still empty: no concurrent opener initialised it first
                for statement in SCHEMA:
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        fsync_directory(os.path.dirname(self.path))

    def _error(self, e: sqlite3.Error) -> StoreError:
        message = str(e)
        if isinstance(e, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
            return StoreBusyError(f"{self.path}: {message} (busy timeout {self._busy_timeout:g} s)")
        return StoreError(f"{self.path}: {message}")

    # -- plumbing ---------------------------------------------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: store is closed")
        return self._conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise self._error(e) from e

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `work(conn)` in one BEGIN IMMEDIATE transaction; return its result after COMMIT."""
        with self._lock:
            conn = self._db
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise self._error(e) from e
            return result

    def _row(self, r: Sequence[Any]) -> EventRow:
        data = r[2] if isinstance(r[2], bytes) else b"" if r[2] is None else str(r[2]).encode()
        try:
            return EventRow(r[0], str(r[1]), data, None if r[3] is None else str(r[3]))
        except (TypeError, ValueError) as e:
            raise StoreError(f"{self.path}: malformed row idx={r[0]!r}: {e}") from e

    @staticmethod
    def _params(rows: Iterable[EventRow]) -> list[tuple[int, str, bytes, str | None]]:
        out = []
        for row in rows:
            if not isinstance(row, EventRow):
                raise TypeError(f"expected EventRow, got {type(row).__name__}")
            out.append((row.idx, row.unique_id, row.data, row.bundle_hash))
        return out

    # -- writes -----------------------------------------------------------------------------------------------

    def add(self, rows: Iterable[EventRow]) -> int:
        """Store `rows` in one transaction; returning is the acknowledgement (the rows survive a power cut).

        Returns how many rows were new. A row identical to the stored one with its `idx` is accepted as already
        stored. If any `idx` holds a different event (here or in quarantine) nothing is stored and
        `IdxCollisionError` lists the idxs: the caller assigns new ones and retries.
        """
        params = self._params(rows)
        if not params:
            return 0

        def work(conn: sqlite3.Connection) -> int:
            cur = conn.executemany(
                f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?) ON CONFLICT(idx) DO NOTHING", params
            )
            inserted = cur.rowcount
            collisions = []
            if inserted != len(params):  # some idx existed: identical rows are fine, different ones are not
                for p in params:
                    stored = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE idx = ?", (p[0],)).fetchone()
                    if tuple(stored) != p:
                        collisions.append(p[0])
            if conn.execute("SELECT EXISTS (SELECT 1 FROM quarantine)").fetchone()[0]:
                for p in params:
                    if conn.execute("SELECT 1 FROM quarantine WHERE idx = ?", (p[0],)).fetchone():
                        collisions.append(p[0])
            if collisions:
                raise IdxCollisionError(self.path, sorted(set(collisions)))
            return inserted

        result: int = self._write(work)
        return result

    def replace(self, rows: Iterable[EventRow]) -> None:
        """Insert or overwrite `rows` by `idx` in one transaction (§4.5 step 3: the event updated with its bundle
        hash replaces the stored one; Santa deletes then re-inserts, santacore does both atomically)."""
        params = self._params(rows)
        if params:
            self._write(
                lambda conn: conn.executemany(
                    f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?) ON CONFLICT(idx) DO UPDATE SET filesha256 ="
                    " excluded.filesha256, eventdata = excluded.eventdata, bundlehash = excluded.bundlehash",
                    params,
                )
            )

    def delete(self, idxs: Iterable[int]) -> int:
        """Delete exactly the rows with these idxs (one transaction); returns how many existed."""
        keys = [(int(i),) for i in idxs]
        if not keys:
            return 0
        result: int = self._write(lambda conn: conn.executemany("DELETE FROM events WHERE idx = ?", keys).rowcount)
        return result

    def clear(self) -> int:
        """Delete every pending row (a clean sync without clean-sync event upload); returns how many."""
        result: int = self._write(lambda conn: conn.execute("DELETE FROM events").rowcount)
        return result

    def quarantine(self, idxs: Iterable[int], reason: str) -> int:
        """Move rows the event model cannot decode out of the pending set, keeping them (Santa deletes them).

        They are no longer returned by `pending`, `get` or `count`; `quarantined()` lists them and `restore` brings
        them back (e.g. after an upgrade that decodes them). Returns how many rows moved."""
        keys = [(i,) for i in dict.fromkeys(int(i) for i in idxs)]

        def work(conn: sqlite3.Connection) -> int:
            now = time.time()
            conn.executemany(
                f"INSERT INTO quarantine ({_COLUMNS}, reason, quarantined_at) "
                f"SELECT {_COLUMNS}, ?, ? FROM events WHERE idx = ?",
                [(reason, now, k[0]) for k in keys],
            )
            moved: int = conn.executemany("DELETE FROM events WHERE idx = ?", keys).rowcount
            return moved

        result: int = self._write(work) if keys else 0
        return result

    def restore(self, idxs: Iterable[int]) -> int:
        """Move quarantined rows back to the pending set; an idx now taken by another event raises
        `IdxCollisionError` and restores nothing."""
        keys = list(dict.fromkeys(int(i) for i in idxs))

        def work(conn: sqlite3.Connection) -> int:
            taken = [k for k in keys if conn.execute("SELECT 1 FROM events WHERE idx = ?", (k,)).fetchone()]
            if taken:
                raise IdxCollisionError(self.path, taken)
            conn.executemany(
                f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM quarantine WHERE idx = ?", [(k,) for k in keys]
            )
            moved: int = conn.executemany("DELETE FROM quarantine WHERE idx = ?", [(k,) for k in keys]).rowcount
            return moved

        result: int = self._write(work) if keys else 0
        return result

    def purge_quarantine(self, idxs: Iterable[int] | None = None) -> int:
        """Delete quarantined rows for good (all of them if `idxs` is None); returns how many."""
        if idxs is None:
            result: int = self._write(lambda conn: conn.execute("DELETE FROM quarantine").rowcount)
            return result
        keys = [(int(i),) for i in idxs]
        result = self._write(lambda conn: conn.executemany("DELETE FROM quarantine WHERE idx = ?", keys).rowcount)
        return result

    def vacuum(self) -> None:
        """Rewrite the file without free pages (Santa does this after every delete; santacore on request)."""
        with self._lock:
            try:
                self._db.execute("VACUUM")
            except sqlite3.Error as e:
                raise self._error(e) from e

    # -- reads ------------------------------------------------------------------------------------------------

    def pending(self, batch_size: int = 50) -> Iterator[list[EventRow]]:
        """Every pending row in `idx` order, in lists of at most `batch_size`, reading one batch at a time.

        No read transaction stays open between batches, so the caller may `delete` each batch after uploading it.
        Rows added meanwhile are included if their idx is above the last one returned (idx is random, so some wait
        for the next sync). Memory is bounded by one batch."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        after = -1
        while True:
            rows = self._read(f"SELECT {_COLUMNS} FROM events WHERE idx > ? ORDER BY idx LIMIT ?", (after, batch_size))
            if not rows:
                return
            batch = [self._row(r) for r in rows]
            after = batch[-1].idx
            yield batch
            if len(rows) < batch_size:
                return

    def count(self) -> int:
        n: int = self._read("SELECT COUNT(*) FROM events")[0][0]
        return n

    def get(self, idx: int) -> EventRow | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM events WHERE idx = ?", (idx,))
        return self._row(rows[0]) if rows else None

    def for_bundle(self, bundle_hash: str) -> list[EventRow]:
        """The pending rows carrying `bundle_hash` (e.g. a bundle's BUNDLE_BINARY events after StoreEvents)."""
        rows = self._read(f"SELECT {_COLUMNS} FROM events WHERE bundlehash = ? ORDER BY idx", (bundle_hash,))
        return [self._row(r) for r in rows]

    def quarantined(self) -> list[QuarantinedRow]:
        rows = self._read(f"SELECT {_COLUMNS}, reason, quarantined_at FROM quarantine ORDER BY idx")
        return [QuarantinedRow(self._row(r), r[4], r[5]) for r in rows]

    def integrity_check(self) -> list[str]:
        """`PRAGMA integrity_check`: ["ok"] for a sound file, else SQLite's findings."""
        return [r[0] for r in self._read("PRAGMA integrity_check")]

    # -- lifetime ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
