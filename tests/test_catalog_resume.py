"""`santacore catalog scan` resumes: a re-run skips what is done, a changed artifact is scanned
again, a copy is only linked, and a scan killed with SIGKILL mid-way (a real subprocess) resumes
with nothing lost and nothing recorded twice — the catalog ends equal to an uninterrupted one."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from santacore.catalog.store import CatalogStore
from tests.catalog_pack import pack_zip

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "terminal-notifier.app"


def _catalog(n: int, root: Path) -> Path:
    """`n` distinct zips of the example app (each with a file of its own), and one loose folder."""
    out = root / "catalog"
    out.mkdir()
    for i in range(n):
        src = root / "src" / str(i) / "terminal-notifier.app"
        shutil.copytree(EXAMPLE, src)
        (src / "Contents" / "Resources" / "build").write_text(str(i))
        pack_zip(src, out / f"app-{i:03d}.zip")
    return out


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "santacore", "catalog", "scan", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _rows(db: Path) -> list[tuple[object, ...]]:
    """What a catalog holds, without timings or row ids."""
    conn = sqlite3.connect(db)
    try:
        return sorted(
            conn.execute(
                "SELECT a.sha256, a.size, a.kind, a.status, p.path, b.path, b.bundle_hash, b.binary_count "
                "FROM artifacts a JOIN artifact_paths p ON p.artifact_id = a.id "
                "LEFT JOIN bundles b ON b.artifact_id = a.id"
            ).fetchall()
        )
    finally:
        conn.close()


def test_rerun_skips_changed_is_rescanned_copy_is_linked(tmp_path: Path) -> None:
    catalog = _catalog(3, tmp_path)
    db = tmp_path / "c.db"
    first = _cli(str(catalog), "--db", str(db), "--threads", "1")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(
        "3 artifacts scanned, 0 skipped (already in the catalog), 0 failed; 3 bundles, 3 binaries"
    )
    again = _cli(str(catalog), "--db", str(db))
    assert again.stdout.startswith("0 artifacts scanned, 3 skipped")
    # A copy (new path, same content) is linked without a scan; a changed archive is scanned again.
    shutil.copy(catalog / "app-000.zip", catalog / "copy.zip")
    changed = tmp_path / "src" / "1" / "terminal-notifier.app"
    (changed / "Contents" / "Resources" / "build").write_text("changed")
    pack_zip(changed, catalog / "app-001.zip")
    third = _cli(str(catalog), "--db", str(db), "--threads", "1")
    assert third.stdout.startswith("1 artifacts scanned, 3 skipped"), third.stdout
    with CatalogStore.open(db) as store:
        counts = store.counts()
        assert (counts["artifacts"], counts["paths"], counts["bundles"]) == (4, 4, 4)
        by_path = {p: a for a in store.artifacts() for p in a.paths}
        assert by_path[str(catalog / "copy.zip")].id == by_path[str(catalog / "app-000.zip")].id
        assert by_path[str(catalog / "app-001.zip")].sha256 != by_path[str(catalog / "app-002.zip")].sha256


def test_kill_9_mid_scan_resumes_with_nothing_lost_or_doubled(tmp_path: Path) -> None:
    catalog = _catalog(12, tmp_path)
    db = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "santacore", "catalog", "scan", str(catalog), "--db", str(db), "--threads", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    done_before = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                    done_before = conn.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]
                    conn.close()
                except sqlite3.Error:
                    done_before = 0
                if done_before >= 4:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, "the scan ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    conn = sqlite3.connect(db)
    recorded = conn.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Every artifact recorded is whole: its path, its bundle and its binary came with it.
    assert conn.execute("SELECT COUNT(*) FROM artifact_paths").fetchone()[0] == recorded
    assert conn.execute("SELECT COUNT(*) FROM bundles").fetchone()[0] == recorded
    assert conn.execute("SELECT COUNT(*) FROM binaries").fetchone()[0] == recorded
    conn.close()
    assert 4 <= recorded < 12
    resumed = _cli(str(catalog), "--db", str(db), "--threads", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith(f"{12 - recorded} artifacts scanned, {recorded} skipped"), resumed.stdout
    fresh = tmp_path / "fresh.db"
    assert _cli(str(catalog), "--db", str(fresh), "--threads", "2").returncode == 0
    assert _rows(db) == _rows(fresh)
    assert len(_rows(db)) == 12
