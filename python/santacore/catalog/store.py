"""The catalog: one SQLite file (WAL) holding every artifact scanned, keyed by its SHA-256 and size.

Schema (version 1):

- `artifacts`: `id`, `sha256`, `size` (UNIQUE together: the artifact's identity, wherever it lies),
  `kind` (`zip`, `tar.gz`, `pkg`, `bundle`, `directory`, `macho`, ...), `status` (`done` or
  `failed`), `error` (the reason when failed), `warnings` (JSON list), `scan_millis`, `scanned_at`
  (Unix seconds).
- `artifact_paths`: `path` (absolute, PRIMARY KEY) → `artifact_id`, with the `size` and `mtime_ns`
  the path had when scanned: an unchanged path is skipped without reading it, a changed one is
  scanned again (and, when its new content is an artifact already done, only re-linked).
- `bundles`: `artifact_id`, `path` (inside the artifact, '/'-separated; "." is the artifact itself),
  `bundle_hash`, `binary_count`, `hash_millis`, `bundle_id`, `name`, `version`, `short_version`;
  UNIQUE(artifact_id, path).
- `binaries`: `artifact_id`, `path`, `bundle_path`, `sha256`, `size`, `team_id`, `signing_id`,
  `cdhash`, `signing_status`, `leaf_cert_sha256`, `fileinfo` (the `santacore fileinfo --json`
  document, JSON text); UNIQUE(artifact_id, path).
- `meta`: `key` → `value` (`schema_version`).

Each artifact is written in one transaction (its row, its bundles, its binaries and its path), so a
scan killed at any moment leaves every artifact either wholly recorded or absent: a re-run redoes
only the absent ones and the UNIQUE keys keep anything from being recorded twice. WAL with
synchronous=NORMAL keeps every committed transaction across a killed process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass

from santacore.catalog.model import ArtifactResult, BinaryRecord, BundleRecord

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    error TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    scan_millis INTEGER NOT NULL,
    scanned_at REAL NOT NULL,
    UNIQUE (sha256, size)
);
CREATE TABLE IF NOT EXISTS artifact_paths (
    path TEXT PRIMARY KEY,
    artifact_id INTEGER NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS artifact_paths_artifact ON artifact_paths (artifact_id);
CREATE TABLE IF NOT EXISTS bundles (
    id INTEGER PRIMARY KEY,
    artifact_id INTEGER NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    bundle_hash TEXT,
    binary_count INTEGER NOT NULL,
    hash_millis REAL NOT NULL,
    bundle_id TEXT,
    name TEXT,
    version TEXT,
    short_version TEXT,
    UNIQUE (artifact_id, path)
);
CREATE TABLE IF NOT EXISTS binaries (
    id INTEGER PRIMARY KEY,
    artifact_id INTEGER NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    bundle_path TEXT,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    team_id TEXT,
    signing_id TEXT,
    cdhash TEXT,
    signing_status TEXT,
    leaf_cert_sha256 TEXT,
    fileinfo TEXT NOT NULL,
    UNIQUE (artifact_id, path)
);
CREATE INDEX IF NOT EXISTS binaries_sha256 ON binaries (sha256);
"""


class CatalogError(Exception):
    """The catalog file cannot be used (not a santacore catalog, a newer schema)."""


@dataclass(frozen=True)
class PathStamp:
    """What a path looked like when it was scanned: a different size or mtime means a rescan."""

    size: int
    mtime_ns: int


@dataclass(frozen=True)
class StoredArtifact:
    id: int
    sha256: str
    size: int
    kind: str
    status: str
    error: str | None
    warnings: tuple[str, ...]
    scan_millis: int
    scanned_at: float
    paths: tuple[str, ...]


@dataclass(frozen=True)
class StoredBundle:
    artifact_id: int
    record: BundleRecord


@dataclass(frozen=True)
class StoredBinary:
    artifact_id: int
    record: BinaryRecord


def path_stamp(path: str) -> PathStamp:
    """The cheap look at a path: a file's size and mtime; for a directory, the bytes of its regular
    files and the newest mtime of anything in it (symlinks not followed)."""
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path):
        return PathStamp(st.st_size, st.st_mtime_ns)
    size, newest = 0, st.st_mtime_ns
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                s = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            newest = max(newest, s.st_mtime_ns)
            if name in files and not os.path.islink(os.path.join(top, name)):
                size += s.st_size
    return PathStamp(size, newest)


