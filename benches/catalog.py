"""The catalog benchmark: whole processes, wall time and peak RSS, in one run.

    python -m benches.catalog registry [--no-dask]      # the 55-artifact registry catalog
    python -m benches.catalog scaling [--counts 1000 5000 10000]

registry (`benches.catalog_fetch`: 54 pinned PyPI artifacts and the example app zipped):
  * `santacore catalog scan FILES --db NEW` (all cores);
  * plain Python (`benches.catalog_plain`: zipfile/tarfile + hashlib, one process) — it hashes and
    finds bundles only, no code-signature identity;
  * unpack each archive to a temporary folder, then `santacore bundleinfo --json` on each bundle
    root found there (`unpack` below, one process driving them);
  * the same scan on a Dask cluster of 2 local workers (a scheduler and two `dask worker --nthreads 1`
    started here), beside the local run;
  * bundle hashes of the plain-Python run checked against the catalog's, bundle root by bundle root.
scaling: N small synthetic archives (a zip holding a one-executable app, each distinct) scanned from
an empty catalog, N = 1k, 5k, 10k: wall, artifacts/minute, peak RSS.

Results go to benches/results/catalog.json (merged with what an earlier run of the other mode wrote).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from benches.catalog_fetch import CACHE, fetch
from benches.catalog_plain import _bundle_roots

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benches" / "results" / "catalog.json"
BIN = Path(sys.executable).parent
TINY_MACHO = Path(os.environ.get("SANTACORE_CORPUS", REPO.parent / "shared" / "corpus")) / (
    "santa/northpolesec/santad/testdata/binaryrules/noop"
)


def timed(command: list[str], **kwargs: Any) -> dict[str, Any]:
    """Run `command` to completion: wall seconds, peak RSS (MB, of that process; a driver that
    starts children reports theirs on its last stdout line) and its output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, **kwargs)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"{command[:4]} failed ({process.returncode}): {stderr[-2000:]}")
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "stdout": stdout,
        "stderr": stderr,
    }


