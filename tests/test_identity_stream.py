"""A streamed member's identity (`MemberSink` → `file_info_from_image`) equals `file_info` of the
same file on disk, key for key, whatever the chunking: every Mach-O of the corpus, both hosts,
bundle main executables with their bundle's files. Non-Mach-O members keep nothing; hostile
streams give file_info's error or report, with bounded capture."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from santacore._core import MemberImage, MemberSink
from santacore.errors import MachOError, SantacoreError
from santacore.identity import BundleContext, file_info_from_image
from santacore.identity.bundle import nearest_bundle
from santacore.identity.fileinfo import FileInfo, FileInfoError, Host, file_info
from santacore.identity.image import ImageRangeError, ImageSource
from santacore.identity.report import json_document

HOSTS: tuple[Host, ...] = ("apple-silicon", "intel")
SEEDS = (1, 2, 3)
MiB = 1 << 20


def stream(data: bytes, seed: int | None = None, *, capture_limit: int | None = None) -> MemberImage:
    """`data` through a sink in random chunk sizes from 1 byte to 1 MiB (log-uniform)."""
    sink = MemberSink() if capture_limit is None else MemberSink(capture_limit=capture_limit)
    rng = random.Random(seed)
    view = memoryview(data)
    at = 0
    while at < len(data):
        n = len(data) if seed is None else int(2 ** rng.uniform(0, 20))
        sink.update(bytes(view[at : at + n]))
        at += n
    assert sink.position == len(data)
    return sink.finish()


def bundle_context(path: str) -> BundleContext | None:
    """What an archive reader would hand over for the file's nearest bundle, from its files."""
    b = nearest_bundle(path)
    if b is None:
        return None
    resources = Path(b.info_plist).parent / "_CodeSignature" / "CodeResources"
    return BundleContext(
        path=b.path,
        info_plist=Path(b.info_plist).read_bytes(),
        info_plist_path=b.info_plist,
        main_executable=b.main_executable,
        code_resources=resources.read_bytes() if resources.is_file() else None,
    )


def outcome(describe: Callable[..., FileInfo], *args: Any, **kwargs: Any) -> dict[str, Any] | tuple[str, str]:
    """The JSON document of `describe(*args, **kwargs)`, or the SantacoreError's class and message."""
    try:
        return json_document(describe(*args, **kwargs))
    except SantacoreError as e:
        return (type(e).__name__, str(e))


def test_every_corpus_macho_streams_to_the_same_identity(corpus: Path, manifest: dict[str, Any]) -> None:
    machos = [f for f in manifest["files"] if f["is_macho"]]
    assert len(machos) >= 50
    compared = 0
    main_executables: set[str] = set()
    for entry in machos:
        path = os.path.realpath(corpus / entry["path"])
        data = Path(path).read_bytes()
        context = bundle_context(path)
        if context is not None and context.main_executable == path:
            main_executables.add(path)
        expected = {host: json_document(file_info(path, host=host)) for host in HOSTS}
        for seed in SEEDS:
            image = stream(data, seed)
            assert image.is_macho and image.sha256 == entry["sha256"] and image.sha1 == entry["sha1"]
            assert image.unavailable == [], entry["path"]
            for host in HOSTS:
                doc = json_document(file_info_from_image(image, name=path, host=host, bundle=context))
                assert doc.keys() == expected[host].keys()
                for key, value in expected[host].items():
                    assert doc[key] == value, f"{entry['path']} seed {seed} {host}: {key}"
                compared += 1
    assert compared == len(machos) * len(SEEDS) * len(HOSTS)
    # Corpus bundles' main executables (as `nearest_bundle` finds them) went through with their
    # bundle's Info.plist and CodeResources.
    mains = {
        os.path.realpath(corpus / b["bundle_root"] / b["main_executable"])
        for b in manifest["bundles"]
        if b["in_corpus"] and b["main_executable"]
    }
    assert len(main_executables) >= 9 and main_executables <= mains


