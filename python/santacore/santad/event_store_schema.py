"""events.db's layout (spec §5.1) and the checks, made without writing to the file, that an existing file is exactly it.

Santa's v3 table with Santa's column names (`CREATE TABLE 'events' ('idx' INTEGER PRIMARY KEY,
'filesha256' TEXT NOT NULL, 'eventdata' BLOB)`, `PRAGMA user_version = 3`) plus santacore's additions:

* `PRAGMA application_id = 0x53434556` ("SCEV") marks the file as santacore's; a file without it is not opened.
* `events.bundlehash` (nullable TEXT) with the partial index `events_bundlehash`, for `EventStore.for_bundle`.
* `quarantine`: rows the event model could not decode, moved out of the pending set but kept.
* `santacore_meta`: `('schema', '1')`, the version of these additions; `user_version` stays Santa's.

An empty file (or an SQLite file with no schema and no ids) is initialised; anything else must be exactly this.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import urllib.parse
from collections.abc import Callable

from santacore.errors import StoreError

APPLICATION_ID = 0x53434556  # "SCEV"
SANTA_USER_VERSION = 3  # Santa's events-table version (spec §5.1)
SCHEMA_VERSION = 1  # santacore's additions (santacore_meta 'schema')

SCHEMA = (
    "CREATE TABLE 'events' ('idx' INTEGER PRIMARY KEY, 'filesha256' TEXT NOT NULL, 'eventdata' BLOB)",
    "ALTER TABLE 'events' ADD COLUMN 'bundlehash' TEXT",
    "CREATE INDEX 'events_bundlehash' ON 'events' ('bundlehash') WHERE bundlehash IS NOT NULL",
    "CREATE TABLE 'quarantine' ('idx' INTEGER PRIMARY KEY, 'filesha256' TEXT NOT NULL, 'eventdata' BLOB,"
    " 'bundlehash' TEXT, 'reason' TEXT NOT NULL, 'quarantined_at' REAL NOT NULL)",
    "CREATE TABLE 'santacore_meta' ('key' TEXT PRIMARY KEY, 'value' TEXT NOT NULL)",
    f"INSERT INTO santacore_meta (key, value) VALUES ('schema', '{SCHEMA_VERSION}')",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SANTA_USER_VERSION}",
)
_SQLITE_MAGIC = b"SQLite format 3\x00"
# PRAGMA table_info rows as (name, type, notnull, pk), per table.
_TABLES = {
    "events": [("idx", "INTEGER", 0, 1), ("filesha256", "TEXT", 1, 0), ("eventdata", "BLOB", 0, 0),
               ("bundlehash", "TEXT", 0, 0)],
    "quarantine": [("idx", "INTEGER", 0, 1), ("filesha256", "TEXT", 1, 0), ("eventdata", "BLOB", 0, 0),
                   ("bundlehash", "TEXT", 0, 0), ("reason", "TEXT", 1, 0), ("quarantined_at", "REAL", 1, 0)],
    "santacore_meta": [("key", "TEXT", 0, 1), ("value", "TEXT", 1, 0)],
}  # fmt: skip
_INDEXES = {
    "events_bundlehash": ("events", ["bundlehash"]),
    "sqlite_autoindex_santacore_meta_1": ("santacore_meta", ["key"]),
}


def inspect_file(
    path: str,
    *,
    check: bool,
    connect: Callable[[str], sqlite3.Connection],
    error: Callable[[sqlite3.Error], StoreError],
) -> bool:
    """Validate the existing file at `path` without writing to it; True if it is empty (no schema, no ids).

    `connect(uri)` opens an SQLite URI; `error` turns an sqlite3.Error into the StoreError to raise.
    `check` also runs `PRAGMA quick_check`."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise StoreError(f"{path}: cannot stat: {e.strerror}") from e
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{path}: not a regular file")
    if st.st_mode & stat.S_IWOTH:
        raise StoreError(f"{path}: world-writable (mode {stat.S_IMODE(st.st_mode):04o}); refusing to use it")
    wal = path + "-wal"
    wal_size = os.path.getsize(wal) if os.path.isfile(wal) else 0
    if st.st_size == 0:
        if wal_size:  # SQLite would silently delete a WAL beside an empty database
            raise StoreError(f"{path}: empty database file beside a non-empty {wal}")
        return True
    with open(path, "rb") as f:
        header = f.read(100)
    page_size = int.from_bytes(header[16:18], "big")
    if (
        len(header) < 100
        or not header.startswith(_SQLITE_MAGIC)
        or not (page_size == 1 or (512 <= page_size <= 32768 and page_size & (page_size - 1) == 0))
        or header[18] not in (1, 2)
        or header[21:24] != b"\x40\x20\x20"  # payload fractions, fixed by the file format
    ):
        raise StoreError(f"{path}: not an SQLite database (bad file header)")
    app_id = int.from_bytes(header[68:72], "big")
    if not wal_size and app_id not in (0, APPLICATION_ID):  # without a WAL the header is current
        raise StoreError(f"{path}: not a santacore event store (SQLite application_id {app_id:#x})")
    try:  # read-only: never rolls back a hot journal or checkpoints a WAL into the file
        conn = connect(f"file:{urllib.parse.quote(path)}?mode=ro")
    except sqlite3.Error as e:
        raise error(e) from e
    try:
        if check_schema(conn, path):
            return True
        if check:
            problems = [line for r in conn.execute("PRAGMA quick_check(5)") for line in str(r[0]).splitlines()]
            if problems != ["ok"]:
                raise StoreError(f"{path}: database is corrupt: " + "; ".join(problems[:5]))
        return False
    except sqlite3.Error as e:
        if os.path.exists(path + "-journal") and "readonly" in str(e):
            msg = f"{path}: an unfinished transaction in {path}-journal (not a WAL-mode santacore store)"
            raise StoreError(msg) from e
        if "malformed" in str(e):
            raise StoreError(f"{path}: database is corrupt: {e}") from e
        raise error(e) from e
    finally:
        conn.close()