class CatalogStore:
    """The SQLite catalog. One writer (the scanning process); readers may open it at the same time."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> CatalogStore:
        """Open (creating it if absent) the catalog at `path`. Raises CatalogError for a file that
        is not a santacore catalog, OSError/sqlite3.Error if it cannot be opened at all."""
        path = os.fspath(path)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "artifacts" not in tables:
                raise CatalogError(f"{path}: not a santacore catalog (tables: {', '.join(sorted(tables))})")
            conn.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise CatalogError(f"{path}: catalog schema {row[0]} is newer than this santacore's ({SCHEMA_VERSION})")
        except sqlite3.DatabaseError as e:
            conn.close()
            raise CatalogError(f"{path}: not a santacore catalog ({e})") from None
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- deciding what to scan ------------------------------------------------------------------

    def needs_scan(self, path: str, *, retry_failed: bool = False) -> bool:
        """False when `path` was recorded with the same size and mtime it has now (and, with
        `retry_failed`, did not fail). A path that cannot be examined needs a scan (which will
        record why it failed)."""
        path = os.path.abspath(path)
        row = self._conn.execute(
            "SELECT p.size, p.mtime_ns, a.status FROM artifact_paths p JOIN artifacts a ON a.id = p.artifact_id "
            "WHERE p.path = ?",
            (path,),
        ).fetchone()
        if row is None:
            return True
        try:
            stamp = path_stamp(path)
        except OSError:
            return True
        if (stamp.size, stamp.mtime_ns) != (row[0], row[1]):
            return True
        return retry_failed and row[2] == "failed"

    def has_size(self, size: int) -> bool:
        """Whether any artifact recorded as done has this size (is hashing a path worth it to
        find it already scanned?)."""
        return (
            self._conn.execute("SELECT 1 FROM artifacts WHERE size = ? AND status = 'done'", (size,)).fetchone()
            is not None
        )

    def is_done(self, sha256: str, size: int) -> bool:
        row = self._conn.execute(
            "SELECT status FROM artifacts WHERE sha256 = ? AND size = ?", (sha256, size)
        ).fetchone()
        return row is not None and row[0] == "done"

    def link_path(self, path: str, sha256: str, size: int, stamp: PathStamp | None = None) -> bool:
        """Record that `path` holds the artifact (sha256, size) already done; False if it is not."""
        path = os.path.abspath(path)
        with self._transaction():
            row = self._conn.execute(
                "SELECT id FROM artifacts WHERE sha256 = ? AND size = ?", (sha256, size)
            ).fetchone()
            if row is None:
                return False
            self._put_path(path, row[0], stamp)
        return True

    # -- writing ---------------------------------------------------------------------------------

    def record(self, result: ArtifactResult, *, stamp: PathStamp | None = None) -> int:
        """Store one scanned artifact, in one transaction, and return its id. An artifact already
        done keeps its rows (only the path is linked); a failed one is replaced by the new result."""
        path = os.path.abspath(result.path)
        status = "failed" if result.error is not None else "done"
        with self._transaction():
            row = self._conn.execute(
                "SELECT id, status FROM artifacts WHERE sha256 = ? AND size = ?", (result.sha256, result.size)
            ).fetchone()
            if row is not None and (row[1] == "done" or status == "failed"):
                artifact_id = int(row[0])
                if row[1] == "failed":
                    self._conn.execute(
                        "UPDATE artifacts SET error = ?, kind = ?, scan_millis = ?, scanned_at = ? WHERE id = ?",
                        (result.error, result.kind, result.scan_millis, time.time(), artifact_id),
                    )
            else:
                if row is not None:  # failed before, done now: replace it
                    self._conn.execute("DELETE FROM artifacts WHERE id = ?", (row[0],))
                artifact_id = self._insert(result, status)
            self._put_path(path, artifact_id, stamp)
        return artifact_id

    def _insert(self, result: ArtifactResult, status: str) -> int:
        cur = self._conn.execute(
            "INSERT INTO artifacts (sha256, size, kind, status, error, warnings, scan_millis, scanned_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.sha256,
                result.size,
                result.kind,
                status,
                result.error,
                json.dumps(list(result.warnings)),
                result.scan_millis,
                time.time(),
            ),
        )
        artifact_id = int(cur.lastrowid or 0)
        self._conn.executemany(
            "INSERT INTO bundles (artifact_id, path, bundle_hash, binary_count, hash_millis, bundle_id, name, "
            "version, short_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    artifact_id,
                    b.path,
                    b.bundle_hash,
                    b.binary_count,
                    b.hash_millis,
                    b.bundle_id,
                    b.name,
                    b.version,
                    b.short_version,
                )
                for b in result.bundles
            ],
        )
        self._conn.executemany(
            "INSERT INTO binaries (artifact_id, path, bundle_path, sha256, size, team_id, signing_id, cdhash, "
            "signing_status, leaf_cert_sha256, fileinfo) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    artifact_id,
                    b.path,
                    b.bundle_path,
                    b.sha256,
                    b.size,
                    b.team_id,
                    b.signing_id,
                    b.cdhash,
                    b.signing_status,
                    b.leaf_cert_sha256,
                    json.dumps(b.fileinfo, sort_keys=True),
                )
                for b in result.binaries
            ],
        )
        return artifact_id

    def _put_path(self, path: str, artifact_id: int, stamp: PathStamp | None) -> None:
        if stamp is None:
            try:
                stamp = path_stamp(path)
            except OSError:
                stamp = PathStamp(-1, -1)  # gone: the next run looks again
        self._conn.execute(
            "INSERT INTO artifact_paths (path, artifact_id, size, mtime_ns) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET artifact_id = excluded.artifact_id, size = excluded.size, "
            "mtime_ns = excluded.mtime_ns",
            (path, artifact_id, stamp.size, stamp.mtime_ns),
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    # -- reading ---------------------------------------------------------------------------------

    def artifacts(self) -> Iterator[StoredArtifact]:
        """Every artifact, in the order recorded, with the paths it was found at."""
        paths: dict[int, list[str]] = {}
        for artifact_id, path in self._conn.execute("SELECT artifact_id, path FROM artifact_paths ORDER BY path"):
            paths.setdefault(artifact_id, []).append(path)
        for row in self._conn.execute(
            "SELECT id, sha256, size, kind, status, error, warnings, scan_millis, scanned_at FROM artifacts ORDER BY id"
        ):
            yield StoredArtifact(
                id=row[0],
                sha256=row[1],
                size=row[2],
                kind=row[3],
                status=row[4],
                error=row[5],
                warnings=tuple(json.loads(row[6])),
                scan_millis=row[7],
                scanned_at=row[8],
                paths=tuple(paths.get(row[0], ())),
            )

    def bundles(self, artifact_id: int | None = None) -> Iterator[StoredBundle]:
        where, args = ("WHERE artifact_id = ?", (artifact_id,)) if artifact_id is not None else ("", ())
        for row in self._conn.execute(
            "SELECT artifact_id, path, bundle_hash, binary_count, hash_millis, bundle_id, name, version, "
            f"short_version FROM bundles {where} ORDER BY artifact_id, path",
            args,
        ):
            yield StoredBundle(row[0], BundleRecord(*row[1:]))

    def binaries(self, artifact_id: int | None = None) -> Iterator[StoredBinary]:
        where, args = ("WHERE artifact_id = ?", (artifact_id,)) if artifact_id is not None else ("", ())
        for row in self._conn.execute(
            "SELECT artifact_id, path, bundle_path, sha256, size, fileinfo, team_id, signing_id, cdhash, "
            f"signing_status, leaf_cert_sha256 FROM binaries {where} ORDER BY artifact_id, path",
            args,
        ):
            yield StoredBinary(row[0], BinaryRecord(row[1], row[2], row[3], row[4], json.loads(row[5]), *row[6:]))

    def result(self, artifact: StoredArtifact) -> ArtifactResult:
        """The stored artifact as a scan result (its first path), e.g. to compare two catalogs."""
        return ArtifactResult(
            path=artifact.paths[0] if artifact.paths else "",
            sha256=artifact.sha256,
            size=artifact.size,
            kind=artifact.kind,
            bundles=tuple(b.record for b in self.bundles(artifact.id)),
            binaries=tuple(b.record for b in self.binaries(artifact.id)),
            error=artifact.error,
            scan_millis=artifact.scan_millis,
            warnings=artifact.warnings,
        )

    def counts(self) -> dict[str, int]:
        """Artifacts (done, failed), bundles and binaries recorded."""
        q = self._conn.execute
        return {
            "artifacts": q("SELECT COUNT(*) FROM artifacts").fetchone()[0],
            "done": q("SELECT COUNT(*) FROM artifacts WHERE status = 'done'").fetchone()[0],
            "failed": q("SELECT COUNT(*) FROM artifacts WHERE status = 'failed'").fetchone()[0],
            "paths": q("SELECT COUNT(*) FROM artifact_paths").fetchone()[0],
            "bundles": q("SELECT COUNT(*) FROM bundles").fetchone()[0],
            "binaries": q("SELECT COUNT(*) FROM binaries").fetchone()[0],
        }


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
