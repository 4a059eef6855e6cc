"""Bundle hashes and bundle-root resolution against the corpus manifest (spec §6)."""

from __future__ import annotations

import os
import plistlib
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import santacore
from santacore import NotABundleError, bundle_at, hash_bundle, hash_tree, nearest_bundle, resolve_bundle_root

ANY_BUNDLE = "registry/npm/node-notifier/10.0.1/vendor/mac.noindex/terminal-notifier.app"


def _bundles(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return list(manifest["bundles"])


def test_every_corpus_bundle_hash_and_binaries(corpus: Path, manifest: dict[str, Any]) -> None:
    bundles = _bundles(manifest)
    assert len(bundles) == manifest["summary"]["bundles_in_corpus"]
    for b in bundles:
        root = corpus / b["bundle_root"]
        for threads in (1, 2):
            tree = hash_tree(root, threads=threads)
            assert tree.bundle_hash == b["bundle_hash"], b["bundle_root"]
            assert tree.binary_count == b["binary_count"], b["bundle_root"]
            found = {os.path.relpath(x.path, root): x.sha256 for x in tree.binaries}
            assert found == b["binaries"], b["bundle_root"]
            assert tree.skipped == []
            assert tree.stats.regular_files == b["tree"]["regular_files"]
            assert tree.stats.symlinks == b["tree"]["symlinks"]
            assert tree.stats.macho_files == sum(b["tree"]["macho_by_first_filetype"].values())


@pytest.mark.parametrize("threads", [1, 2])
def test_santa_bundleinfo_outcome_for_every_bundle(corpus: Path, manifest: dict[str, Any], threads: int) -> None:
    for b in _bundles(manifest):
        expected = b["santa_bundleinfo"]
        path = corpus / b["bundle_root"]
        if expected["bundle_root"] is None:
            with pytest.raises(NotABundleError):
                hash_bundle(path, threads=threads)
            continue
        result = hash_bundle(path, threads=threads)
        assert result.bundle_root == str(corpus / expected["bundle_root"])
        assert result.bundle_hash == expected["bundle_hash"]
        assert result.binary_count == expected["binary_count"]
        assert result.bundle.bundle_id == expected["bundle_id"]
        assert result.hash_millis > 0


def test_ancestor_root_matches_manifest(corpus: Path, manifest: dict[str, Any]) -> None:
    for b in _bundles(manifest):
        root = resolve_bundle_root(corpus / b["bundle_root"])
        expected = b["santa_ancestor_bundle_root"]
        assert (root.path if root else None) == (str(corpus / expected) if expected else None), b["bundle_root"]


def test_metadata_comes_from_the_roots_info_plist(corpus: Path, manifest: dict[str, Any]) -> None:
    for b in _bundles(manifest):
        bundle = bundle_at(corpus / b["bundle_root"])
        assert bundle is not None, b["bundle_root"]
        assert bundle.info_plist == str(corpus / b["bundle_root"] / b["info_plist"])
        assert bundle.bundle_id == b["bundle_id"]
        assert bundle.bundle_name == b["bundle_name"]
        assert bundle.bundle_version == b["bundle_version"]
        assert bundle.bundle_version_string == b["bundle_version_string"]
        assert bundle.main_executable == str(corpus / b["bundle_root"] / b["main_executable"])


def test_root_found_from_main_executable_inner_folder_and_inner_file(corpus: Path, manifest: dict[str, Any]) -> None:
    checked = 0
    for b in _bundles(manifest):
        expected = b["santa_ancestor_bundle_root"]
        if expected is None:
            continue
        root = corpus / b["bundle_root"]
        starts = [root, root / b["info_plist"], (root / b["info_plist"]).parent]
        if not b["bundle_root"].endswith(".framework"):  # see test_framework_version_folder_is_nearest
            starts.append(root / b["main_executable"])
        for start in starts:
            result = hash_bundle(start)
            assert result.bundle_root == str(corpus / expected), start
            assert result.bundle_hash == b["santa_bundleinfo"]["bundle_hash"]
            checked += 1
    assert checked >= 3 * 8


def test_framework_version_folder_is_nearest(corpus: Path, manifest: dict[str, Any]) -> None:
    # Versions/A holds Resources/Info.plist with an identifier, so by the spec's nearest-bundle
    # rule (§6.2: the first bundle ends the walk; no extension means no bundle) a framework's
    # binary, started from directly, is in no bundle: the extensionless "A" hides the framework.
    framework = next(b for b in _bundles(manifest) if b["bundle_root"].endswith(".framework"))
    binary = corpus / framework["bundle_root"] / framework["main_executable"]
    version_folder = bundle_at(binary.parent)
    assert version_folder is not None and version_folder.extension == ""
    with pytest.raises(NotABundleError):
        hash_bundle(binary)


def test_executable_rel_path(corpus: Path) -> None:
    result = hash_bundle(corpus / ANY_BUNDLE)
    assert result.executable_rel_path == "Contents/MacOS/terminal-notifier"


def test_missing_path_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hash_bundle(tmp_path / "nope.app")


def test_directory_outside_any_bundle_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(NotABundleError, match="Not a bundle"):
        hash_bundle(tmp_path)


def test_bundle_hash_from_hashes_spec_example() -> None:
    # The worked example of spec §6.5 (a protocol test vector, not a corpus value).
    hashes = [
        "f2c82decdd7181cf98945929a62598db7e6b477e11f6e0eb0ae97020eff151ad",
        "b6a98d9ce9a2d9149288fa3df42d377c3e42737afdcdaf714e33c0a100b51060",
        "B6A98D9CE9A2D9149288FA3DF42D377C3E42737AFDCDAF714E33C0A100B51060",
        "673953e0ad7fc53247f4feadc2c2d4506396840d1f8796526f48d47333ac7652",
    ]
    assert (
        santacore.bundle_hash_from_hashes(hashes) == "b951801a9c10e74995ac45ed1c840fa68d533fa01cf656bb5083742f2fc65cfa"
    )
    assert santacore.bundle_hash_from_hashes([]) is None
    with pytest.raises(ValueError, match="64 hexadecimal"):
        santacore.bundle_hash_from_hashes(["not-a-hash"])


def test_bundle_hash_from_hashes_agrees_with_corpus(manifest: dict[str, Any]) -> None:
    for b in _bundles(manifest):
        assert santacore.bundle_hash_from_hashes(list(b["binaries"].values())) == b["bundle_hash"]


# Layouts built at run time (spec §6.1–6.2), with a real executable from the corpus.


def _exe(corpus: Path) -> Path:
    return corpus / ANY_BUNDLE / "Contents/MacOS/terminal-notifier"


def _make_app(base: Path, name: str, bundle_id: str, exe_src: Path, *, layout: str = "contents") -> Path:
    app = base / name
    exe_name = name.split(".")[0]
    if layout == "contents":
        (app / "Contents/MacOS").mkdir(parents=True)
        plist_path, exe_path = app / "Contents/Info.plist", app / "Contents/MacOS" / exe_name
    else:
        app.mkdir(parents=True)
        plist_path, exe_path = app / "Info.plist", app / exe_name
    plist_path.write_bytes(plistlib.dumps({"CFBundleIdentifier": bundle_id, "CFBundleExecutable": exe_name}))
    shutil.copyfile(exe_src, exe_path)
    return app


def test_nested_appex_hashes_the_outer_app(tmp_path: Path, corpus: Path) -> None:
    outer = _make_app(tmp_path, "Outer.app", "com.example.outer", _exe(corpus))
    plugins = outer / "Contents/PlugIns"
    plugins.mkdir()
    inner = _make_app(plugins, "Ext.appex", "com.example.ext", _exe(corpus))
    # Make the extension's binary differ so the outer hash must include both.
    with open(inner / "Contents/MacOS/Ext", "ab") as f:
        f.write(b"\0")
    result = hash_bundle(inner / "Contents/MacOS/Ext")
    assert result.bundle_root == str(outer)
    assert result.binary_count == 2
    assert result.bundle.bundle_id == "com.example.outer"


def test_lone_appex_and_plugin_are_not_hashed(tmp_path: Path, corpus: Path) -> None:
    for name in ("Lone.appex", "Lone.plugin", "Lone.APP"):
        app = _make_app(tmp_path / name.replace(".", "_"), name, "com.example.lone", _exe(corpus))
        assert nearest_bundle(app) is not None
        with pytest.raises(NotABundleError):
            hash_bundle(app)


def test_contents_and_macos_folders_are_not_bundles(tmp_path: Path, corpus: Path) -> None:
    app = _make_app(tmp_path, "Plain.app", "com.example.plain", _exe(corpus))
    assert bundle_at(app / "Contents") is None  # an Info.plist inside, but CF refuses "Contents"
    assert bundle_at(app / "Contents/MacOS") is None
    assert bundle_at(app) is not None
    (app / "Contents/Resources").mkdir()
    assert bundle_at(app / "Contents") is None


def test_flat_bundle_and_bundle_without_extension(tmp_path: Path, corpus: Path) -> None:
    flat = _make_app(tmp_path, "Flat.bundle", "com.example.flat", _exe(corpus), layout="flat")
    assert hash_bundle(flat).bundle_root == str(flat)
    # A bundle-shaped folder with no extension ends the nearest search with "no bundle",
    # even around a real app (Santa's DirectoryBundle).
    holder = _make_app(tmp_path, "Holder", "com.example.holder", _exe(corpus))
    inner = _make_app(holder / "Contents", "Inside.app", "com.example.inside", _exe(corpus))
    assert hash_bundle(inner).bundle_root == str(inner)
    with pytest.raises(NotABundleError):
        hash_bundle(holder)


def test_missing_main_executable_or_identifier_is_not_a_bundle(tmp_path: Path, corpus: Path) -> None:
    app = _make_app(tmp_path, "NoExe.app", "com.example.noexe", _exe(corpus))
    (app / "Contents/MacOS/NoExe").unlink()
    with pytest.raises(NotABundleError):
        hash_bundle(app)
    other = _make_app(tmp_path, "NoId.app", "x", _exe(corpus))
    (other / "Contents/Info.plist").write_bytes(plistlib.dumps({"CFBundleExecutable": "NoId"}))
    assert bundle_at(other) is None


def deeply_nested_bplist(depth: int) -> bytes:
    """A binary plist of `depth` nested one-element arrays (plistlib reads it recursively)."""
    objects = [b"\xa1" + (i + 1).to_bytes(2, "big") for i in range(depth)] + [b"\x10\x01"]
    body, offsets = b"bplist00", []
    for obj in objects:
        offsets.append(len(body))
        body += obj
    table = b"".join(offset.to_bytes(4, "big") for offset in offsets)
    return body + table + struct.pack(">6xBBQQQ", 4, 2, len(objects), 0, len(body))


# One of each error plistlib raises for malformed input (identity.plists.PLIST_ERRORS).
MALFORMED_PLISTS = {
    "empty": b"",
    "unclosed XML": b"<?xml version='1.0'?><plist><dict><key>",  # ExpatError
    "truncated binary": b"bplist00\xff\xff",  # InvalidFileException (ValueError)
    "zeros": b"\x00" * 64,
    "unknown encoding": b"<?xml version='1.0' encoding='no-such-codec'?><plist><dict/></plist>",  # LookupError
    "date that is not one": b"<plist><date>soon</date></plist>",  # AttributeError
    "date half one": b"<plist><date>2020-01Z</date></plist>",  # TypeError
    "deep binary nesting": deeply_nested_bplist(5_000),  # RecursionError
}


def test_malformed_info_plist_is_not_a_bundle(tmp_path: Path, corpus: Path) -> None:
    app = _make_app(tmp_path, "Broken.app", "com.example.broken", _exe(corpus))
    for junk in MALFORMED_PLISTS.values():
        (app / "Contents/Info.plist").write_bytes(junk)
        assert bundle_at(app) is None
        with pytest.raises(NotABundleError):
            hash_bundle(app)


def test_symlinked_path_is_resolved(tmp_path: Path, corpus: Path) -> None:
    app = _make_app(tmp_path / "real", "Linked.app", "com.example.linked", _exe(corpus))
    link = tmp_path / "Link.app"
    link.symlink_to(app)
    assert hash_bundle(link).bundle_root == str(app)


def test_info_plist_values_are_described_as_strings(tmp_path: Path, corpus: Path) -> None:
    app = _make_app(tmp_path, "Num.app", "com.example.num", _exe(corpus))
    info = {
        "CFBundleIdentifier": "com.example.num",
        "CFBundleExecutable": "Num",
        "CFBundleVersion": 42,
        "CFBundleShortVersionString": "",
        "CFBundleDisplayName": "",
        "CFBundleName": "Numbers",
    }
    (app / "Contents/Info.plist").write_bytes(plistlib.dumps(info, fmt=plistlib.FMT_BINARY))
    bundle = bundle_at(app)
    assert bundle is not None
    assert bundle.bundle_version == "42"
    assert bundle.bundle_version_string == ""
    assert bundle.bundle_name == "Numbers"


def test_hashing_loads_no_parser_library(corpus: Path) -> None:
    """Pay for what you use: importing santacore and hashing (a tree, a bundle) loads neither LIEF nor
    cryptography nor asn1crypto. In a fresh interpreter: this one has loaded them all for other tests."""
    code = (
        "import sys, santacore\n"
        "santacore.hash_tree(sys.argv[1])\n"
        "result = santacore.hash_bundle(sys.argv[1])\n"
        "assert result.bundle_hash, result\n"
        "print(sorted(m for m in ('lief', 'cryptography', 'asn1crypto') if m in sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(corpus / ANY_BUNDLE)], capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]"
