"""`santacore fileinfo` against the corpus manifest, field for field (spec §7)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from santacore.cli import main
from santacore.errors import SantacoreError
from santacore.identity import report
from santacore.identity.fileinfo import FileInfoError, file_info

HOSTS = {"apple-silicon": "apple_silicon", "intel": "intel"}
CODE_SIGNED_VALUES = {
    "No",
    "Yes",
    "Yes, but ad-hoc",
    "Yes, but code/signature changed/unverifiable",
    "Yes, but signing is not consistent for all architectures",
    "Yes, but with development certificate",
}
# Top-level fields compared for every Mach-O file, per host (the manifest's names).
HOST_FIELDS = (
    "cdhash",
    "team_id",
    "signing_id",
    "santa_signing_id",
    "platform_binary",
    "entitlements",
    "signing_time",
    "secure_signing_time",
)
SLICE_FIELDS = (
    "signed",
    "cdhash",
    "signing_id",
    "team_id",
    "santa_signing_id",
    "platform_binary",
    "flags",
    "adhoc",
    "linker_signed",
    "hardened_runtime",
    "chosen_hash_type",
    "entitlements",
    "signing_time",
    "secure_signing_time",
)
CERT_FIELDS = (
    "sha256",
    "sha1",
    "cn",
    "org",
    "ou",
    "ous",
    "country",
    "issuer_cn",
    "issuer_org",
    "valid_from",
    "valid_until",
    "valid_from_iso",
    "valid_until_iso",
    "serial",
    "self_issued",
    "production_signing_oids",
)


def fileinfo_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["fileinfo", "--json", *args]) == 0
    docs: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return docs


def expected_for_host(entry: dict[str, Any], field: str, host_key: str) -> Any:
    if field in entry.get("host_dependent_fields", []):
        return entry[f"{field}_by_host"][host_key]
    return entry[field]


class Counter:
    def __init__(self) -> None:
        self.compared = 0

    def check(self, actual: Any, expected: Any, where: str) -> None:
        assert actual == expected, where
        self.compared += 1

    def chain(self, actual: list[dict[str, Any]] | None, expected: list[dict[str, Any]] | None, where: str) -> None:
        if actual is None or expected is None:
            self.check(actual, expected, f"{where}: chain")
            return
        self.check(len(actual), len(expected), f"{where}: chain length")
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            for k in CERT_FIELDS:
                self.check(a[k], e[k], f"{where}: certificate {i} {k}")


def test_every_macho_matches_the_manifest(
    corpus: Path, manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    count = Counter()
    machos = [f for f in manifest["files"] if f["is_macho"]]
    assert len(machos) >= 50
    for entry in machos:
        path = str(corpus / entry["path"])
        for host, host_key in HOSTS.items():
            (doc,) = fileinfo_json(capsys, "--host", host, path)
            where = f"{entry['path']} ({host})"
            for k in ("sha256", "sha1", "size", "architectures", "is_macho", "is_fat"):
                count.check(doc[k], entry[k], f"{where}: {k}")
            count.check(doc["missing_pagezero"], entry["is_missing_pagezero"], f"{where}: page zero")
            count.check(doc["host_arch"], entry["santa_host_slice"][host_key], f"{where}: host slice")
            count.check(doc["signing_consistency"], entry["santa_signing_consistency"], f"{where}: consistency")
            count.check(doc["code_signed"], entry["santa_codesign_status"], f"{where}: Code-signed")
            for field in HOST_FIELDS:
                count.check(doc[field], expected_for_host(entry, field, host_key), f"{where}: {field}")
            count.chain(doc["signing_chain"], expected_for_host(entry, "signing_chain", host_key), where)
            slices = {s["arch"]: s for s in doc["slices"]}
            count.check(sorted(slices), sorted(entry["slices_by_arch"]), f"{where}: slices")
            for arch, expected in entry["slices_by_arch"].items():
                actual = slices[arch]
                assert actual["verification"]["valid"] is expected["signed"], f"{where} {arch}: verifies"
                for field in SLICE_FIELDS:
                    if field in expected and (expected["signed"] or field == "signed"):
                        count.check(actual[field], expected[field], f"{where} {arch}: {field}")
                if expected["signed"]:
                    count.chain(actual["signing_chain"], expected["signing_chain"], f"{where} {arch}")
                    cds = [(c["slot"], c["hash_type"], c["cdhash"]) for c in actual["code_directories"]]
                    want = [(c["slot"], c["hash_type"], c["cdhash"]) for c in expected["code_directories"]]
                    count.check(cds, want, f"{where} {arch}: code directories")
    # Every Mach-O, both hosts, every field: a drop here means a comparison silently vanished.
    assert count.compared >= 4000, count.compared
    print(f"fileinfo fields compared with the manifest: {count.compared}")


def test_embedded_info_plist_wins(corpus: Path, manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    for entry in manifest["files"]:
        plist = entry.get("embedded_info_plist")
        if not plist:
            continue
        (doc,) = fileinfo_json(capsys, str(corpus / entry["path"]))
        assert doc["bundle_id"] == plist["CFBundleIdentifier"]
        assert doc["bundle_version_string"] == plist.get("CFBundleShortVersionString")


def test_bundle_metadata_from_the_nearest_bundle(
    corpus: Path, manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    for b in manifest["bundles"]:
        if b["santa_bundleinfo"]["bundle_root"] is None or b["binary_count"] == 0:
            continue
        (doc,) = fileinfo_json(capsys, str(corpus / b["bundle_root"]))  # a bundle means its main executable
        assert doc["path"] == str(corpus / b["bundle_root"] / b["main_executable"])
        for k in ("bundle_id", "bundle_name", "bundle_version", "bundle_version_string"):
            assert doc[k] == b[k], (b["bundle_root"], k)


def _comparable_facts(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in manifest["santa_facts"] if f["comparable"]]


def _resolve_fact(doc: dict[str, Any], field: str) -> tuple[bool, Any]:
    """The value of a santa_facts field path in a fileinfo document, if fileinfo reports it."""
    renames = {
        "is_missing_pagezero": "missing_pagezero",
        "santa_signing_consistency": "signing_consistency",
        "santa_codesign_status": "code_signed",
        "santa_signing_status": "signing_status",
    }
    if field in renames:
        return True, doc[renames[field]]
    if field in doc:
        return True, doc[field]
    if field == "signing_chain_count":
        return True, len(doc["signing_chain"])
    if field == "entitlements_count":
        return True, len(doc["entitlements"] or {})
    if field.startswith("slots_present."):
        return True, (doc["slots_present"] or {}).get(field.removeprefix("slots_present."), False)
    if field.startswith("entitlements."):
        return True, (doc["entitlements"] or {}).get(field.removeprefix("entitlements."))
    if field.startswith("embedded_info_plist."):
        plist_keys = {"CFBundleIdentifier": "bundle_id", "CFBundleShortVersionString": "bundle_version_string"}
        return True, doc[plist_keys[field.removeprefix("embedded_info_plist.")]]
    if field.startswith("signing_chain["):
        index, key = field.removeprefix("signing_chain[").split("].")
        return True, doc["signing_chain"][int(index)][key]
    if field.startswith("slices_by_arch."):
        arch, rest = field.removeprefix("slices_by_arch.").split(".", 1)
        slice_doc = next(s for s in doc["slices"] if s["arch"] == arch)
        return _resolve_fact(slice_doc, rest)
    return False, None


def test_santa_facts(corpus: Path, manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """Every comparable value Santa's own repositories state about a file fileinfo describes."""
    checked = skipped = 0
    failures = []
    for fact in _comparable_facts(manifest):
        subject = corpus / fact["subject"]
        bundle_fact = fact["field"] in ("bundle_id", "bundle_name", "bundle_version", "bundle_version_string")
        if fact["field"].startswith("certificates") or not (subject.is_file() or bundle_fact):
            skipped += 1  # certificate files, bundle roots: covered by test_cms / test_bundle
            continue
        (doc,) = fileinfo_json(capsys, str(subject))  # a bundle directory means its main executable
        if not doc["is_macho"] and fact["field"] not in ("sha256", "sha1", "is_macho", "is_fat"):
            skipped += 1  # the raw .csblob: covered by test_codesign / test_cms
            continue
        known, value = _resolve_fact(doc, fact["field"])
        if not known:
            skipped += 1
            continue
        if value != fact["expected"]:
            failures.append((fact["subject"], fact["field"], value, fact["expected"]))
        checked += 1
    assert failures == []
    assert checked >= 80, (checked, skipped)
    print(f"santa_facts compared: {checked}, about bundles/certificates/other: {skipped}")


