"""The rules hash (addendum §4): XXH3-128 over the execution rules in storage order, with the addendum's vectors.

The `hello` / `helloworld` vectors are northpolesec/santa's (`SNTXxhashTest.mm`); the empty-table value is the xxHash
reference's; the four-rule value is Santa's `SNTRuleTableTest.mm -testHashOfHashes`, which the addendum marks "not
re-computed". `test_four_rule_vector_recomputed_by_hand` re-computes it here from bytes built by hand (identifiers from
that test's `_exampleCertRule`, `_exampleBinaryRule`, `_exampleTeamIDRule`, `_exampleSigningIDRuleIsPlatform:NO`) with
the `xxhash` package directly: it gives exactly the addendum's `a6cb5171bbb8895820d61e395592b293`, so the vector,
the byte layout (identifier, then state and type as 4-byte little-endian ints, nothing between rows) and the
canonical big-endian hex all agree."""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import xxhash

from santacore.cli import main
from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import Rule, RuleState, RuleType
from santacore.santad.rules_hash import HashedRow, rules_hash

EMPTY = "99aa06d3014798d86001c324468d497f"
FOUR_RULES = "a6cb5171bbb8895820d61e395592b293"
CERT = "7ae80b9ab38af0c63a9a81765f434d9a7cd8f720eb6037ef303de39d779bc258"
BINARY = "b7c1e3fd640c5f211c89b02c2c6122f78ce322aa5c56eb0bb54bc422a8f8b670"
TEAM = "ABCDEFGHIJ"
SIGNING = "ABCDEFGHIJ:signingID"
TRANSITIVE = "1111e3fd640c5f211c89b02c2c6122f78ce322aa5c56eb0bb54bc422a8f8b111"


def four_rules() -> list[Rule]:
    """Santa's example rules, in `-testHashOfHashes`' insertion order."""
    return [
        Rule.create(CERT, RuleType.CERTIFICATE, RuleState.ALLOW),
        Rule.create(BINARY, RuleType.BINARY, RuleState.BLOCK),
        Rule.create(TEAM, RuleType.TEAMID, RuleState.BLOCK),
        Rule.create(SIGNING, RuleType.SIGNINGID, RuleState.BLOCK),
    ]


def test_xxh3_128_vectors_of_santa() -> None:
    # Santa's Xxhash128 test: one Update per string.
    assert rules_hash([]) == EMPTY
    assert xxhash.xxh3_128(b"hello").hexdigest() == "b5e9c1ad071b3e7fc779cfaa5e523818"
    assert xxhash.xxh3_128(b"helloworld").hexdigest() == "ddf7ff67be2b60f50f178df33653476f"
    # Streaming is the hash of the concatenation: "hello" then "world" is "helloworld".
    streamed = xxhash.xxh3_128()
    streamed.update(b"hello")
    streamed.update(b"world")
    assert streamed.hexdigest() == "ddf7ff67be2b60f50f178df33653476f"


def test_four_rule_vector_recomputed_by_hand() -> None:
    by_hand = (
        CERT.encode() + (1).to_bytes(4, "little") + (3000).to_bytes(4, "little")
        + BINARY.encode() + (2).to_bytes(4, "little") + (1000).to_bytes(4, "little")
        + TEAM.encode() + (2).to_bytes(4, "little") + (4000).to_bytes(4, "little")
        + SIGNING.encode() + (2).to_bytes(4, "little") + (2000).to_bytes(4, "little")
    )  # fmt: skip
    assert xxhash.xxh3_128(by_hand).hexdigest() == FOUR_RULES
    # The canonical form is the 128-bit value big-endian: high 64 bits first.
    assert xxhash.xxh3_128(by_hand).intdigest().to_bytes(16, "big").hex() == FOUR_RULES
    rows = [HashedRow(r.identifier, None, None, r.state.value, r.type.value) for r in four_rules()]
    assert rules_hash(rows) == FOUR_RULES


def test_cel_and_seatbelt_bytes_come_between_identifier_and_ints() -> None:
    expected = xxhash.xxh3_128(b"X" + b"true" + b"(version 1)" + struct.pack("<ii", 9, 1000)).hexdigest()
    assert rules_hash([("X", "true", "(version 1)", 9, 1000)]) == expected
    # NULL and "" both add no bytes.
    assert rules_hash([("X", None, "", 2, 1000)]) == xxhash.xxh3_128(b"X" + struct.pack("<ii", 2, 1000)).hexdigest()


def test_transitive_rows_are_left_out() -> None:
    rows = [HashedRow(r.identifier, None, None, r.state.value, r.type.value) for r in four_rules()]
    with_transitive = [*rows[:2], HashedRow(TRANSITIVE, None, None, 6, 1000), *rows[2:]]
    assert rules_hash(with_transitive) == FOUR_RULES


# --- rules.db ------------------------------------------------------------------------------------


def test_empty_store_hashes_to_the_empty_vector(tmp_path: Path) -> None:
    with RuleStore(tmp_path / "rules.db") as store:
        assert store.rules_hash() == EMPTY


