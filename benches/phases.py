"""Where santacore's time goes: per-thread timeline under perf, and a balanced-hashing bound.

python -m benches.phases timeline [--workload xcode] [--bin-ms 100]
    perf-record (cpu-clock, call graphs) one santacore hash_tree in a child process and
    print, per time bin and per thread, the samples spent hashing (a SHA-256 / hash_file
    frame on the stack) and the rest (walking, sniffing, syscalls), then the kernel share
    of the non-hashing samples by syscall. Needs ``perf`` (perf_event_paranoid <= 2).

python -m benches.phases balanced [--workload xcode] [--runs 7]
    santacore's hashing phase as it would be with a perfect 2-way split: the workload's
    executables are hard-linked into two folders of equal bytes (largest first, greedy)
    and each folder is hashed with ``threads=1`` at the same time (the GIL is released).
    Compare with ``hashing_millis`` of a normal run (which, hashing overlapping the walk,
    spans from the first hash's start to the last one's end).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import santacore
from benches.workloads import ALIASES, WORKLOAD_NAMES, Workload, cache_dir, canonical_name, prepare

HASH_FRAMES = ("digest_blocks", "hash_file", "hash_candidate", "sha256")
SYSCALLS = (
    "__x64_sys_openat",
    "__x64_sys_statx",
    "__x64_sys_newfstatat",
    "ksys_read",
    "ksys_pread64",
    "__x64_sys_pread64",
    "__x64_sys_close",
    "__x64_sys_getdents64",
    "__x64_sys_dup",
    "__x64_sys_futex",
    "asm_exc_page_fault",
)


def timeline(workload: Workload, bin_ms: int) -> int:
    perf = shutil.which("perf")
    if perf is None:
        print("perf not found", file=sys.stderr)
        return 1
    code = (
        "import santacore,sys; r=santacore.hash_tree(sys.argv[1]); "
        "print(f'walk_millis={r.stats.walk_millis:.1f} hashing_millis={r.stats.hashing_millis:.1f} "
        "(under perf, so slower than normal)')"
    )
    santacore.hash_tree(workload.root)  # warm the page cache outside the recording
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        rec = [perf, "record", "-q", "-F", "1000", "-g", "-o", data, sys.executable, "-c", code, str(workload.root)]
        subprocess.run(rec, check=True)
        script = subprocess.run(
            [perf, "script", "-i", data, "-F", "tid,time,ip,sym"], capture_output=True, text=True, check=True
        ).stdout
    samples: list[tuple[int, float, bool, str]] = []  # tid, time, hashing, kernel syscall ("" = user)
    tid, t, leaf = 0, 0.0, ""
    stack: list[str] = []
    for line in [*script.splitlines(), ""]:
        m = re.match(r"^\s*(\d+)\s+([\d.]+):", line)
        if m or not line.strip():
            if stack:
                joined = " ".join(stack)
                kernel = leaf.startswith("ffffffff")
                call = next((s for s in SYSCALLS if s in joined), "other kernel") if kernel else ""
                samples.append((tid, t, any(f in joined for f in HASH_FRAMES), call))
            stack, leaf = [], ""
            if m:
                tid, t = int(m.group(1)), float(m.group(2))
            continue
        if not leaf:
            leaf = line.strip()
        stack.append(line.strip())
    if not samples:
        print("perf recorded no samples", file=sys.stderr)
        return 1
    t0 = min(s[1] for s in samples)
    tids = sorted({s[0] for s in samples})
    bins: dict[int, collections.Counter[tuple[int, bool]]] = collections.defaultdict(collections.Counter)
    for s_tid, s_t, hashing, _call in samples:
        bins[int((s_t - t0) * 1000 // bin_ms)][(s_tid, hashing)] += 1
    print(f"samples per {bin_ms} ms bin at 1 kHz (a busy thread scores about {bin_ms}): per thread, rest / hashing")
    print("    time  " + "  ".join(f"{f'tid {x}':>13}" for x in tids))
    for b in sorted(bins):
        cells = "  ".join(f"{bins[b][(x, False)]:6d}/{bins[b][(x, True)]:<6d}" for x in tids)
        print(f"{b * bin_ms:6d}ms  {cells}")
    rest = [s for s in samples if not s[2]]
    calls = collections.Counter(s[3] or "user space" for s in rest)
    print("\nnot hashing, by where the sample landed (kernel samples by syscall):")
    for call, n in calls.most_common():
        print(f"  {call:24} {n:6d}  {100 * n / len(rest):5.1f}%")
    return 0


def balanced(workload: Workload, runs: int) -> int:
    execs = sorted(workload.executables, key=lambda e: -e.size)
    base = Path(tempfile.mkdtemp(prefix="balanced-", dir=cache_dir()))
    halves = [base / "a", base / "b"]
    load = [0, 0]
    try:
        for d in halves:
            d.mkdir()
        for i, e in enumerate(execs):
            k = 0 if load[0] <= load[1] else 1
            load[k] += e.size
            os.link(workload.root / e.rel, halves[k] / f"{i:05d}")

        def both() -> float:
            def run(d: Path) -> None:
                santacore.hash_tree(d, threads=1)

            threads = [threading.Thread(target=run, args=(d,)) for d in halves]
            t0 = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            return time.perf_counter() - t0

        both()
        split = statistics.median(both() for _ in range(runs))
        normal = statistics.median(santacore.hash_tree(workload.root).stats.hashing_millis for _ in range(runs))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{workload.name}: {len(execs)} executables, {sum(load) / 1e6:.1f} MB, halves {load[0] / 1e6:.1f} MB")
    print(f"  balanced 2-way split, 2 x hash_tree(threads=1) at once: {split * 1000:.1f} ms (median of {runs})")
    print(f"  santacore hashing_millis on the whole tree:              {normal:.1f} ms")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benches.phases", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["timeline", "balanced"])
    ap.add_argument("--workload", default="xcode", choices=[*WORKLOAD_NAMES, *ALIASES])
    ap.add_argument("--bin-ms", type=int, default=100)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args(argv)
    workload = prepare(canonical_name(args.workload))
    if args.command == "timeline":
        return timeline(workload, args.bin_ms)
    return balanced(workload, args.runs)


if __name__ == "__main__":
    sys.exit(main())
