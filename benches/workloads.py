"""Benchmark workloads for santacore's bundle hash, prepared idempotently in a cache dir.

Cache dir: ``--dir``, else ``$SANTACORE_BENCH_DIR``, else ``~/.cache/santacore-bench``::

    downloads/<artifact>.whl      fetched with the manifest's own ``pip download`` command
    pyside6/PySide6/...           the wheel's ``PySide6/`` tree   (+ pyside6/prepared.json)
    mujoco/mujoco/...             the wheel's ``mujoco/`` tree    (+ mujoco/prepared.json)
    medium/Medium.app/...         the medium app bundle           (+ medium/tree.json,
                                                                     medium/tree.executables.tsv)
    xcode-scale/tree/...          the Xcode-scale tree            (+ xcode-scale/tree.json,
                                                                     xcode-scale/tree.executables.tsv)

``pyside6`` and ``mujoco``: the corpus manifest (``$SANTACORE_CORPUS``, else
``../shared/corpus`` next to the repository) names, under ``registry_fetched.bundles``, the
artifact, its sha256 and the ``pip download`` command. That command is run as written (with
``pip`` spelled ``sys.executable -m pip``, in ``downloads/``); the wheel must match the
artifact sha256; the tree is unzipped (file modes kept) and must match the manifest's
regular-file count, byte count, zero symlinks, and the SHA-256 of every MH_EXECUTE file it
lists. Expected bundle hash / binary count: the manifest's.

``xcode-scale``: ``COPIES`` (default 40) numbered copies ``c000 .. c039``, each holding a
``PySide6/`` and a ``mujoco/`` tree: 40 x (2829 + 288) = 124,680 regular files, 600
MH_EXECUTE files, about 1.12 GB of *distinct* executable bytes.

* Executables (the 15 files per copy that the manifest lists as MH_EXECUTE) are rewritten
  as the original bytes plus a short trailer unique to the copy (``\\0santacore-bench
  xcode-scale copy NNNN\\n``). The trailer lies after the last slice, so no Mach-O header
  changes and every file stays MH_EXECUTE, but all 600 digests differ: nothing dedups.
* Every other file is, by default (``--link-mode copy``), a real byte-for-byte copy (kernel
  ``copy_file_range`` via ``shutil.copyfile``, mode kept): about 16.5 GB on disk, each
  file its own inode, as on a real disk. ``--link-mode hardlink`` makes the
  non-executables hard links to the extracted trees instead (about 1.1 GB on disk): every
  path is still its own directory entry and is opened and sniffed the same way, but the 40
  copies of a file share one inode, so the page cache holds each header page once. Use it
  only where disk is short; the mode is recorded in ``tree.json``.

``medium``: the same builder as a real app bundle that ``santacore bundleinfo`` accepts,
``Medium.app/Contents/{Info.plist, MacOS/Medium, Resources/c000 .. c014/{PySide6,mujoco}}``:
``COPIES`` (default 15) copies as above (trailer ``\0santacore-bench medium copy NNNN\n``),
plus the main executable (Designer's bytes and ``\0santacore-bench medium main\n``):
15 x 3,117 + 2 = 46,757 regular files, 226 distinct MH_EXECUTE files, about 423 MB of
executable bytes; about 6.2 GB on disk with ``--link-mode copy`` (the default), 0.4 GB with
``hardlink``.

``tree.json`` records the parameters and the expected values: regular files, directories,
total bytes, executables, distinct executables (= expected binary count), executable bytes,
and the expected bundle hash computed with ``hashlib`` over the bytes this module wrote (so
it is independent of both santacore and the reference). The build is deterministic
(content and layout depend only on the two wheels and the parameters), happens in
``tree.partial/`` (``Medium.app.partial/``) and is renamed into place before ``tree.json`` is written; a later run
reuses the tree when ``tree.json`` matches the parameters and a walk confirms the file
count and every executable's size (``--verify`` also re-hashes the executables).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import plistlib
import shlex
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_ENV = "SANTACORE_BENCH_DIR"
CORPUS_ENV = "SANTACORE_CORPUS"
BUILDER_VERSION = 1
DEFAULT_COPIES = 40
MEDIUM_COPIES = 15
LINK_MODES = ("copy", "hardlink")
#: The tree counts as Xcode-scale at or above these.
MIN_FILES = 100_000
MIN_EXECUTABLE_BYTES = 1 << 30

#: Benchmark name -> bundle_root in the manifest's registry_fetched.bundles.
REGISTRY_TREES = {"pyside6": "PySide6", "mujoco": "mujoco"}
XCODE = "xcode-scale"
MEDIUM = "medium"
WORKLOAD_NAMES = ("pyside6", "mujoco", MEDIUM, XCODE)
ALIASES = {"xcode": XCODE, "PySide6": "pyside6"}

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class WorkloadError(RuntimeError):
    """A workload could not be prepared or failed verification."""


class FetchError(WorkloadError):
    """The artifact could not be fetched (no network, registry down): benchmarks skip."""


@dataclass(frozen=True)
class Executable:
    """One MH_EXECUTE file of a workload, relative to the workload root."""

    rel: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Workload:
    name: str
    root: Path
    regular_files: int
    executables: tuple[Executable, ...]
    expected_bundle_hash: str | None
    expected_binary_count: int
    #: Where the expected values come from.
    expected_source: str
    #: Extra facts (link mode, copies, directories...), for reports.
    info: dict[str, Any]

    @property
    def executable_bytes(self) -> int:
        return sum(e.size for e in self.executables)

    @property
    def executable_paths(self) -> list[Path]:
        return [self.root / e.rel for e in self.executables]

    @property
    def largest_executable(self) -> int:
        return max((e.size for e in self.executables), default=0)


# ----------------------------------------------------------------------------- locations


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    if override is not None:
        return Path(override).expanduser().resolve()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return (Path.home() / ".cache" / "santacore-bench").resolve()


def corpus_dir() -> Path:
    return Path(os.environ.get(CORPUS_ENV, REPO_ROOT.parent / "shared" / "corpus")).resolve()


def load_manifest() -> dict[str, Any]:
    path = corpus_dir() / "manifest.json"
    if not path.is_file():
        raise WorkloadError(f"corpus manifest not found at {path} (set {CORPUS_ENV})")
    with open(path, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def registry_bundle(manifest: dict[str, Any], bundle_root: str) -> dict[str, Any]:
    for b in manifest["registry_fetched"]["bundles"]:
        if b["bundle_root"] == bundle_root:
            found: dict[str, Any] = b
            return found
    raise WorkloadError(f"manifest has no registry_fetched bundle {bundle_root!r}")


def canonical_name(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in WORKLOAD_NAMES:
        raise WorkloadError(f"unknown workload {name!r}; choose from {', '.join(WORKLOAD_NAMES)}")
    return name


# ----------------------------------------------------------------------------- helpers


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def super_hash(hex_digests: list[str]) -> str | None:
    """Santa's bundle hash of a list of lowercase hex SHA-256 digests."""
    unique = sorted({d.lower() for d in hex_digests})
    if not unique:
        return None
    return hashlib.sha256("".join(unique).encode("ascii")).hexdigest()


