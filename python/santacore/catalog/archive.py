"""An archive artifact: the engine reads it in place (`santacore._core.scan_archive`, GIL
released), `tree` finds its bundles, and each Mach-O member becomes a `BinaryRecord`."""

from __future__ import annotations

from santacore._core import scan_archive as engine_scan
from santacore.catalog.model import ArtifactResult, BinaryRecord
from santacore.catalog.tree import ArchiveTree, bundle_records


def scan_archive(path: str, kind: str, threads: int) -> ArtifactResult:
    scan = engine_scan(path)
    if scan.error is not None:
        return ArtifactResult(path, scan.sha256, scan.size, scan.kind, error=scan.error)
    tree = ArchiveTree(scan.entries)
    bundles = bundle_records(tree)
    roots = sorted((b.path for b in bundles), key=len, reverse=True)  # innermost first
    binaries = []
    for e in sorted(scan.entries, key=lambda e: e.path):
        if e.kind != "file" or e.sha256 is None:
            continue
        owner = next((r for r in roots if e.path.startswith(r + "/")), None)
        # Identity (signature, Team ID...) of a member needs the streaming capture; until then
        # the record has the member's SHA-256 and size and no identity fields.
        binaries.append(BinaryRecord(e.path, owner, e.sha256, e.size))
    warnings = tuple(f"{p}: symlink loop (more than 40 links)" for p in sorted(tree.loops))
    return ArtifactResult(path, scan.sha256, scan.size, scan.kind, tuple(bundles), tuple(binaries), warnings=warnings)
