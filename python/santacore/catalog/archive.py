"""An archive artifact: the engine reads it in place (`santacore._core.scan_archive`, GIL
released), `tree` finds its bundles, and each Mach-O member is described from what the engine
captured while it streamed past (`santacore.identity.image.file_info_from_image`), with the
member's nearest bundle as `file_info` finds it on disk."""

from __future__ import annotations

import posixpath

from santacore._core import ArchiveEntry
from santacore._core import scan_archive as engine_scan
from santacore.catalog.model import ArtifactResult, BinaryRecord
from santacore.catalog.tree import ArchiveTree, bundle_records
from santacore.identity.bundle import nearest_in


def scan_archive(path: str, kind: str, threads: int) -> ArtifactResult:
    scan = engine_scan(path)
    if scan.error is not None:
        return ArtifactResult(path, scan.sha256, scan.size, scan.kind, error=scan.error)
    tree = ArchiveTree(scan.entries)
    bundles = bundle_records(tree)
    roots = sorted((b.path for b in bundles), key=len, reverse=True)  # innermost first
    binaries = []
    warnings = []
    for e in sorted(scan.entries, key=lambda e: e.path):
        if e.kind != "file" or e.sha256 is None:
            continue
        owner = next((r for r in roots if e.path.startswith(r + "/")), None)
        record, warning = _binary(tree, e, owner)
        binaries.append(record)
        if warning:
            warnings.append(warning)
    warnings += [f"{p}: symlink loop (more than 40 links)" for p in sorted(tree.loops)]
    return ArtifactResult(
        path, scan.sha256, scan.size, scan.kind, tuple(bundles), tuple(binaries), warnings=tuple(warnings)
    )


def _binary(tree: ArchiveTree, e: ArchiveEntry, owner: str | None) -> tuple[BinaryRecord, str | None]:
    """The member's record with its fileinfo identity, or without it and a warning saying why."""
    assert e.sha256 is not None
    image = e.image
    if image is None:
        return BinaryRecord(e.path, owner, e.sha256, e.size), f"{e.path}: {e.note or 'identity not captured'}"
    from santacore.identity.image import BundleContext, file_info_from_image
    from santacore.identity.report import json_document

    try:
        nearest = nearest_in(tree, e.path)
        context = None
        if nearest is not None:
            plist = tree.kept_bytes(nearest.info_plist)
            if plist is not None:
                resources = posixpath.join(posixpath.dirname(nearest.info_plist), "_CodeSignature", "CodeResources")
                context = BundleContext(
                    path=nearest.path,
                    info_plist=plist,
                    info_plist_path=nearest.info_plist,
                    main_executable=nearest.main_executable,
                    code_resources=tree.kept_bytes(resources),
                )
        document = json_document(file_info_from_image(image, name=e.path, bundle=context))
    except Exception as why:  # a member LIEF or the CMS parser refuses: keep its hash, say why
        return BinaryRecord(e.path, owner, e.sha256, e.size), f"{e.path}: identity not computed: {why}"
    return BinaryRecord.from_fileinfo(e.path, owner, e.size, document), None
