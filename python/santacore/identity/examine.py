"""Examining one file for `file_info`: its Mach-O layout (LIEF), each slice's code signature parsed
and verified (codesign, cms: asn1crypto and cryptography), its kind and its info dictionary.

`santacore.identity.fileinfo` imports this module only when a file is examined, so that what it
defines (FileInfo, Host...) costs none of those libraries.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from santacore._core import MachOInfo, file_digests
from santacore.errors import SantacoreError, SignatureError
from santacore.files import CODE_RESOURCES_LIMIT, INFO_PLIST_LIMIT, read_regular_file
from santacore.identity import constants as C
from santacore.identity.bundle import Bundle, bundle_at, nearest_bundle
from santacore.identity.cms import CertificateInfo, parse_cms, signing_chain, verify_cms
from santacore.identity.codesign import parse_superblob, verify_code_pages, verify_special_slots
from santacore.identity.codesign.cs_blobs import CSSLOT_CODEDIRECTORY
from santacore.identity.fileinfo import FileInfo, FileInfoError, Host, SliceSigning, host_slice
from santacore.identity.macho import MachOLayout, SliceLayout, read_layout, read_slice_bytes
from santacore.identity.plists import plist_dict
from santacore.identity.source import ByteSource, FileSource

FILETYPE_KIND = {2: "Executable", 6: "Dynamic Library", 8: "Bundle/Plugin", 11: "Kernel Extension"}


class BundleFiles(Protocol):
    """The enclosing bundle's files a main executable's special slots seal."""

    def info_plist_bytes(self) -> bytes | None: ...

    def code_resources_bytes(self) -> bytes | None: ...


class _DiskBundleFiles:
    """A bundle's Info.plist and `_CodeSignature/CodeResources` on disk, read when asked."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle

    def info_plist_bytes(self) -> bytes | None:
        try:
            return read_regular_file(self.bundle.info_plist, INFO_PLIST_LIMIT)
        except OSError:  # unreadable, not a regular file (a FIFO would block), or over the cap
            return None

    def code_resources_bytes(self) -> bytes | None:
        resources = os.path.join(os.path.dirname(self.bundle.info_plist), "_CodeSignature", "CodeResources")
        try:
            return read_regular_file(resources, CODE_RESOURCES_LIMIT)
        except OSError:
            return None


@dataclass(frozen=True)
class Subject:
    """What is being described: its bytes, the name it is reported under, and its bundle."""

    source: ByteSource
    path: str
    bundle: Bundle | None
    bundle_files: BundleFiles | None

    @property
    def is_main_executable(self) -> bool:
        return self.bundle is not None and self.bundle.main_executable == self.path


def _special_slot_inputs(subject: Subject, layout: SliceLayout) -> tuple[bytes | None, bytes | None]:
    """What slot -1 (Info.plist) and -3 (CodeResources) are hashes of, where the file has them."""
    main = subject.bundle_files if subject.is_main_executable else None
    info_plist = None
    if layout.info_plist_section is not None:
        info_plist = read_slice_bytes(subject.source, layout, *layout.info_plist_section)
    elif main is not None:
        info_plist = main.info_plist_bytes()
    code_resources = main.code_resources_bytes() if main is not None else None
    return info_plist, code_resources


def _slice_signing(subject: Subject, layout: SliceLayout) -> SliceSigning:
    if layout.code_signature is None:
        return SliceSigning(layout.arch, None)
    try:
        blob = read_slice_bytes(subject.source, layout, *layout.code_signature)
        signature = parse_superblob(blob)
    except (SantacoreError, OSError) as e:
        # A signature that cannot even be read is a broken signature, not an absent one.
        return SliceSigning(layout.arch, None, problems=(f"code signature unreadable: {e}",))
    problems: list[str] = []
    try:
        entitlements = signature.entitlements
    except SignatureError as e:
        entitlements = None
        problems.append(f"entitlements unreadable: {e}")
    code_ok = True
    for cd in signature.code_directories:
        try:
            check = verify_code_pages(subject.source, layout.offset, cd)
        except (SignatureError, OSError) as e:
            code_ok = False
            problems.append(f"code pages could not be checked: {e}")
            continue
        if not check.ok:
            code_ok = False
            problems.append(f"code pages do not match the {cd.hash_type_name} CodeDirectory: {check}")
    info_plist, code_resources = _special_slot_inputs(subject, layout)
    slots = verify_special_slots(signature, signature.chosen, info_plist=info_plist, code_resources=code_resources)
    for slot, outcome in slots.items():
        # Santa validates without resources (kSecCSDoNotValidateResources): slot -3 is informative.
        if outcome == "mismatch" and slot != -3:
            problems.append(f"special slot {slot} does not match")
    chain: tuple[CertificateInfo, ...] = ()
    signing_time = secure_signing_time = None
    cms_result = None
    if signature.cms:
        try:
            cms = parse_cms(signature.cms)
            chain = tuple(signing_chain(cms))
            signing_time, secure_signing_time = cms.signing_time, cms.secure_signing_time
            # The CMS signs the CodeDirectory in slot 0 (alternates are bound through its attributes).
            primary = next(cd for cd in signature.code_directories if cd.slot_type == CSSLOT_CODEDIRECTORY)
            cms_result = verify_cms(cms, primary.raw)
            if not (cms_result.message_digest_ok and cms_result.signature_ok):
                problems.extend(cms_result.problems)
        except SignatureError as e:
            problems.append(f"CMS signature unreadable: {e}")
    elif not signature.adhoc:
        problems.append("not ad-hoc, yet no CMS signature")
    return SliceSigning(
        arch=layout.arch,
        signature=signature,
        entitlements=entitlements,
        chain=chain,
        signing_time=signing_time,
        secure_signing_time=secure_signing_time,
        code_pages_valid=code_ok,
        special_slots=slots,
        cms=cms_result,
        problems=tuple(problems),
    )


