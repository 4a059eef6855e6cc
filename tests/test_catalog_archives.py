"""Bundles read out of archives equal the same bundles on disk: every corpus bundle is packed by
the test as zip, tar.gz and .pkg (gzip cpio payload), and several as tar, tar.bz2, tar.xz, tar.zst
and .pkg with a pbzx payload; the catalog's bundle hashes, binary counts, Info.plist values,
Mach-O SHA-256s and whole fileinfo identities from the archive equal those `bundleinfo`'s and
`fileinfo`'s code finds in the folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from santacore._core import scan_archive as engine_scan
from santacore.catalog.model import ArtifactResult
from santacore.catalog.scan import scan_artifact
from santacore.identity.bundle import hash_bundle
from tests.catalog_pack import pack_pkg, pack_tar, pack_zip

FORMATS = {
    "zip": lambda src, out: pack_zip(src, out),
    "tar.gz": lambda src, out: pack_tar(src, out, "gz"),
    "pkg": lambda src, out: pack_pkg(src, out, "gzip"),
}
EVERY_FORMAT = {
    **FORMATS,
    "tar": lambda src, out: pack_tar(src, out, ""),
    "tar.bz2": lambda src, out: pack_tar(src, out, "bz2"),
    "tar.xz": lambda src, out: pack_tar(src, out, "xz"),
    "tar.zst": lambda src, out: pack_tar(src, out, "zst"),
    "pkg-pbzx": lambda src, out: pack_pkg(src, out, "pbzx"),
}


def _bundles(result: ArtifactResult, under: str = "", strip: str = "") -> set[tuple[Any, ...]]:
    """(path, hash, count, Info.plist values) of each bundle; paths below `under`, less `strip`."""
    return {
        (_path(b.path, under, strip), b.bundle_hash, b.binary_count, b.bundle_id, b.name, b.version, b.short_version)
        for b in result.bundles
    }


def _binaries(result: ArtifactResult, under: str = "", strip: str = "") -> set[tuple[str, str, int]]:
    return {(_path(b.path, under, strip), b.sha256, b.size) for b in result.binaries}


def _path(path: str, under: str, strip: str) -> str:
    path = under if path == "." else f"{under}/{path}" if under else path
    return path.removeprefix(strip)


def _check(src: Path, tmp: Path, formats: dict[str, Any]) -> None:
    on_disk = scan_artifact(str(src))
    assert on_disk.error is None
    for name, pack in formats.items():
        archive = pack(src, tmp / f"{src.name}.{name}")
        result = scan_artifact(str(archive))
        assert result.error is None, (name, result.error)
        strip = "app.pkg/Payload/" if name.startswith("pkg") else ""
        assert _bundles(result, strip=strip) == _bundles(on_disk, under=src.name), name
        assert _binaries(result, strip=strip) == _binaries(on_disk, under=src.name), name
        assert result.kind == name.removesuffix("-pbzx")
        assert _identities(result, strip=strip) == _identities(on_disk, under=src.name), name
        assert all(b.fileinfo for b in result.binaries) and not result.warnings, name


def _identities(result: ArtifactResult, under: str = "", strip: str = "") -> dict[str, dict[str, Any]]:
    """Each Mach-O's fileinfo document but its paths (absolute on disk, member paths in archives)."""
    return {
        _path(b.path, under, strip): {k: v for k, v in b.fileinfo.items() if k not in ("path", "bundle_path")}
        for b in result.binaries
    }


def _corpus_bundles(manifest: dict[str, Any]) -> list[str]:
    return [b["bundle_root"] for b in manifest["bundles"] if b["in_corpus"]]


def test_every_corpus_bundle_as_zip_tar_gz_and_pkg(corpus: Path, manifest: dict[str, Any], tmp_path: Path) -> None:
    roots = _corpus_bundles(manifest)
    assert len(roots) >= 10
    for i, rel in enumerate(roots):
        work = tmp_path / str(i)
        work.mkdir()
        src = work / Path(rel).name
        shutil.copytree(corpus / rel, src, symlinks=True)
        _check(src, work, FORMATS)


