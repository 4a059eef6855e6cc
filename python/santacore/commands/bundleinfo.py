"""`santacore bundleinfo` (santactl bundleinfo): the bundle Santa hashes for a path."""

from __future__ import annotations

import argparse
import json
import os
import sys

from santacore._core import BinaryFile
from santacore.commands import EXIT_ERROR, EXIT_OK, error_text
from santacore.commands.progress import with_progress
from santacore.errors import NotABundleError, SantacoreError
from santacore.identity import constants as C
from santacore.identity.bundle import BundleHash, hash_bundle

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: start-up stays cheap
if TYPE_CHECKING:
    from typing import Any, TextIO

EXIT_NOT_A_BUNDLE = 2


def run(args: argparse.Namespace) -> int:
    try:
        result = with_progress(
            lambda progress: hash_bundle(args.path, threads=args.threads, blake3=args.blake3, progress=progress)
        )
    except NotABundleError:
        print(C.NOT_A_BUNDLE, file=sys.stderr)
        return EXIT_NOT_A_BUNDLE
    except (OSError, SantacoreError) as e:
        if isinstance(e, FileNotFoundError):
            try:  # say why PATH resolves nowhere (a symlink loop, a path over PATH_MAX) rather than "No such file"
                os.stat(args.path)
            except OSError as why:
                e = why
        print(f"santacore bundleinfo: {error_text(e)}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        json.dump(bundleinfo_document(result), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_bundleinfo_text(result, sys.stdout)
    return EXIT_OK


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
