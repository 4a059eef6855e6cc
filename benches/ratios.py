"""One command for santacore's headline ratios, measured in one run on this machine.

    python -m benches.ratios [--workload xcode|pyside6|mujoco|all] [--runs N] [--ref-runs M]

For each workload (prepared by ``benches.workloads``), with a warm page cache (one untimed
pass of every tool first), it measures:

* santacore ``hash_tree`` with default threads: median wall of N runs, each in a fresh
  child process (``python -m benches._child``); wall is the call itself, timed in the child.
  Peak RSS is the child's maximum resident set as ``/usr/bin/time`` reports it (that child
  runs only santacore; ``os.wait4`` would report a high-water mark inherited over fork);
  the RSS of a child that only imports santacore is reported as the baseline. Also
  santacore's own ``hash_millis``, its CPU time (user+sys) / wall = cores kept busy, and a
  1-thread run for scaling.
* the plain-Python reference (``tests.reference.reference_tree_hash``, single thread):
  median of M runs, fresh child each.
* ``find ROOT -type f`` (output to /dev/null): the listing floor.
* the SHA-256 floor: executable bytes / (2 cores x single-core SHA-256 rate), the rate
  measured in this run as the faster of ``hashlib.sha256`` over a 256 MiB in-memory buffer
  and ``openssl speed -evp sha256`` (1 MiB blocks). Also the critical-path floor
  max(floor, largest executable / rate): one file's SHA-256 cannot be split across cores.
* santacore's hashing phase on its own: a temporary folder of hard links to exactly the
  workload's executables (same inodes, same cached pages, one directory, no other files)
  hashed by santacore (and, for comparison, by hashlib with 2 threads). Its bundle hash must
  equal the full tree's.

Ratios: reference / santacore (target >= 3), santacore's hashing on its own (the
executables-only folder's ``hash_millis``) / SHA-256 floor (target <= 1.2; the whole run /
floor is reported too), santacore / find, and peak RSS (target < 150 MB). Hashing overlaps
the walk, so the full tree's ``walk_millis`` (start to the walk's end) and
``hashing_millis`` (first hash start to last hash end) are spans that overlap, reported
for context. Other processes' CPU use during each run
is read from /proc/stat and reported (``foreign_cpu``); before each workload the command
waits (up to ``--idle-wait`` s) for the machine to be quiet. Results go to
``benches/results/latest.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benches.workloads import REPO_ROOT, WORKLOAD_NAMES, Workload, cache_dir, canonical_name, prepare

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = {"reference_over_santacore_min": 3.0, "hashing_over_floor_max": 1.2, "peak_rss_mb_max": 150.0}


# ----------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _cpu_flags() -> set[str]:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def _mem_total_gib() -> float:
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    return 0.0


def _fs_type(path: Path) -> str:
    proc = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "unknown"


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def santacore_build() -> dict[str, Any]:
    """Which santacore was measured: the commit, whether the tree was dirty, the extension's hash."""
    import santacore._core as core

    so = Path(str(core.__file__))
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty_files": [line[3:] for line in _git("status", "--porcelain", "--", "rust", "Cargo.toml").splitlines()],
        "extension": str(so),
        "extension_sha256": hashlib.sha256(so.read_bytes()).hexdigest(),
        "extension_mtime": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(so.stat().st_mtime)),
    }


def machine_info(cache: Path) -> dict[str, Any]:
    import santacore

    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "sha_ni": "sha_ni" in _cpu_flags(),
        "mem_total_gib": round(_mem_total_gib(), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "santacore": santacore.__version__,
        "cache_dir": str(cache),
        "cache_fs": _fs_type(cache),
        "loadavg_start": os.getloadavg(),
    }


# ----------------------------------------------------------------------------- CPU accounting


def _busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    with open("/proc/stat", encoding="utf-8") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def busy_fraction(seconds: float) -> float:
    b0, t0 = _busy_ticks()
    time.sleep(seconds)
    b1, t1 = _busy_ticks()
    return (b1 - b0) / max(1, t1 - t0)


