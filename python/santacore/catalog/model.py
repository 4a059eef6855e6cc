"""What scanning one artifact produces. Plain frozen dataclasses of str/int/dict/tuple values: a
result pickles, so it can be computed in a worker process (or on a Dask worker) and written to the
catalog by the one process that holds it.

Paths inside an artifact are '/'-separated and relative to the artifact's root; the artifact root
itself (a bundle scanned as an artifact) is ".".
"""

from __future__ import annotations

from dataclasses import dataclass, field

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: start-up stays cheap
if TYPE_CHECKING:
    from typing import Any

# Artifact kinds. An archive's kind names its container and compression.
KINDS = (
    "zip",
    "tar",
    "tar.gz",
    "tar.bz2",
    "tar.xz",
    "tar.zst",
    "pkg",
    "bundle",
    "directory",
    "macho",
    "unknown",
)


@dataclass(frozen=True)
class BundleRecord:
    """One bundle root (spec §6.2) inside an artifact, with Santa's bundle hash (§6.5)."""

    path: str
    bundle_hash: str | None
    binary_count: int
    hash_millis: float
    bundle_id: str | None = None
    name: str | None = None
    version: str | None = None
    short_version: str | None = None


@dataclass(frozen=True)
class BinaryRecord:
    """One Mach-O file inside an artifact. `fileinfo` is `santacore fileinfo --json`'s document of
    it (`santacore.identity.report.json_document`), empty when its identity could not be computed;
    the other identity fields are copied from it for queries (None when absent)."""

    path: str
    bundle_path: str | None
    sha256: str
    size: int
    fileinfo: dict[str, Any] = field(default_factory=dict)
    team_id: str | None = None
    signing_id: str | None = None
    cdhash: str | None = None
    signing_status: str | None = None
    leaf_cert_sha256: str | None = None

    @classmethod
    def from_fileinfo(cls, path: str, bundle_path: str | None, size: int, document: dict[str, Any]) -> BinaryRecord:
        """A record whose convenience fields come from a fileinfo JSON document."""
        chain = document.get("signing_chain") or []
        leaf = chain[0].get("sha256") if chain and isinstance(chain[0], dict) else None
        return cls(
            path=path,
            bundle_path=bundle_path,
            sha256=str(document["sha256"]),
            size=size,
            fileinfo=document,
            team_id=document.get("team_id"),
            signing_id=document.get("santa_signing_id"),
            cdhash=document.get("cdhash"),
            signing_status=document.get("signing_status"),
            leaf_cert_sha256=leaf,
        )


@dataclass(frozen=True)
class ArtifactResult:
    """One artifact scanned: its identity (SHA-256 and size of the file, or of a directory's
    manifest), what it holds, or `error` saying why it could not be read (then `bundles` and
    `binaries` are empty). `warnings` are problems that did not stop the scan (a symlink loop in
    a bundle's tree, a member whose identity could not be computed)."""

    path: str
    sha256: str
    size: int
    kind: str
    bundles: tuple[BundleRecord, ...] = ()
    binaries: tuple[BinaryRecord, ...] = ()
    error: str | None = None
    scan_millis: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.error is not None
