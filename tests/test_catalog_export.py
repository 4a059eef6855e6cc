"""`santacore catalog export`: every format parses back with its own reader (json, pyarrow.parquet,
tomllib, and `santacore rule --import` into a real rules.db) and holds the catalog's values; rules
are deduplicated and the binaries without the identifier are counted; FILE is written whole or not
at all. Expected identities come from the corpus manifest."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from santacore.catalog.store import CatalogStore
from santacore.cli import main
from tests.catalog_corpus import DESIGNER, HW_TEAM_SIGNED, build_catalog, catalog_artifacts

SANTACTL_KEYS = {
    "Path",
    "SHA-256",
    "SHA-1",
    "Bundle Name",
    "Bundle Version",
    "Bundle Version Str",
    "Team ID",
    "Signing ID",
    "CDHash",
    "Type",
    "Page Zero",
    "Code-signed",
    "Signing Chain",
}
CERT_KEYS = {"SHA-256", "SHA-1", "Common Name", "Organization", "Organizational Unit", "Valid From", "Valid Until"}


@pytest.fixture(scope="module")
def catalog(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("catalog")
    return build_catalog(scratch / "catalog.db", catalog_artifacts(corpus, scratch))


def export(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["catalog", "export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def stored(catalog: Path) -> list[Any]:
    with CatalogStore.open(catalog) as store:
        return [store.result(a) for a in store.artifacts()]


def binaries(catalog: Path) -> list[Any]:
    with CatalogStore.open(catalog) as store:
        return [b.record for b in store.binaries()]


def manifest_host_slice(manifest: dict[str, Any], path: str) -> dict[str, Any]:
    entry = next(f for f in manifest["files"] if f["path"] == path)
    slice_: dict[str, Any] = entry["slices_by_arch"]["arm64"]  # the apple-silicon host's slice
    return {"sha256": entry["sha256"], "sha1": entry["sha1"], **slice_}


def test_jsonl_is_one_artifact_a_line_with_the_catalogs_values(
    catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = export(capsys, "--db", str(catalog), "--format", "jsonl")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    expected = stored(catalog)
    assert lines == [json.loads(json.dumps(dataclasses.asdict(r))) for r in expected]
    assert len(lines) == 7
    failed = [line for line in lines if line["error"]]
    assert [f["path"].rsplit("/", 1)[1] for f in failed] == ["notes.txt"]
    assert "Exported 7 artifacts (JSON lines)" in err


def test_parquet_rows_are_the_catalogs_binaries(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.parquet as pq

    target = tmp_path / "catalog.parquet"
    code, _, err = export(capsys, "--db", str(catalog), "--format", "parquet", "-o", str(target))
    assert code == 0, err
    rows = pq.read_table(target).to_pylist()
    records = binaries(catalog)
    assert len(rows) == len(records) > 10
    by_key = {(r["artifact_path"], r["path"]): r for r in rows}
    results = {r.path: r for r in stored(catalog)}
    for artifact_path, result in results.items():
        bundles = {b.path: b for b in result.bundles}
        for b in result.binaries:
            row = by_key[(artifact_path, b.path)]
            assert (row["sha256"], row["size"], row["team_id"], row["signing_id"], row["cdhash"]) == (
                b.sha256,
                b.size,
                b.team_id,
                b.signing_id,
                b.cdhash,
            )
            assert row["artifact_sha256"] == result.sha256
            assert row["bundle_hash"] == (bundles[b.bundle_path].bundle_hash if b.bundle_path else None)
            assert json.loads(row["fileinfo"]) == b.fileinfo
            assert row["architectures"] == b.fileinfo["architectures"]


def test_santactl_fileinfo_has_santactls_keys_layout_and_values(
    catalog: Path, manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = export(capsys, "--db", str(catalog), "--format", "santactl-fileinfo")
    assert code == 0, err
    # santactl's array: "[\n" + objects joined by ",\n" + "\n]\n"; NSJSONSerialization's `"key" : value`
    # and escaped slashes (spec §7.6).
    assert out.startswith("[\n{\n") and out.endswith("}\n]\n")
    assert '"Path" : "\\/' in out and '"/' not in out
    documents = json.loads(out)
    assert len(documents) == len(binaries(catalog))
    for doc in documents:
        assert set(doc) <= SANTACTL_KEYS
        for key, value in doc.items():
            if key == "Signing Chain":
                assert all(set(c) <= CERT_KEYS and all(isinstance(v, str) for v in c.values()) for c in value)
            else:
                assert isinstance(value, str), (key, value)
    doc = next(d for d in documents if d["Path"].endswith("/hw_team_signed"))
    expected = manifest_host_slice(manifest, HW_TEAM_SIGNED)
    assert doc["SHA-256"] == expected["sha256"]
    assert doc["SHA-1"] == expected["sha1"]
    assert doc["Team ID"] == expected["team_id"]
    assert doc["Signing ID"] == expected["santa_signing_id"]
    assert doc["CDHash"] == expected["cdhash"]
    assert doc["Type"] == "Executable (x86_64, arm64)"
    assert [c["SHA-256"] for c in doc["Signing Chain"]] == [c["sha256"] for c in expected["signing_chain"]]
    assert [c["Common Name"] for c in doc["Signing Chain"]] == [c["cn"] for c in expected["signing_chain"]]
    # Dates as Zentral's ingestion parses them (%Y/%m/%d %H:%M:%S %z), the same instants.
    for cert, want in zip(doc["Signing Chain"], expected["signing_chain"], strict=True):
        assert datetime.strptime(cert["Valid From"], "%Y/%m/%d %H:%M:%S %z").timestamp() == want["valid_from"]
        assert datetime.strptime(cert["Valid Until"], "%Y/%m/%d %H:%M:%S %z").timestamp() == want["valid_until"]
    unsigned = next(
        d for d in documents if d["Path"].endswith("terminal-notifier.app/Contents/MacOS/terminal-notifier")
    )
    assert unsigned["Code-signed"] == "No" and "Team ID" not in unsigned and "Signing Chain" not in unsigned
    assert unsigned["Bundle Version Str"] == "1.7.2"
    # A member of a zip: `Path` is the archive's path, then the member's; identity as on disk.
    designer = next(d for d in documents if d["Path"].endswith(".zip/Designer.app/Contents/MacOS/Designer"))
    on_disk = next(f for f in manifest["files"] if f["path"] == f"{DESIGNER}/Contents/MacOS/Designer")
    assert (designer["SHA-256"], designer["SHA-1"]) == (on_disk["sha256"], on_disk["sha1"])
    assert designer["CDHash"] == on_disk["slices_by_arch"]["arm64"]["cdhash"]
    assert designer["Code-signed"] == "Yes, but ad-hoc" and designer["Type"] == "Executable (x86_64, arm64)"


def _expected_identifiers(catalog: Path, field: str) -> set[str]:
    """What the catalog holds for a rule type, from the stored records (executables with a
    verified signature; BINARY: every executable)."""
    found = set()
    for b in binaries(catalog):
        if b.fileinfo.get("kind") != "Executable":
            continue
        if field != "sha256" and b.signing_status not in ("adhoc", "development", "production"):
            continue
        value = getattr(b, field)
        if value:
            found.add(value)
    return found


@pytest.mark.parametrize(
    ("rule_type", "field", "santactl_type"),
    [
        ("binary", "sha256", "BINARY"),
        ("teamid", "team_id", "TEAMID"),
        ("signingid", "signing_id", "SIGNINGID"),
        ("certificate", "leaf_cert_sha256", "CERTIFICATE"),
        ("cdhash", "cdhash", "CDHASH"),
    ],
)
def test_rules_json_imports_into_a_real_rules_db(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], rule_type: str, field: str, santactl_type: str
) -> None:
    rules_file = tmp_path / "rules.json"
    code, _, err = export(
        capsys, "--db", str(catalog), "--format", "rules-json", "--rule-type", rule_type,
        "--policy", "BLOCKLIST", "--message", "from the catalog", "-o", str(rules_file),
    )  # fmt: skip
    assert code == 0, err
    expected = _expected_identifiers(catalog, field)
    assert expected, "the test catalog must hold identifiers of every type"
    assert f"Exported {len(expected)} {santactl_type} BLOCKLIST rules" in err

    config = tmp_path / "santacore.toml"
    config.write_text(f'StateDirectory = "{tmp_path / "state"}"\n', encoding="utf-8")
    assert main(["rule", "--import", str(rules_file), "--config", str(config)]) == 0
    assert capsys.readouterr().out == f"Imported {len(expected)} rules from {rules_file}.\n"
    assert main(["rule", "--list", "--json", "--config", str(config)]) == 0
    listed = json.loads(capsys.readouterr().out)["rules"]
    assert {r["identifier"] for r in listed} == {e.upper() if rule_type == "teamid" else e for e in expected}
    assert {(r["rule_type"], r["policy"], r["custom_msg"]) for r in listed} == {
        (santactl_type, "BLOCKLIST", "from the catalog")
    }


def test_rules_are_deduplicated_and_skips_are_counted(catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = export(capsys, "--db", str(catalog), "--format", "rules-json")
    assert code == 0, err
    identifiers = [r["identifier"] for r in json.loads(out)["rules"]]
    assert len(identifiers) == len(set(identifiers))
    # DirectoryBundle holds a second copy of BundleExample.app: one rule for the two binaries.
    executables = [b for b in binaries(catalog) if b.fileinfo.get("kind") == "Executable"]
    duplicates = len(executables) - len({b.sha256 for b in executables})
    assert duplicates >= 1
    assert f"; {duplicates} duplicate identifiers merged" in err
    code, out, err = export(capsys, "--db", str(catalog), "--format", "rules-json", "--rule-type", "teamid")
    lacking = [b for b in executables if not (b.team_id and b.signing_status in ("adhoc", "development", "production"))]
    assert f"{len(lacking)} binaries skipped without a verified Team ID" in err


def test_moroz_toml_reads_back_as_the_same_rules(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = export(capsys, "--db", str(catalog), "--format", "rules-json", "--rule-type", "signingid")
    assert code == 0, err
    wanted = json.loads(out)["rules"]
    target = tmp_path / "rules.toml"
    code, _, err = export(
        capsys, "--db", str(catalog), "--format", "moroz-toml", "--rule-type", "signingid", "-o", str(target)
    )
    assert code == 0, err
    document = tomllib.loads(target.read_text(encoding="utf-8"))
    assert set(document) == {"rules"}
    # Moroz's Rule: rule_type, policy, identifier (santa/santa.go), policies by Moroz's names.
    assert document["rules"] == [
        {"rule_type": r["rule_type"], "policy": r["policy"], "identifier": r["identifier"]} for r in wanted
    ]


def test_moroz_refuses_a_policy_it_has_no_name_for(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "rules.toml"
    code, _, err = export(
        capsys, "--db", str(catalog), "--format", "moroz-toml", "--policy", "SILENT_BLOCKLIST", "-o", str(target)
    )
    assert code == 1
    assert "Moroz has no SILENT_BLOCKLIST policy" in err
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_without_force(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("keep me\n", encoding="utf-8")
    code, _, err = export(capsys, "--db", str(catalog), "--format", "jsonl", "-o", str(target))
    assert code == 1 and "exists (use --force to replace it)" in err
    assert target.read_text(encoding="utf-8") == "keep me\n"
    code, _, err = export(capsys, "--db", str(catalog), "--format", "jsonl", "-o", str(target), "--force")
    assert code == 0, err
    assert len(target.read_text(encoding="utf-8").splitlines()) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_a_missing_catalog_is_an_error_and_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "nothing.db"
    code, _, err = export(capsys, "--db", str(db), "--format", "jsonl")
    assert code == 1 and f"{db}: no such catalog" in err
    assert not db.exists()


def test_a_file_that_is_not_a_catalog_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "notes.db"
    db.write_text("hello\n" * 200, encoding="utf-8")
    code, _, err = export(capsys, "--db", str(db), "--format", "jsonl")
    assert code == 1 and "not a santacore catalog" in err
    assert db.read_text(encoding="utf-8") == "hello\n" * 200


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "parquet"], "--format parquet writes a file: give -o FILE"),
        (["--format", "jsonl", "--rule-type", "teamid"], "go with --format rules-json or moroz-toml"),
        (["--format", "santactl-fileinfo", "--policy", "BLOCKLIST"], "go with --format rules-json or moroz-toml"),
        (["--format", "rules-json", "--policy", "DENY"], "invalid choice: 'DENY'"),
    ],
)
def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["catalog", "export", "--db", str(tmp_path / "c.db"), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_parquet_without_pyarrow_names_the_extra(catalog: Path, tmp_path: Path) -> None:
    # A fresh interpreter where pyarrow cannot be imported, as on an install without the extra.
    script = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from santacore.cli import main\n"
        f"sys.exit(main(['catalog', 'export', '--db', {str(catalog)!r}, '--format', 'parquet', "
        f"'-o', {str(tmp_path / 'x.parquet')!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "--format parquet needs pyarrow: pip install 'santacore[export]'" in done.stderr
    assert list(tmp_path.iterdir()) == []
