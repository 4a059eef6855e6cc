"""A streamed archive member's identity: `file_info_from_image` describes what a
`santacore._core.MemberSink` kept of a Mach-O member exactly as `file_info` describes the same
file on disk, reading through `ImageSource` instead of the file.

The sink keeps only the ranges identity reads and the code-page hashes; a read outside them is
a capture bug and raises `ImageRangeError` (never zeros). A range the sink chose not to keep
(over its capture limit, or pointing back at bytes already streamed) raises
`CaptureUnavailableError`, a MachOError: the member is then described as a file whose bytes
there cannot be read.

No heavy imports here: LIEF and the CMS parsers load when a member is described.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from santacore._core import MemberImage
from santacore.errors import MachOError
from santacore.identity.bundle import Bundle
from santacore.identity.fileinfo import FileInfo, FileInfoError, Host
from santacore.identity.plists import plist_dict

# Hash families the sink hashes pages with: SHA-1 (1), SHA-256 (2, which also serves truncated
# SHA-256, 3) and SHA-384 (4).
_FAMILY = {1: 1, 2: 2, 3: 2, 4: 4}


class ImageRangeError(LookupError):
    """Identity read bytes the capture did not keep: a bug in the capture, not in the member."""


class CaptureUnavailableError(MachOError):
    """Bytes identity needs were deliberately not kept (capture limit, or behind the stream)."""


class ImageSource:
    """A `ByteSource` over a `MemberImage`."""

    def __init__(self, image: MemberImage, name: str) -> None:
        self.image = image
        self._name = name
        self._ranges = image.ranges
        self._starts = [start for start, _ in self._ranges]
        self._pages = {
            (offset, page_size, _FAMILY[hash_type]): (length, pages)
            for offset, length, page_size, hash_type, pages in image.page_hashes
            if hash_type in _FAMILY
        }

    @property
    def name(self) -> str:
        return self._name

    @property
    def size(self) -> int:
        return self.image.size

    def read(self, offset: int, size: int) -> bytes:
        end = min(offset + size, self.image.size)
        if offset >= end:
            return b""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i >= 0:
            start, data = self._ranges[i]
            if end <= start + len(data):
                return data[offset - start : end - start]
        for lo, hi, reason in self.image.unavailable:
            if lo < end and offset < hi:
                raise CaptureUnavailableError(f"{self._name}: bytes {offset}..{end} were not kept: {reason}")
        raise ImageRangeError(
            f"{self._name}: bytes {offset}..{end} were not captured while streaming "
            f"(kept: {[(s, s + len(d)) for s, d in self._ranges]})"
        )

    def code_page_hashes(self, offset: int, length: int, page_size: int, hash_type: int) -> list[bytes]:
        family = _FAMILY.get(hash_type)
        if family is None:
            raise ValueError(f"code pages of hash type {hash_type} are not hashed while streaming")
        sizes = [page_size] if page_size else sorted(p for (o, p, f) in self._pages if o == offset and f == family)
        for size in sizes:
            entry = self._pages.get((offset, size, family))
            if entry is None:
                continue
            hashed, pages = entry
            if length == hashed and (page_size or length <= size):
                return pages
            if page_size and length < hashed and length % page_size == 0:
                return pages[: length // page_size]
            raise ValueError(
                f"code limit {length} at slice offset {offset} differs from the {hashed} bytes "
                "hashed while streaming (the signature's offset)"
            )
        raise ValueError(
            f"no {page_size or 'unpaged'}-byte code pages of hash type {hash_type} were hashed "
            f"at slice offset {offset} while streaming"
        )


@dataclass(frozen=True)
class BundleContext:
    """The bundle enclosing a member, as the archive reader knows it from other members.

    `path` is the bundle root and `main_executable` its main executable's name as reported
    (compared with `file_info_from_image`'s `name`); `info_plist` holds the bytes of the
    bundle's Info.plist (at `info_plist_path`), `code_resources` those of
    `_CodeSignature/CodeResources` next to it, if present. A main executable's special slots
    -1 and -3 are checked against them, as `file_info` does on disk."""

    path: str
    info_plist: bytes
    info_plist_path: str
    main_executable: str | None = None
    code_resources: bytes | None = None

    def __post_init__(self) -> None:
        if plist_dict(self.info_plist) is None:
            raise ValueError(f"{self.info_plist_path}: not a property list dictionary: no bundle")

    def as_bundle(self) -> Bundle:
        info = plist_dict(self.info_plist) or {}
        return Bundle(self.path, self.info_plist_path, info, self.main_executable)

    # BundleFiles
    def info_plist_bytes(self) -> bytes | None:
        return self.info_plist

    def code_resources_bytes(self) -> bytes | None:
        return self.code_resources


def file_info_from_image(
    image: MemberImage,
    *,
    name: str,
    host: Host = "apple-silicon",
    arch: str | None = None,
    bundle: BundleContext | None = None,
) -> FileInfo:
    """Describe a streamed Mach-O member as `file_info` describes the same file on disk
    (`name` is its reported path). FileInfoError for an empty or non-Mach-O member (only a
    Mach-O member's SHA-1 and ranges are kept); MachOError as `file_info` raises it."""
    # Imported here: describing loads LIEF, asn1crypto and cryptography (see `file_info`).
    from santacore.identity.examine import Subject, describe
    from santacore.identity.macho import read_layout

    if image.size == 0:
        raise FileInfoError(f"Invalid or empty file: {name}")
    if not image.is_macho or image.sha1 is None:
        raise FileInfoError(f"{name}: not a Mach-O file (only Mach-O members are described)")
    source = ImageSource(image, name)
    layout = read_layout(source, header=image.macho)
    subject = Subject(source, name, bundle.as_bundle() if bundle else None, bundle)
    return describe(subject, layout, sha256=image.sha256, sha1=image.sha1, host=host, arch=arch, given=name)
