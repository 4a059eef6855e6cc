"""santacore.santad.rule_store: rules.db as santad keeps it (spec §8.7), shared safely between processes."""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from santacore.errors import StoreError
from santacore.santad.rule_store import SCHEMA_VERSION, Cleanup, RuleCounts, RuleStore
from santacore.santad.rules import Identifiers, Rule, RuleError, RuleState, RuleType
from tests.test_rules import BAD_IDENTIFIERS, CDHASH, CERT, SHA, SIGNING, TEAM

ALLOW, BLOCK, SILENT, REMOVE, COMPILER, TRANSITIVE = (
    RuleState.ALLOW,
    RuleState.BLOCK,
    RuleState.SILENT_BLOCK,
    RuleState.REMOVE,
    RuleState.ALLOW_COMPILER,
    RuleState.ALLOW_TRANSITIVE,
)
IDS = {
    RuleType.CDHASH: CDHASH,
    RuleType.BINARY: SHA,
    RuleType.SIGNINGID: SIGNING,
    RuleType.CERTIFICATE: CERT,
    RuleType.TEAMID: TEAM,
}
EVERYTHING = Identifiers(cdhash=CDHASH, binary=SHA, signing_id=SIGNING, certificate=CERT, team_id=TEAM)
SANTA_SCHEMA = [
    (
        "table",
        "rules",
        "CREATE TABLE 'rules' ('identifier' TEXT NOT NULL, 'state' INTEGER NOT NULL, 'type' INTEGER NOT NULL, "
        "'custommsg' TEXT, 'timestamp' INTEGER, 'customurl' TEXT)",
    ),
    ("index", "rulesunique", "CREATE UNIQUE INDEX rulesunique ON rules (identifier, type)"),
]
SANTA_SCHEMA_SQL = [sql for _, _, sql in SANTA_SCHEMA]
# santacore's version 8: Santa's version 7 plus [N]'s `cel_expr` column.
SANTACORE_SCHEMA = [
    (
        "table",
        "rules",
        "CREATE TABLE 'rules' ('identifier' TEXT NOT NULL, 'state' INTEGER NOT NULL, 'type' INTEGER NOT NULL, "
        "'custommsg' TEXT, 'timestamp' INTEGER, 'customurl' TEXT, 'cel_expr' TEXT)",
    ),
    SANTA_SCHEMA[1],
]


def sha(n: int) -> str:
    return f"{n:064x}"


def binary(n: int, state: RuleState = ALLOW, **kw: Any) -> Rule:
    return Rule.create(sha(n), RuleType.BINARY, state, **kw)


def rows(path: Path) -> list[tuple[Any, ...]]:
    """The table as another process sees it."""
    with sqlite3.connect(path) as db:
        # Santa's columns (`cel_expr`, santacore's addition, has its own tests).
        columns = "identifier, state, type, custommsg, timestamp, customurl"
        return db.execute(f"SELECT {columns} FROM rules ORDER BY type, identifier").fetchall()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "rules.db"


@pytest.fixture
def store(db_path: Path) -> Any:
    with RuleStore(db_path) as s:
        yield s


# --- creating and opening ---------------------------------------------------------------------


def test_fresh_database_is_santas_schema(db_path: Path) -> None:
    with RuleStore(db_path) as store:
        assert store.created_fresh
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] == 10000
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type DESC").fetchall() == SANTACORE_SCHEMA
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with RuleStore(db_path) as again:
        assert not again.created_fresh


def test_empty_file_is_created_fresh(db_path: Path) -> None:
    db_path.touch()
    with RuleStore(db_path) as store:
        assert store.created_fresh
        assert store.rules() == []


def test_rules_persist(db_path: Path) -> None:
    with RuleStore(db_path) as store:
        store.add_rules([binary(1, BLOCK, custom_msg="no", custom_url="https://x/"), binary(2)])
    with RuleStore(db_path) as store:
        assert store.rules() == [binary(1, BLOCK, custom_msg="no", custom_url="https://x/"), binary(2)]


def test_missing_directories_are_created_private(tmp_path: Path) -> None:
    """The state directory is made on first use, 0700, and the database 0600 (like /var/db/santa)."""
    path = tmp_path / "state" / "deeper" / "rules.db"
    with RuleStore(path) as store:
        assert store.created_fresh
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unusable_location_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises((StoreError, OSError)):
        RuleStore(tmp_path / "file" / "rules.db")