def _child_peak() -> float:
    """The largest peak RSS of any child waited for so far (Linux keeps the maximum, in KB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def santacore_scan(files: list[Path], db: Path, scheduler: str | None = None) -> dict[str, Any]:
    if db.exists():
        db.unlink()
    command = [str(BIN / "santacore"), "catalog", "scan", *map(str, files), "--db", str(db)]
    if scheduler:
        command += ["--scheduler", scheduler]
    run = timed(command)
    run["summary"] = run.pop("stdout").strip()
    del run["stderr"]
    return run


def unpack_baseline(files: list[Path]) -> None:
    """Driver (run as a child): unpack each archive, `santacore bundleinfo --json` each bundle root."""
    import tarfile

    bundles = 0
    for archive in files:
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(scratch)
                    names = {n.rstrip("/") for n in z.namelist()}
            else:
                with tarfile.open(archive) as t:
                    t.extractall(scratch, filter="data")
                    names = {m.name for m in t.getmembers()}
            for root in _bundle_roots(names):
                subprocess.run(
                    [str(BIN / "santacore"), "bundleinfo", "--json", os.path.join(scratch, root)],
                    check=False,
                    stdout=subprocess.DEVNULL,
                )
                bundles += 1
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, _child_peak() * 1024) / 1024
    print(json.dumps({"bundles": bundles, "peak_rss_mb": round(peak, 1)}))


def catalog_bundles(db: Path) -> dict[tuple[str, str], tuple[str | None, int]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT a.sha256, b.path, b.bundle_hash, b.binary_count "
            "FROM bundles b JOIN artifacts a ON a.id = b.artifact_id"
        ).fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def start_dask(directory: Path, workers: int = 2) -> tuple[str, list[subprocess.Popen[bytes]]]:
    scheduler_file = directory / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    log = open(directory / "dask.log", "wb")
    processes = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
             str(scheduler_file)], stdout=log, stderr=subprocess.STDOUT,
        )
    ]  # fmt: skip
    deadline = time.monotonic() + 60
    address = ""
    while not address and time.monotonic() < deadline:
        try:
            address = json.loads(scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    for i in range(workers):
        processes.append(
            subprocess.Popen(
                [*dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--memory-limit", "0",
                 "--name", f"w{i}", "--local-directory", str(directory / f"w{i}")],
                stdout=log, stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
    log.close()
    from distributed import Client

    with Client(address, timeout="60s", set_as_default=False) as client:  # type: ignore[no-untyped-call]
        client.wait_for_workers(workers, timeout=120)
    return address, processes


def registry(with_dask: bool) -> dict[str, Any]:
    files = fetch()
    total = sum(p.stat().st_size for p in files)
    work = CACHE / "work"
    work.mkdir(exist_ok=True)
    out: dict[str, Any] = {"artifacts": len(files), "bytes": total}
    out["santacore"] = santacore_scan(files, work / "registry.db")
    plain = timed([sys.executable, "-m", "benches.catalog_plain", *map(str, files)], cwd=REPO)
    scanned = [json.loads(line) for line in plain.pop("stdout").splitlines()]
    del plain["stderr"]
    out["plain_python"] = plain
    unpack = timed([sys.executable, "-m", "benches.catalog", "_unpack", *map(str, files)], cwd=REPO)
    driver = json.loads(unpack.pop("stdout").splitlines()[-1])
    del unpack["stderr"]
    unpack["peak_rss_mb"] = max(unpack["peak_rss_mb"], driver["peak_rss_mb"])
    unpack["bundles"] = driver["bundles"]
    out["unpack_bundleinfo"] = unpack
    catalog = catalog_bundles(work / "registry.db")
    same = differ = 0
    for item in scanned:
        for root, (bundle_hash, count) in item["bundles"].items():
            got = catalog.get((item["sha256"], root))
            if got is not None and got == (bundle_hash, count):
                same += 1
            else:
                differ += 1
    out["bundle_check"] = {"same_as_plain_python": same, "not_matched": differ, "catalog_bundles": len(catalog)}
    if with_dask:
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            address, processes = start_dask(Path(scratch))
            try:
                out["dask_2_workers"] = santacore_scan(files, work / "registry-dask.db", scheduler=address)
            finally:
                for p in reversed(processes):
                    p.send_signal(signal.SIGTERM)
                for p in processes:
                    try:
                        p.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        p.kill()
        out["dask_2_workers"]["same_bundles_as_local"] = catalog_bundles(work / "registry-dask.db") == catalog
    for name in ("santacore", "plain_python", "unpack_bundleinfo", "dask_2_workers"):
        if name in out:
            run = out[name]
            run["artifacts_per_minute"] = round(len(files) / run["wall_s"] * 60, 1)
            run["mb_per_s"] = round(total / 1e6 / run["wall_s"], 1)
    return out


def synthetic(directory: Path, count: int) -> Path:
    """`count` distinct small zips (each an app with one real executable and its own Info.plist)."""
    folder = directory / f"n{count}"
    if folder.exists():
        return folder
    folder.mkdir(parents=True)
    binary = TINY_MACHO.read_bytes()
    for i in range(count):
        with zipfile.ZipFile(folder / f"tiny{i:05d}.zip", "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"Tiny{i}.app/Contents/Info.plist", _plist(i))
            z.writestr(zipfile.ZipInfo(f"Tiny{i}.app/Contents/MacOS/tiny", (2020, 1, 1, 0, 0, 0)), binary)
    return folder


def _plist(i: int) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>CFBundleIdentifier</key>'
        f"<string>com.example.tiny{i}</string><key>CFBundleExecutable</key><string>tiny</string></dict></plist>"
    )


def scaling(counts: list[int]) -> list[dict[str, Any]]:
    work = CACHE / "work"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for count in counts:
        folder = synthetic(CACHE / "synthetic", count)
        run = santacore_scan([folder], work / f"synthetic-{count}.db")
        run["artifacts"] = count
        run["artifacts_per_minute"] = round(count / run["wall_s"] * 60, 1)
        rows.append(run)
        print(json.dumps(run), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("registry", "scaling", "_unpack"))
    parser.add_argument("files", nargs="*")
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 5000, 10000])
    args = parser.parse_args()
    if args.mode == "_unpack":
        unpack_baseline([Path(f) for f in args.files])
        return
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    if args.mode == "registry":
        results["registry"] = registry(not args.no_dask)
    else:
        results["scaling"] = scaling(args.counts)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
