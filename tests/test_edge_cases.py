"""Edge cases of the walk and the bundle hash, built at run time in temporary folders from corpus files.

Expected values come from the corpus manifest or are computed here with hashlib (and the PyPI `blake3`
package) on the files known to qualify; nothing is hard-coded. The spec is santa-protocol.md §6.3-6.6:
symlinks are never followed nor hashed, special files are never opened, duplicates count once, and
anything unreadable is reported in `skipped` instead of aborting the walk.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import blake3 as blake3_pkg
import pytest

import santacore

MUJOCO_APP = "registry/pypi/mujoco/3.17.0/mujoco/MuJoCo_(mjpython).app"
TERMINAL_NOTIFIER_APP = "registry/npm/node-notifier/10.0.1/vendor/mac.noindex/terminal-notifier.app"
QT_CONCURRENT = "registry/pypi/PySide6-Essentials/6.11.3/PySide6/Qt/lib/QtConcurrent.framework"
BUNDLE_EXAMPLE_APP = "santa/northpolesec/common/testdata/BundleExample.app"
BUNDLE_EXAMPLE_EXE = f"{BUNDLE_EXAMPLE_APP}/Contents/MacOS/BundleExample"
NINJA = "registry/pypi/ninja/1.13.2/ninja-1.13.2.data/scripts/ninja"
HW_UNSIGNED = "santa/northpolesec/common/verifyinghasher/testdata/hw_unsigned"
SIGNED_WITH_TEAMID = "santa/northpolesec/common/testdata/signed-with-teamid"
QT_DYLIB = f"{QT_CONCURRENT}/Versions/A/QtConcurrent"
JAVA_CLASS = "registry/debian/libcommons-cli-java/1.5.0-1/org/apache/commons/cli/OptionValidator.class"

NOBODY = 65534
HANG_DEADLINE = 60.0  # seconds: far beyond what any of these walks needs, far below pytest's 300 s


# --- independent expectations ----------------------------------------------------------------


def sha256_of(path: str | bytes | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def expected_bundle_hash(hashes: Iterable[str]) -> str | None:
    """Spec §6.5 with nothing but hashlib: SHA-256 of the sorted, distinct lowercase hex digests."""
    unique = sorted({h.lower() for h in hashes})
    if not unique:
        return None
    return hashlib.sha256("".join(unique).encode("ascii")).hexdigest()


def manifest_bundle(manifest: dict[str, Any], root: str) -> dict[str, Any]:
    matches = [b for b in manifest["bundles"] if b["bundle_root"] == root]
    assert len(matches) == 1, root
    entry: dict[str, Any] = matches[0]
    return entry


def manifest_file(manifest: dict[str, Any], path: str) -> dict[str, Any]:
    matches = [f for f in manifest["files"] if f["path"] == path]
    assert len(matches) == 1, path
    entry: dict[str, Any] = matches[0]
    return entry


def relative_binaries(tree: santacore.TreeHash, root: str | os.PathLike[str]) -> dict[str, str]:
    """{path relative to root: sha256} of every binary reported (duplicates included)."""
    out = {os.path.relpath(b.path, os.fspath(root)): b.sha256 for b in tree.binaries}
    assert len(out) == len(tree.binaries), "a path was reported twice"
    return out


def assert_tree(
    tree: santacore.TreeHash, root: str | os.PathLike[str], binaries: dict[str, str], *, skipped_ok: bool = False
) -> None:
    """The tree reports exactly `binaries` (relative path -> sha256), each digest matching the file on disk,
    and the hash and count that follow from them."""
    assert relative_binaries(tree, root) == binaries
    for b in tree.binaries:
        assert b.sha256 == sha256_of(os.fsencode(b.path))
        assert b.size == os.stat(os.fsencode(b.path)).st_size
        assert b.macho.is_executable
    assert tree.binary_count == len(set(binaries.values()))
    assert tree.bundle_hash == expected_bundle_hash(binaries.values())
    assert tree.stats.bytes_hashed == sum(b.size for b in tree.binaries)
    if not skipped_ok:
        assert [(s.path, s.reason) for s in tree.skipped] == []


def hash_tree_with_deadline(path: str | os.PathLike[str], **kwargs: Any) -> santacore.TreeHash:
    """hash_tree in a worker thread: a walk that blocks (e.g. opening a FIFO) fails the test instead of hanging.

    pytest-timeout's signal method cannot interrupt a call that waits inside Rust with the GIL released.
    """
    result: list[santacore.TreeHash] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(santacore.hash_tree(path, **kwargs))
        except BaseException as e:
            errors.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_DEADLINE)
    assert not worker.is_alive(), f"hash_tree({path!r}) still running after {HANG_DEADLINE} s: it hangs"
    if errors:
        raise errors[0]
    return result[0]


# --- building trees ----------------------------------------------------------------------------


def make_writable(root: str | bytes | os.PathLike[str]) -> None:
    """Corpus files are read-only; give copies ordinary modes (dirs 755, files 644 or 755)."""
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o111 else 0o644)
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755)


def copy_tree(corpus: Path, rel: str, dest: Path) -> Path:
    shutil.copytree(corpus / rel, dest, symlinks=True)
    make_writable(dest)
    return dest


def copy_file(corpus: Path, rel: str, dest: Path | bytes) -> None:
    destination = os.fsencode(dest)
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    shutil.copyfile(corpus / rel, destination)
    os.chmod(destination, 0o755)


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Delete a tree of any depth without building long paths or holding one descriptor per level.

    Each round opens one subdirectory, moves its children up into `path` and removes it, so a chain
    deeper than PATH_MAX (or than Python's recursion limit, which shutil.rmtree hits) is flattened.
    """
    if not os.path.lexists(path):
        return
    if not os.path.isdir(path) or os.path.islink(path):
        os.unlink(path)
        return
    os.chmod(path, 0o700)
    top = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    moved = 0
    try:
        while names := os.listdir(top):
            for name in names:
                st = os.stat(name, dir_fd=top, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    os.unlink(name, dir_fd=top)
                    continue
                os.chmod(name, 0o700, dir_fd=top)
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
                try:
                    for child in os.listdir(sub):
                        moved += 1
                        os.rename(child, f".remove-{moved}", src_dir_fd=sub, dst_dir_fd=top)
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)
    os.rmdir(path)


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A fresh folder that every user can traverse (tmp_path's parents are 0700 when running as root)."""
    base = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
    path = Path(tempfile.mkdtemp(prefix="santacore-edge-", dir=base))
    try:
        path.chmod(0o755)
        for parent in path.parents:
            assert parent.stat().st_mode & 0o001, f"{parent} is not traversable by other users"
        yield path
    finally:
        remove_tree(path)


# --- symlinks ------------------------------------------------------------------------------------


def test_symlinks_inside_and_outside_a_bundle_change_nothing(
    corpus: Path, manifest: dict[str, Any], tmp_path: Path
) -> None:
    entry = manifest_bundle(manifest, MUJOCO_APP)
    plain = copy_tree(corpus, MUJOCO_APP, tmp_path / "plain.app")
    linked = copy_tree(corpus, MUJOCO_APP, tmp_path / "linked.app")
    outside = tmp_path / "outside"
    copy_file(corpus, NINJA, outside / "ninja")
    main = linked / entry["main_executable"]

    links: dict[Path, str | Path] = {
        linked / "Contents/MacOS/alias": "mjpython",  # relative link to a file
        linked / "Contents/absolute-alias": main,  # absolute link to a file
        linked / "Contents/Frameworks": "MacOS",  # relative link to a directory
        linked / "Contents/Resources/all": linked,  # absolute link to the bundle root
        linked / "Contents/MacOS/up": "..",  # a directory link to its own parent
        linked / "Contents/MacOS/here": ".",  # ... and to its own directory
        linked / "Contents/Resources/loop-a": "loop-b",  # a -> b -> a
        linked / "Contents/Resources/loop-b": "loop-a",
        linked / "Contents/MacOS/dangling": "does-not-exist",
        linked / "Contents/MacOS/outside-exe": outside / "ninja",  # an executable outside the bundle
        linked / "Contents/outside-dir": outside,  # a folder outside the bundle holding one
    }
    for link, target in links.items():
        os.symlink(target, link)

    expected = entry["binaries"]
    plain_tree = hash_tree_with_deadline(plain)
    linked_tree = hash_tree_with_deadline(linked)
    assert_tree(plain_tree, plain, expected)
    assert_tree(linked_tree, linked, expected)
    assert linked_tree.bundle_hash == plain_tree.bundle_hash == entry["bundle_hash"]
    assert linked_tree.binary_count == entry["binary_count"]

    assert plain_tree.stats.symlinks == entry["tree"]["symlinks"] == 0
    assert linked_tree.stats.symlinks == len(links)
    assert linked_tree.stats.regular_files == plain_tree.stats.regular_files == entry["tree"]["regular_files"]
    assert linked_tree.stats.directories == plain_tree.stats.directories
    assert linked_tree.stats.special_files == 0

    # The Santa-facing entry point resolves the same root and gets the same answer.
    resolved = santacore.hash_bundle(main)
    assert resolved.bundle.path == os.fspath(linked)
    assert resolved.bundle.bundle_id == entry["bundle_id"]
    assert resolved.bundle_hash == entry["bundle_hash"]
    assert resolved.binary_count == entry["binary_count"]


def test_framework_symlinks_are_not_hashed(corpus: Path, manifest: dict[str, Any], tmp_path: Path) -> None:
    """QtConcurrent.framework with its usual symlinks restored: still no executable, so no hash."""
    entry = manifest_bundle(manifest, QT_CONCURRENT)
    framework = copy_tree(corpus, QT_CONCURRENT, tmp_path / "QtConcurrent.framework")
    plain_copies = len(os.listdir(framework / "Resources"))
    shutil.rmtree(framework / "Resources")  # the wheel's plain copy of Versions/A/Resources
    os.symlink("A", framework / "Versions/Current")
    os.symlink("Versions/Current/QtConcurrent", framework / "QtConcurrent")
    os.symlink("Versions/Current/Resources", framework / "Resources")

    tree = hash_tree_with_deadline(framework)
    assert_tree(tree, framework, {})
    assert tree.bundle_hash is None is entry["bundle_hash"]
    assert tree.binary_count == entry["binary_count"] == 0
    assert tree.stats.symlinks == 3
    assert tree.stats.macho_files == sum(entry["tree"]["macho_by_first_filetype"].values()) == 1  # the dylib
    assert tree.stats.regular_files == entry["tree"]["regular_files"] - plain_copies

    resolved = santacore.hash_bundle(framework)
    assert resolved.bundle.path == os.fspath(framework)
    assert resolved.bundle.bundle_id == entry["bundle_id"]
    assert resolved.bundle_hash is None
    assert resolved.binary_count == 0


def test_framework_executable_behind_symlinks_counts_once(corpus: Path, tmp_path: Path) -> None:
    framework = copy_tree(corpus, QT_CONCURRENT, tmp_path / "QtConcurrent.framework")
    copy_file(corpus, NINJA, framework / "Versions/A/Helpers/ninja")
    os.symlink("A", framework / "Versions/Current")
    os.symlink("Versions/Current/Helpers", framework / "Helpers")
    os.symlink("Versions/Current/Helpers/ninja", framework / "ninja")

    tree = hash_tree_with_deadline(framework)
    assert_tree(tree, framework, {"Versions/A/Helpers/ninja": sha256_of(corpus / NINJA)})
    assert tree.binary_count == 1
    assert tree.stats.symlinks == 3


# --- hard links and copies -----------------------------------------------------------------------


def test_hard_links_and_copies_count_once(corpus: Path, manifest: dict[str, Any], tmp_path: Path) -> None:
    entry = manifest_bundle(manifest, TERMINAL_NOTIFIER_APP)
    app = copy_tree(corpus, TERMINAL_NOTIFIER_APP, tmp_path / "terminal-notifier.app")
    main = app / entry["main_executable"]
    os.link(main, app / "Contents/MacOS/hard-link")
    os.link(main, app / "Contents/Resources/.hidden-hard-link")
    shutil.copyfile(main, app / "Contents/Resources/en.lproj/copy")
    outside = tmp_path / "ninja"
    copy_file(corpus, NINJA, outside)
    os.makedirs(app / "Contents/Helpers")
    os.link(outside, app / "Contents/Helpers/ninja")  # a hard link whose other name lies outside

    main_sha = entry["binaries"][entry["main_executable"]]
    ninja_sha = manifest_file(manifest, NINJA)["sha256"]
    tree = hash_tree_with_deadline(app)
    assert_tree(
        tree,
        app,
        {
            entry["main_executable"]: main_sha,
            "Contents/MacOS/hard-link": main_sha,
            "Contents/Resources/.hidden-hard-link": main_sha,
            "Contents/Resources/en.lproj/copy": main_sha,
            "Contents/Helpers/ninja": ninja_sha,
        },
    )
    assert tree.binary_count == 2
    assert tree.bundle_hash == expected_bundle_hash([main_sha, ninja_sha])
    assert tree.stats.regular_files == entry["tree"]["regular_files"] + 4

    # Without the outside executable the hash is the manifest's: links and copies add nothing.
    os.unlink(app / "Contents/Helpers/ninja")
    again = hash_tree_with_deadline(app)
    assert again.bundle_hash == entry["bundle_hash"]
    assert again.binary_count == entry["binary_count"] == 1
    assert len(again.binaries) == 4


# --- empty files, FIFOs, sockets -------------------------------------------------------------------


def test_empty_files_fifos_and_sockets(
    corpus: Path, manifest: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = manifest_bundle(manifest, BUNDLE_EXAMPLE_APP)
    app = copy_tree(corpus, BUNDLE_EXAMPLE_APP, tmp_path / "BundleExample.app")
    write_file(app / "Contents/MacOS/empty", b"")
    write_file(app / "Contents/.empty-hidden", b"")
    os.chmod(app / "Contents/MacOS/empty", 0o755)
    os.mkfifo(app / "Contents/MacOS/fifo")
    os.mkfifo(app / "Contents/Resources-fifo")
    monkeypatch.chdir(app / "Contents/MacOS")  # AF_UNIX paths are limited to ~108 bytes: bind a short name
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind("socket")
        assert stat.S_ISSOCK(os.lstat(app / "Contents/MacOS/socket").st_mode)

        tree = hash_tree_with_deadline(app)
        assert_tree(tree, app, entry["binaries"])
        assert tree.bundle_hash == entry["bundle_hash"]
        assert tree.binary_count == entry["binary_count"]
        assert tree.stats.special_files == 3  # two FIFOs and the socket, listed but never opened
        assert tree.stats.regular_files == entry["tree"]["regular_files"] + 2  # the empty files
        assert tree.stats.macho_files == 1
        assert tree.stats.symlinks == 0

        # Sniffing a FIFO or an empty file directly returns at once: not Mach-O.
        for name in ("fifo", "empty"):
            info = santacore.sniff_macho(app / "Contents/MacOS" / name)
            assert not info.is_macho
            assert not info.is_executable
    finally:
        server.close()


# --- permissions -----------------------------------------------------------------------------------

# Run in a fresh interpreter: import santacore, then (as root) drop every privilege before walking.
_UNPRIVILEGED_CHILD = """
import json, os, sys
import santacore

root, drop, locked = sys.argv[1], sys.argv[2] == "drop", sys.argv[3]
if drop:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    assert (os.getuid(), os.geteuid(), os.getgid(), os.getegid()) == (NOBODY,) * 4
tree = santacore.hash_tree(root, threads=2)
out = {
    "euid": os.geteuid(),
    "bundle_hash": tree.bundle_hash,
    "binary_count": tree.binary_count,
    "binaries": [[b.path, b.sha256] for b in tree.binaries],
    "skipped": [[s.path, s.reason] for s in tree.skipped],
    "regular_files": tree.stats.regular_files,
    "directories": tree.stats.directories,
}
try:
    santacore.hash_tree(locked)
except OSError as e:
    out["locked_root_error"] = [type(e).__name__, e.errno, e.filename]
print(json.dumps(out))
""".replace("NOBODY", str(NOBODY))


def test_unreadable_files_and_directories_are_skipped(corpus: Path, manifest: dict[str, Any], public_tmp: Path) -> None:
    entry = manifest_bundle(manifest, BUNDLE_EXAMPLE_APP)
    app = copy_tree(corpus, BUNDLE_EXAMPLE_APP, public_tmp / "BundleExample.app")
    secret = app / "Contents/MacOS/secret"  # an unreadable executable
    copy_file(corpus, SIGNED_WITH_TEAMID, secret)
    locked = app / "Contents/Locked"  # an unlistable folder holding an executable
    copy_file(corpus, HW_UNSIGNED, locked / "hw_unsigned")
    no_search = app / "Contents/NoSearch"  # listable (r) but not searchable (no x): its files cannot be opened
    copy_file(corpus, NINJA, no_search / "ninja")
    readable = app / "Contents/Readable/ninja"  # control: the same executable elsewhere, readable
    copy_file(corpus, NINJA, readable)
    secret.chmod(0o000)
    locked.chmod(0o000)
    no_search.chmod(0o444)

    as_root = os.geteuid() == 0
    proc = subprocess.run(
        [sys.executable, "-c", _UNPRIVILEGED_CHILD, os.fspath(app), "drop" if as_root else "keep", os.fspath(locked)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=public_tmp,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    assert out["euid"] != 0

    ninja_sha = sha256_of(corpus / NINJA)
    main_sha = entry["binaries"][entry["main_executable"]]
    binaries = {os.path.relpath(path, app): sha for path, sha in out["binaries"]}
    assert binaries == {entry["main_executable"]: main_sha, "Contents/Readable/ninja": ninja_sha}
    assert out["binary_count"] == 2
    assert out["bundle_hash"] == expected_bundle_hash([main_sha, ninja_sha])

    skipped = {os.path.relpath(path, app): reason for path, reason in out["skipped"]}
    assert sorted(skipped) == ["Contents/Locked", "Contents/MacOS/secret", "Contents/NoSearch/ninja"]
    for path, reason in skipped.items():
        assert "Permission denied" in reason, (path, reason)
    assert out["locked_root_error"] == ["PermissionError", errno.EACCES, os.fspath(locked)]


# --- truncated and corrupted headers ---------------------------------------------------------------


def _set_fat_records(data: bytes, **fields: int) -> bytes:
    """Rewrite fields (offset, size) of every fat_arch record of a big-endian fat header."""
    out = bytearray(data)
    (nfat,) = struct.unpack_from(">I", out, 4)
    positions = {"offset": 8, "size": 12}
    for i in range(nfat):
        for name, value in fields.items():
            struct.pack_into(">I", out, 8 + 20 * i + positions[name], value)
    return bytes(out)


def _corrupt_files(corpus: Path) -> dict[str, tuple[bytes, bool]]:
    """name -> (content, starts with a fat magic). None of these is an executable (spec §6.4)."""
    thin = (corpus / BUNDLE_EXAMPLE_EXE).read_bytes()
    fat = (corpus / NINJA).read_bytes()
    assert thin[:4] == struct.pack("<I", 0xFEEDFACF)
    assert fat[:4] == struct.pack(">I", 0xCAFEBABE)
    (nfat,) = struct.unpack_from(">I", fat, 4)
    assert nfat == 2
    return {
        "thin-27-bytes": (thin[:27], False),  # shorter than a mach_header
        "fat-27-bytes": (fat[:27], False),
        "fat-4096-bytes": (fat[:4096], True),  # fat table intact, every slice now past EOF
        "fat-nfat-0xffffffff": (fat[:4] + struct.pack(">I", 0xFFFFFFFF) + fat[8:], True),
        "fat-nfat-65": (fat[:4] + struct.pack(">I", 65) + fat[8:], True),  # over kMaxFatArchCount
        "fat-nfat-0": (fat[:4] + struct.pack(">I", 0) + fat[8:], True),
        "fat-offset-past-eof": (_set_fat_records(fat, offset=len(fat) + 4096), True),
        "fat-offset-plus-size-wraps": (_set_fat_records(fat, offset=0xFFFFF000, size=0x2000), True),
        "fat-slice-too-small": (_set_fat_records(fat, size=27), True),
        "fat-magic-64": (struct.pack(">I", 0xCAFEBABF) + fat[4:], False),  # FAT_MAGIC_64 is not supported
        "java.class": ((corpus / JAVA_CLASS).read_bytes(), True),  # 0xCAFEBABE, "51 architectures"
    }


@pytest.mark.parametrize(
    "name",
    [
        "thin-27-bytes",
        "fat-27-bytes",
        "fat-4096-bytes",
        "fat-nfat-0xffffffff",
        "fat-nfat-65",
        "fat-nfat-0",
        "fat-offset-past-eof",
        "fat-offset-plus-size-wraps",
        "fat-slice-too-small",
        "fat-magic-64",
        "java.class",
    ],
)
def test_corrupted_header_is_not_macho(corpus: Path, tmp_path: Path, name: str) -> None:
    content, fat_container = _corrupt_files(corpus)[name]
    path = tmp_path / name
    path.write_bytes(content)
    info = santacore.sniff_macho(path)
    assert not info.is_macho
    assert not info.is_executable
    assert info.slices == []
    assert info.fat_container is fat_container
    from_bytes = santacore.sniff_macho_bytes(content)
    assert (from_bytes.is_macho, from_bytes.fat_container) == (False, fat_container)


def test_corrupted_headers_in_a_tree_are_ignored(corpus: Path, manifest: dict[str, Any], tmp_path: Path) -> None:
    assert not manifest_file(manifest, JAVA_CLASS)["is_macho"]
    entry = manifest_bundle(manifest, BUNDLE_EXAMPLE_APP)
    app = copy_tree(corpus, BUNDLE_EXAMPLE_APP, tmp_path / "BundleExample.app")
    corrupt = _corrupt_files(corpus)
    for name, (content, _fat) in corrupt.items():
        write_file(app / "Contents/MacOS" / name, content)

    tree = hash_tree_with_deadline(app)
    assert_tree(tree, app, entry["binaries"])  # none counted, none skipped
    assert tree.bundle_hash == entry["bundle_hash"]
    assert tree.stats.macho_files == 1
    assert tree.stats.regular_files == entry["tree"]["regular_files"] + len(corrupt)


def test_truncated_thin_executable_keeps_its_header(corpus: Path, tmp_path: Path) -> None:
    """A thin Mach-O is recognised from its header alone (spec §6.4: [N] reads min(size, 4096) bytes),
    so a thin executable cut to 4096 or 28 bytes still counts, with the digest of what is left."""
    thin = (corpus / BUNDLE_EXAMPLE_EXE).read_bytes()
    assert len(thin) > 4096
    write_file(tmp_path / "root/cut-4096", thin[:4096])
    write_file(tmp_path / "root/cut-28", thin[:28])
    write_file(tmp_path / "root/cut-27", thin[:27])
    tree = hash_tree_with_deadline(tmp_path / "root")
    assert_tree(
        tree,
        tmp_path / "root",
        {"cut-4096": hashlib.sha256(thin[:4096]).hexdigest(), "cut-28": hashlib.sha256(thin[:28]).hexdigest()},
    )


# --- non-UTF-8 names -------------------------------------------------------------------------------


def test_non_utf8_names(corpus: Path, tmp_path: Path) -> None:
    root = os.path.join(os.fsencode(tmp_path), b"root\xff.app")
    exe = os.path.join(root, b"bin\xff\xfe")
    nested = os.path.join(root, b"dir\xe9\x80", b"x\x80")
    plain = os.path.join(root, b"Info\xfe.plist")
    copy_file(corpus, BUNDLE_EXAMPLE_EXE, exe)
    copy_file(corpus, NINJA, nested)
    write_file(Path(os.fsdecode(plain)), b"<plist/>")

    tree = hash_tree_with_deadline(os.fsdecode(root))
    assert tree.root == os.fsdecode(root)
    found = {os.fsencode(b.path): b.sha256 for b in tree.binaries}
    assert found == {exe: sha256_of(exe), nested: sha256_of(nested)}
    assert tree.binary_count == 2
    assert tree.bundle_hash == expected_bundle_hash(found.values())
    assert tree.skipped == []
    assert tree.stats.regular_files == 3
    for b in tree.binaries:
        assert os.path.isfile(os.fsencode(b.path))
        assert santacore.sniff_macho(b.path).is_executable


# --- deep trees ----------------------------------------------------------------------------------


def _build_chain(base: str, name: str, depth: int, files: dict[int, bytes]) -> list[str]:
    """Create base/name/name/... `depth` levels deep with fd-relative calls (no long path is ever built);
    files[k] is written as `exe-k` in level k (0 = base). Returns the full path of every level."""
    levels = [base]
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth + 1):
            if level in files:
                out = os.open(f"exe-{level}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755, dir_fd=fd)
                try:
                    os.write(out, files[level])
                finally:
                    os.close(out)
            if level == depth:
                break
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            levels.append(f"{levels[-1]}/{name}")
    finally:
        os.close(fd)
    return levels


DEPTH = 2000


def test_deep_chain_within_path_max_is_walked(corpus: Path, public_tmp: Path) -> None:
    """2,000 levels of 'd' under a short root: the deepest file path stays below PATH_MAX, all is found."""
    shallow, deep = (corpus / BUNDLE_EXAMPLE_EXE).read_bytes(), (corpus / NINJA).read_bytes()
    root = public_tmp / "chain"
    root.mkdir()
    try:
        levels = _build_chain(os.fspath(root), "d", DEPTH, {10: shallow, DEPTH: deep})
        deep_path = f"{levels[DEPTH]}/exe-{DEPTH}"
        assert len(os.fsencode(deep_path)) < os.pathconf(root, "PC_PATH_MAX")  # precondition of this test

        tree = hash_tree_with_deadline(root)
        assert {b.path: b.sha256 for b in tree.binaries} == {
            f"{levels[10]}/exe-10": hashlib.sha256(shallow).hexdigest(),
            deep_path: hashlib.sha256(deep).hexdigest(),
        }
        assert tree.binary_count == 2
        assert tree.bundle_hash == expected_bundle_hash(
            [hashlib.sha256(shallow).hexdigest(), hashlib.sha256(deep).hexdigest()]
        )
        assert tree.skipped == []
        assert tree.stats.directories == DEPTH + 1
        assert tree.stats.regular_files == 2
    finally:
        remove_tree(root)
    assert not root.exists()


def test_deep_chain_beyond_path_max_is_walked(corpus: Path, tmp_path: Path) -> None:
    """2,000 levels of 'dd' (6,000+ bytes of path, past PATH_MAX): the walk opens each folder relative
    to its parent and hashing opens over-long paths one component at a time, so every
    executable is found and hashed, at any depth, and nothing is skipped."""
    shallow, deep = (corpus / BUNDLE_EXAMPLE_EXE).read_bytes(), (corpus / NINJA).read_bytes()
    root = tmp_path / "chain"
    root.mkdir()
    try:
        levels = _build_chain(os.fspath(root), "dd", DEPTH, {10: shallow, 1500: deep, DEPTH: deep})
        path_max = os.pathconf(root, "PC_PATH_MAX")
        too_long = next(k for k, level in enumerate(levels) if len(os.fsencode(level)) >= path_max)
        assert 10 < too_long < 1500

        tree = hash_tree_with_deadline(root)
        shallow_sha, deep_sha = hashlib.sha256(shallow).hexdigest(), hashlib.sha256(deep).hexdigest()
        assert {b.path: b.sha256 for b in tree.binaries} == {
            f"{levels[10]}/exe-10": shallow_sha,
            f"{levels[1500]}/exe-1500": deep_sha,
            f"{levels[DEPTH]}/exe-{DEPTH}": deep_sha,
        }
        assert tree.binary_count == 2
        assert tree.bundle_hash == expected_bundle_hash([shallow_sha, deep_sha])
        assert tree.skipped == []
        assert tree.stats.directories == DEPTH + 1
        assert tree.stats.regular_files == 3
    finally:
        remove_tree(root)
    assert not root.exists()


# --- files changing while hashed ---------------------------------------------------------------------

PADDED_SIZE = 200 * 1024 * 1024


@pytest.fixture
def padded_app(corpus: Path, tmp_path: Path) -> tuple[Path, Path]:
    """BundleExample.app plus Contents/MacOS/big: ninja followed by a sparse hole up to 200 MiB
    (still a valid fat MH_EXECUTE: its slices lie at the start), slow enough to hash to race against."""
    app = copy_tree(corpus, BUNDLE_EXAMPLE_APP, tmp_path / "BundleExample.app")
    big = app / "Contents/MacOS/big"
    copy_file(corpus, NINJA, big)
    os.truncate(big, PADDED_SIZE)
    # An old mtime, so that a write during hashing changes it even on coarse-grained clocks.
    an_hour_ago = time.time() - 3600
    os.utime(big, (an_hour_ago, an_hour_ago))
    assert santacore.sniff_macho(big).is_executable
    return app, big


def assert_changed_reason(reason: str, while_hashing: str) -> None:
    """The change lands either while the file is hashed or between its header being sniffed
    and its hashing starting; both are reported, with their own words."""
    assert while_hashing in reason or reason.startswith("changed between listing and hashing"), reason


def _run_against(app: Path, action: Callable[[santacore.Progress, threading.Event], None]) -> santacore.TreeHash:
    """hash_tree(app) while `action(progress, done)` runs in a thread; `done` is set when hashing returned."""
    progress = santacore.Progress()
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action(progress, done)
        except BaseException as e:
            errors.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        tree = hash_tree_with_deadline(app, progress=progress, threads=2)
    finally:
        done.set()
        worker.join(HANG_DEADLINE)
    assert not worker.is_alive()
    if errors:
        raise errors[0]
    return tree


def _wait_for_bytes(progress: santacore.Progress, threshold: int, done: threading.Event) -> None:
    """Wait until hashing has read `threshold` bytes: only the big file is that large, so it is being read."""
    while progress.bytes_hashed < threshold:
        assert not done.is_set(), "hashing finished before the big file was half read"
        time.sleep(0.0001)


def test_file_growing_while_hashed_is_skipped(
    corpus: Path, manifest: dict[str, Any], padded_app: tuple[Path, Path]
) -> None:
    entry = manifest_bundle(manifest, BUNDLE_EXAMPLE_APP)
    app, big = padded_app
    appending = threading.Event()
    stop = threading.Event()

    def writer() -> None:
        with open(big, "ab", buffering=0) as f:
            while not stop.is_set():  # from before the walk starts until hash_tree has returned
                f.write(b"\0" * 4096)
                appending.set()
                time.sleep(0.0005)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        assert appending.wait(10)
        tree = hash_tree_with_deadline(app, threads=2)
    finally:
        stop.set()
        thread.join(HANG_DEADLINE)
    assert not thread.is_alive()

    assert_tree(tree, app, entry["binaries"], skipped_ok=True)
    assert tree.bundle_hash == entry["bundle_hash"]
    assert [s.path for s in tree.skipped] == [os.fspath(big)]
    assert_changed_reason(tree.skipped[0].reason, "changed size while being hashed")

    # Once the writer has stopped the same file hashes to what hashlib says.
    settled = hash_tree_with_deadline(app)
    big_sha = sha256_of(big)
    assert_tree(settled, app, {**entry["binaries"], "Contents/MacOS/big": big_sha})
    assert settled.bundle_hash == expected_bundle_hash([*entry["binaries"].values(), big_sha])


def test_file_shrinking_while_hashed_is_skipped(manifest: dict[str, Any], padded_app: tuple[Path, Path]) -> None:
    entry = manifest_bundle(manifest, BUNDLE_EXAMPLE_APP)
    app, big = padded_app

    def shrink(progress: santacore.Progress, done: threading.Event) -> None:
        _wait_for_bytes(progress, 8 << 20, done)
        os.truncate(big, 1 << 20)

    tree = _run_against(app, shrink)
    assert_tree(tree, app, entry["binaries"], skipped_ok=True)
    assert [s.path for s in tree.skipped] == [os.fspath(big)]
    assert_changed_reason(tree.skipped[0].reason, "changed size while being hashed")


def test_file_rewritten_in_place_while_hashed_is_skipped(
    manifest: dict[str, Any], padded_app: tuple[Path, Path]
) -> None:
    entry = manifest_bundle(manifest, BUNDLE_EXAMPLE_APP)
    app, big = padded_app

    def rewrite(progress: santacore.Progress, done: threading.Event) -> None:
        _wait_for_bytes(progress, 8 << 20, done)
        fd = os.open(big, os.O_WRONLY)
        try:
            os.pwrite(fd, b"rewritten", PADDED_SIZE // 2)  # same size, new bytes, new mtime
        finally:
            os.close(fd)

    tree = _run_against(app, rewrite)
    assert_tree(tree, app, entry["binaries"], skipped_ok=True)
    assert [s.path for s in tree.skipped] == [os.fspath(big)]
    assert_changed_reason(tree.skipped[0].reason, "modified while being hashed")


def test_file_vanishing_while_hashed_is_skipped(manifest: dict[str, Any], padded_app: tuple[Path, Path]) -> None:
    entry = manifest_bundle(manifest, BUNDLE_EXAMPLE_APP)
    app, big = padded_app

    def vanish(progress: santacore.Progress, done: threading.Event) -> None:
        _wait_for_bytes(progress, 8 << 20, done)
        os.unlink(big)

    tree = _run_against(app, vanish)
    assert not big.exists()
    assert [s.path for s in tree.skipped] == [os.fspath(big)]
    assert_changed_reason(tree.skipped[0].reason, "vanished (deleted) while being hashed")
    assert_tree(tree, app, entry["binaries"], skipped_ok=True)


# --- thread counts and BLAKE3 ------------------------------------------------------------------------


def _many_files_tree(corpus: Path, root: Path) -> dict[str, str]:
    """500 small non-executables over 25 folders, plus executables (some duplicated). Returns the binaries."""
    plist = (corpus / BUNDLE_EXAMPLE_APP / "Contents/Info.plist").read_bytes()
    thin = (corpus / BUNDLE_EXAMPLE_EXE).read_bytes()
    for i in range(500):
        kind = i % 5
        content = {
            0: plist,
            1: hashlib.sha256(str(i).encode()).digest() * (i % 7 + 1),
            2: b"",
            3: thin[:27],  # too short for a Mach-O header
            4: (corpus / QT_DYLIB).read_bytes()[:4096] if i % 10 == 4 else plist[: i % 100],
        }[kind]
        write_file(root / f"d{i % 25}" / f"f{i:03}", content)
    executables = {
        "d0/BundleExample": BUNDLE_EXAMPLE_EXE,
        "d3/sub/BundleExample-copy": BUNDLE_EXAMPLE_EXE,
        "d7/ninja": NINJA,
        "d11/.hidden/mjpython": f"{MUJOCO_APP}/Contents/MacOS/mjpython",
        "d13/terminal-notifier": f"{TERMINAL_NOTIFIER_APP}/Contents/MacOS/terminal-notifier",
        "d17/hw_unsigned": HW_UNSIGNED,
        "d19/signed-with-teamid": SIGNED_WITH_TEAMID,
        "d23/QtConcurrent": QT_DYLIB,  # a dylib: not counted
    }
    for rel, src in executables.items():
        copy_file(corpus, src, root / rel)
    os.link(root / "d7/ninja", root / "d24/ninja-hard-link")
    return {rel: sha256_of(corpus / src) for rel, src in executables.items() if src != QT_DYLIB} | {
        "d24/ninja-hard-link": sha256_of(corpus / NINJA)
    }


def _summary(tree: santacore.TreeHash) -> tuple[object, ...]:
    s = tree.stats
    return (
        tree.bundle_hash,
        tree.binary_count,
        [(b.path, b.sha256, b.size, b.architectures) for b in tree.binaries],
        [(p.path, p.reason) for p in tree.skipped],
        (s.directories, s.regular_files, s.symlinks, s.special_files, s.macho_files, s.bytes_hashed),
    )


def test_thread_counts_give_identical_results(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "many"
    expected = _many_files_tree(corpus, root)
    results = {threads: hash_tree_with_deadline(root, threads=threads) for threads in (1, 2, 8, None)}
    for tree in results.values():
        assert_tree(tree, root, expected)
        assert tree.binary_count == 6
        assert tree.stats.regular_files == 500 + 9
    baseline = _summary(results[1])
    for threads, tree in results.items():
        assert _summary(tree) == baseline, threads


def test_blake3_matches_the_blake3_package(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "many"
    expected = _many_files_tree(corpus, root)
    with_blake3 = hash_tree_with_deadline(root, blake3=True, threads=2)
    without = hash_tree_with_deadline(root, threads=2)
    assert_tree(with_blake3, root, expected)
    assert len(with_blake3.binaries) == len(expected) == 8
    for b in with_blake3.binaries:
        assert b.blake3 == blake3_pkg.blake3(Path(b.path).read_bytes()).hexdigest()
    assert all(b.blake3 is None for b in without.binaries)
    assert with_blake3.bundle_hash == without.bundle_hash


# --- unusable roots ----------------------------------------------------------------------------------


def test_missing_root_raises_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError) as excinfo:
        santacore.hash_tree(missing)
    assert excinfo.value.errno == errno.ENOENT
    assert excinfo.value.filename == os.fspath(missing)

    dangling = tmp_path / "dangling"
    os.symlink("missing", dangling)
    with pytest.raises(FileNotFoundError) as excinfo:
        santacore.hash_tree(dangling)
    assert excinfo.value.filename == os.fspath(dangling)


def test_regular_file_root_raises_not_a_directory(corpus: Path, tmp_path: Path) -> None:
    exe = tmp_path / "ninja"
    copy_file(corpus, NINJA, exe)
    with pytest.raises(NotADirectoryError) as excinfo:
        santacore.hash_tree(exe)
    assert excinfo.value.errno == errno.ENOTDIR
    assert excinfo.value.filename == os.fspath(exe)