def test_bundle_context_decides_special_slots_and_metadata(corpus: Path, manifest: dict[str, Any]) -> None:
    """Without its bundle, a main executable loses the bundle's metadata and slot -1/-3 inputs."""
    bundle = next(b for b in manifest["bundles"] if b["in_corpus"] and b["bundle_name"] and b["main_executable"])
    path = os.path.realpath(corpus / bundle["bundle_root"] / bundle["main_executable"])
    image = stream(Path(path).read_bytes(), 7)
    with_context = file_info_from_image(image, name=path, bundle=bundle_context(path))
    alone = file_info_from_image(image, name=path)
    assert with_context.bundle_name == bundle["bundle_name"] == file_info(path).bundle_name
    assert with_context.bundle is not None and with_context.bundle.path == os.path.realpath(
        corpus / bundle["bundle_root"]
    )
    assert alone.bundle is None


def test_non_macho_members_keep_nothing(corpus: Path, manifest: dict[str, Any]) -> None:
    others = [f for f in manifest["files"] if not f["is_macho"]]
    assert others
    for entry in others:
        image = stream((corpus / entry["path"]).read_bytes(), 5)
        assert not image.is_macho and image.sha256 == entry["sha256"] and image.size == entry["size"]
        assert image.sha1 is None and image.ranges == [] and image.page_hashes == [] and image.captured_bytes == 0
        with pytest.raises(FileInfoError, match="not a Mach-O file"):
            file_info_from_image(image, name=entry["path"])
    with pytest.raises(FileInfoError, match="Invalid or empty file: x"):
        file_info_from_image(MemberSink().finish(), name="x")


def test_a_read_outside_the_capture_is_an_error_never_zeros(corpus: Path) -> None:
    path = corpus / "santa/northpolesec/common/verifyinghasher/testdata/hw_team_signed"
    image = stream(path.read_bytes(), 3)
    source = ImageSource(image, str(path))
    last_start, last = image.ranges[-1]
    assert source.read(last_start, len(last)) == last
    gap = image.ranges[0][0] + len(image.ranges[0][1])  # first byte after the first range
    with pytest.raises(ImageRangeError, match="not captured while streaming"):
        source.read(gap, 16)
    with pytest.raises(ValueError, match="not hashed while streaming"):
        source.code_page_hashes(0, 4096, 4096, 5)
    with pytest.raises(ValueError, match="no 4096-byte code pages of hash type 2 were hashed at slice offset 12345"):
        source.code_page_hashes(12345, 4096, 4096, 2)
    sink = MemberSink()
    sink.finish()
    with pytest.raises(ValueError, match="finish"):
        sink.finish()
    with pytest.raises(ValueError, match="finished"):
        sink.update(b"x")


def _thin_x86_64(size: int, sig_offset: int, sig_size: int, ncmds: int = 1) -> bytearray:
    """A thin MH_EXECUTE with one LC_CODE_SIGNATURE (zeros elsewhere)."""
    data = bytearray(size)
    struct.pack_into("<7I", data, 0, 0xFEEDFACF, 0x01000007, 3, 2, ncmds, 16, 0)
    struct.pack_into("<4I", data, 32, 0x1D, 16, sig_offset, sig_size)
    return data


def _write(tmp_path: Path, name: str, data: bytes | bytearray) -> str:
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return str(path)


