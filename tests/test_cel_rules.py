"""CEL rules (addendum §6) in rules.db, `santacore rule` and `santacore check`: stored with state 9 and their
`cel_expr` (a version-7 rules.db migrated, hashed with the expression), compiled on insert (a bad one refused by
`rule --cel`, skipped by `--import`), listed, exported and imported, and evaluated by `check` for the execution
its options describe — the rule's type combined with the result, no fall-through, FailClosed.

The executable is a corpus file; its identifiers come from `file_info`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from santacore.cli import main
from santacore.errors import StoreError
from santacore.identity.fileinfo import file_info
from santacore.santad.rule_store import RejectedRule, RuleStore
from santacore.santad.rules import Identifiers, Rule, RuleError, RuleState, RuleType
from santacore.santad.rules_hash import HashedRow, rules_hash

FILE = "santa/northpolesec/santad/testdata/binaryrules/banned_teamid"
SHA = "7ae80b9ab38af0c63a9a81765f434d9a7cd8f720eb6037ef303de39d779bc258"
OTHER = "b7c1e3fd640c5f211c89b02c2c6122f78ce322aa5c56eb0bb54bc422a8f8b670"


def cel(identifier: str, expression: str, rule_type: RuleType = RuleType.BINARY, **kw: Any) -> Rule:
    return Rule.create(identifier, rule_type, RuleState.CEL, cel_expr=expression, **kw)


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANTACORE_CONFIG", raising=False)


# --- rules.db -------------------------------------------------------------------------------------


def test_cel_rule_is_stored_with_state_9_and_its_expression(tmp_path: Path) -> None:
    with RuleStore(tmp_path / "rules.db") as store:
        store.add_rules([cel(SHA, "euid == 0"), Rule.create(OTHER, RuleType.BINARY, RuleState.BLOCK)])
        assert store.rules() == [cel(SHA, "euid == 0"), Rule(OTHER, RuleType.BINARY, RuleState.BLOCK)]
        found = store.find(Identifiers(binary=SHA))
        assert found is not None and found.cel_expr == "euid == 0"
        counts = store.counts()
        assert (counts.binary, counts.total) == (2, 2)
    with sqlite3.connect(tmp_path / "rules.db") as db:
        assert db.execute("SELECT identifier, state, type, cel_expr FROM rules ORDER BY rowid").fetchall() == [
            (SHA, 9, 1000, "euid == 0"),
            (OTHER, 2, 1000, None),
        ]


def test_rules_hash_includes_the_expression(tmp_path: Path) -> None:
    with RuleStore(tmp_path / "rules.db") as store:
        store.add_rules([cel(SHA, "euid == 0"), Rule.create(OTHER, RuleType.BINARY, RuleState.BLOCK)])
        expected = rules_hash([HashedRow(SHA, "euid == 0", None, 9, 1000), HashedRow(OTHER, None, None, 2, 1000)])
        assert store.rules_hash() == expected
        store.add_rules([cel(SHA, "euid == 1")])  # another expression: another hash (and the rule moves last)
        assert store.rules_hash() == rules_hash(
            [HashedRow(OTHER, None, None, 2, 1000), HashedRow(SHA, "euid == 1", None, 9, 1000)]
        )


def test_an_expression_that_does_not_compile_is_refused_without_a_rejected_list(tmp_path: Path) -> None:
    with RuleStore(tmp_path / "rules.db") as store:
        with pytest.raises(RuleError, match=r"#2 \(BINARY .*\): invalid CEL expression: .*Syntax error"):
            store.add_rules([Rule.create(OTHER, RuleType.BINARY, RuleState.BLOCK), cel(SHA, "this is bad")])
        assert store.rules() == []  # the batch rolled back


def test_an_expression_that_does_not_compile_is_skipped_the_rest_stored(tmp_path: Path) -> None:
    rejected: list[RejectedRule] = []
    bad = cel(SHA, "target.nope")
    with RuleStore(tmp_path / "rules.db") as store:
        count = store.add_rules([bad, Rule.create(OTHER, RuleType.BINARY, RuleState.BLOCK)], rejected=rejected)
        assert count == 2
        assert store.rules() == [Rule(OTHER, RuleType.BINARY, RuleState.BLOCK)]
    assert [(r.position, r.rule) for r in rejected] == [(1, bad)]
    assert "invalid CEL expression" in rejected[0].reason and "undefined field 'nope'" in rejected[0].reason


def test_staged_download_skips_a_bad_expression(tmp_path: Path) -> None:
    with RuleStore(tmp_path / "rules.db") as store:
        with store.staging() as staged:
            staged.add([cel(SHA, "true")])
            staged.add([Rule.create(OTHER, RuleType.BINARY, RuleState.BLOCK), cel(OTHER, "1 +", RuleType.CERTIFICATE)])
            assert staged.count == 3
            staged.apply()
        assert [(r.batch, r.position, r.rule.identifier) for r in staged.rejected] == [(2, 2, OTHER)]
        assert [(r.identifier, r.state) for r in store.rules()] == [(SHA, RuleState.CEL), (OTHER, RuleState.BLOCK)]


def test_a_santa_version_7_database_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "rules.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE 'rules' ('identifier' TEXT NOT NULL, 'state' INTEGER NOT NULL, 'type' INTEGER NOT NULL, "
            "'custommsg' TEXT, 'timestamp' INTEGER, 'customurl' TEXT)"
        )
        db.execute("CREATE UNIQUE INDEX rulesunique ON rules (identifier, type)")
        db.execute("INSERT INTO rules VALUES (?, 2, 1000, 'no', 0, NULL)", (OTHER,))
        db.execute("INSERT INTO rules VALUES (?, 1, 3000, NULL, 0, NULL)", (SHA,))
        db.execute("PRAGMA user_version = 7")
    before = rules_hash([HashedRow(OTHER, None, None, 2, 1000), HashedRow(SHA, None, None, 1, 3000)])
    with RuleStore(path, read_only=True) as store:  # read-only: taken as it is
        assert store.rules_hash() == before
        assert len(store.rules()) == 2
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 7
    with RuleStore(path) as store:  # read-write: migrated, rows and their order kept
        assert store.rules_hash() == before
        store.add_rules([cel(SHA, "true")])
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 8
        assert db.execute("SELECT identifier, state, cel_expr FROM rules ORDER BY rowid").fetchall() == [
            (OTHER, 2, None),
            (SHA, 1, None),
            (SHA, 9, "true"),
        ]


def test_a_version_7_table_without_its_index_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "rules.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE 'rules' ('identifier' TEXT NOT NULL, 'state' INTEGER NOT NULL, 'type' INTEGER NOT NULL, "
            "'custommsg' TEXT, 'timestamp' INTEGER, 'customurl' TEXT)"
        )
        db.execute("PRAGMA user_version = 7")
    with pytest.raises(StoreError, match="unique"):
        RuleStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 7
        assert "cel_expr" not in {row[1] for row in db.execute("PRAGMA table_info(rules)")}


# --- santacore rule -------------------------------------------------------------------------------


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "santacore.toml"
    path.write_text(f'StateDirectory = "{tmp_path / "state"}"\n{extra}', encoding="utf-8")
    return path


def _rule(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["rule", "--config", str(config), *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_rule_cel_add_list_check_export_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    expression = "args.exists(a, a == '--unsafe') ? BLOCKLIST : ALLOWLIST"
    assert _rule(capsys, config, "--cel", expression, "--identifier", SHA.upper()) == (
        0,
        f"Added rule for SHA-256: {SHA}.\n",
        "",
    )
    rc, out, _ = _rule(capsys, config, "--list")
    assert (rc, out) == (0, f"BINARY       CEL                   {SHA}  {expression}\n")
    rc, out, _ = _rule(capsys, config, "--list", "--json")
    assert json.loads(out)["rules"] == [
        {"identifier": SHA, "rule_type": "BINARY", "custom_msg": "", "custom_url": "", "cel_expr": expression,
         "policy": "CEL"}
    ]  # fmt: skip
    assert _rule(capsys, config, "--check", "--identifier", SHA)[1] == f"CEL (Binary): {expression}\n"
    exported = tmp_path / "rules.json"
    assert _rule(capsys, config, "--export", str(exported))[0] == 0
    document = json.loads(exported.read_text())
    assert document["rules"][0]["policy"] == "CEL" and document["rules"][0]["cel_expr"] == expression
    # Import into another installation: the same rule, the same hash.
    other = tmp_path / "other"
    other.mkdir()
    other_config = _config(other)
    assert _rule(capsys, other_config, "--import", str(exported))[:2] == (0, f"Imported 1 rules from {exported}.\n")
    assert _rule(capsys, other_config, "--hash")[1] == _rule(capsys, config, "--hash")[1]


def test_rule_cel_that_does_not_compile_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    rc, out, err = _rule(capsys, config, "--cel", "euid == 'root'", "--identifier", SHA)
    assert (rc, out) == (1, "")
    assert err.startswith("Failed to modify rules: ") and "invalid CEL expression" in err
    assert "no matching overload" in err
    rc, _, err = _rule(capsys, config, "--cel", " ", "--identifier", SHA)
    assert rc == 1 and "CEL rules require a non-empty cel_expr" in err
    assert _rule(capsys, config, "--list")[1] == ""


def test_import_skips_a_cel_rule_that_does_not_compile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    document = tmp_path / "import.json"
    document.write_text(
        json.dumps(
            {
                "rules": [
                    {"identifier": SHA, "policy": "CEL", "rule_type": "BINARY", "cel_expr": "foo"},
                    {"identifier": OTHER, "policy": "CEL", "rule_type": "BINARY", "celExpr": "true"},
                ]
            }
        )
    )
    rc, out, err = _rule(capsys, config, "--import", str(document))
    assert rc == 1
    assert out == f"Imported 1 of 2 rules from {document} (1 skipped).\n"
    assert err.startswith(f"Skipped rule #1 (BINARY {SHA}): invalid CEL expression: ")
    assert "undeclared reference to 'foo'" in err
    with RuleStore(tmp_path / "state" / "rules.db") as store:
        assert store.rules() == [cel(OTHER, "true")]


def test_cel_and_another_state_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["rule", "--cel", "true", "--block", "--identifier", SHA])
    assert e.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# --- santacore check ------------------------------------------------------------------------------


class Check:
    """`santacore check --json` on the corpus file, with the rules added through the store."""

    def __init__(self, tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp, self.capsys = tmp_path, capsys
        self.path = corpus / FILE
        self.fi = file_info(self.path)
        (tmp_path / "state").mkdir()

    def add(self, *rules: Rule) -> None:
        with RuleStore(self.tmp / "state" / "rules.db") as store:
            store.clear(include_transitive=True)
            store.add_rules(rules)

    def __call__(self, *args: str, config: str = "") -> dict[str, Any]:
        self.capsys.readouterr()
        rc = main(["check", "--config", str(_config(self.tmp, config)), str(self.path), "--json", *args])
        out, err = self.capsys.readouterr()
        doc: dict[str, Any] = json.loads(out)
        assert rc == (0 if doc["allowed"] else 3), err
        return doc


@pytest.fixture
def check(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> Check:
    return Check(tmp_path, corpus, capsys)


def _decision(check: Check, expression: str, *args: str, rule_type: RuleType = RuleType.BINARY) -> str:
    identifier = {
        RuleType.BINARY: check.fi.sha256,
        RuleType.CERTIFICATE: check.fi.signing_chain[0].sha256,
        RuleType.CDHASH: check.fi.cdhash,
    }[rule_type]
    assert identifier
    check.add(cel(identifier, expression, rule_type))
    decision: str = check(*args)["decision"]
    return decision


@pytest.mark.parametrize(
    ("expression", "args", "decision"),
    [
        # target, from the file's own signature
        ("target.team_id == 'EQHXZ8M8AV'", (), "ALLOW_BINARY"),
        ("target.signing_id == 'EQHXZ8M8AV:banned_teamid'", (), "ALLOW_BINARY"),
        ("target.is_platform_binary", (), "BLOCK_BINARY"),
        ("target.signing_time == timestamp('2021-10-15T19:32:37Z')", (), "ALLOW_BINARY"),
        ("target.secure_signing_time == timestamp(0)", (), "ALLOW_BINARY"),  # this file has none
        # path and the execution options
        ("path.endsWith('/banned_teamid') && args == [path]", (), "ALLOW_BINARY"),
        ("'--unsafe' in args ? BLOCKLIST : ALLOWLIST", ("--arg=--unsafe",), "BLOCK_BINARY"),
        ("args.size() == 3 && args[2] == 'x=y'", ("--arg=-v", "--arg", "x=y"), "ALLOW_BINARY"),
        ("envs['MODE'] == 'a=b'", ("--env", "MODE=a=b"), "ALLOW_BINARY"),
        ("envs.size() == 0", (), "ALLOW_BINARY"),
        ("euid == 0 ? BLOCKLIST : ALLOWLIST", ("--euid", "0"), "BLOCK_BINARY"),
        ("euid == 0 ? BLOCKLIST : ALLOWLIST", ("--euid", "501"), "ALLOW_BINARY"),
        ("cwd == '/var/empty'", ("--cwd", "/var/empty"), "ALLOW_BINARY"),
        # results: constants and numbers
        ("SILENT_BLOCKLIST", (), "BLOCK_BINARY"),
        ("3", (), "BLOCK_BINARY"),
        ("ALLOWLIST_COMPILER", (), "ALLOW_BINARY"),  # transitive rules off: a plain allow
    ],
)
def test_check_evaluates_every_variable(check: Check, expression: str, args: tuple[str, ...], decision: str) -> None:
    assert _decision(check, expression, *args) == decision


def test_defaults_are_this_process(check: Check) -> None:
    import os

    assert _decision(check, f"euid == {os.geteuid()} && cwd == '{os.getcwd()}'") == "ALLOW_BINARY"


def test_result_and_rule_type_combined(check: Check) -> None:
    assert _decision(check, "ALLOWLIST", rule_type=RuleType.CERTIFICATE) == "ALLOW_CERTIFICATE"
    assert _decision(check, "false", rule_type=RuleType.CDHASH) == "BLOCK_CDHASH"
    # CERTIFICATE + ALLOWLIST_COMPILER is not in Santa's table: no decision, the mode decides.
    check.add(cel(check.fi.signing_chain[0].sha256, "ALLOWLIST_COMPILER", RuleType.CERTIFICATE))
    doc = check(config="ClientMode = 2\n")
    assert doc["decision"] == "BLOCK_UNKNOWN"
    assert "returned ALLOWLIST_COMPILER, which a CERTIFICATE rule cannot decide" in doc["explanation"]


def test_silent_variants(check: Check) -> None:
    check.add(cel(check.fi.sha256, "SILENT_BLOCKLIST"))
    doc = check()
    assert (doc["decision"], doc["silent"]) == ("BLOCK_BINARY", True)
    check.add(cel(check.fi.sha256, "SILENT_GUI_BLOCKLIST"))
    doc = check()
    assert (doc["decision"], doc["silent"]) == ("BLOCK_BINARY", False)
    assert doc["explanation"].endswith("returned SILENT_GUI_BLOCKLIST (no GUI dialog)")
    check.add(cel(check.fi.sha256, "SILENT_TTY_BLOCKLIST", custom_msg="terminal only"))
    doc = check()
    assert (doc["decision"], doc["custom_msg"]) == ("BLOCK_BINARY", "terminal only")


def test_no_decision_does_not_fall_through(check: Check) -> None:
    # The CDHASH CEL rule outranks the BINARY block; its "no decision" (0) leaves the mode to decide.
    assert check.fi.cdhash
    check.add(
        cel(check.fi.cdhash, "0", RuleType.CDHASH), Rule.create(check.fi.sha256, RuleType.BINARY, RuleState.BLOCK)
    )
    doc = check()
    assert doc["decision"] == "ALLOW_UNKNOWN"
    assert doc["rule"] is None
    assert (
        doc["explanation"]
        == f"CDHASH CEL rule {check.fi.cdhash} returned UNSPECIFIED (no decision); Monitor mode allows"
    )


def test_evaluation_error_decides_nothing_or_blocks_with_fail_closed(check: Check) -> None:
    check.add(cel(check.fi.sha256, "envs['MODE'] == 'x'"))
    doc = check()
    assert doc["decision"] == "ALLOW_UNKNOWN"
    assert "failed (evaluation failed: " in doc["explanation"] and "Key not found in map" in doc["explanation"]
    doc = check(config="FailClosed = true\n")
    assert doc["decision"] == "BLOCK_UNKNOWN"
    assert doc["explanation"].endswith("; FailClosed blocks")
    # With the variable given, the same rule decides.
    assert check("--env", "MODE=x")["decision"] == "ALLOW_BINARY"


def test_env_needs_a_name(check: Check, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["check", str(check.path), "--env", "=x"])
    assert e.value.code == 2
    assert "--env takes NAME=VALUE" in capsys.readouterr().err
