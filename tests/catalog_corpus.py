"""A small real catalog for the catalog's read-side tests (export, show, cluster): a zipped bundle,
corpus bundles, folders and Mach-O files, a duplicate binary (DirectoryBundle holds a second BundleExample.app), and
a file that is no artifact (recorded as failed). Scanned with `scan_artifact`, stored in a real
SQLite catalog."""

from __future__ import annotations

import zipfile
from pathlib import Path

from santacore.catalog.scan import scan_artifact
from santacore.catalog.store import CatalogStore

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTDATA = "santa/northpolesec/common/testdata"
BINARYRULES = "santa/northpolesec/santad/testdata/binaryrules"
DESIGNER = "registry/pypi/PySide6-Essentials/6.11.3/PySide6/Designer.app"
HW_TEAM_SIGNED = "santa/northpolesec/common/verifyinghasher/testdata/hw_team_signed"


def zipped(source: Path, target: Path) -> Path:
    """`source` (a bundle) as a zip holding it under its own name, as a release download would."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(source.rglob("*")):
            if path.is_file() and not path.is_symlink():
                info = zipfile.ZipInfo(str(source.name / path.relative_to(source)), (2020, 1, 1, 0, 0, 0))
                info.external_attr = (path.stat().st_mode & 0o777) << 16
                z.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return target


def catalog_artifacts(corpus: Path, scratch: Path) -> list[Path]:
    """The artifacts of the test catalog, in scan order."""
    not_an_artifact = scratch / "notes.txt"
    not_an_artifact.write_text("not an archive\n", encoding="utf-8")
    return [
        zipped(corpus / DESIGNER, scratch / "Designer.app.zip"),
        REPO_ROOT / "examples" / "terminal-notifier.app",
        corpus / TESTDATA / "BundleExample.app",
        corpus / TESTDATA / "DirectoryBundle",
        corpus / BINARYRULES,
        corpus / HW_TEAM_SIGNED,
        not_an_artifact,
    ]


def build_catalog(db: Path, artifacts: list[Path]) -> Path:
    with CatalogStore.open(db) as store:
        for path in artifacts:
            store.record(scan_artifact(str(path)))
    return db
