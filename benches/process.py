"""Whole-process speed of ``santacore``, beside plain Python and the SHA-256 floor, in one run.

    python -m benches.process [--runs N] [--startup-runs N] [--ref-runs M] [--cold-runs K]
                              [--no-cold] [--baseline DIR] [--out PATH]

Everything is a whole process, timed from spawn to exit (interpreter start-up, imports,
root resolution, output and exit included), on this machine's cores:

* start-up: ``santacore --help``, ``santacore bundleinfo examples/terminal-notifier.app``
  and ``python -c "import santacore"``: median wall of ``--startup-runs`` runs and the peak
  RSS (``/usr/bin/time -f %M``, in separate runs so that its own exec is not in the wall).
  Targets: the first two <= 0.12 s and <= 35 MB, the import <= 0.06 s.
* the ``medium`` workload (``benches.workloads``: an app bundle of 46,757 files and 423 MB
  of distinct executables), warm page cache (every file read once first, then one untimed
  run of each tool):

  - ``santacore bundleinfo --json ROOT``: median of ``--runs``; its JSON's bundle hash must
    be the workload's expected one; its ``hash_millis`` / ``walk_millis`` /
    ``hashing_millis`` are reported too;
  - plain Python: ``tests/reference.py`` (``os.walk`` + header sniff + ``hashlib``, one
    thread) driven by a two-line ``python -c`` script: median of ``--ref-runs``;
  - the SHA-256 floor: executable bytes / (2 cores x single-core SHA-256 rate measured in
    this run, the faster of ``hashlib`` and ``openssl speed``);
  - for context, ``hash_tree`` in-process (``python -m benches._child santacore ROOT``).

  Ratios: plain Python / santacore (target >= 3) and santacore / floor (target <= 1.5).
* cold page cache, where ``sync; echo 3 > /proc/sys/vm/drop_caches`` works (root): each
  tool ``--cold-runs`` times, the cache dropped before every run (the interpreter and
  libraries are then cold too). Whether dropping worked is recorded.

``--baseline DIR`` also times another build of santacore (a folder holding a ``santacore``
package with its ``_core`` extension, put first on ``PYTHONPATH``) on the medium workload,
warm and cold, e.g. the engine before a change::

    git worktree add --detach /tmp/base <commit> && cd /tmp/base && cargo build --release
    mkdir -p /tmp/base-pkg && cp -r python/santacore /tmp/base-pkg/ \\
        && cp target/release/libsantacore.so /tmp/base-pkg/santacore/_core.abi3.so

A run is redone (up to 3 times) when other processes used more than 5% of the machine's
CPU during it. Results go to ``benches/results/process.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benches.ratios import (
    CLK_TCK,
    DISTURBED_SHARE,
    GNU_TIME,
    RETRIES,
    _busy_ticks,
    machine_info,
    santacore_build,
    sha_rates,
    wait_for_idle,
)
from benches.workloads import MEDIUM, REPO_ROOT, Workload, cache_dir, prepare

RESULTS = Path(__file__).resolve().parent / "results" / "process.json"
EXAMPLE_APP = REPO_ROOT / "examples" / "terminal-notifier.app"
TARGETS = {
    "startup_wall_s_max": 0.12,
    "startup_rss_mb_max": 35.0,
    "import_wall_s_max": 0.06,
    "reference_over_santacore_min": 3.0,
    "santacore_over_floor_max": 1.5,
}
#: The plain-Python process: tests/reference.py and nothing else.
REFERENCE_SCRIPT = (
    "import sys\nfrom tests.reference import reference_tree_hash\n"
    "h, n, _ = reference_tree_hash(sys.argv[1])\nprint(h, n)"
)
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def santacore_command() -> list[str]:
    """The ``santacore`` console script next to this interpreter, else ``python -m santacore``."""
    script = Path(sys.executable).parent / "santacore"
    return [str(script)] if os.access(script, os.X_OK) else [sys.executable, "-m", "santacore"]


# ----------------------------------------------------------------------------- running


@dataclass
class Proc:
    #: Spawn to exit, as seen by this process.
    wall_s: float
    #: The process's user + system CPU (all threads).
    cpu_s: float
    #: CPU seconds used by everything else on the machine meanwhile.
    foreign_cpu_s: float
    #: Peak RSS (``/usr/bin/time``), for RSS runs only.
    maxrss_mb: float | None = None
    #: Runs discarded because other processes used the CPU meanwhile, plus this one.
    attempts: int = 1


def run_once(argv: Sequence[str], *, env: dict[str, str] | None = None, rss: bool = False) -> tuple[Proc, bytes]:
    """Runs ``argv`` (cwd: the repository) to completion; returns its figures and stdout."""
    use_time = rss and os.access(GNU_TIME, os.X_OK)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as tm:
        cmd = [GNU_TIME, "-f", "%M", "-o", tm.name, *argv] if use_time else list(argv)
        b0, _ = _busy_ticks()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=err)
        _pid, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        b1, _ = _busy_ticks()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv)} exited {code}: {err.read().decode(errors='replace')[-2000:]}")
        cpu = ru.ru_utime + ru.ru_stime
        maxrss = None
        if rss:
            # Without GNU time, wait4's figure (it may include this interpreter's pages at fork).
            kb = float(Path(tm.name).read_text(encoding="utf-8").split()[-1]) if use_time else float(ru.ru_maxrss)
            maxrss = kb / 1024
        out.seek(0)
        stdout = out.read()
    return Proc(wall, cpu, max(0.0, (b1 - b0) / CLK_TCK - cpu), maxrss), stdout


def disturbed(p: Proc) -> bool:
    capacity = p.wall_s * (os.cpu_count() or 1)
    return p.foreign_cpu_s > DISTURBED_SHARE * capacity + 0.02


def timed(argv: Sequence[str], *, env: dict[str, str] | None = None, rss: bool = False) -> tuple[Proc, bytes]:
    p, out = run_once(argv, env=env, rss=rss)
    for attempt in range(2, RETRIES + 2):
        if not disturbed(p):
            break
        wait_for_idle(10)
        p, out = run_once(argv, env=env, rss=rss)
        p.attempts = attempt
    return p, out


def summary(runs: list[Proc], rss_runs: list[Proc]) -> dict[str, Any]:
    walls = [r.wall_s for r in runs]
    rss = [r.maxrss_mb for r in rss_runs if r.maxrss_mb is not None]
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "runs": len(runs),
        "median_cpu_s": statistics.median(r.cpu_s for r in runs),
        "peak_rss_mb": max(rss) if rss else None,
        "rss_runs": len(rss),
        "median_foreign_cpu_s": statistics.median(r.foreign_cpu_s for r in runs),
        "discarded_disturbed_runs": sum(r.attempts - 1 for r in [*runs, *rss_runs]),
        "all": [asdict(r) for r in [*runs, *rss_runs]],
    }


def measure(
    argv: Sequence[str], runs: int, rss_runs: int, *, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[bytes]]:
    """``runs`` timed runs and ``rss_runs`` more under ``/usr/bin/time``; their stdouts."""
    timed_runs, rss, outs = [], [], []
    for _ in range(runs):
        p, out = timed(argv, env=env)
        timed_runs.append(p)
        outs.append(out)
    for _ in range(rss_runs):
        p, out = timed(argv, env=env, rss=True)
        rss.append(p)
        outs.append(out)
    return summary(timed_runs, rss), outs


# ----------------------------------------------------------------------------- page cache


def warm(root: Path) -> float:
    """Reads every regular file below ``root`` once, so that all of it is in the page cache."""
    t0 = time.perf_counter()
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb", buffering=0) as f:
                    while f.read(1 << 20):
                        pass
    return time.perf_counter() - t0


def drop_caches() -> str | None:
    """Drops the page cache; None if it worked, else why not."""
    try:
        os.sync()
        DROP_CACHES.write_text("3\n", encoding="ascii")
    except OSError as e:
        return f"could not write {DROP_CACHES}: {e}"
    return None


# ----------------------------------------------------------------------------- parts


def startup(runs: int, rss_runs: int) -> dict[str, Any]:
    sc = santacore_command()
    commands = {
        "santacore --help": [*sc, "--help"],
        "santacore bundleinfo examples/terminal-notifier.app": [*sc, "bundleinfo", str(EXAMPLE_APP)],
        'python -c "import santacore"': [sys.executable, "-c", "import santacore"],
    }
    out: dict[str, Any] = {}
    for label, argv in commands.items():
        run_once(argv)  # untimed: warm the page cache and the .pyc files
        _log(f"[startup] {label} x{runs} (+{rss_runs} under /usr/bin/time)")
        s, _outs = measure(argv, runs, rss_runs)
        is_import = label.startswith("python")
        wall_max = TARGETS["import_wall_s_max"] if is_import else TARGETS["startup_wall_s_max"]
        s["argv"] = argv
        s["target_wall_s_max"] = wall_max
        s["meets_wall_target"] = s["median_s"] <= wall_max
        if not is_import:
            s["target_rss_mb_max"] = TARGETS["startup_rss_mb_max"]
            s["meets_rss_target"] = s["peak_rss_mb"] is not None and s["peak_rss_mb"] <= TARGETS["startup_rss_mb_max"]
        out[label] = s
    return out


def _bundleinfo(out: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(out)
    return doc


def _child(out: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return doc


def _key_ref(out: bytes) -> tuple[str | None, int]:
    h, n = out.decode().split()
    return (None if h == "None" else h), int(n)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def medium(w: Workload, args: argparse.Namespace, rates: dict[str, Any]) -> dict[str, Any]:
    root = str(w.root)
    expected = (w.expected_bundle_hash, w.expected_binary_count)
    sc_argv = [*santacore_command(), "bundleinfo", "--json", root]
    ref_argv = [sys.executable, "-c", REFERENCE_SCRIPT, root]
    inproc_argv = [sys.executable, "-m", "benches._child", "santacore", root]
    builds: dict[str, dict[str, str] | None] = {"santacore": None}
    if args.baseline:
        builds["baseline"] = dict(os.environ, PYTHONPATH=str(Path(args.baseline).resolve()))

    _log(f"[medium] warming the page cache: reading every file of {root}")
    warm_s = warm(w.root)
    for env in builds.values():
        run_once(sc_argv, env=env)
        run_once(inproc_argv, env=env)
    run_once(ref_argv)

    quiet, frac = wait_for_idle(args.idle_wait)
    _log(f"[medium] machine {'quiet' if quiet else 'STILL BUSY'} ({frac:.0%} CPU busy)")
    warm_res: dict[str, Any] = {"warm_read_s": warm_s, "machine_busy_before": frac}
    correct: dict[str, bool] = {}
    for name, env in builds.items():
        _log(f"[medium] {name}: bundleinfo --json x{args.runs} (+2 RSS runs), hash_tree in-process x{args.runs}")
        s, outs = measure(sc_argv, args.runs, 2, env=env)
        docs = [_bundleinfo(o) for o in outs]
        s["hash_millis_median"] = _median([float(d["hash_millis"]) for d in docs])
        s["walk_millis_median"] = _median([float(d["stats"]["walk_millis"]) for d in docs])
        s["hashing_millis_median"] = _median([float(d["stats"]["hashing_millis"]) for d in docs])
        s["skipped"] = max(len(d["skipped"]) for d in docs)
        correct[f"{name}_process"] = {(d["bundle_hash"], d["binary_count"]) for d in docs} == {expected}
        ip, ip_outs = measure(inproc_argv, args.runs, 0, env=env)
        kids = [_child(o) for o in ip_outs]
        ip["call_wall_s_median"] = _median([float(k["wall_s"]) for k in kids])
        for k in ("hash_millis", "walk_millis", "hashing_millis"):
            ip[f"{k}_median"] = _median([float(kid[k]) for kid in kids])
        correct[f"{name}_in_process"] = {(k["bundle_hash"], k["binary_count"]) for k in kids} == {expected}
        warm_res[f"{name}_process"] = s
        warm_res[f"{name}_in_process"] = ip
    _log(f"[medium] plain Python (tests/reference.py) x{args.ref_runs} (+1 RSS run)")
    ref, ref_outs = measure(ref_argv, args.ref_runs, 1)
    correct["reference_process"] = {_key_ref(o) for o in ref_outs} == {expected}
    warm_res["reference_process"] = ref

    single = float(rates["single_core_Bps"])
    floor = w.executable_bytes / (2 * single)
    sc_s = float(warm_res["santacore_process"]["median_s"])
    ratios = {
        "reference_over_santacore": float(ref["median_s"]) / sc_s,
        "santacore_over_floor": sc_s / floor,
        "santacore_in_process_over_floor": float(warm_res["santacore_in_process"]["call_wall_s_median"]) / floor,
        "santacore_process_minus_call_s": sc_s - float(warm_res["santacore_in_process"]["call_wall_s_median"]),
    }
    if "baseline" in builds:
        ratios["baseline_over_santacore"] = float(warm_res["baseline_process"]["median_s"]) / sc_s
    warm_res["ratios"] = ratios
    warm_res["targets"] = {
        "reference_over_santacore>=3": ratios["reference_over_santacore"] >= TARGETS["reference_over_santacore_min"],
        "santacore_over_floor<=1.5": ratios["santacore_over_floor"] <= TARGETS["santacore_over_floor_max"],
    }

    result: dict[str, Any] = {
        "workload": w.name,
        "root": root,
        "regular_files": w.regular_files,
        "executables": len(w.executables),
        "executable_bytes": w.executable_bytes,
        "largest_executable": w.largest_executable,
        "info": w.info,
        "expected_bundle_hash": expected[0],
        "expected_binary_count": expected[1],
        "expected_from": w.expected_source,
        "sha256_floor_s": floor,
        "warm": warm_res,
        "correct": correct,
    }
    result["cold"] = cold(builds, sc_argv, ref_argv, inproc_argv, expected, args) if args.cold_runs else None
    if not args.cold_runs:
        result["cold_skipped"] = "--no-cold or --cold-runs 0"
    return result


def cold(
    builds: dict[str, dict[str, str] | None],
    sc_argv: list[str],
    ref_argv: list[str],
    inproc_argv: list[str],
    expected: tuple[str | None, int],
    args: argparse.Namespace,
) -> dict[str, Any]:
    why_not = drop_caches()
    if why_not is not None:
        _log(f"[medium] cold cache: not measured ({why_not})")
        return {"dropped_caches": False, "reason": why_not}
    _log(f"[medium] cold cache: each tool x{args.cold_runs}, page cache dropped before every run")
    plan: list[tuple[str, list[str], dict[str, str] | None]] = []
    for name, env in builds.items():
        plan += [(f"{name}_process", sc_argv, env), (f"{name}_in_process", inproc_argv, env)]
    plan.append(("reference_process", ref_argv, None))
    runs: dict[str, list[tuple[Proc, bytes]]] = {label: [] for label, _, _ in plan}
    for _ in range(args.cold_runs):
        for label, argv, env in plan:  # interleaved, so that drift hits every tool alike
            drop_caches()
            runs[label].append(run_once(argv, env=env))
    out: dict[str, Any] = {"dropped_caches": True}
    for label, got in runs.items():
        s = summary([p for p, _ in got], [])
        if label == "reference_process":
            s["correct"] = {_key_ref(o) for _, o in got} == {expected}
        elif label.endswith("_in_process"):
            kids = [_child(o) for _, o in got]
            s["call_wall_s_median"] = _median([float(k["wall_s"]) for k in kids])
            for k in ("hash_millis", "walk_millis", "hashing_millis"):
                s[f"{k}_median"] = _median([float(kid[k]) for kid in kids])
            s["correct"] = {(k["bundle_hash"], k["binary_count"]) for k in kids} == {expected}
        else:
            docs = [_bundleinfo(o) for _, o in got]
            s["hash_millis_median"] = _median([float(d["hash_millis"]) for d in docs])
            s["walk_millis_median"] = _median([float(d["stats"]["walk_millis"]) for d in docs])
            s["hashing_millis_median"] = _median([float(d["stats"]["hashing_millis"]) for d in docs])
            s["correct"] = {(d["bundle_hash"], d["binary_count"]) for d in docs} == {expected}
        out[label] = s
    out["reference_over_santacore"] = float(out["reference_process"]["median_s"]) / float(
        out["santacore_process"]["median_s"]
    )
    if "baseline" in builds:
        out["baseline_over_santacore"] = float(out["baseline_process"]["median_s"]) / float(
            out["santacore_process"]["median_s"]
        )
    return out


# ----------------------------------------------------------------------------- report


def _ms(s: float) -> str:
    return f"{s * 1000:,.1f} ms"


def _mb(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} MB"


def print_report(result: dict[str, Any]) -> None:
    m, r = result["machine"], result["sha256"]
    print(
        f"machine: {m['nproc']} CPUs, {m['cpu_model']}, sha_ni={m['sha_ni']}, Linux {m['kernel']}, "
        f"Python {m['python']}; SHA-256 single core {r['single_core_Bps'] / 1e9:.2f} GB/s ({r['single_core_source']})"
    )
    print("\nstart-up (whole process, warm)")
    for label, s in result["startup"].items():
        rss = s.get("meets_rss_target")
        ok = "ok" if s["meets_wall_target"] and rss is not False else "MISS"
        print(
            f"  {label:<52} {_ms(s['median_s']):>10}  (min {_ms(s['min_s'])})  peak RSS {_mb(s['peak_rss_mb']):>8}"
            f"  target <= {s['target_wall_s_max'] * 1000:.0f} ms"
            + (f", <= {s['target_rss_mb_max']:.0f} MB" if "target_rss_mb_max" in s else "")
            + f": {ok}"
        )
    w = result["medium"]
    if w is None:
        return
    wm = w["warm"]
    print(
        f"\nmedium: {w['regular_files']:,} files, {w['executables']} executables, "
        f"{w['executable_bytes'] / 1e6:,.1f} MB of executables; SHA-256 floor {_ms(w['sha256_floor_s'])}"
    )
    rows = [("santacore bundleinfo --json", wm["santacore_process"])]
    if "baseline_process" in wm:
        rows.append(("baseline build, same command", wm["baseline_process"]))
    rows.append(("plain Python (tests/reference.py)", wm["reference_process"]))
    print("  warm page cache, whole process:")
    for label, s in rows:
        extra = ""
        if "hash_millis_median" in s:
            extra = (
                f"  [hash_millis {s['hash_millis_median']:.0f}, walk_millis {s['walk_millis_median']:.0f}, "
                f"hashing_millis {s['hashing_millis_median']:.0f}]"
            )
        print(
            f"    {label:<36} {_ms(s['median_s']):>10}  (min {_ms(s['min_s'])}, CPU {s['median_cpu_s']:.2f} s)"
            f"  peak RSS {_mb(s['peak_rss_mb'])}{extra}"
        )
    for name in ("santacore", "baseline"):
        ip = wm.get(f"{name}_in_process")
        if ip is not None:
            print(
                f"    {name} hash_tree in-process: call {_ms(ip['call_wall_s_median'])}, "
                f"walk_millis {ip['walk_millis_median']:.0f}, hashing_millis {ip['hashing_millis_median']:.0f}"
            )
    q, t = wm["ratios"], wm["targets"]
    print(
        f"  plain Python / santacore: {q['reference_over_santacore']:.2f}x "
        f"(>= 3: {'ok' if t['reference_over_santacore>=3'] else 'MISS'}); "
        f"santacore / floor: {q['santacore_over_floor']:.2f}x "
        f"(<= 1.5: {'ok' if t['santacore_over_floor<=1.5'] else 'MISS'}); "
        f"in-process / floor: {q['santacore_in_process_over_floor']:.2f}x"
        + (f"; baseline / santacore: {q['baseline_over_santacore']:.2f}x" if "baseline_over_santacore" in q else "")
    )
    print(f"  correct: {w['correct']}")
    c = w["cold"]
    if c is None or not c.get("dropped_caches"):
        print(f"  cold page cache: not measured ({(c or {}).get('reason', w.get('cold_skipped'))})")
        return
    print("  cold page cache (dropped before every run), whole process:")
    for label in ("santacore_process", "baseline_process", "reference_process"):
        if label in c:
            s = c[label]
            print(f"    {label:<36} {_ms(s['median_s']):>10}  (min {_ms(s['min_s'])})  correct {s['correct']}")
    for label in ("santacore_in_process", "baseline_in_process"):
        if label in c:
            s = c[label]
            print(
                f"    {label:<36} call {_ms(s['call_wall_s_median'])}, walk_millis {s['walk_millis_median']:.0f},"
                f" hashing_millis {s['hashing_millis_median']:.0f}"
            )
    print(f"    plain Python / santacore: {c['reference_over_santacore']:.2f}x")


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benches.process", description=__doc__.split("\n")[0])
    ap.add_argument("--dir", help="workload cache dir (default $SANTACORE_BENCH_DIR or ~/.cache/santacore-bench)")
    ap.add_argument("--runs", type=int, default=7, help="santacore runs on the medium tree (default %(default)s)")
    ap.add_argument("--startup-runs", type=int, default=21, help="runs per start-up command (default %(default)s)")
    ap.add_argument("--ref-runs", type=int, default=3, help="plain-Python runs (default %(default)s)")
    ap.add_argument("--cold-runs", type=int, default=3, help="cold runs per tool (default %(default)s)")
    ap.add_argument("--no-cold", dest="cold_runs", action="store_const", const=0, help="skip cold-cache runs")
    ap.add_argument("--no-medium", action="store_true", help="start-up figures only")
    ap.add_argument("--baseline", help="folder with another santacore build to time too (see the docstring)")
    ap.add_argument("--idle-wait", type=float, default=60, help="max seconds to wait for a quiet machine")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON results (default %(default)s)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    cache = cache_dir(args.dir)
    workload = None if args.no_medium else prepare(MEDIUM, cache)  # untimed; built on first use

    quiet, frac = wait_for_idle(args.idle_wait)
    _log(f"machine {'quiet' if quiet else 'STILL BUSY'}: {frac:.0%} CPU busy; measuring SHA-256 rates")
    rates = sha_rates()
    result: dict[str, Any] = {
        "command": " ".join(["python -m benches.process", *(argv if argv is not None else sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(cache),
        "santacore_build": santacore_build(),
        "baseline": str(Path(args.baseline).resolve()) if args.baseline else None,
        "sha256": rates,
        "targets": TARGETS,
        "startup": startup(args.startup_runs, 3),
        "medium": None,
    }
    if workload is not None:
        result["medium"] = medium(workload, args, rates)
    result["machine"]["loadavg_end"] = os.getloadavg()
    result["total_seconds"] = time.perf_counter() - t_start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_report(result)
    print(f"\nresults: {args.out} ({result['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