# --- foreign files are refused and left alone -------------------------------------------------


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def refused(path: Path, match: str) -> None:
    before = snapshot(path.parent)
    with pytest.raises(StoreError, match=match) as e:
        RuleStore(path)
    assert str(path) in str(e.value)
    assert snapshot(path.parent) == before  # byte for byte, and no -wal/-shm/-journal left behind


def make_db(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def test_text_file_refused(db_path: Path) -> None:
    db_path.write_text('{"rules": []}\n')
    refused(db_path, "not an SQLite database")


@pytest.mark.parametrize("content", [b"SQLite", b"SQLite format 2\x00" + bytes(100), bytes(4096), b"\x00"])
def test_other_binary_files_refused(db_path: Path, content: bytes) -> None:
    db_path.write_bytes(content)
    refused(db_path, "not an SQLite database")


def test_directory_refused(db_path: Path) -> None:
    db_path.mkdir()
    with pytest.raises(StoreError, match="directory"):
        RuleStore(db_path)


def test_foreign_sqlite_database_refused(db_path: Path) -> None:
    make_db(db_path, "CREATE TABLE events (id INTEGER PRIMARY KEY, blob BLOB)", "INSERT INTO events VALUES (1, x'00')")
    refused(db_path, "not a rules database: it holds events")


def test_newer_user_version_refused(db_path: Path) -> None:
    make_db(db_path, *SANTA_SCHEMA_SQL, "PRAGMA user_version = 9")
    refused(db_path, "user_version 9, newer than the 8")


def test_northpolesec_database_refused(db_path: Path) -> None:
    make_db(
        db_path,
        "CREATE TABLE execution_rules (identifier TEXT NOT NULL, state INTEGER NOT NULL, type INTEGER NOT NULL, "
        "custommsg TEXT, timestamp INTEGER, customurl TEXT, comment TEXT, cel_expr TEXT, rule_id INTEGER DEFAULT 0)",
        "CREATE UNIQUE INDEX execution_rules_unique ON execution_rules (identifier, type)",
        "PRAGMA user_version = 16",
    )
    refused(db_path, "user_version 16")


def test_version_7_with_another_schema_refused(db_path: Path) -> None:
    make_db(db_path, "CREATE TABLE rules (id INTEGER, name TEXT)", "PRAGMA user_version = 7")
    refused(db_path, "columns")
    db_path.unlink()
    make_db(db_path, "CREATE TABLE other (x)", "PRAGMA user_version = 7")
    refused(db_path, "no 'rules' table")
    db_path.unlink()
    make_db(db_path, SANTA_SCHEMA_SQL[0], "PRAGMA user_version = 7")
    refused(db_path, "unique")


def test_old_version_with_another_schema_refused(db_path: Path) -> None:
    make_db(db_path, "CREATE TABLE rules (a, b)", "PRAGMA user_version = 3")
    refused(db_path, "user_version 3 but its 'rules' table has columns")


# --- migrating an older Santa database ---------------------------------------------------------


def test_migration_from_version_1(db_path: Path) -> None:
    make_db(
        db_path,
        "CREATE TABLE 'rules' ('shasum' TEXT NOT NULL, 'state' INTEGER NOT NULL, 'type' INTEGER NOT NULL, "
        "'custommsg' TEXT)",
        "CREATE UNIQUE INDEX rulesunique ON rules (shasum, type)",
        "CREATE VIEW binrules AS SELECT * FROM rules WHERE type=1",
        f"INSERT INTO rules VALUES ('{SHA.upper()}', 2, 1, 'old block')",  # old BINARY
        f"INSERT INTO rules VALUES ('{CERT}', 1, 2, NULL)",  # old CERTIFICATE
        "INSERT INTO rules VALUES ('eqhxz8m8av', 1, 3, NULL)",  # old TEAMID
        f"INSERT INTO rules VALUES ('{SIGNING}', 2, 4, NULL)",  # old SIGNINGID
        "PRAGMA user_version = 1",
    )
    with RuleStore(db_path) as store:
        assert not store.created_fresh
        assert store.rules() == [
            Rule(SHA, RuleType.BINARY, BLOCK, "old block"),
            Rule(SIGNING, RuleType.SIGNINGID, BLOCK),
            Rule(CERT, RuleType.CERTIFICATE, ALLOW),
            Rule(TEAM, RuleType.TEAMID, ALLOW),
        ]
        assert store.find(Identifiers(binary=SHA)) == Rule(SHA, RuleType.BINARY, BLOCK, "old block")
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 8
        assert db.execute("SELECT name FROM sqlite_master WHERE type='view'").fetchall() == []


def test_migration_from_version_6(db_path: Path) -> None:
    make_db(
        db_path,
        "CREATE TABLE 'rules' ('identifier' TEXT NOT NULL, 'state' INTEGER NOT NULL, 'type' INTEGER NOT NULL, "
        "'custommsg' TEXT, 'timestamp' INTEGER)",
        "CREATE UNIQUE INDEX rulesunique ON rules (identifier, type)",
        f"INSERT INTO rules VALUES ('{SHA}', 6, 1000, NULL, 12345)",
        "PRAGMA user_version = 6",
    )
    with RuleStore(db_path) as store:
        assert store.rules() == [Rule(SHA, RuleType.BINARY, TRANSITIVE, None, None, 12345)]


# --- adding, replacing, removing ---------------------------------------------------------------


def test_insert_or_replace(store: RuleStore) -> None:
    store.add_rules([binary(1, BLOCK, custom_msg="first")])
    store.add_rules([binary(1, ALLOW)])  # same (identifier, type): replaced, whatever the state
    assert store.rules() == [binary(1, ALLOW)]
    # The same identifier under another type is another rule.
    store.add_rules([Rule.create(sha(1), RuleType.CERTIFICATE, BLOCK)])
    assert len(store.rules()) == 2
    # Within a batch the later rule wins.
    store.add_rules([binary(2, ALLOW), binary(2, SILENT)])
    assert store.find(Identifiers(binary=sha(2))) == binary(2, SILENT)


def test_remove(store: RuleStore) -> None:
    store.add_rules([binary(1), binary(2), Rule.create(sha(1), RuleType.CERTIFICATE, BLOCK)])
    store.add_rules([binary(1, REMOVE), binary(99, REMOVE)])  # removing an absent rule is fine
    assert store.rules() == [binary(2), Rule.create(sha(1), RuleType.CERTIFICATE, BLOCK)]
    # REMOVE matches on (identifier, type) only, and is normalised like any identifier.
    store.add_rules([Rule.create(sha(2).upper(), RuleType.BINARY, REMOVE)])
    assert store.rules(RuleType.BINARY) == []


def test_rules_are_normalised_on_the_way_in(store: RuleStore) -> None:
    store.add_rules([Rule(SHA.upper(), RuleType.BINARY, ALLOW, "", ""), Rule("eqhxz8m8av", RuleType.TEAMID, BLOCK)])
    assert store.rules() == [Rule(SHA, RuleType.BINARY, ALLOW), Rule(TEAM, RuleType.TEAMID, BLOCK)]


def test_add_returns_batch_size_and_stores_everything(store: RuleStore, db_path: Path) -> None:
    assert store.add_rules([binary(1, custom_url="https://u"), binary(2, TRANSITIVE, timestamp=77)]) == 2
    assert rows(db_path) == [
        (sha(1), 1, 1000, None, 0, "https://u"),
        (sha(2), 6, 1000, None, 77, None),
    ]


def test_bad_batch_rolls_back_everything(store: RuleStore, db_path: Path) -> None:
    store.add_rules([binary(1), binary(2, BLOCK), binary(3, TRANSITIVE, timestamp=5)])
    before = rows(db_path)
    bad = Rule("not-a-hash", RuleType.BINARY, BLOCK)
    for cleanup in Cleanup:
        with pytest.raises(RuleError, match=r"invalid entry #4 .*not-a-hash.*valid SHA-256"):
            store.add_rules([binary(4), binary(1, REMOVE), binary(2, ALLOW), bad, binary(5)], cleanup=cleanup)
        assert rows(db_path) == before
    with pytest.raises(RuleError, match="invalid entry #2"):
        store.add_rules([binary(6), "BINARY"])  # type: ignore[list-item]
    with pytest.raises(RuleError):
        store.replace_all([binary(7), bad])
    assert rows(db_path) == before


@pytest.mark.parametrize(("rule_type", "bad", "message"), BAD_IDENTIFIERS)
def test_bad_identifier_stores_nothing(
    store: RuleStore, db_path: Path, rule_type: RuleType, bad: str, message: str
) -> None:
    store.add_rules([binary(1)])
    with pytest.raises(RuleError, match=re.escape(message)):
        store.add_rules([binary(2), Rule(bad, rule_type, BLOCK)])
    assert rows(db_path) == [(sha(1), 1, 1000, None, 0, None)]


def test_empty_batch(store: RuleStore, db_path: Path) -> None:
    store.add_rules([binary(1), binary(2, TRANSITIVE)])
    before = rows(db_path)
    for cleanup in Cleanup:
        with pytest.raises(RuleError, match=r"^Empty rule array$"):
            store.add_rules([], cleanup=cleanup)
    with pytest.raises(RuleError, match="Empty rule array"):
        store.replace_all([])
    assert rows(db_path) == before


def test_replace_all(store: RuleStore) -> None:
    store.add_rules([binary(1), binary(2, TRANSITIVE, timestamp=5), binary(3, BLOCK)])
    store.replace_all([binary(4)], keep_transitive=True)  # a CLEAN sync
    assert store.rules() == [binary(2, TRANSITIVE, timestamp=5), binary(4)]
    store.replace_all([binary(5)])  # a CLEAN_ALL sync
    assert store.rules() == [binary(5)]


# --- finding ------------------------------------------------------------------------------------


def test_find_takes_the_highest_precedence_row_in_one_query(store: RuleStore) -> None:
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    for size in range(1, 6):
        for types in itertools.combinations(IDS, size):
            store.replace_all([Rule.create(IDS[t], t, BLOCK if t == types[-1] else ALLOW) for t in types])
            statements.clear()
            found = store.find(EVERYTHING)
            assert found is not None and found.type is min(types)
            assert [s for s in statements if s.startswith("SELECT")] == [statements[0]]
            assert len(statements) == 1
    store._db.set_trace_callback(None)


def test_find_matches_identifier_and_type_exactly(store: RuleStore) -> None:
    store.add_rules([Rule.create(SHA, RuleType.CERTIFICATE, BLOCK)])
    assert store.find(Identifiers(binary=SHA)) is None  # same string, other type
    assert store.find(Identifiers(certificate=SHA)) == Rule(SHA, RuleType.CERTIFICATE, BLOCK)
    assert store.find(Identifiers()) is None
    assert store.find(Identifiers(certificate=SHA.upper())) is None  # lookups are not normalised


def test_unknown_row_values_are_reported(store: RuleStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as db:
        db.execute("INSERT INTO rules VALUES (?, 11, 1000, NULL, 0, NULL, NULL)", (SHA,))  # [N]'s Seatbelt
    with pytest.raises(StoreError, match="state 11"):
        store.find(Identifiers(binary=SHA))


# --- listing, counting, cleaning ---------------------------------------------------------------


def test_rules_listing(store: RuleStore) -> None:
    everything = [Rule.create(IDS[t], t, ALLOW) for t in reversed(list(IDS))]
    store.add_rules(everything)
    assert [r.type for r in store.rules()] == sorted(IDS)
    assert store.rules(RuleType.TEAMID) == [Rule(TEAM, RuleType.TEAMID, ALLOW)]
    assert store.rules(RuleType.BINARY) == [Rule(SHA, RuleType.BINARY, ALLOW)]


def test_counts(store: RuleStore) -> None:
    assert store.counts() == RuleCounts()
    store.add_rules(
        [
            binary(1),
            binary(2, COMPILER),
            binary(3, TRANSITIVE),
            binary(4, SILENT),
            Rule.create(CERT, RuleType.CERTIFICATE, BLOCK),
            Rule.create(TEAM, RuleType.TEAMID, ALLOW),
            Rule.create(SIGNING, RuleType.SIGNINGID, COMPILER),
            Rule.create(CDHASH, RuleType.CDHASH, COMPILER),
            Rule.create("A" * 40, RuleType.CDHASH, BLOCK),
        ]
    )
    assert store.counts() == RuleCounts(
        binary=4, certificate=1, compiler=3, transitive=1, teamid=1, signingid=1, cdhash=2, total=9
    )


def test_clear(store: RuleStore) -> None:
    store.add_rules([binary(1), binary(2, TRANSITIVE), binary(3, BLOCK)])
    assert store.clear() == 2  # santactl rule --clean keeps transitive rules
    assert [r.state for r in store.rules()] == [TRANSITIVE]
    assert store.clear(include_transitive=True) == 1
    assert store.rules() == []


# --- import and export ------------------------------------------------------------------------


def test_import_and_export(store: RuleStore, tmp_path: Path) -> None:
    document = {
        "rules": [
            {"identifier": SHA, "policy": "BLOCKLIST", "rule_type": "BINARY", "custom_msg": "/bin/ls block for demo"},
            {"identifier": TEAM.lower(), "policy": "ALLOWLIST", "rule_type": "TEAMID", "custom_url": ""},
            {"Identifier": SIGNING, "Policy": "allowlist_compiler", "Rule_Type": "signingid"},
        ]
    }
    source = tmp_path / "in.json"
    source.write_text(json.dumps(document))
    assert store.import_json(source) == 3
    store.add_rules([binary(7, TRANSITIVE)])
    exported = store.export_json(tmp_path / "out.json")
    assert exported == {
        "rules": [
            {
                "identifier": SHA,
                "policy": "BLOCKLIST",
                "rule_type": "BINARY",
                "custom_msg": "/bin/ls block for demo",
                "custom_url": "",
            },
            {
                "identifier": SIGNING,
                "policy": "ALLOWLIST_COMPILER",
                "rule_type": "SIGNINGID",
                "custom_msg": "",
                "custom_url": "",
            },
            {"identifier": TEAM, "policy": "ALLOWLIST", "rule_type": "TEAMID", "custom_msg": "", "custom_url": ""},
        ]
    }
    assert json.loads((tmp_path / "out.json").read_text()) == exported
    assert (tmp_path / "out.json").read_text().startswith('{\n  "rules": [\n')
    # The export imports back to the same (non-transitive) rules.
    with RuleStore(tmp_path / "copy.db") as copy:
        copy.import_json(tmp_path / "out.json")
        assert copy.rules() == [r for r in store.rules() if r.state is not TRANSITIVE]
        assert copy.import_json(exported) == 3  # a parsed document works as well


def test_import_clean_and_clean_all(store: RuleStore) -> None:
    doc = {"rules": [binary(10).to_wire()]}
    store.add_rules([binary(1), binary(2, TRANSITIVE)])
    store.import_json(doc)
    assert len(store.rules()) == 3
    store.import_json(doc, clean=True)
    assert [r.identifier for r in store.rules()] == [sha(2), sha(10)]
    store.import_json(doc, clean=True, clean_all=True)  # --clean-all wins
    assert store.rules() == [binary(10)]


def test_import_errors_change_nothing(store: RuleStore, db_path: Path, tmp_path: Path) -> None:
    store.add_rules([binary(1), binary(2, TRANSITIVE)])
    before = rows(db_path)
    bad = {"rules": [binary(3).to_wire(), {"identifier": SHA, "policy": "ALLOWLIST", "rule_type": "EXECUTABLE"}]}
    with pytest.raises(RuleError, match=r"Invalid rule #2: .*'EXECUTABLE'"):
        store.import_json(bad, clean_all=True)
    with pytest.raises(RuleError, match="Empty rule array"):
        store.import_json({"rules": []}, clean_all=True)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(RuleError, match=r"Failed to parse .*garbage\.json"):
        store.import_json(garbage, clean_all=True)
    garbage.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(RuleError, match="Failed to parse"):
        store.import_json(garbage)
    with pytest.raises(FileNotFoundError):
        store.import_json(tmp_path / "missing.json")
    with pytest.raises(RuleError, match="rules"):
        store.import_json({"rulez": []})
    assert rows(db_path) == before


# --- sharing the file ---------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from santacore.santad.rule_store import RuleStore
    from santacore.santad.rules import Identifiers, Rule, RuleState, RuleType
    path, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with RuleStore(path) as store:
        print(int(store.created_fresh), flush=True)
        sys.stdin.readline()  # start together
        for n in range(first, first + count):
            store.add_rules([Rule.create(f"{n:064x}", RuleType.BINARY, RuleState.ALLOW)])
            assert store.find(Identifiers(binary=f"{n:064x}")) is not None
    """
)


def test_two_processes_writing_lose_nothing(db_path: Path) -> None:
    count = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db_path), str(first), str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for first in (0, 10_000, 20_000)
    ]
    fresh = []
    for p in procs:
        assert p.stdout is not None
        fresh.append(int(p.stdout.readline()))
    assert sorted(fresh) == [0, 0, 1]  # three processes racing to create it: exactly one did
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    with RuleStore(db_path) as reader:  # a reader alongside never fails or blocks the writers
        while any(p.poll() is None for p in procs):
            reader.counts()
    for p in procs:
        p.communicate(timeout=120)  # closes the pipes
        assert p.returncode == 0
    with RuleStore(db_path) as store:
        assert store.counts().binary == 3 * count
        identifiers = {r.identifier for r in store.rules()}
    assert identifiers == {sha(n) for first in (0, 10_000, 20_000) for n in range(first, first + count)}


def test_one_store_shared_by_threads(store: RuleStore) -> None:
    def write(first: int) -> None:
        for n in range(first, first + 50):
            store.add_rules([binary(n)])
            store.find(Identifiers(binary=sha(n)))

    threads = [threading.Thread(target=write, args=(first,)) for first in (0, 1000, 2000, 3000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.counts().binary == 200