def test_flipped_code_byte_is_invalid(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = corpus / "santa/northpolesec/common/verifyinghasher/testdata/hw_entitled"
    copy = tmp_path / "hw_entitled"
    shutil.copyfile(src, copy)
    data = bytearray(copy.read_bytes())
    data[0x4000 + 10] ^= 0xFF  # inside __TEXT, well before the signature
    copy.write_bytes(bytes(data))
    (doc,) = fileinfo_json(capsys, str(copy))
    assert doc["code_signed"] == "Yes, but code/signature changed/unverifiable"
    assert doc["slices"][0]["verification"]["code_pages_valid"] is False
    assert any("code pages" in p for p in doc["slices"][0]["verification"]["problems"])
    # The identity still reads (Santa's fileinfo shows it); it is just not trustworthy.
    (orig,) = fileinfo_json(capsys, str(src))
    assert doc["cdhash"] == orig["cdhash"] and orig["code_signed"] != doc["code_signed"]


def test_adhoc_and_unsigned(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = corpus / "santa/northpolesec/common/verifyinghasher/testdata"
    (adhoc,) = fileinfo_json(capsys, str(base / "hw_universal"))
    assert adhoc["code_signed"] == "Yes, but ad-hoc"
    assert all(s["verification"]["valid"] for s in adhoc["slices"])
    (unsigned,) = fileinfo_json(capsys, str(base / "hw_unsigned"))
    assert unsigned["code_signed"] == "No"
    assert unsigned["cdhash"] is None and unsigned["signing_chain"] is None


def test_text_output_layout(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = corpus / "santa/northpolesec/common/verifyinghasher/testdata/hw_team_signed"
    assert main(["fileinfo", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.split("\n")
    assert lines[0] == f"{'Path':<23}: {path}"
    assert lines[1].startswith(f"{'SHA-256':<23}: ")
    info = file_info(path)
    assert f"{'Team ID':<23}: {info.team_id}" in lines
    assert f"{'Signing ID':<23}: {info.santa_signing_id}" in lines
    assert f"{'Type':<23}: Executable (x86_64, arm64)" in lines
    assert "Signing Chain:" in lines
    assert f"    1. {'SHA-256':<20}: {info.signing_chain[0].sha256}" in lines
    assert f"       {'Common Name':<20}: {info.signing_chain[0].cn}" in lines
    assert out.endswith("\n\n")
    assert main(["fileinfo", "--key", "SHA-256", str(path), str(path)]) == 0
    assert capsys.readouterr().out == f"{info.sha256}\n{info.sha256}\n"
    assert main(["fileinfo", "--key", "SHA-256", "--key", "Path", str(path)]) == 0
    assert capsys.readouterr().out == f"SHA-256: {info.sha256}\nPath   : {path}\n\n"


def test_universal_signing_chain_when_inconsistent(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = corpus / "santa/northpolesec/common/testdata/yikes-universal_adhoc"
    assert main(["fileinfo", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Signing Chain:" not in out.replace("Universal Signing Chain:", "")
    path = corpus / "registry/pypi/ninja/1.13.2/ninja-1.13.2.data/scripts/ninja"
    assert main(["fileinfo", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Universal Signing Chain:\n  Architecture: x86_64\n     1. unsigned" in out
    assert "  Architecture: arm64\n     1. ad-hoc" in out


def test_errors(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert main(["fileinfo", str(tmp_path / "missing"), str(tmp_path), str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err.split("\n")
    assert err[0] == f"File does not exist: {tmp_path / 'missing'}"
    assert err[1] == f"{tmp_path} is a directory.  Use the -r flag to search recursively."
    assert err[2] == f"Invalid or empty file: {tmp_path / 'empty'}"
    with pytest.raises(FileInfoError, match="has no ppc slice"):
        file_info(corpus / "santa/northpolesec/common/verifyinghasher/testdata/hw_universal", arch="ppc")


MUTATION_SOURCES = (
    "santa/northpolesec/common/verifyinghasher/testdata/hw_team_signed",
    "santa/northpolesec/common/testdata/yikes-universal_signed",
    "santa/northpolesec/common/testdata/32bitplist",
    "registry/pypi/ninja/1.13.2/ninja-1.13.2.data/scripts/ninja",
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    source=st.sampled_from(MUTATION_SOURCES),
    edits=st.lists(st.tuples(st.integers(0, 40_000), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(28, 120_000)),
)
def test_mutated_binaries_are_described_or_refused(
    corpus: Path, tmp_path: Path, source: str, edits: list[tuple[int, int]], cut: int | None
) -> None:
    """Hostile Mach-O files (headers, load commands, signatures, plists mutated or cut short):
    fileinfo describes them or refuses them with a SantacoreError — never another exception."""
    data = bytearray((corpus / source).read_bytes())
    for position, value in edits:
        data[position % len(data)] = value
    path = tmp_path / "mutant"
    path.write_bytes(bytes(data[:cut]))
    try:
        info = file_info(path)
    except SantacoreError:
        return
    report.render_text(info)
    json.dumps(report.json_document(info))
    assert info.code_signed in CODE_SIGNED_VALUES


class Bug(RuntimeError):
    """Stands for a mistake of ours, or a library that changed behind our back."""


def _raise_bug(*args: object, **kwargs: object) -> object:
    raise Bug("not a property of the file")


@pytest.mark.parametrize("name", ["parse_superblob", "verify_code_pages", "parse_cms", "signing_chain", "verify_cms"])
def test_an_unexpected_error_is_not_reported_as_a_broken_signature(
    corpus: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Only what malformed input raises (SignatureError, OSError) makes a signature "changed/unverifiable";
    any other exception from examining the file escapes as itself."""
    path = corpus / "santa/northpolesec/common/testdata/signed-with-teamid"
    assert file_info(path).code_signed == "Yes, but with development certificate"
    monkeypatch.setattr(f"santacore.identity.examine.{name}", _raise_bug)
    with pytest.raises(Bug):
        file_info(path)


def test_importing_fileinfo_loads_no_parser_library() -> None:
    """FileInfo, Host and file_info can be imported (by a sync, by the event store) without loading LIEF,
    cryptography or asn1crypto: they load when a file is examined. In a fresh interpreter."""
    code = (
        "import sys, santacore.identity.fileinfo\n"
        "print(sorted(m for m in ('lief', 'cryptography', 'asn1crypto') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


# --- the Rule key, --recursive, the Download keys ----------------------------------------------------

HW_TEAM_SIGNED = "santa/northpolesec/common/verifyinghasher/testdata/hw_team_signed"


def _santacore(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "santacore", *args], capture_output=True, text=True, timeout=120, env=env
    )


def _config(tmp_path: Path, body: str = "") -> Path:
    config = tmp_path / "santacore.toml"
    config.write_text(f'StateDirectory = "{tmp_path / "state"}"\n{body}', encoding="utf-8")
    return config


def test_rule_key_is_the_rule_that_would_decide(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = corpus / HW_TEAM_SIGNED
    info = file_info(path)
    config = _config(tmp_path, "ClientMode = 2\n")
    # No rules.db yet: the mode decides, and fileinfo creates nothing.
    assert main(["fileinfo", "--config", str(config), "--key", "Rule", str(path)]) == 0
    assert capsys.readouterr().out == "Blocked (Unknown)\n"
    assert not (tmp_path / "state").exists()
    leaf = info.signing_chain[0].sha256  # development-signed: a certificate rule applies, a Team ID rule would not
    assert main(["rule", "--config", str(config), "--allow", "--certificate", "--identifier", leaf]) == 0
    capsys.readouterr()
    assert main(["fileinfo", "--config", str(config), "--key", "SHA-256", "--key", "Rule", str(path)]) == 0
    assert capsys.readouterr().out == f"SHA-256: {info.sha256}\nRule   : Allowed (Certificate)\n\n"
    assert main(["rule", "--config", str(config), "--block", "--identifier", info.sha256]) == 0
    capsys.readouterr()
    # The whole text, as a person runs it: the Rule line sits between Code-signed and the chain.
    done = _santacore("fileinfo", "--config", str(config), str(path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    rule_at = lines.index(f"{'Rule':<23}: Blocked (Binary)")
    assert lines[rule_at - 1].startswith("Code-signed") and lines[rule_at + 1] == "Signing Chain:"


def test_rule_key_with_a_bad_configuration_says_why(corpus: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, "ClientMode = 7\n")
    done = _santacore("fileinfo", "--config", str(config), str(corpus / HW_TEAM_SIGNED))
    assert done.returncode == 0
    assert done.stderr.startswith("santacore fileinfo: Rule not shown: ") and "ClientMode" in done.stderr
    assert "Rule " not in done.stdout and done.stdout.startswith("Path ")


def test_recursive_describes_every_regular_file(corpus: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    shutil.copyfile(corpus / HW_TEAM_SIGNED, tree / "b-binary")
    (tree / "a.txt").write_text("hello\n", encoding="utf-8")
    (tree / "sub" / "c.sh").write_text("#!/bin/sh\n", encoding="utf-8")
    (tree / "link").symlink_to(tree / "a.txt")
    (tree / "dirlink").symlink_to(tree / "sub")
    config = _config(tmp_path)
    done = _santacore("fileinfo", "--config", str(config), "--key", "Path", str(tree))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"{tree} is a directory.  Use the -r flag to search recursively.\n"
    for flag in ("-r", "--recursive"):
        done = _santacore("fileinfo", "--config", str(config), flag, "--key", "Path", str(tree))
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [str(tree / "a.txt"), str(tree / "b-binary"), str(tree / "sub" / "c.sh")]
    done = _santacore("fileinfo", "-r", "--json", str(tree))
    assert [d["path"] for d in json.loads(done.stdout)] == [
        str(tree / "a.txt"),
        str(tree / "b-binary"),
        str(tree / "sub" / "c.sh"),
    ]


def test_download_keys_say_they_are_not_available(corpus: Path, tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = _santacore("fileinfo", "--config", str(config), "--key", "Download URL", str(corpus / HW_TEAM_SIGNED))
    assert (done.returncode, done.stdout) == (0, "")
    assert "macOS quarantine data" in done.stderr and "not available here" in done.stderr


def test_help_says_json_is_an_array() -> None:
    help_text = " ".join(_santacore("fileinfo", "--help").stdout.split())
    assert "print a JSON array with one object per file" in help_text
    assert "--recursive, -r" in help_text and "Exit status: 0 every path described" in help_text
