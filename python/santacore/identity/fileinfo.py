"""A file's identity as Santa computes it (SNTFileInfo + MOLCodesignChecker, spec §7):
hashes, type, architectures, bundle metadata, and per slice the code signature —
cdhash, Team ID, Signing ID, certificate chain — verified from the file itself.

Santa reports the slice macOS would run on the host; `host` picks that slice the way
the manifest's `*_by_host` fields describe, `arch` overrides it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from santacore._core import MachOInfo, file_digests
from santacore.errors import SantacoreError, SignatureError
from santacore.identity import constants as C
from santacore.identity.bundle import Bundle, bundle_at, nearest_bundle
from santacore.identity.cms import CertificateInfo, CMSVerification, parse_cms, signing_chain, verify_cms
from santacore.identity.codesign import EmbeddedSignature, parse_superblob, verify_code_pages, verify_special_slots
from santacore.identity.codesign.cs_blobs import CSSLOT_CODEDIRECTORY
from santacore.identity.macho import MachOLayout, SliceLayout, read_layout, read_slice_bytes
from santacore.identity.plists import InfoPlistValues, plist_dict

Host = Literal["apple-silicon", "intel"]

# The slice macOS runs, by preference; with none of these, the first slice (as Santa's
# Security framework call falls back on). The manifest's `santa_host_slice` follows this.
HOST_PREFERENCE: Mapping[str, tuple[str, ...]] = {
    "apple-silicon": ("arm64e", "arm64", "x86_64h", "x86_64"),
    "intel": ("x86_64h", "x86_64", "i386"),
}

FILETYPE_KIND = {2: "Executable", 6: "Dynamic Library", 8: "Bundle/Plugin", 11: "Kernel Extension"}


class FileInfoError(SantacoreError):
    """The path is not something Santa would describe: missing, a directory, empty, or special."""


@dataclass(frozen=True)
class SliceSigning:
    """One slice's code signature and what verifying it found."""

    arch: str
    signature: EmbeddedSignature | None
    entitlements: Mapping[str, Any] | None = None
    chain: tuple[CertificateInfo, ...] = ()
    signing_time: int | None = None
    secure_signing_time: int | None = None
    code_pages_valid: bool | None = None
    special_slots: Mapping[int, str] = field(default_factory=dict)
    cms: CMSVerification | None = None
    problems: tuple[str, ...] = ()

    @property
    def signed(self) -> bool:
        return self.signature is not None

    @property
    def adhoc(self) -> bool:
        return self.signature is not None and self.signature.adhoc

    @property
    def valid(self) -> bool:
        """The signature checks out as far as the file alone can show (no problems found)."""
        return self.signature is not None and not self.problems

    @property
    def development(self) -> bool:
        """Santa's SigningStatus "development": signed, not ad-hoc, not a platform binary, and the
        leaf carries none of the production-signing extensions (IsProductionSigningCert)."""
        sig = self.signature
        if sig is None or sig.adhoc or sig.platform_binary or not self.chain:
            return False
        return not self.chain[0].is_production_signing

    def consistency_class(self) -> tuple[str, ...]:
        """How Santa compares slices: by leaf-to-root chain; ad-hoc as one class; unsigned as empty."""
        if self.signature is None:
            return ()
        if self.adhoc or not self.chain:
            return ("ad-hoc",)
        return tuple(c.sha256 for c in self.chain)


def _special_slot_inputs(path: str, layout: SliceLayout, bundle: Bundle | None) -> tuple[bytes | None, bytes | None]:
    """What slot -1 (Info.plist) and -3 (CodeResources) are hashes of, where the file has them."""
    info_plist = None
    if layout.info_plist_section is not None:
        info_plist = read_slice_bytes(path, layout, *layout.info_plist_section)
    elif bundle is not None and bundle.main_executable == path:
        try:
            with open(bundle.info_plist, "rb") as f:
                info_plist = f.read()
        except OSError:
            info_plist = None
    code_resources = None
    if bundle is not None and bundle.main_executable == path:
        resources = os.path.join(os.path.dirname(bundle.info_plist), "_CodeSignature", "CodeResources")
        try:
            with open(resources, "rb") as f:
                code_resources = f.read()
        except OSError:
            code_resources = None
    return info_plist, code_resources


def _slice_signing(path: str, layout: SliceLayout, bundle: Bundle | None) -> SliceSigning:
    if layout.code_signature is None:
        return SliceSigning(layout.arch, None)
    try:
        blob = read_slice_bytes(path, layout, *layout.code_signature)
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
            check = verify_code_pages(path, layout.offset, cd)
        except (SignatureError, OSError) as e:
            code_ok = False
            problems.append(f"code pages could not be checked: {e}")
            continue
        if not check.ok:
            code_ok = False
            problems.append(f"code pages do not match the {cd.hash_type_name} CodeDirectory: {check}")
    info_plist, code_resources = _special_slot_inputs(path, layout, bundle)
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


def host_slice(architectures: list[str], host: Host) -> str | None:
    for arch in HOST_PREFERENCE[host]:
        if arch in architectures:
            return arch
    return architectures[0] if architectures else None


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


