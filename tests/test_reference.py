"""The plain-Python bundle hash (tests/reference.py) against the corpus manifest and against santacore.hash_tree."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import santacore
from tests import reference


def corpus_bundles(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    bundles = [b for b in manifest["bundles"] if b["in_corpus"]]
    assert len(bundles) == manifest["summary"]["bundles_in_corpus"]
    return bundles


def santacore_tree(root: str) -> tuple[str | None, int, list[tuple[str, str]]]:
    tree = santacore.hash_tree(root)
    return tree.bundle_hash, tree.binary_count, sorted((b.path, b.sha256) for b in tree.binaries)


def test_reference_matches_manifest_bundles(corpus: Path, manifest: dict[str, Any]) -> None:
    for bundle in corpus_bundles(manifest):
        root = str(corpus / bundle["bundle_root"])
        bundle_hash, count, binaries = reference.reference_tree_hash(root)
        assert bundle_hash == bundle["bundle_hash"], root
        assert count == bundle["binary_count"], root
        assert {os.path.relpath(path, root): sha256 for path, sha256 in binaries} == bundle["binaries"], root
        assert len(binaries) == len(bundle["binaries"]), root  # no path listed twice


def test_reference_matches_santacore_hash_tree(corpus: Path, manifest: dict[str, Any]) -> None:
    for bundle in corpus_bundles(manifest):
        root = str(corpus / bundle["bundle_root"])
        assert santacore_tree(root) == reference.reference_tree_hash(root), root


def test_symlinks_and_non_executables_do_not_count(corpus: Path, manifest: dict[str, Any], tmp_path: Path) -> None:
    """README: symlinks are never hashed. A copy of BundleExample.app with links, special files, a plugin, a copy."""
    bundle = next(
        b
        for b in corpus_bundles(manifest)
        if b["bundle_root"].endswith("northpolesec/common/testdata/BundleExample.app")
    )
    plugin = next(f for f in manifest["files"] if f["is_macho"] and not f["is_bundle_binary"])  # MH_BUNDLE/MH_DYLIB
    other = next(
        f for f in manifest["files"] if f["is_bundle_binary"] and f["sha256"] not in bundle["binaries"].values()
    )
    root = tmp_path / "BundleExample.app"
    shutil.copytree(corpus / bundle["bundle_root"], root, symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(corpus / other["path"], outside / "tool")
    os.symlink(outside, root / "Contents" / "LinkedDir")  # not entered
    os.symlink(outside / "tool", root / "Contents" / "LinkedTool")  # not hashed
    os.symlink("MacOS", root / "Contents" / "Current")  # a link to a folder inside the bundle
    os.symlink(root / "missing", root / "Contents" / "Dangling")
    shutil.copyfile(corpus / plugin["path"], root / "Contents" / "plugin")
    (root / "Contents" / "empty").touch()
    os.mkfifo(root / "Contents" / "fifo")
    shutil.copyfile(root / "Contents" / "MacOS" / "BundleExample", root / ".hidden-copy")  # same hash, counted once

    expected = reference.reference_tree_hash(str(root))
    assert expected[:2] == (bundle["bundle_hash"], bundle["binary_count"])
    assert sorted(os.path.relpath(path, root) for path, _sha256 in expected[2]) == [
        ".hidden-copy",
        "Contents/MacOS/BundleExample",
    ]
    assert santacore_tree(str(root)) == expected

    shutil.copyfile(outside / "tool", root / "Contents" / "Resources-tool")  # a real second executable
    with_tool = reference.reference_tree_hash(str(root))
    assert with_tool[1] == 2
    assert with_tool[0] == reference.super_hash([*bundle["binaries"].values(), other["sha256"]])
    assert with_tool[0] != bundle["bundle_hash"]
    assert santacore_tree(str(root)) == with_tool


def test_empty_tree_has_no_hash(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "script").write_bytes(b"#!/bin/sh\necho hi\n")
    assert reference.reference_tree_hash(str(tmp_path)) == (None, 0, [])
    assert santacore_tree(str(tmp_path)) == (None, 0, [])


hex_digests = st.binary(min_size=32, max_size=32).map(bytes.hex)


@given(st.lists(hex_digests, max_size=8).flatmap(lambda xs: st.permutations(xs + xs[:2])))
def test_super_hash_agrees_with_santacore(hashes: list[str]) -> None:
    expected = reference.super_hash(hashes)
    assert (expected is None) == (len(hashes) == 0)
    assert santacore.bundle_hash_from_hashes(hashes) == expected


@pytest.mark.parametrize("count", [1, 3])
def test_super_hash_is_sha256_of_sorted_concatenation(count: int) -> None:
    hashes = [format(n, "064x") for n in range(count, 0, -1)]
    joined = "".join(sorted(hashes))
    assert reference.super_hash(hashes + hashes) == hashlib.sha256(joined.encode()).hexdigest()
