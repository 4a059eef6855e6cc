"""`santacore catalog show`: counts, signers by binary count, unsigned/ad-hoc binaries and failures
agree with the catalog (text, --json); --html writes one self-contained page in which hostile member
names (markup, terminal escapes, bidi overrides) are shown as text, never interpreted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from santacore.catalog.store import CatalogStore
from santacore.cli import main
from tests.catalog_corpus import BINARYRULES, HW_TEAM_SIGNED, build_catalog, catalog_artifacts

HOSTILE = '<img src=x onerror="alert(1)">&amp;\x1b[31mred\u202egnp.exe'


@pytest.fixture(scope="module")
def catalog(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("catalog")
    hostile = scratch / f"hostile {HOSTILE}"
    (hostile / HOSTILE).mkdir(parents=True)
    shutil.copyfile(corpus / BINARYRULES / "badbinary", hostile / HOSTILE / HOSTILE)  # unsigned: listed
    return build_catalog(scratch / "catalog.db", [*catalog_artifacts(corpus, scratch), hostile])


def show(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["catalog", "show", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def records(catalog: Path) -> list[Any]:
    with CatalogStore.open(catalog) as store:
        return [b.record for b in store.binaries()]


def test_json_summary_agrees_with_the_catalog(
    catalog: Path, manifest: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = show(capsys, "--db", str(catalog), "--json")
    assert code == 0, err
    doc = json.loads(out)
    with CatalogStore.open(catalog) as store:
        counts = store.counts()
    binaries = records(catalog)
    for key in ("artifacts", "done", "failed", "bundles", "binaries"):
        assert doc["counts"][key] == counts[key]
    assert doc["counts"]["distinct_binaries"] == len({b.sha256 for b in binaries})
    assert doc["signing_statuses"] == dict(Counter(b.signing_status for b in binaries))
    signed = [b for b in binaries if b.signing_status in ("development", "production")]
    by_leaf = Counter(b.leaf_cert_sha256 for b in signed)
    assert [(s["leaf_sha256"], s["binaries"]) for s in doc["signers"]] == sorted(
        by_leaf.items(),
        key=lambda kv: (-kv[1], next(s["common_name"] for s in doc["signers"] if s["leaf_sha256"] == kv[0]), kv[0]),
    )
    assert doc["counts"]["signers"] == len(by_leaf)
    # hw_team_signed's leaf (from the manifest), signing that one binary.
    leaf = next(f for f in manifest["files"] if f["path"] == HW_TEAM_SIGNED)["slices_by_arch"]["arm64"][
        "signing_chain"
    ][0]
    signer = next(s for s in doc["signers"] if s["leaf_sha256"] == leaf["sha256"])
    assert (signer["common_name"], signer["team_id"], signer["binaries"], signer["distinct_binaries"]) == (
        leaf["cn"],
        leaf["ou"],
        1,
        1,
    )
    unsigned = [b for b in binaries if b.signing_status not in ("development", "production")]
    assert doc["unsigned_or_adhoc_total"] == len(unsigned) == len(doc["unsigned_or_adhoc"])
    assert {(u["path"], u["sha256"]) for u in doc["unsigned_or_adhoc"]} == {(b.path, b.sha256) for b in unsigned}
    assert [(Path(f["path"]).name, f["error"]) for f in doc["failures"]] == [
        ("notes.txt", "not an archive, bundle or Mach-O file")
    ]


def test_text_lists_signers_unsigned_and_failures(catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = show(capsys, "--db", str(catalog), "--limit", "3")
    assert code == 0, err
    binaries = records(catalog)
    assert f"Mach-O binaries         : {len(binaries):,}\n" in out
    assert "Failed artifacts (1):\n" in out and "notes.txt: not an archive, bundle or Mach-O file" in out
    unsigned = sum(b.signing_status not in ("development", "production") for b in binaries)
    assert f"Unsigned, ad-hoc or unverified binaries ({unsigned:,}):" in out
    assert f"  … and {unsigned - 3:,} more" in out
    # A member name cannot drive the terminal or reorder the line.
    assert "\x1b" not in out and "\u202e" not in out


def test_hostile_names_are_text_in_the_html(catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.html"
    code, _, err = show(capsys, "--db", str(catalog), "--html", str(report))
    assert code == 0, err
    page = report.read_text(encoding="utf-8")
    assert "<img" not in page and 'onerror="' not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;amp;\\x1b[31mred\\u202egnp.exe" in page
    assert "\x1b" not in page and "\u202e" not in page

    tags: list[str] = []
    references: list[str] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.append(tag)
            references.extend(v or "" for k, v in attrs if k in ("src", "href", "srcset", "action"))

    Collect().feed(page)
    # One self-contained page: no script, no external stylesheet, image, font or frame.
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(tags)
    assert references == []
    assert "url(" not in page and "@import" not in page
    assert "<table>" in page and "Signers by binary count" in page


def test_a_missing_catalog_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = show(capsys, "--db", str(tmp_path / "none.db"))
    assert code == 1 and "no such catalog" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["catalog", "show"],
        ["catalog", "show", "--json"],
        ["catalog", "export", "--format", "rules-json", "--rule-type", "teamid"],
        ["catalog", "export", "--format", "santactl-fileinfo"],
    ],
)
def test_reading_a_catalog_loads_nothing_heavy(catalog: Path, argv: list[str]) -> None:
    # The catalog holds JSON documents: showing or exporting them needs neither LIEF nor the verifiers.
    script = (
        "import contextlib, io, sys\n"
        "from santacore.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"    assert main({[*argv, '--db', str(catalog)]!r}) == 0\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
    )
    heavy = ["lief", "cryptography", "asn1crypto", "httpx", "rich", "dask", "distributed", "pyarrow"]
    done = subprocess.run([sys.executable, "-c", script, *heavy], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]"]
