"""Broken and hostile archives, each built by the test: every one is recorded as failed with a
reason that names the problem, the scan goes on to the next artifact, and nothing is extracted or
followed outside the archive. Symlink loops in an archive's tree end the lookup (as ELOOP does on
disk) and are reported as warnings."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from santacore._core import scan_archive
from santacore.catalog.scan import scan_artifact
from tests.catalog_pack import cpio_header, pack_pkg, pack_zip, pbzx, xar

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "terminal-notifier.app"
MACHO_HEAD = struct.pack("<IiiI", 0xFEEDFACF, 0x0100000C, 0, 2) + bytes(12)
MiB = 1 << 20


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name), data)
    return path


def _tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as t:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def test_zip_bomb_stops_at_the_expansion_cap(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z, z.open("Bomb.app/Contents/MacOS/Bomb", "w") as m:
        m.write(MACHO_HEAD)
        zeros = bytes(MiB)
        for _ in range(48):
            m.write(zeros)
    assert bomb.stat().st_size < 200_000  # ~250x
    scan = scan_archive(bomb, expansion_floor=8 * MiB)
    assert scan.error is not None and "decompression bomb" in scan.error and "200x" in scan.error
    assert scan.entries == [] and scan.sha256 and scan.size == bomb.stat().st_size


def test_tar_gz_bomb_with_default_caps_is_failed_and_the_scan_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    with gzip.open(folder / "bomb.tar.gz", "wb", compresslevel=1) as g:
        info = tarfile.TarInfo("zeros")
        info.size = 300 * MiB
        g.write(info.tobuf())
        zeros = bytes(MiB)
        for _ in range(300):
            g.write(zeros)
    pack_zip(EXAMPLE, folder / "good.zip")
    (folder / "traversal.zip").write_bytes(_zip(tmp_path / "t.zip", {"../../etc/passwd": b"root"}).read_bytes())
    db = tmp_path / "c.db"
    run = subprocess.run(
        [sys.executable, "-m", "santacore", "catalog", "scan", str(folder), "--db", str(db), "--threads", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("3 artifacts scanned, 0 skipped (already in the catalog), 2 failed; 1 bundles")
    conn = sqlite3.connect(db)
    rows = dict(
        conn.execute("SELECT p.path, a.error FROM artifacts a JOIN artifact_paths p ON p.artifact_id = a.id").fetchall()
    )
    assert "decompression bomb" in rows[str(folder / "bomb.tar.gz")]
    assert rows[str(folder / "traversal.zip")] == "member name leaves the archive: ../../etc/passwd"
    assert rows[str(folder / "good.zip")] is None


@pytest.mark.parametrize(
    ("name", "members", "reason"),
    [
        ("climb.zip", {"a/../../x": b"x"}, "member name leaves the archive: a/../../x"),
        ("abs.zip", {"/etc/passwd": b"x"}, "absolute member name: /etc/passwd"),
        ("climb.tar", {"../x": b"x"}, "member name leaves the archive: ../x"),
        ("abs.tar", {"/etc/passwd": b"x"}, "absolute member name: /etc/passwd"),
    ],
)
def test_names_that_leave_the_archive(name: str, members: dict[str, bytes], reason: str, tmp_path: Path) -> None:
    path = tmp_path / name
    _zip(path, members) if name.endswith(".zip") else _tar(path, members)
    result = scan_artifact(str(path))
    assert result.error == reason
    assert not (tmp_path.parent / "x").exists() and not list(tmp_path.glob("**/passwd"))


def test_truncated_archives(tmp_path: Path) -> None:
    app = tmp_path / "T.app"
    shutil.copytree(EXAMPLE, app)
    whole_tar = _tar(tmp_path / "t.tar", {"T.app/Contents/MacOS/exe": MACHO_HEAD + bytes(100_000)})
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole_tar.read_bytes()[:50_000])
    assert scan_artifact(str(cut)).error == "T.app/Contents/MacOS/exe: truncated: 49488 of the 100028 bytes it declares"
    whole_gz = tmp_path / "t.tar.gz"
    whole_gz.write_bytes(gzip.compress(whole_tar.read_bytes()))
    cut_gz = tmp_path / "cut.tar.gz"
    cut_gz.write_bytes(whole_gz.read_bytes()[: whole_gz.stat().st_size // 2])
    assert "truncated" in (scan_artifact(str(cut_gz)).error or "")
    whole_zip = pack_zip(app, tmp_path / "t.zip")
    cut_zip = tmp_path / "cut.zip"
    cut_zip.write_bytes(whole_zip.read_bytes()[: whole_zip.stat().st_size // 2])
    assert (scan_artifact(str(cut_zip)).error or "").startswith("not a readable zip archive")
    pkg = pack_pkg(app, tmp_path / "t.pkg")
    cut_pkg = tmp_path / "cut.pkg"
    cut_pkg.write_bytes(pkg.read_bytes()[:-5000])
    assert scan_artifact(str(cut_pkg)).error == "xar: app.pkg/Payload: data lies outside the file"


def test_member_longer_or_shorter_than_declared(tmp_path: Path) -> None:
    """A cpio member whose header declares more bytes than the payload holds."""
    cpio = cpio_header("./exe", 0o100755, 10_000, 1) + MACHO_HEAD + bytes(100)
    pkg = tmp_path / "short.pkg"
    pkg.write_bytes(xar([("c.pkg", "directory", None, "raw"), ("c.pkg/Payload", "file", gzip.compress(cpio), "raw")]))
    assert scan_artifact(str(pkg)).error == "c.pkg/Payload/exe: truncated: 128 of the 10000 bytes it declares"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (gzip.compress(b"garbage, not a cpio archive at all" * 10), "cpio payload: bad header magic"),
        (gzip.compress(b"070707" + b"zz" * 40), "cpio payload: garbage in a header's mode"),
        (b"pbzx" + struct.pack(">QQQ", 1 << 24, 0, 1 << 40), "pbzx payload: a chunk declares 1099511627776 bytes"),
        (pbzx(b"070707" + b"9" * 200)[:40], "truncated"),
    ],
)
def test_cpio_and_pbzx_garbage(payload: bytes, reason: str, tmp_path: Path) -> None:
    pkg = tmp_path / "bad.pkg"
    pkg.write_bytes(xar([("c.pkg", "directory", None, "raw"), ("c.pkg/Payload", "file", payload, "raw")]))
    assert reason in (scan_artifact(str(pkg)).error or "")


def test_xar_garbage(tmp_path: Path) -> None:
    cases = {
        "header.pkg": b"xar!" + os.urandom(60),
        "toc.pkg": struct.pack(">4sHHQQI", b"xar!", 28, 1, 10, 10, 1) + b"not zlib!!" + bytes(50),
        "xml.pkg": (lambda t: struct.pack(">4sHHQQI", b"xar!", 28, 1, len(t), 20, 1) + t)(zlib.compress(b"<xar><toc>")),
        "huge-toc.pkg": struct.pack(">4sHHQQI", b"xar!", 28, 1, 10, 1 << 40, 1) + bytes(20),
    }
    reasons = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        reasons[name] = scan_artifact(str(tmp_path / name)).error or ""
    assert reasons["header.pkg"].startswith("xar: header declares")
    assert reasons["toc.pkg"].startswith("xar: table of contents cannot be inflated")
    assert reasons["xml.pkg"].startswith("xar: table of contents is not XML")
    assert reasons["huge-toc.pkg"] == "xar: a table of contents of 1099511627776 bytes (more than 67108864)"


def test_absurd_declared_sizes_and_member_counts(tmp_path: Path) -> None:
    huge = tmp_path / "huge.tar"
    info = tarfile.TarInfo("big")
    info.size = 100 << 30
    huge.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(10_000))
    assert (scan_artifact(str(huge)).error or "").startswith("members declare more than 68719476736 bytes in all")
    many = _zip(tmp_path / "many.zip", {f"f{i}": b"" for i in range(50)})
    scan = scan_archive(many, max_members=20)
    assert scan.error == "more than 20 members (50 in the central directory)"
    many_tar = _tar(tmp_path / "many.tar", {f"f{i}": b"" for i in range(50)})
    assert scan_archive(many_tar, max_members=20).error == "more than 20 members"


def test_symlink_loops_end_lookups_and_are_reported(tmp_path: Path) -> None:
    app = tmp_path / "Loop.app"
    shutil.copytree(EXAMPLE, app)
    os.symlink("b", app / "Contents" / "a")
    os.symlink("a", app / "Contents" / "b")
    os.symlink("Self", app / "Self")
    # A framework whose Versions/Current loops: its main executable cannot be found through it.
    fw = tmp_path / "Loop.app" / "Contents" / "Frameworks" / "F.framework"
    (fw / "Versions").mkdir(parents=True)
    os.symlink("Current", fw / "Versions" / "Current")
    os.symlink("Versions/Current/Resources", fw / "Resources")
    result = scan_artifact(str(pack_zip(app, tmp_path / "loop.zip")))
    assert result.error is None
    (bundle,) = result.bundles
    assert bundle.path == "Loop.app" and bundle.binary_count == 1
    assert any("symlink loop" in w for w in result.warnings)


def test_memory_stays_bounded_on_a_bomb_with_default_caps(tmp_path: Path) -> None:
    """A 300 MiB Mach-O-looking member deflated to ~300 KB: the engine streams it (nothing held
    but its capture) until the expansion cap stops it; the process's peak RSS stays small."""
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z, z.open("B.app/Contents/MacOS/B", "w") as m:
        m.write(MACHO_HEAD)
        zeros = bytes(MiB)
        for _ in range(300):
            m.write(zeros)
    probe = (
        "import sys; from santacore._core import scan_archive\n"
        f"s = scan_archive({str(bomb)!r})\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(s.error); print(hwm)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    error, hwm_kib = out.stdout.splitlines()
    assert "decompression bomb" in error
    assert int(hwm_kib) < 100 * 1024, f"peak RSS {int(hwm_kib) // 1024} MiB"


def test_deep_names_are_walked_without_recursion(tmp_path: Path) -> None:
    deep = "/".join(["d"] * 2000) + "/Info.plist"
    result = scan_artifact(str(_zip(tmp_path / "deep.zip", {deep: b"<plist/>", "x/../../y": b""})))
    assert result.error == "member name leaves the archive: x/../../y"
    ok = scan_artifact(str(_zip(tmp_path / "deep-ok.zip", {deep: b"<plist/>"})))
    assert ok.error is None and ok.bundles == ()