def test_hostile_streams_report_what_file_info_reports(corpus: Path, tmp_path: Path) -> None:
    signed = bytearray((corpus / "santa/northpolesec/common/testdata/signed-with-teamid").read_bytes())
    (sizeofcmds,) = struct.unpack_from("<I", signed, 20)
    huge_ncmds = bytearray(signed)
    struct.pack_into("<I", huge_ncmds, 16, 0xFFFFFFFF)
    cases: dict[str, bytes | bytearray] = {
        "truncated-load-commands": signed[: 32 + sizeofcmds // 2],
        "giant-ncmds": huge_ncmds,
        "signature-past-the-end": _thin_x86_64(8192, 0xFFFF0000, 0x1000),
        "signature-size-past-the-end": _thin_x86_64(8192, 4096, 0xFFFFFFF0),
        "signature-zeros": _thin_x86_64(8192, 4096, 4096),
        "signature-inside-the-header": _thin_x86_64(8192, 8, 64),
    }
    for name, data in cases.items():
        path = _write(tmp_path, name, data)
        expected = outcome(file_info, path)
        for seed in SEEDS:
            image = stream(bytes(data), seed)
            assert image.captured_bytes < 64 * 1024, name
            assert outcome(file_info_from_image, image, name=path) == expected, f"{name} seed {seed}"
    # A fat table whose slice runs past the end: no slice, so not Mach-O, and nothing kept.
    fat = stream(struct.pack(">II5I", 0xCAFEBABE, 1, 7, 3, 4096, 1 << 30, 12) + bytes(5000), 1)
    assert not fat.is_macho and fat.captured_bytes == 0 and fat.macho.fat_container
    giant = outcome(file_info, _write(tmp_path, "g", huge_ncmds))
    assert isinstance(giant, tuple) and giant[0] == "MachOError"


def test_mutated_members_match_file_info(corpus: Path, tmp_path: Path) -> None:
    """Random byte edits and cuts of signed files (headers, load commands, signatures): the stream
    gives file_info's report or error, except where a mutant points back at bytes already
    streamed, which the member reports as unreadable there."""
    sources = [
        corpus / "santa/northpolesec/common/verifyinghasher/testdata/hw_team_signed",
        corpus / "santa/northpolesec/common/testdata/yikes-universal_signed",
        corpus / "santa/northpolesec/common/testdata/32bitplist",
    ]
    rng = random.Random(12)
    same = behind = not_macho = 0
    for i in range(100):
        data = bytearray(rng.choice(sources).read_bytes())
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(min(len(data), 40_000))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randint(28, len(data))]
        path = _write(tmp_path, f"m{i}", data)
        expected = outcome(file_info, path)
        image = stream(bytes(data), i)
        if isinstance(expected, dict) and not expected["is_macho"]:
            assert not image.is_macho and image.captured_bytes == 0
            not_macho += 1
            continue
        actual = outcome(file_info_from_image, image, name=path)
        if actual == expected:
            same += 1
        else:
            assert "after the stream had passed them" in str(actual), path
            behind += 1
    print(f"mutants: {same} same, {not_macho} not Mach-O, {behind} pointing behind the stream")
    assert same >= 80 and same + not_macho + behind == 100, (same, not_macho, behind)


def test_fewer_page_hashers_are_exact_where_they_suffice_and_say_so_where_not(corpus: Path) -> None:
    """`page_sizes`/`hash_types` trade speed for coverage: a SHA-256, 4 KiB signature still verifies;
    a signature with SHA-1 and SHA-384 CodeDirectories says which pages were not hashed."""
    sha256_only = os.path.realpath(corpus / "santa/northpolesec/common/testdata/signed-with-teamid")
    sink = MemberSink(page_sizes=[4096], hash_types=[3])  # truncated SHA-256 is kept in full
    sink.update(Path(sha256_only).read_bytes())
    image = sink.finish()
    assert {(p, t) for _, _, p, t, _ in image.page_hashes} == {(4096, 2)}
    assert json_document(file_info_from_image(image, name=sha256_only)) == json_document(file_info(sha256_only))
    four_types = os.path.realpath(corpus / "santa/northpolesec/common/verifyinghasher/testdata/hw_universal")
    sink = MemberSink(hash_types=[2])
    sink.update(Path(four_types).read_bytes())
    info = file_info_from_image(sink.finish(), name=four_types)
    assert info.signing_status == "invalid"
    problems = [p for s in info.slices for p in s.problems]
    assert any("code pages of hash type 1 were hashed" in p for p in problems)
    assert any("code pages of hash type 4 were hashed" in p for p in problems)
    with pytest.raises(ValueError, match="unknown code-signature hash type 9"):
        MemberSink(hash_types=[9])
    with pytest.raises(ValueError, match="page sizes must be positive"):
        MemberSink(page_sizes=[0])


