"""Runs one tool once, in a fresh process, and prints its result as one JSON line.

Used by ``benches.ratios`` so that each timed run has its own process: its peak RSS (from
``os.wait4``) belongs to that tool alone, and nothing cached in the parent helps it.
``wall_s`` is the tool's own call, timed inside the child (interpreter start-up and
imports excluded; the parent separately records the whole process's wall time).

    python -m benches._child santacore ROOT [--threads N]
    python -m benches._child reference ROOT
    python -m benches._child hashlib LISTFILE [--threads N]   # SHA-256 of the listed files
    python -m benches._child idle                             # import santacore, nothing else
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CHUNK = 256 * 1024


def _sha256_path(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)  # releases the GIL for buffers > 2 KiB
    return h.hexdigest()


def _usage() -> tuple[float, int, int, int]:
    """(process CPU seconds over all threads, voluntary and involuntary context switches, minor faults)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return time.process_time(), ru.ru_nvcsw, ru.ru_nivcsw, ru.ru_minflt


def _delta(before: tuple[float, int, int, int]) -> dict[str, float]:
    after = _usage()
    return {
        "cpu_s": after[0] - before[0],
        "voluntary_ctx_switches": after[1] - before[1],
        "involuntary_ctx_switches": after[2] - before[2],
        "minor_faults": after[3] - before[3],
    }


def run(argv: list[str]) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m benches._child")
    ap.add_argument("mode", choices=["santacore", "reference", "hashlib", "idle"])
    ap.add_argument("target", nargs="?", default="")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    out: dict[str, Any] = {"mode": args.mode, "threads": args.threads}
    if args.mode == "santacore":
        import santacore

        u0, t0 = _usage(), time.perf_counter()
        r = santacore.hash_tree(args.target, threads=args.threads)
        out["wall_s"] = time.perf_counter() - t0
        out["call_usage"] = _delta(u0)
        out.update(
            bundle_hash=r.bundle_hash,
            binary_count=r.binary_count,
            binaries=len(r.binaries),
            hash_millis=r.hash_millis,
            skipped=len(r.skipped),
            regular_files=r.stats.regular_files,
            directories=r.stats.directories,
            macho_files=r.stats.macho_files,
            bytes_hashed=r.stats.bytes_hashed,
            walk_millis=r.stats.walk_millis,
            hashing_millis=r.stats.hashing_millis,
        )
    elif args.mode == "reference":
        from tests.reference import reference_tree_hash

        u0, t0 = _usage(), time.perf_counter()
        bundle_hash, count, binaries = reference_tree_hash(args.target)
        out["wall_s"] = time.perf_counter() - t0
        out["call_usage"] = _delta(u0)
        out.update(bundle_hash=bundle_hash, binary_count=count, binaries=len(binaries))
    elif args.mode == "hashlib":
        with open(args.target, encoding="utf-8") as f:
            paths = [line.rstrip("\n") for line in f if line.strip()]
        u0, t0 = _usage(), time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.threads or 1) as pool:
            digests = list(pool.map(_sha256_path, paths))
        unique = sorted(set(digests))
        bundle_hash = hashlib.sha256("".join(unique).encode("ascii")).hexdigest() if unique else None
        out["wall_s"] = time.perf_counter() - t0
        out["call_usage"] = _delta(u0)
        out.update(bundle_hash=bundle_hash, binary_count=len(unique), binaries=len(paths))
    else:
        import santacore

        out.update(wall_s=0.0, version=santacore.__version__)
    return out


def main() -> int:
    print(json.dumps(run(sys.argv[1:])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
