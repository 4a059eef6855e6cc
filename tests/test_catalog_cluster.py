"""`scan_on_cluster`: a real Dask cluster on loopback — one `dask scheduler` and two `dask worker`
processes started here and always stopped — scans a catalog identical to a local scan's (timings
aside); a worker killed with SIGKILL while it holds tasks has them redone elsewhere, and nothing is
missing or recorded twice."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from santacore.catalog.cluster import ClusterError, scan_on_cluster
from santacore.catalog.discover import artifacts as discovered
from santacore.catalog.model import ArtifactResult
from santacore.catalog.runner import plan, scan_local
from santacore.catalog.store import CatalogStore
from tests.catalog_corpus import BINARYRULES, DESIGNER, TESTDATA

STARTUP_LIMIT = 60.0  # seconds for the scheduler and workers to come up on a loaded machine
DASK = [sys.executable, "-m", "dask"]


@dataclasses.dataclass
class Cluster:
    address: str
    workers: dict[str, subprocess.Popen[bytes]]
    directory: Path

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        # --no-nanny: the process is the worker itself, so a SIGKILL ends it for good (a nanny
        # would restart it); one thread, so tasks queue and a killed worker holds some.
        with open(self.directory / f"{name}.log", "wb") as log:  # the child keeps its own descriptor
            worker = subprocess.Popen(
            [*DASK, "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                 "--memory-limit", "0", "--local-directory", str(self.directory / name), "--host", "127.0.0.1"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
            )  # fmt: skip
        self.workers[name] = worker
        return worker

    def wait_for_workers(self, count: int) -> None:
        with client_for(self.address) as client:
            client.wait_for_workers(count, timeout=STARTUP_LIMIT)


def _address(scheduler_file: Path) -> str:
    """The scheduler's address once its file is written whole (it is not written atomically)."""
    try:
        return str(json.loads(scheduler_file.read_text(encoding="utf-8"))["address"])
    except (OSError, ValueError, KeyError):
        return ""