def test_every_compression_and_pbzx(corpus: Path, manifest: dict[str, Any], tmp_path: Path) -> None:
    for i, rel in enumerate(_corpus_bundles(manifest)):
        if Path(rel).name not in ("terminal-notifier.app", "Notificator.app", "DirectoryBundle"):
            continue
        work = tmp_path / str(i)
        work.mkdir()
        src = work / Path(rel).name
        shutil.copytree(corpus / rel, src, symlinks=True)
        _check(src, work, EVERY_FORMAT)


def test_manifest_bundle_hashes_from_archives(corpus: Path, manifest: dict[str, Any], tmp_path: Path) -> None:
    """The archive's record of each bundle that is its own root has the manifest's hash and count."""
    checked = 0
    for b in manifest["bundles"]:
        if not b["in_corpus"] or b.get("santa_ancestor_bundle_root") != b["bundle_root"]:
            continue
        src = corpus / b["bundle_root"]
        result = scan_artifact(str(pack_zip(src, tmp_path / f"{checked}.zip")))
        (record,) = [r for r in result.bundles if r.path == src.name]
        assert (record.bundle_hash, record.binary_count, record.bundle_id) == (
            b["bundle_hash"],
            b["binary_count"],
            b["bundle_id"],
        )
        checked += 1
    assert checked >= 5


def test_framework_with_symlinks_as_stored(corpus: Path, tmp_path: Path) -> None:
    """QtConcurrent.framework with the symlinks a Mac has (Versions/Current, top-level links):
    the links are stored as links, never hashed, and followed to find the main executable."""
    src = tmp_path / "src" / "QtConcurrent.framework"
    shutil.copytree(corpus / "registry/pypi/PySide6-Essentials/6.11.3/PySide6/Qt/lib/QtConcurrent.framework", src)
    versions = sorted(p.name for p in (src / "Versions").iterdir())
    os.symlink(versions[0], src / "Versions" / "Current")
    for name in ("QtConcurrent", "Resources"):
        if (src / "Versions" / "Current" / name).exists() and not (src / name).exists():
            os.symlink(f"Versions/Current/{name}", src / name)
    _check(src, tmp_path / "src", {**FORMATS, "tar.xz": EVERY_FORMAT["tar.xz"]})
    on_disk = hash_bundle(src)
    result = scan_artifact(str(pack_tar(src, tmp_path / "q.tar", "")))
    (record,) = result.bundles
    assert (record.bundle_hash, record.binary_count) == (on_disk.bundle_hash, on_disk.binary_count)
    kinds = {e.path: e.kind for e in engine_scan(str(tmp_path / "q.tar")).entries}
    assert kinds["QtConcurrent.framework/Versions/Current"] == "symlink"


@pytest.mark.parametrize("fmt", sorted(EVERY_FORMAT))
def test_engine_tree_lists_every_member(fmt: str, tmp_path: Path) -> None:
    """The engine's tree holds every folder, file and symlink of the packed folder, with sizes."""
    src = tmp_path / "T.app"
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples/terminal-notifier.app", src)
    os.symlink("MacOS/terminal-notifier", src / "Contents" / "link")
    scan = engine_scan(str(EVERY_FORMAT[fmt](src, tmp_path / f"t.{fmt}")))
    prefix = "app.pkg/Payload/" if fmt.startswith("pkg") else ""
    entries = {e.path.removeprefix(prefix): e for e in scan.entries}
    for p in [src, *src.rglob("*")]:
        rel = str(p.relative_to(tmp_path))
        e = entries[rel]
        if p.is_symlink():
            assert (e.kind, e.link_target) == ("symlink", os.readlink(p))
        elif p.is_dir():
            assert e.kind == "directory"
        else:
            assert (e.kind, e.size) == ("file", p.stat().st_size)
    plist = entries["T.app/Contents/Info.plist"].plist
    assert plist == (src / "Contents/Info.plist").read_bytes()