def _kind(header: MachOInfo, head: bytes, size: int, tail: bytes) -> str:
    if header.is_macho:
        kind = FILETYPE_KIND.get(header.filetypes[0])
        if kind:
            return kind
    if head[:2] == b"#!":
        return "Script"
    if head[:4] == b"xar!":
        return "XAR Archive"
    if size >= 512 and tail[:4] == b"koly":
        return "Disk Image"
    return "Unknown"


def _resolve(path: str) -> str:
    """santactl's path handling: absolute, standardised, symlinks resolved, a bundle
    directory replaced by its main executable."""
    real = os.path.realpath(path)
    if os.path.isdir(real):
        bundle = bundle_at(real)
        if bundle is not None and bundle.main_executable is not None:
            return bundle.main_executable
    return real


def examine(path: str | os.PathLike[str], *, host: Host, arch: str | None) -> FileInfo:
    """`file_info`'s work."""
    given = os.fspath(path)
    resolved = _resolve(given)
    try:
        st = os.stat(resolved)
    except FileNotFoundError as e:
        raise FileInfoError(f"File does not exist: {given}") from e
    if stat.S_ISDIR(st.st_mode):
        raise FileInfoError(f"{given} is a directory.  Use the -r flag to search recursively.")
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        raise FileInfoError(f"Invalid or empty file: {given}")
    digests = file_digests(resolved)
    source = FileSource(resolved, digests.size)
    layout: MachOLayout = read_layout(source)
    bundle = nearest_bundle(resolved)
    subject = Subject(source, resolved, bundle, _DiskBundleFiles(bundle) if bundle is not None else None)
    return describe(subject, layout, sha256=digests.sha256, sha1=digests.sha1, host=host, arch=arch, given=given)


def describe(
    subject: Subject, layout: MachOLayout, *, sha256: str, sha1: str, host: Host, arch: str | None, given: str
) -> FileInfo:
    """The FileInfo of a file whose digests and layout are known: from a file on disk or a
    streamed archive member alike (`santacore.identity.image`)."""
    header = layout.header
    size = subject.source.size
    head = subject.source.read(0, 4)
    tail = subject.source.read(max(size - 512, 0), 4)
    slices = tuple(_slice_signing(subject, s) for s in layout.slices)
    if arch is not None and arch not in header.architectures:
        raise FileInfoError(f"{given} has no {arch} slice (it has {', '.join(header.architectures) or 'none'})")
    chosen = arch if arch is not None else host_slice(header.architectures, host)
    return FileInfo(
        path=subject.path,
        size=size,
        sha256=sha256,
        sha1=sha1,
        kind=_kind(header, head, size, tail),
        macho=header,
        missing_pagezero=any(s.missing_pagezero for s in layout.slices),
        slices=slices,
        host_arch=chosen,
        bundle=subject.bundle,
        info=_info_dictionary(subject, layout),
    )


def _info_dictionary(subject: Subject, layout: MachOLayout) -> Mapping[str, Any] | None:
    """§7.4: the embedded `__info_plist` of an MH_EXECUTE first slice wins over the bundle's."""
    first = layout.slices[0] if layout.slices else None
    if first is not None and first.filetype == C.MH_EXECUTE and first.info_plist_section is not None:
        try:
            embedded = plist_dict(read_slice_bytes(subject.source, first, *first.info_plist_section))
        except SantacoreError:
            embedded = None
        if embedded is not None:
            return embedded
    return subject.bundle.info if subject.bundle is not None else None