@dataclass(frozen=True)
class FileInfo(InfoPlistValues):
    """What `santactl fileinfo` reports about one file.

    `bundle_id`, `bundle_name`... (§7.4) come from ``info``: the embedded `__info_plist`, else the
    nearest bundle's Info.plist.
    """

    path: str
    size: int
    sha256: str
    sha1: str
    kind: str
    macho: MachOInfo
    missing_pagezero: bool
    slices: tuple[SliceSigning, ...]
    host_arch: str | None
    bundle: Bundle | None
    info: Mapping[str, Any] | None

    @property
    def architectures(self) -> list[str]:
        return self.macho.architectures

    @property
    def type_string(self) -> str:
        if self.macho.is_macho:
            return f"{self.kind} ({', '.join(self.architectures)})"
        return self.kind

    @property
    def host(self) -> SliceSigning | None:
        return next((s for s in self.slices if s.arch == self.host_arch), None)

    def slice(self, arch: str) -> SliceSigning:
        for s in self.slices:
            if s.arch == arch:
                return s
        raise KeyError(arch)

    # Signing values of the host slice.
    @property
    def cdhash(self) -> str | None:
        host = self.host
        return host.signature.cdhash if host and host.signature else None

    @property
    def team_id(self) -> str | None:
        host = self.host
        return host.signature.team_id if host and host.signature else None

    @property
    def signing_id(self) -> str | None:
        """The CodeDirectory identifier."""
        host = self.host
        return host.signature.signing_id if host and host.signature else None

    @property
    def santa_signing_id(self) -> str | None:
        """Santa's Signing ID: `TEAMID:identifier`, `platform:identifier`, or None."""
        host = self.host
        return host.signature.santa_signing_id if host and host.signature else None

    @property
    def platform_binary(self) -> bool | None:
        host = self.host
        return host.signature.platform_binary if host and host.signature else None

    @property
    def entitlements(self) -> Mapping[str, Any] | None:
        host = self.host
        return host.entitlements if host else None

    @property
    def consistency(self) -> str:
        """`unsigned`, `adhoc`, `signed`, or `inconsistent` across slices (Santa checks all architectures)."""
        classes = {s.consistency_class() for s in self.slices}
        if len(classes) > 1:
            return "inconsistent"
        only = next(iter(classes), ())
        return "unsigned" if only == () else "adhoc" if only == ("ad-hoc",) else "signed"

    @property
    def signing_chain(self) -> tuple[CertificateInfo, ...]:
        """The host slice's chain; empty when signing is inconsistent (Santa's check fails)."""
        host = self.host
        if host is None or self.consistency == "inconsistent":
            return ()
        return host.chain

    @property
    def signing_status(self) -> str:
        """Santa's SigningStatus: unsigned, adhoc, development, production, or invalid."""
        if any(s.problems for s in self.slices) or self.consistency == "inconsistent":
            return "invalid"
        if self.consistency in ("unsigned", "adhoc"):
            return self.consistency
        host = self.host
        return "development" if host is not None and host.development else "production"

    @property
    def code_signed(self) -> str:
        """The `Code-signed` line: what verification found, never what is assumed."""
        if not self.slices or all(s.signature is None and not s.problems for s in self.slices):
            return "No"
        if any(s.problems for s in self.slices):
            return "Yes, but code/signature changed/unverifiable"
        consistency = self.consistency
        if consistency == "inconsistent":
            return "Yes, but signing is not consistent for all architectures"
        if consistency == "adhoc":
            return "Yes, but ad-hoc"
        host = self.host
        if host is not None and host.development:
            return "Yes, but with development certificate"
        return "Yes"


def _resolve(path: str) -> str:
    """santactl's path handling: absolute, standardised, symlinks resolved, a bundle
    directory replaced by its main executable."""
    real = os.path.realpath(path)
    if os.path.isdir(real):
        bundle = bundle_at(real)
        if bundle is not None and bundle.main_executable is not None:
            return bundle.main_executable
    return real


def file_info(path: str | os.PathLike[str], *, host: Host = "apple-silicon", arch: str | None = None) -> FileInfo:
    """Describe the file at `path` as `santactl fileinfo` would (spec §7)."""
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
    layout: MachOLayout = read_layout(resolved)
    header = layout.header
    with open(resolved, "rb") as f:
        head = f.read(4)
        f.seek(max(digests.size - 512, 0))
        tail = f.read(4)
    bundle = nearest_bundle(resolved)
    slices = tuple(_slice_signing(resolved, s, bundle) for s in layout.slices)
    if arch is not None and arch not in header.architectures:
        raise FileInfoError(f"{given} has no {arch} slice (it has {', '.join(header.architectures) or 'none'})")
    chosen = arch if arch is not None else host_slice(header.architectures, host)
    return FileInfo(
        path=resolved,
        size=digests.size,
        sha256=digests.sha256,
        sha1=digests.sha1,
        kind=_kind(header, head, digests.size, tail),
        macho=header,
        missing_pagezero=any(s.missing_pagezero for s in layout.slices),
        slices=slices,
        host_arch=chosen,
        bundle=bundle,
        info=_info_dictionary(resolved, layout, bundle),
    )


def _info_dictionary(path: str, layout: MachOLayout, bundle: Bundle | None) -> Mapping[str, Any] | None:
    """§7.4: the embedded `__info_plist` of an MH_EXECUTE first slice wins over the bundle's."""
    first = layout.slices[0] if layout.slices else None
    if first is not None and first.filetype == C.MH_EXECUTE and first.info_plist_section is not None:
        try:
            embedded = plist_dict(read_slice_bytes(path, first, *first.info_plist_section))
        except SantacoreError:
            embedded = None
        if embedded is not None:
            return embedded
    return bundle.info if bundle is not None else None