def test_capture_limit_bounds_memory_and_says_so(tmp_path: Path) -> None:
    data = _thin_x86_64(3 * MiB, 4096, 2 * MiB)
    image = stream(bytes(data), 4, capture_limit=1 * MiB)
    assert image.captured_bytes <= 1 * MiB + 4096 + 4
    assert any("capture limit" in reason for _, _, reason in image.unavailable)
    info = file_info_from_image(image, name="big")
    (problem,) = info.slices[0].problems
    assert problem.startswith("code signature unreadable: big: bytes") and "capture limit of 1048576" in problem
    # Load commands claiming more than the limit: the member is refused with the reason.
    huge = _thin_x86_64(3 * MiB, 4096, 4096)
    struct.pack_into("<I", huge, 20, 2 * MiB)
    image = stream(bytes(huge), 5, capture_limit=1 * MiB)
    assert image.captured_bytes <= 1 * MiB + 4096 + 4
    with pytest.raises(MachOError, match=r"huge: bytes 0\.\.2097184 were not kept: .*capture limit"):
        file_info_from_image(image, name="huge")


# VmHWM, not ru_maxrss: ru_maxrss survives fork+exec, so a child would report pytest's peak.
PEAK_RSS = """
import sys
from santacore._core import MemberSink
def status(key):
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith(key)).split()[1])
before = status("VmRSS:")
sink = MemberSink()
chunk = bytes(1 << 20)
if sys.argv[1] == "synthetic":
    import struct
    size = int(sys.argv[2])
    head = bytearray(1 << 20)
    struct.pack_into("<7I", head, 0, 0xFEEDFACF, 0x01000007, 3, 2, 1, 16, 0)
    struct.pack_into("<4I", head, 32, 0x1D, 16, size - 65536, 65536)
    sink.update(bytes(head))
    for _ in range(size // len(chunk) - 1):
        sink.update(chunk)
else:
    with open(sys.argv[2], "rb") as f:
        while block := f.read(1 << 20):
            sink.update(block)
image = sink.finish()
after = status("VmHWM:")
print(before, after, image.captured_bytes, image.size)
"""


def peak_rss(*args: str) -> tuple[int, int, int, int]:
    """(RSS KiB before the stream, peak RSS KiB after it, bytes captured, bytes streamed), in a fresh
    interpreter (Linux: /proc/self/status)."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    before, after, captured, size = map(int, out)
    return before, after, captured, size


def test_peak_rss_is_flat_whatever_the_member_size(corpus: Path, manifest: dict[str, Any]) -> None:
    largest = max((f for f in manifest["files"] if f["is_macho"]), key=lambda f: f["size"])
    before, after, _, size = peak_rss("file", str(corpus / largest["path"]))
    assert size == largest["size"] and after - before < 16 * 1024, (before, after)
    file_growth = after - before
    size = int(os.environ.get("SANTACORE_STREAM_BYTES", 256 * MiB))
    before, after, captured, streamed = peak_rss("synthetic", str(size))
    # Page hashes of a `size`-byte slice: 4 KiB and 16 KiB pages, SHA-1, SHA-256 and SHA-384.
    assert streamed == size and captured < size // 4096 * 125 + 2 * 65536
    assert after - before < 32 * 1024 + captured // 1024, (before, after)
    print(f"peak RSS growth: {largest['path']} ({largest['size']} bytes) {file_growth} KiB; ")
    print(f"{size}-byte synthetic Mach-O: {after - before} KiB (captured {captured} bytes)")


def test_importing_the_image_api_loads_no_parser_library() -> None:
    """`santacore.identity.file_info_from_image` and `BundleContext` import without LIEF or the CMS
    libraries (they load when a member is described). In a fresh interpreter."""
    code = (
        "import sys\n"
        "from santacore.identity import BundleContext, file_info_from_image\n"
        "from santacore._core import MemberSink\n"
        "print(sorted(m for m in ('lief', 'cryptography', 'asn1crypto') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