def client_for(address: str) -> Any:
    from distributed import Client

    return Client(address, timeout="30s", set_as_default=False)  # type: ignore[no-untyped-call]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("dask")
    scheduler_file = directory / "scheduler.json"
    with open(directory / "scheduler.log", "wb") as log:  # the child keeps its own descriptor
        scheduler = subprocess.Popen(
            [*DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            stdout=log, stderr=subprocess.STDOUT, cwd=directory,
        )  # fmt: skip
    running = Cluster("", {}, directory)
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while not _address(scheduler_file):
            assert scheduler.poll() is None, (directory / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.1)
        running.address = _address(scheduler_file)
        running.start_worker("w1")
        running.start_worker("w2")
        running.wait_for_workers(2)
        yield running
    finally:
        for worker in running.workers.values():
            _stop(worker)
        _stop(scheduler)


def _pack(source: Path, target: Path, kind: str) -> Path:
    """`source` (a bundle or folder) as a zip or tar.gz holding it under its own name."""
    if kind == "zip":
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(source.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    info = zipfile.ZipInfo(str(source.name / path.relative_to(source)), (2020, 1, 1, 0, 0, 0))
                    info.external_attr = (path.stat().st_mode & 0o777) << 16
                    z.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    else:
        with tarfile.open(target, "w:gz") as t:
            t.add(source, arcname=source.name)
    return target


@pytest.fixture(scope="module")
def artifacts(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Corpus bundles packed as zip and tar.gz, beside bundles and a folder as they are on disk."""
    root = tmp_path_factory.mktemp("artifacts")
    repo = Path(__file__).resolve().parent.parent
    example = repo / "examples" / "terminal-notifier.app"
    bundle_example = corpus / TESTDATA / "BundleExample.app"
    packed = [
        _pack(example, root / "terminal-notifier.zip", "zip"),
        _pack(example, root / "terminal-notifier.tar.gz", "tar.gz"),
        _pack(bundle_example, root / "BundleExample.app.zip", "zip"),
        _pack(corpus / BINARYRULES, root / "binaryrules.tar.gz", "tar.gz"),
    ]
    return [*packed, example, bundle_example, corpus / BINARYRULES]


def _timeless(result: ArtifactResult) -> ArtifactResult:
    bundles = tuple(dataclasses.replace(b, hash_millis=0.0) for b in result.bundles)
    return dataclasses.replace(result, scan_millis=0, bundles=bundles)


def catalog_rows(db: Path) -> dict[str, Any]:
    """Every artifact of a catalog by path, its timings zeroed, and the table counts."""
    with CatalogStore.open(db) as store:
        rows: dict[str, Any] = {}
        for artifact in store.artifacts():
            result = _timeless(store.result(artifact))
            for path in artifact.paths:
                rows[path] = dataclasses.replace(result, path=path)
        rows["counts"] = store.counts()
    return rows


def test_a_cluster_scan_equals_a_local_scan(cluster: Cluster, artifacts: list[Path], tmp_path: Path) -> None:
    local = tmp_path / "local.db"
    named = [str(p) for p in artifacts]
    found = list(discovered(named))  # the folder is walked: each Mach-O in it is an artifact
    assert len(found) > len(named)
    with CatalogStore.open(local) as store:
        scan_local(plan(named, store), store, workers=1)
    remote = tmp_path / "cluster.db"
    seen: list[tuple[str, bool]] = []
    with CatalogStore.open(remote) as store:
        outcome = scan_on_cluster(
            named,
            store,
            cluster.address,
            progress=lambda path, result: seen.append((path, result is not None)),
        )
    assert (outcome.submitted, outcome.scanned, outcome.skipped, outcome.workers) == (len(found), len(found), 0, 2)
    # Each artifact announced when submitted, then once when recorded.
    assert sorted(p for p, recorded in seen if not recorded) == sorted(found)
    assert sorted(p for p, recorded in seen if recorded) == sorted(found)
    expected, got = catalog_rows(local), catalog_rows(remote)
    assert got == expected
    assert expected["counts"]["binaries"] > 10
    # Every artifact was read, the archives in place: their bundles hash as the same bundles on disk.
    assert all(expected[p].error is None for p in found)
    on_disk = expected[str(artifacts[4])].bundles[0].bundle_hash
    assert on_disk and [b.bundle_hash for b in expected[str(artifacts[0])].bundles] == [on_disk]
    assert [b.bundle_hash for b in expected[str(artifacts[1])].bundles] == [on_disk]

    # A second run finds everything done and submits nothing.
    with CatalogStore.open(remote) as store:
        again = scan_on_cluster(named, store, cluster.address)
    assert (again.submitted, again.skipped) == (0, len(found))
    assert catalog_rows(remote) == expected


def test_a_worker_killed_mid_scan_loses_and_doubles_nothing(cluster: Cluster, corpus: Path, tmp_path: Path) -> None:
    victim = cluster.start_worker("victim")
    cluster.wait_for_workers(3)
    # 12 artifacts, each a copy of Designer.app (a universal bundle, ad-hoc sealed) at its own path.
    paths = []
    for i in range(12):
        copy = tmp_path / f"Designer{i:02d}.app"
        shutil.copytree(corpus / DESIGNER, copy)
        paths.append(str(copy))
    killed: list[list[str]] = []

    watcher = client_for(cluster.address)

    def kill_the_victim(path: str, result: ArtifactResult | None) -> None:
        if killed or result is None:
            return
        workers = watcher.scheduler_info()["workers"]
        processing = watcher.processing()
        held: list[str] = next(
            (keys for address, keys in processing.items() if workers.get(address, {}).get("name") == "victim"), []
        )
        if held:  # kill it while it holds tasks; until then, wait for the next result
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            killed.append(list(held))

    db = tmp_path / "catalog.db"
    try:
        with CatalogStore.open(db) as store:
            outcome = scan_on_cluster(paths, store, cluster.address, progress=kill_the_victim)
    finally:
        watcher.close()
    assert killed and killed[0], "the victim never held a task"
    assert outcome.scanned == len(paths) and outcome.failed == 0
    rows = catalog_rows(db)
    # One artifact (every copy has the same content), linked at every path, its rows once.
    assert rows["counts"]["artifacts"] == 1 and rows["counts"]["paths"] == len(paths)
    designer = rows[paths[0]]
    assert designer.error is None and designer.bundles[0].bundle_hash
    assert (rows["counts"]["bundles"], rows["counts"]["binaries"]) == (len(designer.bundles), len(designer.binaries))
    assert all(rows[p] == dataclasses.replace(designer, path=p) for p in paths)


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    with CatalogStore.open(tmp_path / "c.db") as store, pytest.raises(ClusterError, match="cannot reach the Dask"):
        scan_on_cluster([str(tmp_path)], store, "tcp://127.0.0.1:9", connect_timeout="2s")


def test_catalog_scan_with_scheduler_writes_the_catalog(
    cluster: Cluster, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from santacore.cli import main

    db = tmp_path / "catalog.db"
    bundle = str(corpus / TESTDATA / "BundleExample.app")
    assert main(["catalog", "scan", bundle, "--db", str(db), "--scheduler", cluster.address]) == 0
    assert capsys.readouterr().out.startswith("1 artifacts scanned, 0 skipped")
    rows = catalog_rows(db)
    assert rows[bundle].kind == "bundle" and rows[bundle].bundles[0].bundle_hash


def test_catalog_scan_without_distributed_names_the_extra(tmp_path: Path, corpus: Path) -> None:
    # A fresh interpreter where distributed cannot be imported, as on an install without the extra.
    bundle = str(corpus / TESTDATA / "BundleExample.app")
    argv = ["catalog", "scan", bundle, "--db", str(tmp_path / "c.db"), "--scheduler", "tcp://127.0.0.1:9"]
    script = f"import sys; sys.modules['distributed'] = None\nfrom santacore.cli import main\nsys.exit(main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "pip install 'santacore[cluster]'" in done.stderr
    assert "Traceback" not in done.stderr
