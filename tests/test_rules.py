"""santacore.santad.rules: identifiers, the wire form, and santad's decision (spec §8.1–§8.6)."""

from __future__ import annotations

import dataclasses
import itertools
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from santacore.config.settings import Config, ConfigError
from santacore.identity.fileinfo import file_info
from santacore.santad.decisions import ClientMode, Decision
from santacore.santad.policy import (
    DecisionResult,
    PolicySettings,
    decide,
    decide_for_file,
    find_rule,
    would_block_in_lockdown,
)
from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import (
    APPLE_EPOCH,
    EVENT_STATE_ALLOW_COMPILER,
    EVENT_STATE_ALLOW_TRANSITIVE,
    NO_RULE,
    Identifiers,
    Rule,
    RuleError,
    RuleState,
    RuleType,
    apple_timestamp,
    check_message,
    identifier_for_path,
    modify_message,
    normalise_identifier,
    rules_from_json,
    rules_to_json,
)
from santacore.santad.sessions import CS_DEV_CODE, CS_HARD, CS_KILL, CS_SIGNED, CS_VALID

SHA = "4c8c4bb8e7dd6ed5e0bda9ca54cc9f3b1eda07d1cd5fbd33e4e1d58a3cbbb6c3"
CERT = "e2b19b7a6a0b0e0a0b5b3f3f8d0ab2a7e1b0c1d2e3f405162738495a6b7c8d9e"
CDHASH = "dedebf2eac732d873008b17b3e44a56599dd614b"
TEAM = "EQHXZ8M8AV"
SIGNING = f"{TEAM}:com.example.tool"

BINARYRULES = "santa/northpolesec/santad/testdata/binaryrules"
# What an ES exec event carries in SantadTest.mm: `CS_SIGNED | CS_VALID | CS_HARD | CS_KILL`.
SANTAD_TEST_FLAGS = CS_SIGNED | CS_VALID | CS_HARD | CS_KILL

STORABLE = (
    RuleState.ALLOW,
    RuleState.BLOCK,
    RuleState.SILENT_BLOCK,
    RuleState.ALLOW_COMPILER,
    RuleState.ALLOW_TRANSITIVE,
)
WIRE_STATES = [s for s in RuleState if s not in (RuleState.ALLOW_TRANSITIVE, RuleState.CEL)]  # CEL: its own tests
PRECEDENCE = (RuleType.CDHASH, RuleType.BINARY, RuleType.SIGNINGID, RuleType.CERTIFICATE, RuleType.TEAMID)
IDENTIFIER = {
    RuleType.CDHASH: CDHASH,
    RuleType.BINARY: SHA,
    RuleType.SIGNINGID: SIGNING,
    RuleType.CERTIFICATE: CERT,
    RuleType.TEAMID: TEAM,
}
EVERYTHING = Identifiers(cdhash=CDHASH, binary=SHA, signing_id=SIGNING, certificate=CERT, team_id=TEAM)


