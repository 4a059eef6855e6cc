"""The `santacore` command (santactl's counterpart). Every command's arguments are here;
the commands print, the library underneath only returns values and raises."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeVar

from santacore import __version__, report
from santacore import constants as C
from santacore._core import BinaryFile, Progress
from santacore.bundle import BundleHash, hash_bundle
from santacore.errors import NotABundleError, SantacoreError
from santacore.fileinfo import FileInfoError, file_info

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_A_BUNDLE = 2

T = TypeVar("T")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="santacore", description="Santa's identifiers and sync, from the files alone."
    )
    parser.add_argument("--version", action="version", version=f"santacore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bundleinfo = commands.add_parser(
        "bundleinfo",
        help="hash the bundle Santa would hash for PATH (santactl bundleinfo)",
        description="Find the bundle Santa hashes for PATH (the bundle, its main executable, or anything "
        "inside it), hash every MH_EXECUTE in it and print the bundle hash. Exit 2: not a bundle.",
    )
    bundleinfo.add_argument("path", metavar="PATH")
    bundleinfo.add_argument("--json", action="store_true", help="print one JSON document with every detail")
    bundleinfo.add_argument(
        "--threads", type=_positive_int, default=None, help="worker threads (default: one per core)"
    )
    bundleinfo.add_argument("--blake3", action="store_true", help="also compute BLAKE3 of every binary, same read pass")
    bundleinfo.set_defaults(run=run_bundleinfo)

    fileinfo = commands.add_parser(
        "fileinfo",
        help="describe files as santactl fileinfo does: hashes, type, signing identity, verified",
        description="SHA-256, SHA-1, type, architectures, bundle metadata and the code signature (cdhash, "
        "Team ID, Signing ID, certificate chain), verified from the file itself. Exit 1 if any path failed.",
    )
    fileinfo.add_argument("paths", nargs="+", metavar="PATH")
    fileinfo.add_argument("--json", action="store_true", help="one JSON object per file (snake_case keys)")
    fileinfo.add_argument(
        "--key", action="append", choices=report.KEYS, metavar="KEY", help="print only this key (repeatable)"
    )
    fileinfo.add_argument("--arch", help="report this slice of a universal binary")
    fileinfo.add_argument(
        "--host",
        choices=("apple-silicon", "intel"),
        default="apple-silicon",
        help="the Mac whose slice choice to follow for universal binaries (default: apple-silicon)",
    )
    fileinfo.set_defaults(run=run_fileinfo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Paths that are not UTF-8 reach us as surrogate escapes; print them back as the same bytes.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


def run_bundleinfo(args: argparse.Namespace) -> int:
    try:
        result = _with_progress(
            lambda progress: hash_bundle(args.path, threads=args.threads, blake3=args.blake3, progress=progress)
        )
    except NotABundleError:
        print(C.NOT_A_BUNDLE, file=sys.stderr)
        return EXIT_NOT_A_BUNDLE
    except (OSError, SantacoreError) as e:
        print(f"santacore bundleinfo: {e}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        json.dump(bundleinfo_document(result), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_bundleinfo_text(result, sys.stdout)
    return EXIT_OK


def run_fileinfo(args: argparse.Namespace) -> int:
    documents: list[dict[str, Any]] = []
    failed = False
    for path in args.paths:
        try:
            info = file_info(path, host=args.host, arch=args.arch)
        except (FileInfoError, OSError, SantacoreError) as e:
            print(str(e) if isinstance(e, FileInfoError) else f"{path}: {e}", file=sys.stderr)
            failed = True
            continue
        if args.json:
            documents.append(report.json_document(info))
        else:
            sys.stdout.write(report.render_text(info, args.key or report.KEYS))
    if args.json:
        json.dump(documents, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return EXIT_ERROR if failed else EXIT_OK


def write_bundleinfo_text(result: BundleHash, out: TextIO) -> None:
    """`santactl bundleinfo`'s output, byte for byte (spec §7.7), one event per distinct binary."""
    events = result.unique_binaries()
    out.write(f"Hashing time: {int(result.hash_millis)} ms\n")
    out.write(f"{len(events)} events found\n")
    out.write(f"BundleHash: {result.bundle_hash or C.NULL_TEXT}\n")
    bundle_id = result.bundle.bundle_id or C.NULL_TEXT
    for b in events:
        out.write(f"BundleID: {bundle_id} \n\tSHA-256: {b.sha256} \n\tPath: {b.path}\n")


def _binary_document(b: BinaryFile) -> dict[str, Any]:
    doc: dict[str, Any] = {"path": b.path, "sha256": b.sha256, "size": b.size, "architectures": b.architectures}
    if b.blake3 is not None:
        doc["blake3"] = b.blake3
    return doc


def bundleinfo_document(result: BundleHash) -> dict[str, Any]:
    bundle = result.bundle
    s = result.stats
    return {
        "bundle_root": result.bundle_root,
        "bundle_hash": result.bundle_hash,
        "binary_count": result.binary_count,
        "hash_millis": result.hash_millis,
        "bundle_id": bundle.bundle_id,
        "bundle_name": bundle.bundle_name,
        "bundle_version": bundle.bundle_version,
        "bundle_version_string": bundle.bundle_version_string,
        "executable_rel_path": result.executable_rel_path,
        "binaries": [_binary_document(b) for b in result.binaries],
        "skipped": [{"path": p.path, "reason": p.reason} for p in result.skipped],
        "stats": {
            "directories": s.directories,
            "regular_files": s.regular_files,
            "symlinks": s.symlinks,
            "special_files": s.special_files,
            "macho_files": s.macho_files,
            "bytes_hashed": s.bytes_hashed,
            "walk_millis": s.walk_millis,
            "hashing_millis": s.hashing_millis,
        },
    }


def _with_progress(work: Callable[[Progress], T]) -> T:
    """Run `work` (which releases the GIL) and, on a terminal, draw a progress bar on stderr
    from its live counters. Without a terminal it just runs."""
    progress = Progress()
    if not sys.stderr.isatty():
        return work(progress)

    from rich.console import Console
    from rich.progress import Progress as Bar
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(work(progress))
        except BaseException as e:
            failure.append(e)

    worker = threading.Thread(target=target, name="santacore-bundleinfo", daemon=True)
    worker.start()
    # transient: the bar disappears when done, leaving only the real output.
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Bar(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("walking")
        while worker.is_alive():
            worker.join(0.1)
            bar.update(
                task,
                description=f"{progress.files_examined:,} files examined, {progress.binaries_found:,} executables, "
                f"{progress.bytes_hashed / 1e6:,.1f} MB hashed",
            )
    if failure:
        raise failure[0]
    return outcome[0]


if __name__ == "__main__":
    sys.exit(main())
