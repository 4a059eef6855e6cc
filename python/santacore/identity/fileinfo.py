"""A file's identity as Santa computes it (SNTFileInfo + MOLCodesignChecker, spec §7):
hashes, type, architectures, bundle metadata, and per slice the code signature —
cdhash, Team ID, Signing ID, certificate chain — verified from the file itself.

Santa reports the slice macOS would run on the host; `host` picks that slice the way
the manifest's `*_by_host` fields describe, `arch` overrides it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from santacore._core import MachOInfo
from santacore.errors import SantacoreError
from santacore.identity.bundle import Bundle
from santacore.identity.plists import InfoPlistValues

if TYPE_CHECKING:  # annotations only: the parsers load when a file is examined (see `file_info`)
    from santacore.identity.cms import CertificateInfo, CMSVerification
    from santacore.identity.codesign import EmbeddedSignature

Host = Literal["apple-silicon", "intel"]

# The slice macOS runs, by preference; with none of these, the first slice (as Santa's
# Security framework call falls back on). The manifest's `santa_host_slice` follows this.
HOST_PREFERENCE: Mapping[str, tuple[str, ...]] = {
    "apple-silicon": ("arm64e", "arm64", "x86_64h", "x86_64"),
    "intel": ("x86_64h", "x86_64", "i386"),
}


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


def host_slice(architectures: list[str], host: Host) -> str | None:
    for arch in HOST_PREFERENCE[host]:
        if arch in architectures:
            return arch
    return architectures[0] if architectures else None


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


def file_info(path: str | os.PathLike[str], *, host: Host = "apple-silicon", arch: str | None = None) -> FileInfo:
    """Describe the file at `path` as `santactl fileinfo` would (spec §7)."""
    # Imported here, not above: examining a file loads LIEF, asn1crypto and cryptography, and code
    # that only handles FileInfo values (a sync, the event store) must not pay for them.
    from santacore.identity.examine import examine

    return examine(path, host=host, arch=arch)