def check_schema(conn: sqlite3.Connection, path: str) -> bool:
    """Raise StoreError unless the database is exactly santacore's schema; True if it is empty instead.
    The reads share one snapshot: in autocommit each statement would see its own, and a concurrent
    opener's initialisation could then show up half (its tables without its application_id)."""
    if conn.in_transaction:
        return _read_schema(conn, path)
    conn.execute("BEGIN")
    try:
        return _read_schema(conn, path)
    finally:
        conn.execute("COMMIT")


def _read_schema(conn: sqlite3.Connection, path: str) -> bool:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    objects = {
        name: (kind, table)
        for kind, name, table in conn.execute("SELECT type, name, tbl_name FROM sqlite_master")
        if not name.startswith("sqlite_stat")
    }
    if not objects and app_id == 0 and version == 0:
        return True
    if app_id != APPLICATION_ID:
        if objects.get("events", ("",))[0] == "table":
            raise StoreError(
                f"{path}: a Santa events.db (user_version {version}), not a santacore store; "
                "its NSKeyedArchiver events cannot be read"
            )
        tables = sorted(name for name, (kind, _) in objects.items() if kind == "table")
        raise StoreError(f"{path}: not a santacore event store (SQLite application_id {app_id:#x}, tables {tables})")
    if version != SANTA_USER_VERSION:
        newer = "newer" if version > SANTA_USER_VERSION else "older"
        raise StoreError(f"{path}: {newer} events schema (user_version {version}, supported 3)")
    expected = {t: ("table", t) for t in _TABLES} | {i: ("index", t) for i, (t, _) in _INDEXES.items()}
    if objects != expected:
        extra = sorted(set(objects) - set(expected))
        missing = sorted(set(expected) - set(objects))
        raise StoreError(f"{path}: unexpected schema (extra {extra}, missing {missing})")
    for table, columns in _TABLES.items():
        found = [(r[1], r[2].upper(), r[3], r[5]) for r in conn.execute(f"PRAGMA table_info('{table}')")]
        if found != columns:
            raise StoreError(f"{path}: table {table} has columns {_describe(found)}, not {_describe(columns)}")
    for index, (_, columns_) in _INDEXES.items():
        if [r[2] for r in conn.execute(f"PRAGMA index_info('{index}')")] != columns_:
            raise StoreError(f"{path}: index {index} does not cover {columns_}")
    row = conn.execute("SELECT value FROM santacore_meta WHERE key = 'schema'").fetchone()
    if row is None or row[0] != str(SCHEMA_VERSION):
        raise StoreError(f"{path}: santacore schema {row and row[0]!r} not supported (only {SCHEMA_VERSION})")
    return False


def _describe(columns: list[tuple[str, str, int, int]]) -> str:
    return ", ".join(f"{n} {t}" + " NOT NULL" * bool(nn) + " PRIMARY KEY" * bool(pk) for n, t, nn, pk in columns)