def test_store_in_santas_insertion_order_gives_santas_vector(tmp_path: Path) -> None:
    with RuleStore(tmp_path / "rules.db") as store:
        store.add_rules(four_rules())
        assert store.rules_hash() == FOUR_RULES
        # A transitive rule (made locally) changes nothing.
        store.add_rules([Rule.create(TRANSITIVE, RuleType.BINARY, RuleState.ALLOW_TRANSITIVE)])
        assert store.rules_hash() == FOUR_RULES


def test_one_rule_per_batch_is_the_same_order(tmp_path: Path) -> None:
    with RuleStore(tmp_path / "rules.db") as store:
        for rule in four_rules():
            store.add_rules([rule])
        assert store.rules_hash() == FOUR_RULES


def test_storage_order_not_sorted_order(tmp_path: Path) -> None:
    # Inserted in another order, the same rules hash differently: the hash follows the table, not a sort.
    with RuleStore(tmp_path / "rules.db") as store:
        store.add_rules(list(reversed(four_rules())))
        reversed_hash = store.rules_hash()
    rows = [HashedRow(r.identifier, None, None, r.state.value, r.type.value) for r in reversed(four_rules())]
    assert reversed_hash == rules_hash(rows) != FOUR_RULES


def test_a_replaced_rule_moves_to_the_end(tmp_path: Path) -> None:
    # INSERT OR REPLACE deletes the old row and inserts anew: re-adding the certificate rule puts it last,
    # even with the same state, as in Santa's table.
    rules = four_rules()
    with RuleStore(tmp_path / "rules.db") as store:
        store.add_rules(rules)
        store.add_rules([rules[0]])
        moved = [*rules[1:], rules[0]]
        expected = rules_hash(HashedRow(r.identifier, None, None, r.state.value, r.type.value) for r in moved)
        assert store.rules_hash() == expected != FOUR_RULES
        # Removing the other three and adding them again puts them behind the certificate: Santa's order again.
        store.add_rules([Rule.create(r.identifier, r.type, RuleState.REMOVE) for r in rules[1:]])
        store.add_rules(rules[1:])
        assert store.rules_hash() == FOUR_RULES


def test_staged_download_keeps_the_order_of_one_by_one_application(tmp_path: Path) -> None:
    # A sync's staged apply (last entry per key wins, in staged order) must leave the table in the order that
    # applying the rules one at a time would: [A, B, A'] → B, A'.
    rules = four_rules()
    cert_again = Rule.create(CERT, RuleType.CERTIFICATE, RuleState.BLOCK)
    with RuleStore(tmp_path / "one.db") as one:
        for rule in [*rules, cert_again]:
            one.add_rules([rule])
        expected = one.rules_hash()
    with RuleStore(tmp_path / "staged.db") as store:
        with store.staging() as staging:
            staging.add([*rules, cert_again])
            staging.apply()
        assert store.rules_hash() == expected


def test_identifiers_are_hashed_normalised(tmp_path: Path) -> None:
    # Identifier normalisation (addendum §4): hex lower-case, Team ID and the signing ID's team upper-case.
    with RuleStore(tmp_path / "rules.db") as store:
        store.add_rules(
            [
                Rule.create(CERT.upper(), RuleType.CERTIFICATE, RuleState.ALLOW),
                Rule.create(BINARY.upper(), RuleType.BINARY, RuleState.BLOCK),
                Rule.create(TEAM.lower(), RuleType.TEAMID, RuleState.BLOCK),
                Rule.create("abcdefghij:signingID", RuleType.SIGNINGID, RuleState.BLOCK),
            ]
        )
        assert store.rules_hash() == FOUR_RULES


def test_rows_written_by_another_program_hash_in_rowid_order(tmp_path: Path) -> None:
    path = tmp_path / "rules.db"
    RuleStore(path).close()
    with sqlite3.connect(path) as db:
        for r in four_rules():
            db.execute("INSERT INTO rules (identifier, state, type) VALUES (?, ?, ?)", (r.identifier, r.state, r.type))
    with RuleStore(path, read_only=True) as store:
        assert store.rules_hash() == FOUR_RULES


# --- santacore rule --hash -----------------------------------------------------------------------


def test_rule_hash_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "santacore.toml"
    config.write_text(f'StateDirectory = "{tmp_path / "state"}"\n', encoding="utf-8")
    assert main(["rule", "--config", str(config), "--hash"]) == 0
    assert capsys.readouterr().out == EMPTY + "\n"
    with RuleStore(tmp_path / "state" / "rules.db") as store:
        store.add_rules(four_rules())
    assert main(["rule", "--config", str(config), "--hash"]) == 0
    assert capsys.readouterr().out == FOUR_RULES + "\n"


def test_rule_hash_goes_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["rule", "--hash", "--list"])
    assert e.value.code == 2
    assert "--hash prints the rules hash alone" in capsys.readouterr().err


def test_importing_the_store_does_not_load_xxhash() -> None:
    probe = "import santacore.santad.rule_store, santacore.commands.rule, sys; print('xxhash' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]