def wait_for_idle(max_wait: float, threshold: float = 0.10) -> tuple[bool, float]:
    """Waits until the machine's CPUs are less than ``threshold`` busy over 1 s."""
    deadline = time.monotonic() + max_wait
    frac = busy_fraction(1.0)
    while frac >= threshold and time.monotonic() < deadline:
        frac = busy_fraction(1.0)
    return frac < threshold, frac


# ----------------------------------------------------------------------------- child runs


@dataclass
class Run:
    #: The tool's own call, timed inside the child (find: the whole process).
    wall_s: float
    #: The whole child process, start to exit.
    process_s: float
    #: The child's user + system CPU (whole process).
    cpu_s: float
    #: CPU of the tool's own call, all threads (measured in the child; find: whole process).
    call_cpu_s: float
    maxrss_mb: float
    #: CPU seconds used by everything else on the machine during the run.
    foreign_cpu_s: float
    out: dict[str, Any] = field(default_factory=dict)
    #: Runs discarded because other processes used the CPU meanwhile, plus this one.
    attempts: int = 1


GNU_TIME = "/usr/bin/time"


def run_process(argv: Sequence[str], *, parse_json: bool) -> Run:
    """Runs ``argv`` once; peak RSS from GNU time (``%M``) when present, else from ``os.wait4``.

    ``os.wait4``'s ``ru_maxrss`` of a child forked from this (large) interpreter includes the
    parent's resident pages at fork/exec time, so the child's own peak is taken from
    ``/usr/bin/time``, which forks the measured process from its own tiny image.
    """
    use_time = os.access(GNU_TIME, os.X_OK)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as tm:
        cmd = [GNU_TIME, "-f", "%M", "-o", tm.name, *argv] if use_time else list(argv)
        b0, _ = _busy_ticks()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out if parse_json else subprocess.DEVNULL, stderr=err)
        _pid, status, ru = os.wait4(proc.pid, 0)
        process_s = time.perf_counter() - t0
        b1, _ = _busy_ticks()
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu_s = ru.ru_utime + ru.ru_stime
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err.read().decode(errors='replace')}")
        maxrss_kb = float(ru.ru_maxrss)
        if use_time:
            maxrss_kb = float(Path(tm.name).read_text(encoding="utf-8").split()[-1])
        data: dict[str, Any] = {}
        if parse_json:
            out.seek(0)
            data = json.loads(out.read().decode().strip().splitlines()[-1])
    usage = data.get("call_usage", {})
    return Run(
        wall_s=float(data.get("wall_s", process_s)),
        process_s=process_s,
        cpu_s=cpu_s,
        call_cpu_s=float(usage.get("cpu_s", cpu_s)),
        maxrss_mb=maxrss_kb / 1024,
        foreign_cpu_s=max(0.0, (b1 - b0) / CLK_TCK - cpu_s),
        out=data,
    )


#: A run is redone (up to RETRIES times) when other processes used more than this share of
#: the machine's CPU capacity during it: the machine may be shared with other work.
DISTURBED_SHARE = 0.05
RETRIES = 3


def disturbed(r: Run) -> bool:
    capacity = r.process_s * (os.cpu_count() or 1)
    return r.foreign_cpu_s > DISTURBED_SHARE * capacity + 0.02


def timed(argv: Sequence[str], parse_json: bool = True) -> Run:
    r = run_process(argv, parse_json=parse_json)
    for attempt in range(2, RETRIES + 2):
        if not disturbed(r):
            break
        wait_for_idle(10)
        r = run_process(argv, parse_json=parse_json)
        r.attempts = attempt
    return r


def child_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "benches._child", *args]


def repeat(n: int, argv: Sequence[str], parse_json: bool = True) -> list[Run]:
    return [timed(argv, parse_json) for _ in range(n)]


def med(runs: list[Run], attr: str = "wall_s") -> float:
    return statistics.median(float(getattr(r, attr)) for r in runs)


# ----------------------------------------------------------------------------- SHA-256 rates