@dataclass
class TreeCount:
    regular_files: int = 0
    directories: int = 0
    symlinks: int = 0
    other: int = 0
    total_bytes: int = 0


def count_tree(root: Path) -> TreeCount:
    """Counts below ``root`` with lstat semantics (symlinks counted, never followed)."""
    out = TreeCount()
    stack = [str(root)]
    while stack:
        d = stack.pop()
        out.directories += 1
        with os.scandir(d) as it:
            for entry in it:
                if entry.is_symlink():
                    out.symlinks += 1
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    out.regular_files += 1
                    out.total_bytes += entry.stat(follow_symlinks=False).st_size
                else:
                    out.other += 1
    return out


def _rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ----------------------------------------------------------------------------- registry trees


def fetch_command(origin: dict[str, Any]) -> list[str]:
    """The manifest's fetch command, with ``pip`` run as this interpreter's pip module."""
    argv = shlex.split(origin["fetch"])
    if argv[:2] != ["pip", "download"]:
        raise WorkloadError(f"unexpected fetch command in manifest: {origin['fetch']!r}")
    return [sys.executable, "-m", "pip", *argv[1:]]


def fetch_artifact(origin: dict[str, Any], downloads: Path, log: Log = _stderr) -> Path:
    downloads.mkdir(parents=True, exist_ok=True)
    artifact = downloads / str(origin["artifact"])
    want = origin["artifact_sha256"]
    if artifact.is_file() and sha256_file(artifact) == want:
        return artifact
    cmd = fetch_command(origin)
    log(f"fetching {origin['artifact']}: {origin['fetch']}  (in {downloads})")
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    proc = subprocess.run(cmd, cwd=downloads, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise FetchError(f"`{origin['fetch']}` failed (exit {proc.returncode}): {' | '.join(tail)}")
    if not artifact.is_file():
        raise FetchError(f"`{origin['fetch']}` succeeded but {artifact.name} is not in {downloads}")
    got = sha256_file(artifact)
    if got != want:
        raise WorkloadError(f"{artifact.name}: sha256 {got}, manifest says {want}")
    return artifact


def _extract(artifact: Path, prefix: str, dest: Path) -> None:
    """Unzips the members below ``prefix/`` of ``artifact`` into ``dest`` (modes kept)."""
    with zipfile.ZipFile(artifact) as zf:
        for info in zf.infolist():
            parts = PurePosixPath(info.filename).parts
            if not parts or parts[0] != prefix or info.is_dir():
                continue
            if ".." in parts or PurePosixPath(info.filename).is_absolute():
                raise WorkloadError(f"{artifact.name}: unsafe member {info.filename!r}")
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            mode = (info.external_attr >> 16) & 0o7777
            if mode:
                os.chmod(target, mode)


def _verify_registry_tree(root: Path, bundle: dict[str, Any]) -> TreeCount:
    tree = bundle["tree"]
    counted = count_tree(root)
    problems = []
    if counted.regular_files != tree["regular_files"]:
        problems.append(f"{counted.regular_files} regular files, manifest says {tree['regular_files']}")
    if counted.total_bytes != tree["bytes"]:
        problems.append(f"{counted.total_bytes} bytes, manifest says {tree['bytes']}")
    if counted.symlinks != tree.get("symlinks", 0):
        problems.append(f"{counted.symlinks} symlinks, manifest says {tree.get('symlinks', 0)}")
    for rel, want in bundle["binaries"].items():
        path = root / rel
        got = sha256_file(path) if path.is_file() else "missing"
        if got != want:
            problems.append(f"{rel}: sha256 {got}, manifest says {want}")
    if problems:
        raise WorkloadError(f"{root} does not match the manifest: " + "; ".join(problems))
    return counted


def _registry_workload(name: str, root: Path, bundle: dict[str, Any], counted: TreeCount) -> Workload:
    sizes = {d["origin"]["path_in_artifact"]: d["size"] for d in bundle.get("binary_details", [])}
    prefix = bundle["origin"]["path_in_artifact"]
    execs = tuple(
        Executable(rel=rel, size=sizes.get(f"{prefix}/{rel}", (root / rel).stat().st_size), sha256=sha)
        for rel, sha in sorted(bundle["binaries"].items())
    )
    return Workload(
        name=name,
        root=root,
        regular_files=bundle["tree"]["regular_files"],
        executables=execs,
        expected_bundle_hash=bundle["bundle_hash"],
        expected_binary_count=bundle["binary_count"],
        expected_source="corpus manifest registry_fetched.bundles",
        info={
            "artifact": bundle["origin"]["artifact"],
            "artifact_sha256": bundle["origin"]["artifact_sha256"],
            "fetch": bundle["origin"]["fetch"],
            "directories": counted.directories,
            "total_bytes": counted.total_bytes,
        },
    )


def prepare_registry_tree(name: str, cache: Path, log: Log = _stderr) -> Workload:
    manifest = load_manifest()
    bundle_root = REGISTRY_TREES[name]
    bundle = registry_bundle(manifest, bundle_root)
    origin = bundle["origin"]
    base = cache / name
    root = base / bundle_root
    marker = base / "prepared.json"
    want_marker = {
        "builder_version": BUILDER_VERSION,
        "artifact": origin["artifact"],
        "artifact_sha256": origin["artifact_sha256"],
        "path_in_artifact": origin["path_in_artifact"],
    }
    if _read_json(marker) == want_marker and root.is_dir():
        try:
            counted = _verify_registry_tree(root, bundle)
            return _registry_workload(name, root, bundle, counted)
        except (WorkloadError, OSError) as e:
            log(f"{name}: cached tree invalid ({e}); re-extracting")
    artifact = fetch_artifact(origin, cache / "downloads", log)
    t0 = time.perf_counter()
    _rmtree(marker)
    partial = cache / f"{name}.partial"
    _rmtree(partial)
    partial.mkdir(parents=True)
    _extract(artifact, origin["path_in_artifact"], partial)
    _rmtree(base)
    os.replace(partial, base)
    counted = _verify_registry_tree(root, bundle)
    _write_json(marker, want_marker)
    log(f"{name}: extracted {counted.regular_files} files to {root} in {time.perf_counter() - t0:.1f}s")
    return _registry_workload(name, root, bundle, counted)


# ----------------------------------------------------------------------------- copies (xcode-scale, medium)


@dataclass(frozen=True)
class CopiesSpec:
    """A tree of numbered copies of the two registry trees (see the module docstring)."""

    name: str
    default_copies: int
    default_link_mode: str
    #: The built tree's folder under ``<cache>/<name>/``.
    root_name: str
    #: Where the ``cNNN`` folders go, relative to the root ("" = the root itself).
    copies_dir: str
    #: An app bundle (``Contents/Info.plist``, ``Contents/MacOS/<exe>``), so that
    #: ``santacore bundleinfo ROOT`` accepts it; the main executable is one more distinct binary.
    app: bool
    #: The copy trailer reads ``\0santacore-bench <trailer_label> NNNN\n``.
    trailer_label: str
    min_files: int
    min_executable_bytes: int


XCODE_SPEC = CopiesSpec(
    XCODE, DEFAULT_COPIES, "copy", "tree", "", False, "xcode-scale copy", MIN_FILES, MIN_EXECUTABLE_BYTES
)
MEDIUM_SPEC = CopiesSpec(
    MEDIUM, MEDIUM_COPIES, "copy", "Medium.app", "Contents/Resources", True, "medium copy", 25_000, 400_000_000
)
COPIES_SPECS = {s.name: s for s in (XCODE_SPEC, MEDIUM_SPEC)}
#: The medium workload's Info.plist; its CFBundleExecutable is Designer's bytes plus MEDIUM_MAIN_TRAILER.
MEDIUM_INFO = {
    "CFBundleIdentifier": "dev.santacore.bench.medium",
    "CFBundleName": "Medium",
    "CFBundleExecutable": "Medium",
    "CFBundlePackageType": "APPL",
    "CFBundleVersion": "1",
    "CFBundleShortVersionString": "1.0",
}
MEDIUM_MAIN_SOURCE = "Designer.app/Contents/MacOS/Designer"
MEDIUM_MAIN_TRAILER = b"\0santacore-bench medium main\n"


def copy_trailer(copy: int, label: str = XCODE_SPEC.trailer_label) -> bytes:
    return f"\0santacore-bench {label} {copy:04d}\n".encode("ascii")


def _tree_files(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Directories and (file, mode) below ``root``, relative, sorted."""
    dirs: list[str] = []
    files: list[tuple[str, int]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir != ".":
            dirs.append(rel_dir)
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            st = os.lstat(p)
            if not stat.S_ISREG(st.st_mode):
                raise WorkloadError(f"{p}: not a regular file")
            files.append((os.path.relpath(p, root), stat.S_IMODE(st.st_mode)))
    return dirs, files


def _read_tsv(path: Path) -> list[Executable]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            rel, size, sha = line.rstrip("\n").split("\t")
            out.append(Executable(rel=rel, size=int(size), sha256=sha))
    return out


def _copies_workload(spec: CopiesSpec, root: Path, meta: dict[str, Any], execs: list[Executable]) -> Workload:
    return Workload(
        name=spec.name,
        root=root,
        regular_files=meta["regular_files"],
        executables=tuple(execs),
        expected_bundle_hash=meta["bundle_hash"],
        expected_binary_count=meta["binary_count"],
        expected_source="tree.json (hashlib over the bytes benches.workloads wrote)",
        info={k: meta[k] for k in ("copies", "link_mode", "directories", "total_bytes", "build_seconds")},
    )


def _check_copies(root: Path, meta: dict[str, Any], execs: list[Executable], full: bool) -> None:
    counted = count_tree(root)
    problems = []
    if counted.regular_files != meta["regular_files"]:
        problems.append(f"{counted.regular_files} regular files, expected {meta['regular_files']}")
    if counted.symlinks or counted.other:
        problems.append(f"{counted.symlinks} symlinks / {counted.other} special files, expected none")
    if len(execs) != meta["executables"] or sum(e.size for e in execs) != meta["executable_bytes"]:
        problems.append("executable list does not match tree.json")
    for e in execs:
        p = root / e.rel
        try:
            size = p.stat().st_size
        except OSError:
            size = -1
        if size != e.size:
            problems.append(f"{e.rel}: size {size}, expected {e.size}")
            break
        if full and sha256_file(p) != e.sha256:
            problems.append(f"{e.rel}: sha256 differs")
            break
    if problems:
        raise WorkloadError("; ".join(problems))


def _write_executable(dst: Path, parts: list[bytes], mode: int, rel: str) -> Executable:
    digest = hashlib.sha256()
    with open(dst, "wb") as f:
        for part in parts:
            f.write(part)
            digest.update(part)
    os.chmod(dst, mode)
    return Executable(rel, sum(len(p) for p in parts), digest.hexdigest())


def prepare_copies(
    spec: CopiesSpec,
    cache: Path,
    *,
    copies: int | None = None,
    link_mode: str | None = None,
    verify: bool = False,
    log: Log = _stderr,
) -> Workload:
    copies = spec.default_copies if copies is None else copies
    link_mode = spec.default_link_mode if link_mode is None else link_mode
    if link_mode not in LINK_MODES:
        raise WorkloadError(f"link mode must be one of {LINK_MODES}")
    name = spec.name
    sources = [prepare_registry_tree(n, cache, log) for n in REGISTRY_TREES]
    base = cache / name
    root = base / spec.root_name
    meta_path = base / "tree.json"
    tsv_path = base / "tree.executables.tsv"
    params = {
        "builder_version": BUILDER_VERSION,
        "copies": copies,
        "link_mode": link_mode,
        "sources": {w.name: w.info["artifact_sha256"] for w in sources},
    }
    meta = _read_json(meta_path)
    if meta is not None and {k: meta.get(k) for k in params} == params and root.is_dir() and tsv_path.is_file():
        try:
            cached = _read_tsv(tsv_path)
            _check_copies(root, meta, cached, verify)
            return _copies_workload(spec, root, meta, cached)
        except (WorkloadError, OSError, ValueError) as e:
            log(f"{name}: cached tree invalid ({e}); rebuilding")
    elif meta is not None:
        log(f"{name}: cached tree was built with other parameters; rebuilding")

    per_copy_bytes = sum(int(w.info["total_bytes"]) for w in sources)
    need = copies * (per_copy_bytes if link_mode == "copy" else sum(w.executable_bytes for w in sources))
    base.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(base).free
    if need > free * 0.9:
        raise WorkloadError(
            f"{name} needs ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB free in {base}; try --link-mode hardlink"
        )
    _rmtree(meta_path)
    _rmtree(tsv_path)
    partial = base / f"{spec.root_name}.partial"
    _rmtree(partial)
    _rmtree(root)
    log(f"{name}: building {copies} copies ({link_mode}) in {partial} (~{need / 1e9:.1f} GB)")
    t0 = time.perf_counter()
    layout = [(w, *_tree_files(w.root), {e.rel: (w.root / e.rel).read_bytes() for e in w.executables}) for w in sources]
    execs: list[Executable] = []
    regular = total = 0
    partial.mkdir(parents=True)
    if spec.app:
        contents = partial / "Contents"
        (contents / "MacOS").mkdir(parents=True)
        (contents / "Info.plist").write_bytes(plistlib.dumps(MEDIUM_INFO))
        main_src = sources[0].root / MEDIUM_MAIN_SOURCE
        main_rel = f"Contents/MacOS/{MEDIUM_INFO['CFBundleExecutable']}"
        execs.append(
            _write_executable(partial / main_rel, [main_src.read_bytes(), MEDIUM_MAIN_TRAILER], 0o755, main_rel)
        )
        regular += 2
        total += (contents / "Info.plist").stat().st_size + execs[-1].size
    for c in range(copies):
        copy_dir = partial / spec.copies_dir / f"c{c:03d}"
        trailer = copy_trailer(c, spec.trailer_label)
        for w, dirs, files, exec_bytes in layout:
            dest = copy_dir / w.root.name
            for d in ["", *dirs]:
                (dest / d).mkdir(parents=True, exist_ok=True)
            for rel, mode in files:
                src, dst = w.root / rel, dest / rel
                data = exec_bytes.get(rel)
                if data is not None:
                    execs.append(_write_executable(dst, [data, trailer], mode, str(dst.relative_to(partial))))
                    size = execs[-1].size
                elif link_mode == "hardlink":
                    os.link(src, dst)
                    size = src.stat().st_size
                else:
                    shutil.copyfile(src, dst)
                    os.chmod(dst, mode)
                    size = src.stat().st_size
                regular += 1
                total += size
        if (c + 1) % 10 == 0 or c + 1 == copies:
            log(f"{name}: {c + 1}/{copies} copies, {regular} files, {time.perf_counter() - t0:.0f}s")
    directories = count_tree(partial).directories
    os.sync()
    os.replace(partial, root)
    exec_bytes_total = sum(e.size for e in execs)
    meta = {
        **params,
        "layout": f"{spec.root_name}/{spec.copies_dir + '/' if spec.copies_dir else ''}cNNN/{{PySide6,mujoco}}/..."
        + (f", {spec.root_name}/Contents/{{Info.plist,MacOS/{MEDIUM_INFO['CFBundleExecutable']}}}" if spec.app else ""),
        "regular_files": regular,
        "directories": directories,
        "total_bytes": total,
        "executables": len(execs),
        "binary_count": len({e.sha256 for e in execs}),
        "executable_bytes": exec_bytes_total,
        "bundle_hash": super_hash([e.sha256 for e in execs]),
        "bundle_hash_source": "hashlib.sha256 over the bytes written by benches.workloads",
        "build_seconds": round(time.perf_counter() - t0, 1),
        "meets_minimum": regular >= spec.min_files and exec_bytes_total >= spec.min_executable_bytes,
    }
    if spec is XCODE_SPEC:
        meta["meets_xcode_scale"] = meta["meets_minimum"]
    with open(tsv_path, "w", encoding="utf-8") as f:
        for x in execs:
            f.write(f"{x.rel}\t{x.size}\t{x.sha256}\n")
    _write_json(meta_path, meta)
    _check_copies(root, meta, execs, full=False)
    log(f"{name}: built in {meta['build_seconds']}s: {regular} files, {len(execs)} executables")
    return _copies_workload(spec, root, meta, execs)


def prepare_xcode(
    cache: Path,
    *,
    copies: int = DEFAULT_COPIES,
    link_mode: str = "copy",
    verify: bool = False,
    log: Log = _stderr,
) -> Workload:
    return prepare_copies(XCODE_SPEC, cache, copies=copies, link_mode=link_mode, verify=verify, log=log)


# ----------------------------------------------------------------------------- entry points


def prepare(
    name: str,
    cache: Path | None = None,
    *,
    copies: int | None = None,
    link_mode: str | None = None,
    verify: bool = False,
    log: Log = _stderr,
) -> Workload:
    """The workload ``name``, built or reused; ``copies``/``link_mode`` (copies workloads only)
    default to the workload's own (xcode-scale: 40, copy; medium: 15, copy)."""
    cache = cache if cache is not None else cache_dir()
    name = canonical_name(name)
    spec = COPIES_SPECS.get(name)
    if spec is not None:
        return prepare_copies(spec, cache, copies=copies, link_mode=link_mode, verify=verify, log=log)
    return prepare_registry_tree(name, cache, log)


def iter_prepare(names: list[str], cache: Path | None = None, **kwargs: Any) -> Iterator[Workload]:
    for name in names:
        yield prepare(name, cache, **kwargs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benches.workloads", description=__doc__.split("\n")[0])
    ap.add_argument("--dir", help=f"cache dir (default ${CACHE_ENV} or ~/.cache/santacore-bench)")
    ap.add_argument("--workload", action="append", choices=[*WORKLOAD_NAMES, *ALIASES], help="repeatable; default all")
    ap.add_argument(
        "--copies", type=int, help=f"copies (default: xcode-scale {DEFAULT_COPIES}, medium {MEDIUM_COPIES})"
    )
    ap.add_argument("--link-mode", choices=LINK_MODES, help="non-executables of xcode-scale / medium (default copy)")
    ap.add_argument("--verify", action="store_true", help="also re-hash the xcode-scale / medium executables")
    args = ap.parse_args(argv)
    cache = cache_dir(args.dir)
    names = args.workload or list(WORKLOAD_NAMES)
    try:
        for w in iter_prepare(names, cache, copies=args.copies, link_mode=args.link_mode, verify=args.verify):
            print(
                f"{w.name:12} {w.root}\n"
                f"{'':12} files={w.regular_files} executables={len(w.executables)} "
                f"executable_bytes={w.executable_bytes} binary_count={w.expected_binary_count}\n"
                f"{'':12} bundle_hash={w.expected_bundle_hash} ({w.expected_source})"
            )
    except WorkloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
