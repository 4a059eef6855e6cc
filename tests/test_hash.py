"""The engine's read path (rust/hash.rs): files that shrink under the memory map are
reported, never crash the process, whoever owns the SIGBUS handler. And its timing: hashing
overlaps the walk, and the timing fields say so."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import santacore

BIG = 320 << 20  # large enough that hashing takes ~0.2 s, so the shrink lands mid-file


def _big_executable(path: Path) -> None:
    header = struct.pack("<8I", 0xFEEDFACF, 0x0100000C, 0, 2, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(BIG)  # sparse zeros: quick to make, real pages to map


def _shrink_once_hashing_starts(path: Path, progress: santacore.Progress) -> threading.Thread:
    def shrink() -> None:
        deadline = time.monotonic() + 30
        while progress.bytes_hashed == 0 and time.monotonic() < deadline:
            time.sleep(0.0005)
        os.truncate(path, 64 * 1024)

    t = threading.Thread(target=shrink)
    t.start()
    return t


def test_file_shrinking_while_hashed_is_skipped_not_a_crash(tmp_path: Path) -> None:
    exe = tmp_path / "shrinks"
    _big_executable(exe)
    progress = santacore.Progress()
    shrinker = _shrink_once_hashing_starts(exe, progress)
    tree = santacore.hash_tree(tmp_path, threads=1, progress=progress)
    shrinker.join()
    assert tree.binaries == []
    assert tree.bundle_hash is None
    assert [(s.path, s.reason.split(":")[0]) for s in tree.skipped] == [(str(exe), "changed size while being hashed")]


SHRINK_SCRIPT = textwrap.dedent(
    """
    import faulthandler, os, struct, sys, threading, time
    import santacore
    if sys.argv[2] == "faulthandler-after-import":
        santacore.hash_tree(os.path.dirname(sys.argv[1]))  # our SIGBUS guard is installed now
        faulthandler.enable()                               # ... and then replaced
    path = sys.argv[1]
    with open(path, "wb") as f:
        f.write(struct.pack("<8I", 0xFEEDFACF, 0x0100000C, 0, 2, 0, 0, 0, 0))
        f.truncate(int(sys.argv[3]))
    progress = santacore.Progress()
    def shrink():
        while progress.bytes_hashed == 0:
            time.sleep(0.0005)
        os.truncate(path, 65536)
    t = threading.Thread(target=shrink); t.start()
    tree = santacore.hash_tree(os.path.dirname(path), threads=1, progress=progress)
    t.join()
    print(len(tree.binaries), [s.reason for s in tree.skipped])
    """
)


def test_shrink_is_caught_with_or_without_faulthandler(tmp_path: Path) -> None:
    for mode in ("plain", "faulthandler-after-import"):
        exe = tmp_path / mode / "shrinks"
        exe.parent.mkdir()
        done = subprocess.run(
            [sys.executable, "-c", SHRINK_SCRIPT, str(exe), mode, str(BIG)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (mode, done.returncode, done.stderr[-2000:])
        assert done.stdout.startswith("0 ['changed size while being hashed"), (mode, done.stdout)


def test_foreign_sigbus_still_kills_the_process() -> None:
    """Our guard only handles faults in its own windows; any other SIGBUS ends the process
    exactly as it would without santacore."""
    script = "import os, signal, santacore, tempfile\n"
    script += "santacore.hash_tree(tempfile.gettempdir(), threads=1)\n"
    script += "os.kill(os.getpid(), signal.SIGBUS)\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -7  # SIGBUS


def test_hashing_overlaps_the_walk_and_the_timings_say_so(tmp_path: Path) -> None:
    """With one thread the order is fixed: the root's listing queues its folders, then finds
    `big` and queues its hashing, which runs before the folders are walked. So the walk ends
    after `big` is hashed: walk_millis + hashing_millis exceed hash_millis."""
    _big_executable(tmp_path / "big")
    for d in range(40):
        folder = tmp_path / f"d{d:02}"
        folder.mkdir()
        for f in range(25):
            (folder / f"f{f:02}").write_bytes(b"x" * 64)
    tree = santacore.hash_tree(tmp_path, threads=1)
    s = tree.stats
    assert (tree.binary_count, s.regular_files, s.bytes_hashed) == (1, 1 + 40 * 25, BIG)
    assert 0 < s.walk_millis <= tree.hash_millis
    assert 0 < s.hashing_millis <= tree.hash_millis
    assert s.walk_millis + s.hashing_millis > tree.hash_millis, (s.walk_millis, s.hashing_millis, tree.hash_millis)


def test_no_executables_no_hashing_time(tmp_path: Path) -> None:
    (tmp_path / "text").write_bytes(b"not mach-o")
    tree = santacore.hash_tree(tmp_path)
    assert tree.bundle_hash is None
    assert tree.stats.hashing_millis == 0.0
    assert 0 < tree.stats.walk_millis <= tree.hash_millis