class ListLookup:
    """A stand-in for rules.db: the highest-precedence rule whose (identifier, type) matches."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules = list(rules)
        self.calls = 0

    def find(self, identifiers: Identifiers) -> Rule | None:
        self.calls += 1
        wanted = set(identifiers.candidates())
        matches = [r for r in self.rules if (r.type, r.identifier) in wanted]
        return min(matches, key=lambda r: r.type.value, default=None)


def policy(mode: ClientMode | int = ClientMode.LOCKDOWN, **options: Any) -> PolicySettings:
    """Settings with every protection off unless given (page-zero protection is on in Santa's defaults);
    path regexes may be given as text."""
    for key in ("allowed_path_regex", "blocked_path_regex"):
        if isinstance(options.get(key), str):
            options[key] = re.compile(options[key])
    options["static_rules"] = tuple(options.get("static_rules", ()))
    return PolicySettings(mode=mode, **{"page_zero_protection": False, **options})


def run(
    rules: Iterable[Rule] = (),
    identifiers: Identifiers = EVERYTHING,
    *,
    mode: ClientMode | int = ClientMode.LOCKDOWN,
    path: str | None = "/Applications/Tool.app/Contents/MacOS/tool",
    is_macho: bool = True,
    missing_pagezero: bool = False,
    bad_signature: bool = False,
    **options: Any,
) -> DecisionResult:
    return decide(
        identifiers,
        ListLookup(rules),
        policy(mode, **options),
        path=path,
        is_macho=is_macho,
        missing_pagezero=missing_pagezero,
        bad_signature=bad_signature,
    )


def rule(rule_type: RuleType, state: RuleState, **kw: Any) -> Rule:
    return Rule.create(IDENTIFIER[rule_type], rule_type, state, **kw)


# --- enums and the wire ------------------------------------------------------------------------


def test_rule_types() -> None:
    assert [(t.name, t.value, t.wire, t.proto_number) for t in RuleType] == [
        ("CDHASH", 500, "CDHASH", 5),
        ("BINARY", 1000, "BINARY", 1),
        ("SIGNINGID", 2000, "SIGNINGID", 4),
        ("CERTIFICATE", 3000, "CERTIFICATE", 2),
        ("TEAMID", 4000, "TEAMID", 3),
    ]
    assert [t.kind for t in RuleType] == ["CDHash", "SHA-256", "Signing ID", "Certificate SHA-256", "Team ID"]
    assert [t.label for t in RuleType] == ["CDHash", "Binary", "SigningID", "Certificate", "TeamID"]
    assert RuleType.from_wire("teamid") is RuleType.TEAMID
    assert RuleType.from_wire(4) is RuleType.SIGNINGID


def test_rule_states() -> None:
    assert [(s.name, s.value) for s in RuleState] == [
        ("ALLOW", 1),
        ("BLOCK", 2),
        ("SILENT_BLOCK", 3),
        ("REMOVE", 4),
        ("ALLOW_COMPILER", 5),
        ("ALLOW_TRANSITIVE", 6),
        ("CEL", 9),
    ]
    policies = {s: s.policy for s in RuleState if s is not RuleState.ALLOW_TRANSITIVE}
    assert policies == {
        RuleState.ALLOW: "ALLOWLIST",
        RuleState.BLOCK: "BLOCKLIST",
        RuleState.SILENT_BLOCK: "SILENT_BLOCKLIST",
        RuleState.REMOVE: "REMOVE",
        RuleState.ALLOW_COMPILER: "ALLOWLIST_COMPILER",
        RuleState.CEL: "CEL",
    }
    assert [RuleState.from_policy(p).proto_number for p in policies.values()] == [1, 3, 4, 5, 2, 6]
    for policy, state in policies.items():
        assert RuleState.from_policy(state) is policy
        assert RuleState.from_policy(state.lower()) is policy
    with pytest.raises(RuleError, match="no policy string"):
        _ = RuleState.ALLOW_TRANSITIVE.policy


@pytest.mark.parametrize(
    ("alias", "state"),
    [
        ("WHITELIST", RuleState.ALLOW),
        ("WHITELIST_COMPILER", RuleState.ALLOW_COMPILER),
        ("BLACKLIST", RuleState.BLOCK),
        ("SILENT_BLACKLIST", RuleState.SILENT_BLOCK),
        (1, RuleState.ALLOW),
        (2, RuleState.ALLOW_COMPILER),
        (5, RuleState.REMOVE),
        (6, RuleState.CEL),
        ("cel", RuleState.CEL),
    ],
)
def test_policy_aliases_and_numbers(alias: str | int, state: RuleState) -> None:
    assert RuleState.from_policy(alias) is state


@pytest.mark.parametrize(
    "value", ["ALLOW", "CELV2", "SILENT_GUI_BLOCKLIST", "ALLOWLIST_LOCAL_BINARY", "", None, 0, 7, True, 1.0]
)
def test_unknown_policy_is_named(value: object) -> None:
    with pytest.raises(RuleError, match=re.escape(repr(value))):
        RuleState.from_policy(value)


@pytest.mark.parametrize("value", ["SHA256", "PATH", "", None, 0, 6, True, "BINARY "])
def test_unknown_rule_type_is_named(value: object) -> None:
    with pytest.raises(RuleError, match=re.escape(repr(value))):
        RuleType.from_wire(value)


# --- identifiers: normalisation and validation ([N]'s strict rule) -----------------------------


@pytest.mark.parametrize(
    ("rule_type", "given", "stored"),
    [
        (RuleType.BINARY, SHA.upper(), SHA),
        (RuleType.BINARY, SHA, SHA),
        (RuleType.CERTIFICATE, "ABCDEF" + CERT[6:], "abcdef" + CERT[6:]),
        (RuleType.CDHASH, CDHASH.upper(), CDHASH),
        (RuleType.TEAMID, "eqhxz8m8av", TEAM),
        (RuleType.TEAMID, "EqHxZ8m8Av", TEAM),
        (RuleType.SIGNINGID, "eqhxz8m8av:com.Example.Tool", "EQHXZ8M8AV:com.Example.Tool"),
        (RuleType.SIGNINGID, "platform:com.apple.ls", "platform:com.apple.ls"),
        (RuleType.SIGNINGID, "PLATFORM:com.apple.ls", "platform:com.apple.ls"),
        (RuleType.SIGNINGID, "Platform:com.apple.ls", "platform:com.apple.ls"),
        (RuleType.SIGNINGID, f"{TEAM}:a:b::c", f"{TEAM}:a:b::c"),
        (RuleType.SIGNINGID, f"{TEAM}: spaced id ", f"{TEAM}: spaced id "),
        (RuleType.SIGNINGID, f"{TEAM}:é", f"{TEAM}:é"),
    ],
)
def test_normalisation(rule_type: RuleType, given: str, stored: str) -> None:
    assert normalise_identifier(rule_type, given) == stored
    assert Rule.create(given, rule_type, RuleState.ALLOW).identifier == stored


SHA_MSG = "BINARY or CERTIFICATE rules require a valid SHA-256"
CDHASH_MSG = "CDHASH rules require a valid hex string of length 40"
TEAM_MSG = "TEAMID rules require a Team ID of exactly 10 characters"
SIGNING_MSG = "SIGNINGID rules require TEAMID:signing.id or platform:signing.id"

BAD_IDENTIFIERS: list[tuple[RuleType, str, str]] = [
    *[
        (t, bad, SHA_MSG)
        for t in (RuleType.BINARY, RuleType.CERTIFICATE)
        for bad in (
            "",
            SHA[:63],
            SHA + "0",
            SHA[:63] + "g",
            " " + SHA[:63],
            SHA + " ",
            " " + SHA,
            SHA + "\n",
            "\t" + SHA,
            "0x" + SHA[:62],
            SHA[:63] + "٠",  # an Arabic-Indic digit: a digit, but not hex
            SHA[:63] + "Ａ",  # a fullwidth A
            SHA[:32] + "-" + SHA[33:],
            SHA[:40],  # a cdhash is not a SHA-256
            SHA[:63] + "\x00",
        )
    ],
    *[
        (RuleType.CDHASH, bad, CDHASH_MSG)
        for bad in ("", CDHASH[:39], CDHASH + "0", " " + CDHASH[1:], CDHASH[:39] + "z", SHA, CDHASH + " ")
    ],
    *[
        (RuleType.TEAMID, bad, TEAM_MSG)
        for bad in (
            "",
            TEAM[:9],
            TEAM + "A",
            " " + TEAM[1:],
            TEAM[:9] + " ",
            TEAM + " ",
            "EQHXZ-M8AV",
            "EQHXZ_M8AV",
            "EQHXZ8M8AÉ",
            "EQHXZ8M8A٠",
            SIGNING,
            "platform",
        )
    ],
    *[
        (RuleType.SIGNINGID, bad, SIGNING_MSG)
        for bad in (
            "",
            TEAM,
            "com.example.tool",
            f"{TEAM}:",
            ":com.example.tool",
            "platform:",
            "platfor:com.apple.ls",
            " platform:com.apple.ls",
            "platform :com.apple.ls",
            f"{TEAM[:9]}:com.example.tool",
            f"{TEAM}A:com.example.tool",
            f" {TEAM[1:]}:com.example.tool",
            "EQHXZ-M8AV:com.example.tool",
            f"{TEAM}:\ud800",
        )
    ],
]


@pytest.mark.parametrize(("rule_type", "bad", "message"), BAD_IDENTIFIERS)
def test_bad_identifier_rejected(rule_type: RuleType, bad: str, message: str) -> None:
    with pytest.raises(RuleError, match=re.escape(message)):
        Rule.create(bad, rule_type, RuleState.BLOCK)
    with pytest.raises(RuleError):
        Rule.from_wire({"identifier": bad, "policy": "BLOCKLIST", "rule_type": rule_type.wire})
    with pytest.raises(RuleError):
        Rule(bad, rule_type, RuleState.BLOCK).validated()


def test_bad_type_or_state_numbers() -> None:
    with pytest.raises(RuleError, match="invalid entry"):
        Rule.create(SHA, 1, RuleState.ALLOW)  # the pre-v5 BINARY number
    with pytest.raises(RuleError, match="invalid entry"):
        Rule.create(SHA, RuleType.BINARY, 0)
    with pytest.raises(RuleError, match="invalid entry"):
        Rule.create(SHA, RuleType.BINARY, 7)


def test_create_defaults() -> None:
    r = Rule.create(SHA, RuleType.BINARY, RuleState.BLOCK, custom_msg="", custom_url="")
    assert (r.custom_msg, r.custom_url, r.timestamp) == (None, None, 0)
    before = apple_timestamp()
    t = Rule.create(SHA, RuleType.BINARY, RuleState.ALLOW_TRANSITIVE)
    assert before <= t.timestamp <= apple_timestamp()
    assert apple_timestamp(APPLE_EPOCH + 5) == 5


# --- the wire form -----------------------------------------------------------------------------


@pytest.mark.parametrize(("rule_type", "state"), list(itertools.product(RuleType, WIRE_STATES)))
def test_wire_round_trip(rule_type: RuleType, state: RuleState) -> None:
    r = rule(rule_type, state, custom_msg="msg", custom_url="https://example.com/%file_sha%")
    wire = r.to_wire()
    assert wire == {
        "identifier": IDENTIFIER[rule_type],
        "policy": state.policy,
        "rule_type": rule_type.wire,
        "custom_msg": "msg",
        "custom_url": "https://example.com/%file_sha%",
    }
    assert Rule.from_wire(wire) == r


def test_wire_empty_messages_and_export_shape() -> None:
    r = rule(RuleType.TEAMID, RuleState.ALLOW)
    assert r.to_wire()["custom_msg"] == r.to_wire()["custom_url"] == ""
    assert Rule.from_wire(r.to_wire()) == r
    transitive = rule(RuleType.BINARY, RuleState.ALLOW_TRANSITIVE)
    with pytest.raises(RuleError):
        transitive.to_wire()
    assert rules_to_json([r, transitive]) == {"rules": [r.to_wire()]}


def test_from_wire_leniency() -> None:
    # santactl's import lower-cases keys and upper-cases the enum strings; `sha256` stands in.
    r = Rule.from_wire({"Identifier": SHA.upper(), "POLICY": "blocklist", "Rule_Type": "binary", "extra": 1})
    assert r == Rule.create(SHA, RuleType.BINARY, RuleState.BLOCK)
    assert Rule.from_wire({"identifier": "", "sha256": SHA, "policy": "ALLOWLIST", "rule_type": "BINARY"}).identifier
    assert Rule.from_wire({"sha256": SHA, "policy": 1, "rule_type": 1}).state is RuleState.ALLOW
    assert Rule.from_wire({"identifier": SHA, "policy": "REMOVE", "rule_type": "BINARY"}).state is RuleState.REMOVE
    odd = Rule.from_wire({"identifier": SHA, "policy": "ALLOWLIST", "rule_type": "BINARY", "custom_msg": 5})
    assert odd.custom_msg is None


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "invalid type list"),
        ("BINARY", "invalid type str"),
        ({"policy": "ALLOWLIST", "rule_type": "BINARY"}, "missing/invalid identifier"),
        ({"identifier": "", "policy": "ALLOWLIST", "rule_type": "BINARY"}, "missing/invalid identifier"),
        ({"identifier": 5, "policy": "ALLOWLIST", "rule_type": "BINARY"}, "missing/invalid identifier"),
        ({"identifier": SHA, "rule_type": "BINARY"}, "missing policy"),
        ({"identifier": SHA, "policy": "ALLOWLIST"}, "missing rule type"),
        ({"identifier": SHA, "policy": "PERMIT", "rule_type": "BINARY"}, "invalid policy 'PERMIT'"),
        ({"identifier": SHA, "policy": "ALLOWLIST", "rule_type": "HASH"}, "invalid rule type 'HASH'"),
        ({"identifier": SHA, "policy": "CEL", "rule_type": "BINARY"}, "CEL rules require a non-empty cel_expr"),
        ({"identifier": SHA, "policy": "CEL", "rule_type": "BINARY", "cel_expr": " "}, "non-empty cel_expr"),
        ({"identifier": SHA, "policy": "ALLOWLIST", "rule_type": "TEAMID"}, TEAM_MSG),
    ],
)
def test_from_wire_errors(obj: object, message: str) -> None:
    with pytest.raises(RuleError, match=re.escape(message)):
        Rule.from_wire(obj)


def test_rules_from_json_names_the_bad_entry() -> None:
    good = rule(RuleType.BINARY, RuleState.ALLOW).to_wire()
    assert rules_from_json({"rules": [good]}) == [rule(RuleType.BINARY, RuleState.ALLOW)]
    with pytest.raises(RuleError, match=r"Invalid rule #2: .*'FOO'"):
        rules_from_json({"rules": [good, {**good, "policy": "FOO"}]})
    bad_documents: list[object] = [[], {"rule": []}, {"rules": {}}]
    for bad in bad_documents:
        with pytest.raises(RuleError, match="rules"):
            rules_from_json(bad)


# --- identifiers used for a lookup ------------------------------------------------------------


def test_identifier_candidates() -> None:
    assert EVERYTHING.candidates() == [(t, IDENTIFIER[t]) for t in PRECEDENCE]
    assert Identifiers(team_id=TEAM, binary=SHA).candidates() == [(RuleType.BINARY, SHA), (RuleType.TEAMID, TEAM)]
    assert Identifiers(cdhash="").candidates() == []
    for t in RuleType:
        assert Identifiers.only(t, IDENTIFIER[t]).candidates() == [(t, IDENTIFIER[t])]


# --- §8.3/§8.4: precedence, every combination ---------------------------------------------------

# The map as the spec's table states it (§8.4), written out independently of the module; None = unusable.
# (CDHASH, AllowTransitive) follows google/santa's code, which lists it (the spec's table says invalid).
SPEC_MAP: dict[tuple[RuleType, RuleState], tuple[str | None, str | None]] = {
    # (type, state): (with transitive rules on, with them off)
    (RuleType.CDHASH, RuleState.ALLOW): ("ALLOW_CDHASH", "ALLOW_CDHASH"),
    (RuleType.CDHASH, RuleState.ALLOW_COMPILER): ("ALLOW_COMPILER", "ALLOW_CDHASH"),
    (RuleType.CDHASH, RuleState.BLOCK): ("BLOCK_CDHASH", "BLOCK_CDHASH"),
    (RuleType.CDHASH, RuleState.SILENT_BLOCK): ("BLOCK_CDHASH", "BLOCK_CDHASH"),
    (RuleType.CDHASH, RuleState.ALLOW_TRANSITIVE): ("ALLOW_TRANSITIVE", None),
    (RuleType.BINARY, RuleState.ALLOW): ("ALLOW_BINARY", "ALLOW_BINARY"),
    (RuleType.BINARY, RuleState.ALLOW_COMPILER): ("ALLOW_COMPILER", "ALLOW_BINARY"),
    (RuleType.BINARY, RuleState.BLOCK): ("BLOCK_BINARY", "BLOCK_BINARY"),
    (RuleType.BINARY, RuleState.SILENT_BLOCK): ("BLOCK_BINARY", "BLOCK_BINARY"),
    (RuleType.BINARY, RuleState.ALLOW_TRANSITIVE): ("ALLOW_TRANSITIVE", None),
    (RuleType.SIGNINGID, RuleState.ALLOW): ("ALLOW_SIGNINGID", "ALLOW_SIGNINGID"),
    (RuleType.SIGNINGID, RuleState.ALLOW_COMPILER): ("ALLOW_COMPILER", "ALLOW_SIGNINGID"),
    (RuleType.SIGNINGID, RuleState.BLOCK): ("BLOCK_SIGNINGID", "BLOCK_SIGNINGID"),
    (RuleType.SIGNINGID, RuleState.SILENT_BLOCK): ("BLOCK_SIGNINGID", "BLOCK_SIGNINGID"),
    (RuleType.SIGNINGID, RuleState.ALLOW_TRANSITIVE): (None, None),
    (RuleType.CERTIFICATE, RuleState.ALLOW): ("ALLOW_CERTIFICATE", "ALLOW_CERTIFICATE"),
    (RuleType.CERTIFICATE, RuleState.ALLOW_COMPILER): (None, None),
    (RuleType.CERTIFICATE, RuleState.BLOCK): ("BLOCK_CERTIFICATE", "BLOCK_CERTIFICATE"),
    (RuleType.CERTIFICATE, RuleState.SILENT_BLOCK): ("BLOCK_CERTIFICATE", "BLOCK_CERTIFICATE"),
    (RuleType.CERTIFICATE, RuleState.ALLOW_TRANSITIVE): (None, None),
    (RuleType.TEAMID, RuleState.ALLOW): ("ALLOW_TEAMID", "ALLOW_TEAMID"),
    (RuleType.TEAMID, RuleState.ALLOW_COMPILER): (None, None),
    (RuleType.TEAMID, RuleState.BLOCK): ("BLOCK_TEAMID", "BLOCK_TEAMID"),
    (RuleType.TEAMID, RuleState.SILENT_BLOCK): ("BLOCK_TEAMID", "BLOCK_TEAMID"),
    (RuleType.TEAMID, RuleState.ALLOW_TRANSITIVE): (None, None),
}
MODE_DEFAULT = {
    ClientMode.MONITOR: "ALLOW_UNKNOWN",
    ClientMode.LOCKDOWN: "BLOCK_UNKNOWN",
    ClientMode.STANDALONE: "BLOCK_UNKNOWN",
}
MODE_DEFAULT_DECISION = {k: Decision(v) for k, v in MODE_DEFAULT.items()}
ABSENT = None
COMBINATIONS = list(itertools.product((ABSENT, *STORABLE), repeat=len(PRECEDENCE)))


# Transitive rules are stamped "now" unless told; one fixed stamp keeps rules built twice equal
# even when a second ticks over between the two builds.
TRANSITIVE_STAMP = 800_000_000


def combination_rules(states: tuple[RuleState | None, ...]) -> list[Rule]:
    return [
        rule(
            t,
            s,
            custom_msg=f"{t.wire}/{s.name}",
            custom_url=f"u/{t.wire}",
            timestamp=TRANSITIVE_STAMP if s is RuleState.ALLOW_TRANSITIVE else None,
        )
        for t, s in zip(PRECEDENCE, states, strict=True)
        if s is not None
    ]


def expected(states: tuple[RuleState | None, ...], transitive: bool, mode: ClientMode) -> tuple[str, Rule | None]:
    present = combination_rules(states)
    if not present:
        return MODE_DEFAULT[mode], None
    top = present[0]  # only the highest-precedence row is ever fetched
    on, off = SPEC_MAP[(top.type, top.state)]
    name = on if transitive else off
    return (name, top) if name is not None else (MODE_DEFAULT[mode], None)


@pytest.mark.parametrize("mode", list(ClientMode))
@pytest.mark.parametrize("transitive", [False, True])
def test_precedence_every_combination(mode: ClientMode, transitive: bool) -> None:
    """All 6^5 ways the five rule types can be absent or in each storable state, for one file."""
    assert len(COMBINATIONS) == 7776
    for states in COMBINATIONS:
        result = run(combination_rules(states), mode=mode, transitive_rules=transitive)
        name, decider = expected(states, transitive, mode)
        assert (result.name, result.rule) == (name, decider), states
        assert result.silent == (decider is not None and decider.state is RuleState.SILENT_BLOCK)
        assert result.custom_msg == (decider.custom_msg if decider else None)
        assert result.custom_url == (decider.custom_url if decider else None)
        if name in ("ALLOW_COMPILER", "ALLOW_TRANSITIVE"):
            assert result.decision is Decision.UNKNOWN and result.allowed
        else:
            assert result.decision is Decision(name)
            assert result.event_state == Decision(name).event_state


@pytest.mark.parametrize("transitive", [False, True])
def test_precedence_against_the_store(tmp_path: Path, transitive: bool) -> None:
    """Every non-empty set of types, each state on top, the rest blocking: rules.db's one query agrees."""
    with RuleStore(tmp_path / "rules.db") as store:
        for size in range(1, 6):
            for types in itertools.combinations(PRECEDENCE, size):
                for top_state in STORABLE:
                    states = tuple(
                        (top_state if t == types[0] else RuleState.BLOCK) if t in types else None for t in PRECEDENCE
                    )
                    store.replace_all(combination_rules(states))
                    result = decide(
                        EVERYTHING,
                        store,
                        policy(ClientMode.MONITOR, transitive_rules=transitive),
                        path=None,
                        is_macho=True,
                        missing_pagezero=False,
                        bad_signature=False,
                    )
                    name, decider = expected(states, transitive, ClientMode.MONITOR)
                    assert (result.name, result.rule) == (name, decider), states


def test_unusable_top_rule_suppresses_lower_rules() -> None:
    # A certificate compiler rule is not in the map: santad treats it as no match and does not go on
    # to the Team ID block rule below it, nor to the launchd-certificate fallback.
    rules = [rule(RuleType.CERTIFICATE, RuleState.ALLOW_COMPILER), rule(RuleType.TEAMID, RuleState.BLOCK)]
    for mode, name in MODE_DEFAULT.items():
        result = run(rules, mode=mode, launchd_certificate=CERT)
        assert (result.name, result.rule, result.custom_msg) == (name, None, None)
        assert "rule ignored" in result.explanation
    # ... but the later steps still run: bad-signature protection, scope.
    assert run(rules, bad_signature=True, bad_signature_protection=True).decision is Decision.BLOCK_CERTIFICATE
    assert run(rules, is_macho=False).decision is Decision.ALLOW_SCOPE


def test_transitive_rule_with_transitive_rules_off_is_no_match() -> None:
    rules = [rule(RuleType.BINARY, RuleState.ALLOW_TRANSITIVE), rule(RuleType.SIGNINGID, RuleState.BLOCK)]
    assert run(rules, transitive_rules=False).decision is Decision.BLOCK_UNKNOWN
    assert run(rules, transitive_rules=False, mode=ClientMode.MONITOR).decision is Decision.ALLOW_UNKNOWN
    on = run(rules, transitive_rules=True)
    assert (on.decision, on.name, on.event_state, on.allowed) == (
        Decision.UNKNOWN,
        "ALLOW_TRANSITIVE",
        EVENT_STATE_ALLOW_TRANSITIVE,
        True,
    )


def test_compiler_rules() -> None:
    for t in (RuleType.CDHASH, RuleType.BINARY, RuleType.SIGNINGID):
        on = run([rule(t, RuleState.ALLOW_COMPILER)], transitive_rules=True)
        assert (on.name, on.event_state, on.decision, on.blocked) == (
            "ALLOW_COMPILER",
            EVENT_STATE_ALLOW_COMPILER,
            Decision.UNKNOWN,
            False,
        )
        off = run([rule(t, RuleState.ALLOW_COMPILER)], transitive_rules=False)
        assert off.decision is Decision(f"ALLOW_{t.wire}")


def test_one_lookup_per_decision() -> None:
    lookup = ListLookup([rule(RuleType.TEAMID, RuleState.BLOCK)])
    decide(EVERYTHING, lookup, policy(1), path=None, is_macho=True, missing_pagezero=False, bad_signature=False)
    assert lookup.calls == 1


# --- modes (§8.5) ------------------------------------------------------------------------------


def test_modes_for_unknown_binaries() -> None:
    assert run(mode=ClientMode.MONITOR).decision is Decision.ALLOW_UNKNOWN
    assert run(mode=ClientMode.LOCKDOWN).decision is Decision.BLOCK_UNKNOWN
    assert run(mode=ClientMode.STANDALONE).decision is Decision.BLOCK_UNKNOWN
    unknown_mode = run(mode=9)
    assert unknown_mode.decision is Decision.BLOCK_UNKNOWN
    assert "Unknown (9) mode" in unknown_mode.explanation


def test_block_rules_apply_in_every_mode() -> None:
    for mode in ClientMode:
        assert run([rule(RuleType.BINARY, RuleState.BLOCK)], mode=mode).decision is Decision.BLOCK_BINARY
        assert run([rule(RuleType.TEAMID, RuleState.ALLOW)], mode=mode).decision is Decision.ALLOW_TEAMID


SCENARIOS: list[dict[str, Any]] = [
    {},
    {"rules": [rule(RuleType.BINARY, RuleState.BLOCK)]},
    {"rules": [rule(RuleType.CERTIFICATE, RuleState.ALLOW)]},
    {"rules": [rule(RuleType.CERTIFICATE, RuleState.ALLOW_COMPILER)]},
    {"rules": [rule(RuleType.BINARY, RuleState.ALLOW_TRANSITIVE)]},
    {"is_macho": False},
    {"blocked_path_regex": "^/Applications/"},
    {"allowed_path_regex": "Tool"},
    {"bad_signature": True, "bad_signature_protection": True},
    {"bad_signature": True},
    {"missing_pagezero": True, "page_zero_protection": True},
    {"path": None, "is_macho": False},
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_what_monitor_mode_records_for_lockdown_blocks(scenario: dict[str, Any]) -> None:
    """Monitor and Lockdown differ only in the mode default: Monitor records ALLOW_UNKNOWN exactly for
    what Lockdown would block as BLOCK_UNKNOWN."""
    options = dict(scenario)
    rules = options.pop("rules", [])
    monitor = run(rules, mode=ClientMode.MONITOR, **options)
    lockdown = run(rules, mode=ClientMode.LOCKDOWN, **options)
    assert would_block_in_lockdown(monitor) == (lockdown.blocked and not monitor.blocked)
    assert monitor.would_block_in_lockdown == (monitor.decision is Decision.ALLOW_UNKNOWN)
    if monitor.decision is not Decision.ALLOW_UNKNOWN:
        assert monitor == lockdown
    else:
        assert lockdown.decision is Decision.BLOCK_UNKNOWN


# --- scope, bad signatures, page zero (steps 5–7) ----------------------------------------------


def test_scope_order() -> None:
    path = "/Users/me/Downloads/tool"
    assert run(path=path, blocked_path_regex="Downloads").explanation == "Blocked Path Regex"
    assert run(path=path, blocked_path_regex="Downloads").decision is Decision.BLOCK_SCOPE
    assert run(path=path, allowed_path_regex="^/Users/").decision is Decision.ALLOW_SCOPE
    # Blocked before allowed; a regex matches anywhere in the path (NSRegularExpression's count of matches).
    both = run(path=path, blocked_path_regex="tool$", allowed_path_regex="/Users")
    assert both.decision is Decision.BLOCK_SCOPE
    assert run(path=path, blocked_path_regex="^Downloads").decision is Decision.BLOCK_UNKNOWN
    # Page zero comes after the blocked regex and before the allowed one.
    pz = run(path=path, missing_pagezero=True, page_zero_protection=True, allowed_path_regex="Users")
    assert (pz.decision, pz.explanation) == (Decision.BLOCK_SCOPE, "Missing __PAGEZERO")
    assert run(path=path, missing_pagezero=True).decision is Decision.BLOCK_UNKNOWN
    not_macho = run(path=path, is_macho=False, mode=ClientMode.LOCKDOWN)
    assert (not_macho.decision, not_macho.explanation) == (Decision.ALLOW_SCOPE, "Not a Mach-O")
    assert run(path=path, is_macho=False, blocked_path_regex="tool").decision is Decision.BLOCK_SCOPE


def test_rules_come_before_scope() -> None:
    path = "/usr/local/bin/tool"
    assert (
        run([rule(RuleType.BINARY, RuleState.BLOCK)], path=path, allowed_path_regex="tool").decision
        is Decision.BLOCK_BINARY
    )
    assert (
        run([rule(RuleType.TEAMID, RuleState.ALLOW)], path=path, blocked_path_regex="tool").decision
        is Decision.ALLOW_TEAMID
    )
    assert run([rule(RuleType.BINARY, RuleState.ALLOW)], is_macho=False).decision is Decision.ALLOW_BINARY


def test_no_file_skips_scope() -> None:
    # santactl checking a bare identifier: santad has no file, so no scope rule applies.
    no_file = run(path=None, is_macho=False, missing_pagezero=True, page_zero_protection=True, blocked_path_regex=".")
    assert no_file.decision is Decision.BLOCK_UNKNOWN


def test_path_regexes() -> None:
    assert run(path="/a", allowed_path_regex=None).decision is Decision.BLOCK_UNKNOWN
    assert run(path="/a", allowed_path_regex=re.compile("^/a$")).decision is Decision.ALLOW_SCOPE
    assert run(path="/ab", allowed_path_regex=re.compile("^/a$")).decision is Decision.BLOCK_UNKNOWN


def test_bad_signature_protection() -> None:
    assert run(bad_signature=True).decision is Decision.BLOCK_UNKNOWN
    assert run(bad_signature=True, mode=ClientMode.MONITOR).decision is Decision.ALLOW_UNKNOWN
    protected = run(bad_signature=True, bad_signature_protection=True, allowed_path_regex=".", is_macho=False)
    assert (protected.decision, protected.rule) == (Decision.BLOCK_CERTIFICATE, None)
    assert run(bad_signature_protection=True).decision is Decision.BLOCK_UNKNOWN
    allowed = run([rule(RuleType.BINARY, RuleState.ALLOW)], bad_signature=True, bad_signature_protection=True)
    assert allowed.decision is Decision.ALLOW_BINARY


# --- static rules and the launchd certificate ----------------------------------------------------


def test_static_rules_come_first() -> None:
    db = [rule(RuleType.BINARY, RuleState.BLOCK)]
    static = [rule(RuleType.BINARY, RuleState.ALLOW, custom_msg="static")]
    result = run(db, static_rules=static)
    assert (result.decision, result.custom_msg) == (Decision.ALLOW_BINARY, "static")
    # Static rules are all consulted before the database: a static Team ID rule beats a DB binary rule.
    assert run(db, static_rules=[rule(RuleType.TEAMID, RuleState.ALLOW)]).decision is Decision.ALLOW_TEAMID
    # Within the static rules, precedence holds.
    static2 = [rule(RuleType.TEAMID, RuleState.ALLOW), rule(RuleType.SIGNINGID, RuleState.BLOCK)]
    assert run(static_rules=static2).decision is Decision.BLOCK_SIGNINGID
    # A static rule that does not match falls through to the database.
    other = Rule.create("A" * 64, RuleType.BINARY, RuleState.ALLOW)
    assert run(db, static_rules=[other]).decision is Decision.BLOCK_BINARY
    # An unusable static rule ends the lookup: the database is not consulted.
    lookup = ListLookup(db)
    unusable = [rule(RuleType.TEAMID, RuleState.ALLOW_COMPILER)]
    result = decide(
        EVERYTHING,
        lookup,
        policy(ClientMode.LOCKDOWN, static_rules=unusable),
        path=None,
        is_macho=True,
        missing_pagezero=False,
        bad_signature=False,
    )
    assert (result.decision, lookup.calls) == (Decision.BLOCK_UNKNOWN, 0)


def test_static_rules_are_keyed_by_identifier() -> None:
    # santad's staticRules is a dictionary by identifier: the later of two same-identifier rules wins.
    as_binary = Rule.create(CERT, RuleType.BINARY, RuleState.BLOCK)
    as_cert = Rule.create(CERT, RuleType.CERTIFICATE, RuleState.ALLOW)
    ids = Identifiers(binary=CERT, certificate=CERT)
    found = find_rule(ids, ListLookup(), static_rules=[as_binary, as_cert])
    assert found == as_cert
    assert find_rule(ids, ListLookup(), static_rules=[as_cert, as_binary]) == as_binary


def test_launchd_certificate_fallback() -> None:
    fallback = run(launchd_certificate=CERT.upper())
    assert (fallback.decision, fallback.rule) == (
        Decision.ALLOW_CERTIFICATE,
        Rule(CERT, RuleType.CERTIFICATE, RuleState.ALLOW),
    )
    assert run(launchd_certificate="0" * 64).decision is Decision.BLOCK_UNKNOWN
    assert run([rule(RuleType.TEAMID, RuleState.BLOCK)], launchd_certificate=CERT).decision is Decision.BLOCK_TEAMID
    no_cert = Identifiers(binary=SHA)
    assert run(identifiers=no_cert, launchd_certificate=CERT).decision is Decision.BLOCK_UNKNOWN
    # A static rule row counts as a row: no fallback.
    unusable = [rule(RuleType.TEAMID, RuleState.ALLOW_TRANSITIVE)]
    assert run(static_rules=unusable, launchd_certificate=CERT).decision is Decision.BLOCK_UNKNOWN


# --- the settings a decision reads -------------------------------------------------------------


def test_policy_settings_from_config(tmp_path: Path) -> None:
    assert PolicySettings() == PolicySettings.from_config(Config())  # Santa's defaults, both ways
    static = {"identifier": CERT, "policy": "ALLOWLIST", "rule_type": "CERTIFICATE"}
    config = Config.from_values(
        {
            "ClientMode": "LOCKDOWN",
            "EnableTransitiveRules": True,
            "EnableBadSignatureProtection": True,
            "EnablePageZeroProtection": False,
            "AllowedPathRegex": "/opt/",
            "BlockedPathRegex": "/tmp/",
            "StaticRules": [static],
            "EnableAllEventUpload": True,
            "DisableUnknownEventUpload": True,
            "StateDirectory": str(tmp_path),
        }
    )
    assert PolicySettings.from_config(config, launchd_certificate=CERT) == PolicySettings(
        mode=ClientMode.LOCKDOWN,
        transitive_rules=True,
        bad_signature_protection=True,
        page_zero_protection=False,
        allowed_path_regex=re.compile("^/opt/"),
        blocked_path_regex=re.compile("^/tmp/"),
        static_rules=(Rule(CERT, RuleType.CERTIFICATE, RuleState.ALLOW),),
        launchd_certificate=CERT,
        all_event_upload=True,
        unknown_event_upload=False,
    )
    bad_rule = {"identifier": "x", "policy": "ALLOWLIST", "rule_type": "BINARY"}
    with pytest.raises(ConfigError, match=r"StaticRules\[0\]: invalid rule .*identifier = \"x\".*valid SHA-256"):
        Config.from_values({"StaticRules": [bad_rule]})  # refused at load, naming the key and the entry
    with pytest.raises(RuleError):
        PolicySettings.from_config(dataclasses.replace(Config(), static_rules=(bad_rule,)))


@pytest.mark.parametrize(
    ("settings", "recorded"),
    [
        (PolicySettings(), {"BLOCK_BINARY", "BLOCK_UNKNOWN", "ALLOW_UNKNOWN"}),
        (PolicySettings(unknown_event_upload=False), {"BLOCK_BINARY", "BLOCK_UNKNOWN"}),
        (PolicySettings(all_event_upload=True), {"BLOCK_BINARY", "BLOCK_UNKNOWN", "ALLOW_UNKNOWN", "ALLOW_BINARY"}),
        (
            PolicySettings(all_event_upload=True, unknown_event_upload=False),
            {"BLOCK_BINARY", "BLOCK_UNKNOWN", "ALLOW_UNKNOWN", "ALLOW_BINARY"},
        ),
    ],
)
def test_which_decisions_create_an_event(settings: PolicySettings, recorded: set[str]) -> None:
    """§5.2: every denial; ALLOW_UNKNOWN unless DisableUnknownEventUpload; other allows with EnableAllEventUpload."""
    results = [
        run([rule(RuleType.BINARY, RuleState.BLOCK)]),
        run(mode=ClientMode.LOCKDOWN),
        run(mode=ClientMode.MONITOR),
        run([rule(RuleType.BINARY, RuleState.ALLOW)]),
    ]
    assert {r.name for r in results if settings.creates_event(r)} == recorded


# --- santactl rule's text ----------------------------------------------------------------------


def test_check_message() -> None:
    assert check_message(None) == NO_RULE == "No rule exists with the given parameters"
    lines = {(t, s): check_message(rule(t, s, timestamp=0)) for t in RuleType for s in STORABLE}
    assert lines[(RuleType.BINARY, RuleState.ALLOW)] == "Allowed (Binary)"
    assert lines[(RuleType.CDHASH, RuleState.BLOCK)] == "Blocked (CDHash)"
    assert lines[(RuleType.SIGNINGID, RuleState.SILENT_BLOCK)] == "Blocked (SigningID, Silent)"
    assert lines[(RuleType.CERTIFICATE, RuleState.ALLOW)] == "Allowed (Certificate)"
    assert lines[(RuleType.TEAMID, RuleState.BLOCK)] == "Blocked (TeamID)"
    assert lines[(RuleType.BINARY, RuleState.ALLOW_COMPILER)] == "Allowed (Binary, Compiler)"
    assert lines[(RuleType.BINARY, RuleState.ALLOW_TRANSITIVE)] == (
        "Allowed (Binary, Transitive)\nlast access date: 2001-01-01 00:00:00 +0000"
    )
    later = rule(RuleType.BINARY, RuleState.ALLOW_TRANSITIVE, timestamp=86400 * 366 + 3661)
    assert check_message(later).endswith("last access date: 2002-01-02 01:01:01 +0000")
    with pytest.raises(RuleError, match="Unexpected rule state: 4"):
        check_message(rule(RuleType.BINARY, RuleState.REMOVE))


def test_modify_message() -> None:
    expected_kinds = {
        RuleType.BINARY: "SHA-256",
        RuleType.CERTIFICATE: "Certificate SHA-256",
        RuleType.TEAMID: "Team ID",
        RuleType.SIGNINGID: "Signing ID",
        RuleType.CDHASH: "CDHash",
    }
    for t, kind in expected_kinds.items():
        added = rule(t, RuleState.BLOCK)
        assert modify_message(added) == f"Added rule for {kind}: {IDENTIFIER[t]}."
        assert modify_message(rule(t, RuleState.REMOVE)) == f"Removed rule for {kind}: {IDENTIFIER[t]}."
        assert modify_message(added, removed=True) == f"Removed rule for {kind}: {IDENTIFIER[t]}."


# --- identifiers from real files (§7.3) --------------------------------------------------------


def test_identifiers_unsigned(corpus: Path) -> None:
    fi = file_info(corpus / BINARYRULES / "noop")
    assert Identifiers.from_file_info(fi) == Identifiers(binary=fi.sha256)
    assert Identifiers.from_file_info(fi, cs_flags=SANTAD_TEST_FLAGS) == Identifiers(binary=fi.sha256)
    assert identifier_for_path(fi, RuleType.BINARY) == fi.sha256
    assert identifier_for_path(fi, RuleType.CDHASH) is None


def test_identifiers_adhoc(corpus: Path) -> None:
    fi = file_info(corpus / BINARYRULES / "allowed_cdhash")
    assert Identifiers.from_file_info(fi) == Identifiers(cdhash=CDHASH, binary=fi.sha256)
    # At run time the cdhash counts only for a process with CS_KILL or CS_HARD.
    assert Identifiers.from_file_info(fi, cs_flags=CS_SIGNED | CS_VALID).cdhash is None
    assert Identifiers.from_file_info(fi, cs_flags=CS_SIGNED | CS_VALID | CS_KILL).cdhash == CDHASH
    assert Identifiers.from_file_info(fi, cs_flags=CS_SIGNED | CS_VALID | CS_HARD).cdhash == CDHASH
    assert Identifiers.from_file_info(fi, cs_flags=CS_HARD).cdhash is None  # not CS_SIGNED|CS_VALID


def test_identifiers_development_signed(corpus: Path) -> None:
    fi = file_info(corpus / BINARYRULES / "banned_teamid")
    leaf = fi.signing_chain[0]
    assert leaf.is_development and fi.team_id == TEAM
    # For a file santad drops the Team ID and Signing ID of development-signed code ...
    assert Identifiers.from_file_info(fi) == Identifiers(cdhash=fi.cdhash, binary=fi.sha256, certificate=leaf.sha256)
    # ... and for an execution it goes by CS_DEV_CODE, which SantadTest leaves clear.
    full = Identifiers.from_file_info(fi, cs_flags=SANTAD_TEST_FLAGS)
    assert full == Identifiers(
        cdhash=fi.cdhash,
        binary=fi.sha256,
        signing_id=f"{TEAM}:banned_teamid",
        certificate=leaf.sha256,
        team_id=TEAM,
    )
    assert Identifiers.from_file_info(fi, cs_flags=SANTAD_TEST_FLAGS | CS_DEV_CODE) == Identifiers(
        cdhash=fi.cdhash, binary=fi.sha256, certificate=leaf.sha256
    )
    # Without CS_SIGNED|CS_VALID the process gives no IDs; the Team ID still comes from the file's signature.
    assert Identifiers.from_file_info(fi, cs_flags=0) == Identifiers(
        binary=fi.sha256, certificate=leaf.sha256, team_id=TEAM
    )
    # santactl rule --path ignores development signing.
    assert identifier_for_path(fi, RuleType.TEAMID) == TEAM
    assert identifier_for_path(fi, RuleType.SIGNINGID) == f"{TEAM}:banned_teamid"
    assert identifier_for_path(fi, RuleType.CERTIFICATE) == leaf.sha256
    assert identifier_for_path(fi, RuleType.CDHASH) == fi.cdhash


def test_identifiers_invalid_signature(corpus: Path, tmp_path: Path) -> None:
    # A signed binary with one code byte changed: page hashes no longer match.
    copy = tmp_path / "goodcert"
    shutil.copyfile(corpus / BINARYRULES / "goodcert", copy)
    data = bytearray(copy.read_bytes())
    data[0x1000] ^= 0xFF
    copy.write_bytes(bytes(data))
    fi = file_info(copy)
    assert fi.signing_status == "invalid"
    assert Identifiers.from_file_info(fi) == Identifiers(binary=fi.sha256)
    assert Identifiers.from_file_info(fi, cs_flags=SANTAD_TEST_FLAGS) == Identifiers(binary=fi.sha256)
    assert identifier_for_path(fi, RuleType.CERTIFICATE) is None
    cert_rule = Rule.create(file_info(corpus / BINARYRULES / "goodcert").signing_chain[0].sha256, 3000, 1)
    # The certificate allow rule no longer applies; bad-signature protection blocks.
    assert decide_for_file(fi, ListLookup([cert_rule]), policy(ClientMode.MONITOR)).decision is Decision.ALLOW_UNKNOWN
    protected = decide_for_file(fi, ListLookup([cert_rule]), policy(ClientMode.MONITOR, bad_signature_protection=True))
    assert protected.decision is Decision.BLOCK_CERTIFICATE


def test_decide_for_file_scope(corpus: Path) -> None:
    java = file_info(
        corpus / "registry/debian/libcommons-cli-java/1.5.0-1/org/apache/commons/cli/OptionValidator.class"
    )
    assert decide_for_file(java, ListLookup(), policy(ClientMode.LOCKDOWN)).decision is Decision.ALLOW_SCOPE
    pz = file_info(corpus / "santa/northpolesec/common/testdata/missing_pagezero")
    assert decide_for_file(pz, ListLookup(), policy(2)).decision is Decision.BLOCK_UNKNOWN
    assert decide_for_file(pz, ListLookup(), policy(2, page_zero_protection=True)).decision is Decision.BLOCK_SCOPE
    assert decide_for_file(pz, ListLookup(), PolicySettings(mode=2)).decision is Decision.BLOCK_SCOPE  # Santa's default
    # An inconsistently signed universal binary is a signature error, not "unsigned".
    ninja = file_info(corpus / "registry/pypi/ninja/1.13.2/ninja-1.13.2.data/scripts/ninja")
    assert ninja.signing_status == "invalid"
    assert Identifiers.from_file_info(ninja) == Identifiers(binary=ninja.sha256)
    blocked = decide_for_file(ninja, ListLookup(), policy(1, bad_signature_protection=True))
    assert blocked.decision is Decision.BLOCK_CERTIFICATE
    unsigned = decide_for_file(pz, ListLookup(), policy(1, bad_signature_protection=True))
    assert unsigned.decision is Decision.ALLOW_UNKNOWN


# --- end to end: Santa's own santad tests (SantadTest.mm) ---------------------------------------


def _file(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in manifest["files"] if f["path"] == f"{BINARYRULES}/{name}")


def santad_test_rules(manifest: dict[str, Any]) -> list[Rule]:
    """The rules SantadTest.mm's binaries imply (its rules.db is not in the corpus): the constants of
    the test, the hashes of the Moroz integration config, and each binary's own values."""

    def sha(name: str) -> str:
        return str(_file(manifest, name)["sha256"])

    def leaf(name: str) -> str:
        return str(_file(manifest, name)["signing_chain"][0]["sha256"])

    allow, block = RuleState.ALLOW, RuleState.BLOCK
    return [
        Rule.create("432ad7907dbcfb2ddc0552a398b2c78539c1a230468d87f914f650e061756dbd", RuleType.BINARY, block),
        Rule.create(sha("goodbinary"), RuleType.BINARY, allow),
        Rule.create(leaf("goodcert"), RuleType.CERTIFICATE, allow),
        Rule.create("6a7767fb80ac25fd073db8302cb50bea36512808e045bbc3768659bf503d4d31", RuleType.CERTIFICATE, block),
        Rule.create("EQHXZ8M8AV", RuleType.TEAMID, block),
        Rule.create("TJNVEKW352", RuleType.TEAMID, allow),
        Rule.create("EQHXZ8M8AV:com.google.blocked_signing_id", RuleType.SIGNINGID, block),
        Rule.create("EQHXZ8M8AV:com.google.allowed_signing_id", RuleType.SIGNINGID, allow),
        Rule.create("dedebf2eac732d873008b17b3e44a56599dd614b", RuleType.CDHASH, allow),
        Rule.create("7218eddfee4d3eba4873dedf22d1391d79aea25f", RuleType.CDHASH, block),
        Rule.create(sha("banned_teamid_allowed_binary"), RuleType.BINARY, allow),
        Rule.create(leaf("cert_hash_allowed_signingid_not_matched"), RuleType.CERTIFICATE, allow),
    ]


SANTAD_TEST_EXPECTATIONS = {
    "badbinary": Decision.BLOCK_BINARY,
    "goodbinary": Decision.ALLOW_BINARY,
    "goodcert": Decision.ALLOW_CERTIFICATE,
    "badcert": Decision.BLOCK_CERTIFICATE,
    "allowed_teamid": Decision.ALLOW_TEAMID,
    "banned_teamid": Decision.BLOCK_TEAMID,
    "banned_signingid": Decision.BLOCK_SIGNINGID,
    "allowed_signingid": Decision.ALLOW_SIGNINGID,
    "banned_cdhash": Decision.BLOCK_CDHASH,
    "allowed_cdhash": Decision.ALLOW_CDHASH,
    "banned_teamid_allowed_binary": Decision.ALLOW_BINARY,
    "cert_hash_allowed_signingid_blocked": Decision.BLOCK_SIGNINGID,
    "cert_hash_allowed_signingid_not_matched": Decision.ALLOW_CERTIFICATE,
}


@pytest.mark.parametrize("mode", list(ClientMode))
def test_santad_test_binaries(corpus: Path, manifest: dict[str, Any], tmp_path: Path, mode: ClientMode) -> None:
    with RuleStore(tmp_path / "rules.db") as store:
        store.add_rules(santad_test_rules(manifest))
        for name, want in SANTAD_TEST_EXPECTATIONS.items():
            fi = file_info(corpus / BINARYRULES / name)
            result = decide_for_file(fi, store, policy(mode), cs_flags=SANTAD_TEST_FLAGS)
            assert result.decision is want, name
            assert result.rule is not None and result.rule in store.rules()
        noop = decide_for_file(
            file_info(corpus / BINARYRULES / "noop"), store, policy(mode), cs_flags=SANTAD_TEST_FLAGS
        )
        assert noop.decision is MODE_DEFAULT_DECISION[mode]


def test_santad_test_binaries_as_files(corpus: Path, manifest: dict[str, Any]) -> None:
    """Decided for the file rather than a process (santactl's view): the Apple Development-signed
    binaries lose their Team ID and Signing ID, so those rules no longer match."""
    lookup = ListLookup(santad_test_rules(manifest))

    def as_file(name: str) -> Decision:
        return decide_for_file(file_info(corpus / BINARYRULES / name), lookup, policy(ClientMode.LOCKDOWN)).decision

    assert as_file("banned_teamid") is Decision.BLOCK_UNKNOWN
    assert as_file("allowed_teamid") is Decision.BLOCK_UNKNOWN
    assert as_file("cert_hash_allowed_signingid_blocked") is Decision.ALLOW_CERTIFICATE
    for name in ("badbinary", "goodbinary", "goodcert", "badcert", "allowed_cdhash", "banned_cdhash"):
        assert as_file(name) is SANTAD_TEST_EXPECTATIONS[name], name


# --- CEL rules (addendum §6) ---------------------------------------------------------------------


def test_cel_rule_from_both_json_spellings() -> None:
    snake = Rule.from_wire({"identifier": SHA, "policy": "CEL", "rule_type": "BINARY", "cel_expr": "euid == 0"})
    camel = Rule.from_wire({"identifier": SHA, "policy": 6, "rule_type": 1, "celExpr": "euid == 0"})
    assert snake == camel == Rule(SHA, RuleType.BINARY, RuleState.CEL, cel_expr="euid == 0")
    assert snake.to_wire() == {
        "identifier": SHA,
        "policy": "CEL",
        "rule_type": "BINARY",
        "custom_msg": "",
        "custom_url": "",
        "cel_expr": "euid == 0",
    }
    assert Rule.from_wire(snake.to_wire()) == snake
    assert check_message(snake) == "CEL (Binary): euid == 0"


def test_cel_expr_of_other_policies_is_dropped() -> None:
    rule = Rule.from_wire({"identifier": SHA, "policy": "BLOCKLIST", "rule_type": "BINARY", "cel_expr": "true"})
    assert rule.cel_expr is None
    assert "cel_expr" not in rule.to_wire()
