"""`scan_artifact`: one artifact in, one `ArtifactResult` out. Pure: it reads the artifact and
nothing else (no catalog, no global state), so it runs the same in this process, a worker process
or on a Dask worker, and it never raises for a bad artifact — the result's `error` says why.

What an artifact is, by its content (never its name): a directory that is a bundle (`bundle`),
any other directory (`directory`), a Mach-O file (`macho`), or an archive the engine reads in place
(`zip`, `tar`, `tar.gz`, `tar.bz2`, `tar.xz`, `tar.zst`, `pkg`). Anything else is `unknown` and
failed ("not an archive, bundle or Mach-O file").
"""

from __future__ import annotations

import hashlib
import os
import stat
import time

from santacore._core import archive_kind, sniff_macho
from santacore.catalog.model import ArtifactResult


def scan_artifact(path: str, *, threads: int = 0) -> ArtifactResult:
    """Scan the artifact at `path` (`threads`: engine threads within it, 0 = one per core)."""
    started = time.perf_counter()
    path = os.path.abspath(path)
    try:
        result = _scan(path, threads)
    except (OSError, ValueError) as e:  # unreadable: record why, with whatever identity is known
        result = ArtifactResult(path, *_identity_or_blank(path), kind="unknown", error=_reason(e))
    except Exception as e:  # a bug met by a strange artifact must not stop the whole scan: record it
        reason = f"internal error ({type(e).__name__}): {e}"
        result = ArtifactResult(path, *_identity_or_blank(path), kind="unknown", error=reason)
    millis = int((time.perf_counter() - started) * 1000)
    return ArtifactResult(**{**result.__dict__, "scan_millis": millis})


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _identity_or_blank(path: str) -> tuple[str, int]:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest(), os.fstat(f.fileno()).st_size
    except OSError:
        return "", 0


def _scan(path: str, threads: int) -> ArtifactResult:
    from santacore.catalog import ondisk

    st = os.stat(path)  # a symlink given on the command line is followed, as `bundleinfo` does
    if stat.S_ISDIR(st.st_mode):
        real = os.path.realpath(path)
        sha256, size = ondisk.tree_identity(real)
        bundles, binaries, warnings = ondisk.scan_tree(real, threads)
        kind = "bundle" if any(b.path == "." for b in bundles) else "directory"
        return ArtifactResult(path, sha256, size, kind, tuple(bundles), tuple(binaries), warnings=tuple(warnings))
    if not stat.S_ISREG(st.st_mode):
        return ArtifactResult(path, "", 0, "unknown", error="not a regular file or directory")
    with open(path, "rb") as f:
        head = f.read(4096)
    archive = archive_kind(head)
    if archive is not None:
        from santacore.catalog.archive import scan_archive

        return scan_archive(path, archive, threads)
    if sniff_macho(path).is_macho:
        record, warning = ondisk.binary_record(path, ".", None)
        return ArtifactResult(
            path, record.sha256, record.size, "macho", binaries=(record,), warnings=(warning,) if warning else ()
        )
    sha256, size = _identity_or_blank(path)
    return ArtifactResult(path, sha256, size, "unknown", error="not an archive, bundle or Mach-O file")
