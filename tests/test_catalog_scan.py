"""scan_artifact on artifacts already on disk, and the catalog store's records: bundles hashed as
`bundleinfo` hashes them, Mach-O identities as `fileinfo` gives them, results that pickle."""

from __future__ import annotations

import pickle
import shutil
import sqlite3
from pathlib import Path

import pytest

from santacore.catalog.model import ArtifactResult
from santacore.catalog.scan import scan_artifact
from santacore.catalog.store import CatalogError, CatalogStore
from santacore.identity.bundle import hash_bundle
from santacore.identity.fileinfo import file_info
from santacore.identity.report import json_document

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "terminal-notifier.app"


def test_bundle_on_disk_equals_bundleinfo_and_fileinfo() -> None:
    result = scan_artifact(str(EXAMPLE))
    expected = hash_bundle(EXAMPLE)
    assert result.error is None and result.kind == "bundle"
    assert [(b.path, b.bundle_hash, b.binary_count, b.bundle_id) for b in result.bundles] == [
        (".", expected.bundle_hash, expected.binary_count, expected.bundle.bundle_id)
    ]
    (binary,) = result.binaries
    exe = EXAMPLE / "Contents/MacOS/terminal-notifier"
    assert binary.path == "Contents/MacOS/terminal-notifier" and binary.bundle_path == "."
    assert binary.fileinfo == json_document(file_info(exe))
    assert binary.sha256 == expected.binaries[0].sha256 and binary.size == exe.stat().st_size
    assert binary.signing_status == "unsigned" and binary.team_id is None
    assert pickle.loads(pickle.dumps(result)) == result


def test_loose_macho_identity(corpus: Path) -> None:
    path = corpus / "santa/northpolesec/common/verifyinghasher/testdata/hw_team_signed"
    result = scan_artifact(str(path))
    fi = file_info(path)
    assert result.kind == "macho" and result.sha256 == fi.sha256 and result.size == path.stat().st_size
    (b,) = result.binaries
    assert (b.team_id, b.signing_id, b.cdhash, b.signing_status) == (
        fi.team_id,
        fi.santa_signing_id,
        fi.cdhash,
        fi.signing_status,
    )
    assert b.leaf_cert_sha256 == fi.signing_chain[0].sha256


def test_directory_copies_have_one_identity_and_a_change_makes_another(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "T.app", tmp_path / "b" / "T.app"
    shutil.copytree(EXAMPLE, a)
    shutil.copytree(EXAMPLE, b)
    ra, rb = scan_artifact(str(a)), scan_artifact(str(b))
    assert (ra.sha256, ra.size) == (rb.sha256, rb.size)
    assert [(x.path, x.bundle_hash) for x in ra.bundles] == [(x.path, x.bundle_hash) for x in rb.bundles]
    (b / "Contents/Resources/extra").write_bytes(b"x")
    assert scan_artifact(str(b)).sha256 != ra.sha256


def test_unusable_paths_are_failed_results_not_exceptions(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert scan_artifact(str(text)).error == "not an archive, bundle or Mach-O file"
    missing = scan_artifact(str(tmp_path / "missing.zip"))
    assert missing.error == "No such file or directory" and missing.kind == "unknown"


def test_store_records_once_and_reads_back(tmp_path: Path) -> None:
    result = scan_artifact(str(EXAMPLE))
    with CatalogStore.open(tmp_path / "c.db") as store:
        first = store.record(result)
        assert store.record(result) == first  # the same artifact twice: one row
        copy = ArtifactResult(**{**result.__dict__, "path": str(tmp_path / "elsewhere.app")})
        assert store.record(copy) == first  # another path, same content: one artifact, two paths
        (stored,) = store.artifacts()
        assert stored.status == "done" and len(stored.paths) == 2
        assert store.result(stored).bundles == result.bundles
        assert store.result(stored).binaries == result.binaries
        assert store.counts() == {"artifacts": 1, "done": 1, "failed": 0, "paths": 2, "bundles": 1, "binaries": 1}
        assert not store.needs_scan(str(EXAMPLE))


def test_failed_then_done_replaces_and_done_is_never_replaced_by_failed(tmp_path: Path) -> None:
    ok = scan_artifact(str(EXAMPLE))
    failed = ArtifactResult(ok.path, ok.sha256, ok.size, ok.kind, error="boom")
    with CatalogStore.open(tmp_path / "c.db") as store:
        store.record(failed)
        store.record(ok)
        store.record(failed)
        (stored,) = store.artifacts()
        assert stored.status == "done" and stored.error is None and store.counts()["bundles"] == 1


def test_not_a_catalog_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "rules.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE rules (x)")
    conn.commit()
    conn.close()
    with pytest.raises(CatalogError, match="not a santacore catalog"):
        CatalogStore.open(other)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00" * 5000)
    with pytest.raises(CatalogError):
        CatalogStore.open(garbage)


def test_cli_draws_a_bar_on_a_terminal_only(tmp_path: Path) -> None:
    import os
    import pty
    import select
    import subprocess
    import sys

    from tests.catalog_pack import pack_zip

    pack_zip(EXAMPLE, tmp_path / "a.zip")
    argv = [sys.executable, "-m", "santacore", "catalog", "scan", str(tmp_path / "a.zip"), str(EXAMPLE)]
    master, slave = pty.openpty()
    proc = subprocess.Popen([*argv, "--db", str(tmp_path / "t.db")], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    drawn = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        drawn += chunk
    out = proc.communicate(timeout=60)[0].decode()
    os.close(master)
    assert proc.returncode == 0
    assert b"artifacts" in drawn
    assert out.startswith("2 artifacts scanned, 0 skipped (already in the catalog), 0 failed; 2 bundles, 2 binaries")
    quiet = subprocess.run([*argv, "--db", str(tmp_path / "q.db")], capture_output=True, text=True, timeout=60)
    assert quiet.stderr == "" and quiet.stdout.startswith("2 artifacts scanned")