def hashlib_rate(buf: bytes, repeats: int = 5) -> float:
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        hashlib.sha256(buf).digest()
        best = max(best, len(buf) / (time.perf_counter() - t0))
    return best


def hashlib_rate_threads(buf: bytes, threads: int, repeats: int = 3) -> float:
    """Aggregate rate of ``threads`` threads hashing the same buffer at once (GIL released)."""
    best = 0.0
    for _ in range(repeats):
        workers = [threading.Thread(target=lambda: hashlib.sha256(buf).digest()) for _ in range(threads)]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = max(best, threads * len(buf) / (time.perf_counter() - t0))
    return best


def openssl_rate(seconds: int = 2) -> float | None:
    exe = shutil.which("openssl")
    if exe is None:
        return None
    cmd = [exe, "speed", "-evp", "sha256", "-bytes", str(1 << 20), "-seconds", str(seconds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        m = re.match(r"^sha256\s+([0-9.]+)k\s*$", line.strip())
        if m:
            return float(m.group(1)) * 1000
    return None


def sha_rates() -> dict[str, Any]:
    buf = os.urandom(16 << 20) * 16  # 256 MiB; SHA-256's speed does not depend on content
    one = hashlib_rate(buf)
    two = hashlib_rate_threads(buf, 2)
    ossl = openssl_rate()
    del buf
    if ossl is not None and ossl > one:
        single, source = ossl, "openssl speed -evp sha256 (1 MiB blocks)"
    else:
        single, source = one, "hashlib.sha256 over a 256 MiB buffer"
    return {
        "hashlib_1t_Bps": one,
        "hashlib_2t_aggregate_Bps": two,
        "openssl_1t_Bps": ossl,
        "single_core_Bps": single,
        "single_core_source": source,
    }


# ----------------------------------------------------------------------------- workloads


@contextlib.contextmanager
def exec_only_tree(workload: Workload, cache: Path) -> Iterator[Path]:
    """A temporary folder of hard links to the workload's executables, and nothing else."""
    d = Path(tempfile.mkdtemp(prefix=f"{workload.name}-exec-only-", dir=cache))
    try:
        for i, p in enumerate(workload.executable_paths):
            os.link(p, d / f"{i:05d}-{p.name}")
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def without_executables(workload: Workload, cache: Path) -> Iterator[Path]:
    """A temporary hard-link mirror of the workload minus its executables: santacore's walk +
    sniff on the same inodes (same cached header pages) with nothing to hash."""
    d = Path(tempfile.mkdtemp(prefix=f"{workload.name}-no-exec-", dir=cache))
    skip = {str(p) for p in workload.executable_paths}
    root = str(workload.root)
    try:
        for dirpath, dirnames, filenames in os.walk(root):
            dest = os.path.join(d, os.path.relpath(dirpath, root))
            for dn in dirnames:
                os.mkdir(os.path.join(dest, dn))
            for fn in filenames:
                src = os.path.join(dirpath, fn)
                if src not in skip:
                    os.link(src, os.path.join(dest, fn))
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _summary(runs: list[Run]) -> dict[str, Any]:
    walls = [r.wall_s for r in runs]
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "runs": len(runs),
        "median_process_s": med(runs, "process_s"),
        "median_cpu_s": med(runs, "cpu_s"),
        "median_call_cpu_s": med(runs, "call_cpu_s"),
        "cores_busy": statistics.median(r.call_cpu_s / max(1e-9, r.wall_s) for r in runs),
        "peak_rss_mb": max(r.maxrss_mb for r in runs),
        "median_foreign_cpu_s": med(runs, "foreign_cpu_s"),
        "discarded_disturbed_runs": sum(r.attempts - 1 for r in runs),
        "all": [asdict(r) for r in runs],
    }


def _key(r: Run) -> tuple[Any, Any]:
    return r.out["bundle_hash"], r.out["binary_count"]


def measure(workload: Workload, cache: Path, runs: int, ref_runs: int, rates: dict[str, Any]) -> dict[str, Any]:
    root = str(workload.root)
    sc_argv = child_argv("santacore", root)
    find_argv = ["find", root, "-type", "f"]
    _log(f"[{workload.name}] warm-up (untimed): santacore, reference, find")
    warm_sc = run_process(sc_argv, parse_json=True)
    warm_ref = run_process(child_argv("reference", root), parse_json=True)
    run_process(find_argv, parse_json=False)

    n1 = max(1, runs // 2)
    _log(f"[{workload.name}] santacore x{runs}, santacore 1 thread x{n1}, reference x{ref_runs}, find x{runs}")
    sc = repeat(runs, sc_argv)
    sc1 = repeat(n1, child_argv("santacore", root, "--threads", "1"))
    ref = repeat(ref_runs, child_argv("reference", root))
    find = repeat(runs, find_argv, parse_json=False)

    with exec_only_tree(workload, cache) as d, tempfile.NamedTemporaryFile("w", suffix=".txt", dir=cache) as lst:
        lst.write("".join(f"{p}\n" for p in workload.executable_paths))
        lst.flush()
        hl_argv = child_argv("hashlib", lst.name, "--threads", "2")
        run_process(child_argv("santacore", str(d)), parse_json=True)
        run_process(hl_argv, parse_json=True)
        _log(f"[{workload.name}] hashing alone (executables only): santacore x{runs}, hashlib 2 threads x{runs}")
        hx = repeat(runs, child_argv("santacore", str(d)))
        hl = repeat(runs, hl_argv)

    _log(f"[{workload.name}] walk + sniff alone (hard-link mirror without the executables)")
    with without_executables(workload, cache) as d:
        run_process(child_argv("santacore", str(d)), parse_json=True)
        wx = repeat(runs, child_argv("santacore", str(d)))
        wx1 = repeat(n1, child_argv("santacore", str(d), "--threads", "1"))
        wfind = repeat(runs, ["find", str(d), "-type", "f"], parse_json=False)

    expected = (workload.expected_bundle_hash, workload.expected_binary_count)
    got_sc = {_key(r) for r in [warm_sc, *sc, *sc1]}
    got_ref = {_key(r) for r in [warm_ref, *ref]}
    correctness = {
        "expected_bundle_hash": expected[0],
        "expected_binary_count": expected[1],
        "expected_from": workload.expected_source,
        "santacore_correct": got_sc == {expected},
        "reference_correct": got_ref == {expected},
        "santacore_equals_reference": got_sc == got_ref and len(got_sc) == 1,
        "exec_only_santacore_equals_full_tree": {_key(r) for r in hx} == got_sc,
        "exec_only_hashlib_equals_full_tree": {_key(r) for r in hl} == got_sc,
        "no_exec_mirror_finds_nothing": {_key(r) for r in [*wx, *wx1]} == {(None, 0)},
        "santacore_skipped": max(int(r.out["skipped"]) for r in sc),
    }

    exec_bytes = workload.executable_bytes
    single = float(rates["single_core_Bps"])
    floor = exec_bytes / (2 * single)
    crit_floor = max(floor, workload.largest_executable / single)
    s_sc, s_ref, s_find = _summary(sc), _summary(ref), _summary(find)
    sc_med = float(s_sc["median_s"])
    hash_ms = statistics.median(float(r.out["hash_millis"]) for r in sc)
    walk_ms = statistics.median(float(r.out["walk_millis"]) for r in sc)
    hashing_ms = statistics.median(float(r.out["hashing_millis"]) for r in sc)
    hx_ms = statistics.median(float(r.out["hash_millis"]) for r in hx)
    wx_ms = statistics.median(float(r.out["hash_millis"]) for r in wx)
    ratios = {
        "reference_over_santacore": float(s_ref["median_s"]) / sc_med,
        "santacore_over_floor": sc_med / floor,
        "santacore_over_critical_path_floor": sc_med / crit_floor,
        "santacore_over_find": sc_med / float(s_find["median_s"]),
        "hash_millis_over_floor": hash_ms / 1000 / floor,
        "hashing_over_floor": hx_ms / 1000 / floor,
        "hashing_span_over_floor": hashing_ms / 1000 / floor,
        "walk_span_over_find": walk_ms / 1000 / float(s_find["median_s"]),
        "exec_only_santacore_over_floor": hx_ms / 1000 / floor,
        "walk_sniff_only_over_find": wx_ms / 1000 / float(_summary(wfind)["median_s"]),
        "santacore_1t_over_default": float(_summary(sc1)["median_s"]) / sc_med,
        "walk_sniff_1t_over_default": float(_summary(wx1)["median_s"]) / float(_summary(wx)["median_s"]),
    }
    peak_rss = float(s_sc["peak_rss_mb"])
    files = max(1, workload.regular_files)
    return {
        "workload": workload.name,
        "machine_cpus": os.cpu_count(),
        "root": root,
        "regular_files": workload.regular_files,
        "executables": len(workload.executables),
        "executable_bytes": exec_bytes,
        "largest_executable": workload.largest_executable,
        "info": workload.info,
        "correctness": correctness,
        "santacore": s_sc,
        "santacore_hash_millis_median": hash_ms,
        "santacore_walk_millis_median": walk_ms,
        "santacore_hashing_millis_median": hashing_ms,
        "santacore_1thread": _summary(sc1),
        "reference": s_ref,
        "find": s_find,
        "exec_only_santacore": _summary(hx),
        "exec_only_santacore_hash_millis_median": hx_ms,
        "exec_only_hashlib_2t": _summary(hl),
        "no_exec_santacore": _summary(wx),
        "no_exec_santacore_hash_millis_median": wx_ms,
        "no_exec_santacore_1thread": _summary(wx1),
        "no_exec_find": _summary(wfind),
        "per_file_us": {
            "santacore_walk_sniff_cpu": float(_summary(wx)["median_call_cpu_s"]) / files * 1e6,
            "reference_cpu": float(s_ref["median_call_cpu_s"]) / files * 1e6,
        },
        "sha256_floor_s": floor,
        "critical_path_floor_s": crit_floor,
        "ratios": ratios,
        "targets": {
            "reference_over_santacore>=3": ratios["reference_over_santacore"] >= 3.0,
            # The target is on hashing alone; the whole run is reported beside it.
            "hashing_over_floor<=1.2": ratios["hashing_over_floor"] <= 1.2,
            "peak_rss<150MB": peak_rss < 150.0,
        },
    }


# ----------------------------------------------------------------------------- report


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _ms(s: float) -> str:
    return f"{s * 1000:,.1f} ms" if s < 10 else f"{s:,.2f} s"


def _ok(flag: bool) -> str:
    return "ok" if flag else "MISS"


_RUN_KEYS = (
    "santacore",
    "santacore_1thread",
    "reference",
    "find",
    "exec_only_santacore",
    "exec_only_hashlib_2t",
    "no_exec_santacore",
    "no_exec_santacore_1thread",
    "no_exec_find",
)


def _rows(w: dict[str, Any]) -> list[tuple[str, str, str]]:
    q, c, t = w["ratios"], w["correctness"], w["targets"]
    sc, wx = w["santacore"], w["no_exec_santacore"]
    pf = w["per_file_us"]
    redone = sum(int(w[k]["discarded_disturbed_runs"]) for k in _RUN_KEYS)
    return [
        ("santacore (default threads), median", _ms(sc["median_s"]), f"{sc['runs']} runs, min {_ms(sc['min_s'])}"),
        ("  hash_millis (call start -> digest)", _ms(w["santacore_hash_millis_median"] / 1000), ""),
        (
            "  walk_millis (start -> walk's end)",
            _ms(w["santacore_walk_millis_median"] / 1000),
            f"{q['walk_span_over_find']:.2f} x find (hashing overlaps it)",
        ),
        (
            "  hashing_millis (first hash -> last)",
            _ms(w["santacore_hashing_millis_median"] / 1000),
            f"{q['hashing_span_over_floor']:.2f} x SHA-256 floor (overlaps the walk)",
        ),
        ("  cores busy (call CPU / wall)", f"{sc['cores_busy']:.2f}", f"of {w['machine_cpus']}"),
        ("  santacore 1 thread", _ms(w["santacore_1thread"]["median_s"]), f"{q['santacore_1t_over_default']:.2f} x"),
        ("  peak RSS (child running only it)", f"{sc['peak_rss_mb']:.1f} MB", f"< 150 MB: {_ok(t['peak_rss<150MB'])}"),
        ("reference (Python, 1 thread)", _ms(w["reference"]["median_s"]), f"{w['reference']['runs']} runs"),
        ("find ROOT -type f (listing floor)", _ms(w["find"]["median_s"]), f"{w['find']['runs']} runs"),
        (
            "SHA-256 floor (bytes / 2 cores)",
            _ms(w["sha256_floor_s"]),
            f"critical path {_ms(w['critical_path_floor_s'])}",
        ),
        (
            "hashing alone: santacore, executables only",
            _ms(w["exec_only_santacore_hash_millis_median"] / 1000),
            f"{q['exec_only_santacore_over_floor']:.2f} x floor; <= 1.2: {_ok(t['hashing_over_floor<=1.2'])}; "
            f"cores busy {w['exec_only_santacore']['cores_busy']:.2f}",
        ),
        ("hashing alone: hashlib, 2 threads", _ms(w["exec_only_hashlib_2t"]["median_s"]), ""),
        (
            "walk+sniff alone: santacore, no executables",
            _ms(w["no_exec_santacore_hash_millis_median"] / 1000),
            f"cores busy {wx['cores_busy']:.2f}; 1 thread {_ms(w['no_exec_santacore_1thread']['median_s'])}",
        ),
        ("walk+sniff alone: find, same mirror", _ms(w["no_exec_find"]["median_s"]), ""),
        (
            "CPU per file: santacore walk+sniff / reference",
            f"{pf['santacore_walk_sniff_cpu']:.1f} us",
            f"reference {pf['reference_cpu']:.1f} us (incl. its hashing)",
        ),
        (
            "reference / santacore",
            f"{q['reference_over_santacore']:.2f} x",
            f">= 3: {_ok(t['reference_over_santacore>=3'])}",
        ),
        (
            "santacore (whole run) / SHA-256 floor",
            f"{q['santacore_over_floor']:.2f} x",
            f"critical-path floor: {q['santacore_over_critical_path_floor']:.2f} x",
        ),
        ("santacore / find", f"{q['santacore_over_find']:.2f} x", ""),
        (
            "correct",
            "yes" if c["santacore_correct"] and c["reference_correct"] else "NO",
            f"santacore == reference: {c['santacore_equals_reference']}; "
            f"exec-only == full: {c['exec_only_santacore_equals_full_tree']}",
        ),
        (
            "other processes' CPU per santacore run",
            f"{sc['median_foreign_cpu_s']:.2f} s",
            f"median; {redone} disturbed runs redone",
        ),
    ]


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    r = result["sha256"]
    print(
        f"machine: nproc {m['nproc']} ({m['usable_cpus']} usable), {m['cpu_model']}, sha_ni={m['sha_ni']}, "
        f"{m['mem_total_gib']} GiB, Linux {m['kernel']}, Python {m['python']}, santacore {m['santacore']}, "
        f"cache on {m['cache_fs']}"
    )
    ossl = r["openssl_1t_Bps"]
    print(
        f"SHA-256 single core: hashlib {r['hashlib_1t_Bps'] / 1e9:.2f} GB/s, "
        f"openssl {ossl / 1e9 if ossl else float('nan'):.2f} GB/s -> using {r['single_core_Bps'] / 1e9:.2f} GB/s "
        f"({r['single_core_source']}); hashlib 2 threads aggregate {r['hashlib_2t_aggregate_Bps'] / 1e9:.2f} GB/s"
    )
    print(f"baseline RSS of a child that only imports santacore: {result['baseline_rss_mb']:.1f} MB\n")
    for w in result["workloads"]:
        print(
            f"== {w['workload']}: {w['regular_files']:,} files, {w['executables']} executables, "
            f"{w['executable_bytes'] / 1e6:,.1f} MB executable bytes (largest {w['largest_executable'] / 1e6:.1f} MB)"
        )
        rows = _rows(w)
        width = max(len(a) for a, _, _ in rows)
        for a, b, note in rows:
            print(f"  {a:<{width}}  {b:>12}  {note}")
        print()
    hdr: tuple[str, ...] = ("workload", "santacore", "hashing", "reference", "find", "SHA floor")
    hdr += ("ref/sc", "hash/floor", "sc/find", "RSS MB")
    print("  ".join(f"{h:>11}" for h in hdr))
    for w in result["workloads"]:
        q = w["ratios"]
        cells = (
            w["workload"],
            _ms(w["santacore"]["median_s"]),
            _ms(w["exec_only_santacore_hash_millis_median"] / 1000),
            _ms(w["reference"]["median_s"]),
            _ms(w["find"]["median_s"]),
            _ms(w["sha256_floor_s"]),
            f"{q['reference_over_santacore']:.2f}",
            f"{q['hashing_over_floor']:.2f}",
            f"{q['santacore_over_find']:.2f}",
            f"{w['santacore']['peak_rss_mb']:.1f}",
        )
        print("  ".join(f"{c:>11}" for c in cells))


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benches.ratios", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--workload",
        nargs="+",
        default=["all"],
        choices=["all", "xcode", "xcode-scale", "medium", "pyside6", "mujoco"],
        help="one or more workloads (default: all)",
    )
    ap.add_argument("--dir", help="workload cache dir (default $SANTACORE_BENCH_DIR or ~/.cache/santacore-bench)")
    ap.add_argument("--runs", type=int, default=7, help="santacore / find runs per workload (default %(default)s)")
    ap.add_argument("--ref-runs", type=int, default=3, help="reference runs per workload (default %(default)s)")
    ap.add_argument("--idle-wait", type=float, default=120, help="max seconds to wait for a quiet machine")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON results (default %(default)s)")
    args = ap.parse_args(argv)
    cache = cache_dir(args.dir)
    names = list(WORKLOAD_NAMES) if "all" in args.workload else list(dict.fromkeys(map(canonical_name, args.workload)))
    t_start = time.perf_counter()
    workloads = [prepare(n, cache) for n in names]  # untimed; builds xcode-scale on first use

    quiet, frac = wait_for_idle(args.idle_wait)
    _log(f"machine {'quiet' if quiet else 'STILL BUSY'}: {frac:.0%} CPU busy; measuring SHA-256 rates")
    rates = sha_rates()
    baseline = run_process(child_argv("idle"), parse_json=True)
    result: dict[str, Any] = {
        "command": " ".join(["python -m benches.ratios", *(argv if argv is not None else sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(cache),
        "santacore_build": santacore_build(),
        "sha256": rates,
        "baseline_rss_mb": baseline.maxrss_mb,
        "targets": TARGETS,
        "workloads": [],
    }
    for w in workloads:
        quiet, frac = wait_for_idle(args.idle_wait)
        _log(f"[{w.name}] machine {'quiet' if quiet else 'STILL BUSY'} ({frac:.0%} CPU busy)")
        res = measure(w, cache, args.runs, args.ref_runs, rates)
        res["machine_busy_before"] = frac
        result["workloads"].append(res)
    result["machine"]["loadavg_end"] = os.getloadavg()
    build_end = santacore_build()
    result["santacore_rebuilt_during_run"] = build_end != result["santacore_build"]
    if result["santacore_rebuilt_during_run"]:
        _log("WARNING: santacore was rebuilt or its sources changed during this run; figures may mix builds")
        result["santacore_build_end"] = build_end
    result["total_seconds"] = time.perf_counter() - t_start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_report(result)
    print(f"\nresults: {args.out} ({result['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
