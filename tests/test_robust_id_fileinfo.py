"""Robustness of `fileinfo` on hostile or huge Mach-O files (the robustness issue, items 6 and 8)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from santacore.errors import MachOError
from santacore.identity.fileinfo import file_info

# A thin, signed executable of the corpus; its code signature stays where it is when the file grows.
SIGNED_THIN = "registry/pypi/mujoco/3.17.0/mujoco/MuJoCo_(mjpython).app/Contents/MacOS/mjpython"
LARGE = 1 << 30
PEAK_RSS_LIMIT = 200 * 1024 * 1024

# The child reports its own high-water mark: VmHWM belongs to the process image after exec, whereas
# getrusage's ru_maxrss keeps the forked parent's (pytest's) size from before the exec.
_CHILD = """
import resource, sys
from santacore.identity.fileinfo import file_info
info = file_info(sys.argv[1])
print(info.cdhash, info.team_id, info.signing_id, info.code_signed, sep="|")
try:
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
except OSError:  # no /proc (macOS): ru_maxrss is in bytes there
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak)
"""


def _child_peak_rss(path: Path) -> tuple[str, int]:
    """Run `file_info` in a child; its identity line and its own peak RSS in bytes."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True)
    identity, peak = done.stdout.strip().splitlines()
    return identity, int(peak)


def test_large_sparse_macho_stays_small(corpus: Path, tmp_path: Path) -> None:
    original = corpus / SIGNED_THIN
    big = tmp_path / "mjpython"
    shutil.copyfile(original, big)
    os.truncate(big, LARGE)  # sparse: the disk holds only the corpus bytes
    expected = file_info(original)
    started = time.monotonic()
    out, peak = _child_peak_rss(big)
    elapsed = time.monotonic() - started
    assert out == f"{expected.cdhash}|{expected.team_id}|{expected.signing_id}|{expected.code_signed}"
    assert expected.cdhash is not None
    print(f"fileinfo on a {LARGE >> 20} MiB sparse Mach-O: peak RSS {peak / 2**20:.0f} MiB, {elapsed:.1f} s")
    assert peak < PEAK_RSS_LIMIT, f"peak RSS {peak / 2**20:.0f} MiB for a {LARGE >> 20} MiB file ({elapsed:.1f} s)"


def _with_ncmds(data: bytes, ncmds: int) -> bytes:
    magic = struct.unpack("<I", data[:4])[0]
    assert magic in (0xFEEDFACE, 0xFEEDFACF)
    return data[:16] + struct.pack("<I", ncmds) + data[20:]


def test_ncmds_all_ones_is_a_malformed_header(corpus: Path, tmp_path: Path) -> None:
    bad = tmp_path / "mjpython"
    bad.write_bytes(_with_ncmds((corpus / SIGNED_THIN).read_bytes(), 0xFFFFFFFF))
    with pytest.raises(MachOError, match=r"malformed Mach-O header.*ncmds 4294967295 \(0xffffffff\)"):
        file_info(bad)


def test_ncmds_too_small_is_a_malformed_header(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / SIGNED_THIN).read_bytes()
    ncmds = struct.unpack("<I", data[16:20])[0]
    bad = tmp_path / "mjpython"
    bad.write_bytes(_with_ncmds(data, ncmds + 1))
    with pytest.raises(MachOError, match="malformed Mach-O header"):
        file_info(bad)


def test_fileinfo_names_a_malformed_header_once(corpus: Path, tmp_path: Path) -> None:
    bad = tmp_path / "mjpython"
    bad.write_bytes(_with_ncmds((corpus / SIGNED_THIN).read_bytes(), 0xFFFFFFFF))
    done = subprocess.run(
        [sys.executable, "-m", "santacore", "fileinfo", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"{bad}: malformed Mach-O header") and line.count(str(bad)) == 1, line
