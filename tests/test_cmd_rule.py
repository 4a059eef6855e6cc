"""`santacore rule` (santactl rule, spec §8.1, §8.2, §8.6, §8.7): add / remove / check for every rule
type by identifier and by path, normalisation, santactl's validation messages, custom messages,
--list / --export / --import (with --clean / --clean-all), central management and a foreign rules.db.

Every value comes from the corpus manifest or `santacore.identity.fileinfo.file_info`; every store lives in tmp_path."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from santacore.cli import main
from santacore.identity.fileinfo import FileInfo, file_info
from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import Rule, RuleState, RuleType

BINARYRULES = "santa/northpolesec/santad/testdata/binaryrules"
CENTRAL = "(SyncBaseURL/StaticRules is set, rules are managed centrally.)"
NO_RULE = "No rule exists with the given parameters"


# --- helpers -------------------------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


def write_config(directory: Path, state: Path, **values: Any) -> Path:
    """A santacore TOML configuration whose StateDirectory is `state`."""
    path = directory / f"santacore-{len(list(directory.glob('santacore-*.toml')))}.toml"
    lines = [f"StateDirectory = {_toml(str(state))}"] + [f"{k} = {_toml(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Env:
    """One santacore installation in tmp_path: its config file and state directory."""

    config: Path
    state: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def rules_db(self) -> Path:
        return self.state / "rules.db"

    def run(self, *args: str, config: Path | None = None) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main(["rule", "--config", str(config or self.config), *args])
        out, err = self.capsys.readouterr()
        return rc, out, err

    def stored(self) -> list[Rule]:
        if not self.rules_db.exists():
            return []
        with RuleStore(self.rules_db) as store:
            return store.rules()


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANTACORE_CONFIG", raising=False)


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Env:
    state = tmp_path / "state"
    return Env(write_config(tmp_path, state), state, capsys)


def _entry(manifest: dict[str, Any], rel: str) -> dict[str, Any]:
    return next(f for f in manifest["files"] if f["path"] == rel)


@dataclass(frozen=True)
class Kind:
    """One rule type: its santactl flag, the words santactl uses for it and a corpus file that has one."""

    type: RuleType
    flags: tuple[str, ...]
    kind: str  # "Added rule for <kind>: ..."
    label: str  # "Allowed (<label>)"
    file: str  # in BINARYRULES

    def value(self, fi: FileInfo) -> str:
        """The identifier of this type `file_info` computes for the file."""
        found = {
            RuleType.BINARY: fi.sha256,
            RuleType.CERTIFICATE: fi.signing_chain[0].sha256 if fi.signing_chain else None,
            RuleType.TEAMID: fi.team_id,
            RuleType.SIGNINGID: fi.santa_signing_id,
            RuleType.CDHASH: fi.cdhash,
        }[self.type]
        assert found, f"{self.file} has no {self.kind}"
        return found

    def manifest_value(self, entry: dict[str, Any]) -> str:
        value = {
            RuleType.BINARY: entry["sha256"],
            RuleType.CERTIFICATE: entry["signing_chain"][0]["sha256"] if entry.get("signing_chain") else None,
            RuleType.TEAMID: entry["team_id"],
            RuleType.SIGNINGID: entry["santa_signing_id"],
            RuleType.CDHASH: entry["cdhash"],
        }[self.type]
        assert isinstance(value, str)
        return value


KINDS = [
    Kind(RuleType.BINARY, (), "SHA-256", "Binary", "goodbinary"),
    Kind(RuleType.CERTIFICATE, ("--certificate",), "Certificate SHA-256", "Certificate", "goodcert"),
    Kind(RuleType.TEAMID, ("--teamid",), "Team ID", "TeamID", "allowed_teamid"),
    Kind(RuleType.SIGNINGID, ("--signingid",), "Signing ID", "SigningID", "allowed_signingid"),
    Kind(RuleType.CDHASH, ("--cdhash",), "CDHash", "CDHash", "allowed_cdhash"),
]
KIND_IDS = [k.type.name for k in KINDS]


def _path(corpus: Path, kind: Kind) -> Path:
    return corpus / BINARYRULES / kind.file


# --- add / check / remove ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_add_check_remove_by_identifier(corpus: Path, manifest: dict[str, Any], env: Env, kind: Kind) -> None:
    fi = file_info(_path(corpus, kind))
    ident = kind.value(fi)
    assert ident == kind.manifest_value(_entry(manifest, f"{BINARYRULES}/{kind.file}"))

    assert env.run("--check", *kind.flags, "--identifier", ident) == (0, NO_RULE + "\n", "")
    rc, out, err = env.run("--block", *kind.flags, "--identifier", ident)
    assert (rc, out, err) == (0, f"Added rule for {kind.kind}: {ident}.\n", "")
    assert env.stored() == [Rule(ident, kind.type, RuleState.BLOCK)]
    assert env.run("--check", *kind.flags, "--identifier", ident) == (0, f"Blocked ({kind.label})\n", "")
    # --sha256 is santactl's deprecated spelling of --identifier.
    assert env.run("--check", *kind.flags, "--sha256", ident) == (0, f"Blocked ({kind.label})\n", "")

    rc, out, err = env.run("--remove", *kind.flags, "--identifier", ident)
    assert (rc, out, err) == (0, f"Removed rule for {kind.kind}: {ident}.\n", "")
    assert env.stored() == []
    assert env.run("--check", *kind.flags, "--identifier", ident) == (0, NO_RULE + "\n", "")


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_add_check_remove_by_path(corpus: Path, manifest: dict[str, Any], env: Env, kind: Kind) -> None:
    path = str(_path(corpus, kind))
    ident = kind.value(file_info(path))
    assert ident == kind.manifest_value(_entry(manifest, f"{BINARYRULES}/{kind.file}"))

    rc, out, err = env.run("--allow", *kind.flags, "--path", path)
    assert (rc, out, err) == (0, f"Added rule for {kind.kind}: {ident}.\n", "")
    assert env.stored() == [Rule(ident, kind.type, RuleState.ALLOW)]
    assert env.run("--check", *kind.flags, "--path", path) == (0, f"Allowed ({kind.label})\n", "")
    assert env.run("--check", *kind.flags, "--identifier", ident) == (0, f"Allowed ({kind.label})\n", "")

    rc, out, err = env.run("--remove", *kind.flags, "--path", path)
    assert (rc, out, err) == (0, f"Removed rule for {kind.kind}: {ident}.\n", "")
    assert env.stored() == []


def test_the_type_flag_picks_the_identifier_from_one_file(corpus: Path, env: Env) -> None:
    """One signed file yields a different identifier per type; each lands as its own row."""
    path = corpus / BINARYRULES / "allowed_signingid"
    fi = file_info(path)
    for kind in KINDS:
        assert env.run("--block", *kind.flags, "--path", str(path))[0] == 0
    rows = {(r.type, r.identifier) for r in env.stored()}
    assert rows == {(k.type, k.value(fi)) for k in KINDS}
    assert len({r.identifier for r in env.stored()}) == len(KINDS)


@pytest.mark.parametrize(
    ("flag", "state", "check"),
    [
        ("--allow", RuleState.ALLOW, "Allowed (Binary)"),
        ("--block", RuleState.BLOCK, "Blocked (Binary)"),
        ("--silent-block", RuleState.SILENT_BLOCK, "Blocked (Binary, Silent)"),
        ("--compiler", RuleState.ALLOW_COMPILER, "Allowed (Binary, Compiler)"),
    ],
)
def test_every_state(corpus: Path, env: Env, flag: str, state: RuleState, check: str) -> None:
    sha = file_info(corpus / BINARYRULES / "goodbinary").sha256
    assert env.run(flag, "--identifier", sha) == (0, f"Added rule for SHA-256: {sha}.\n", "")
    assert env.stored() == [Rule(sha, RuleType.BINARY, state)]
    assert env.run("--check", "--identifier", sha) == (0, check + "\n", "")
    rc, out, _ = env.run("--list")
    assert rc == 0
    assert out.split() == ["BINARY", state.policy, sha]


def test_a_later_rule_replaces_the_earlier_one(corpus: Path, env: Env) -> None:
    sha = file_info(corpus / BINARYRULES / "goodbinary").sha256
    assert env.run("--allow", "--identifier", sha, "--message", "first")[0] == 0
    assert env.run("--block", "--identifier", sha)[0] == 0
    assert env.stored() == [Rule(sha, RuleType.BINARY, RuleState.BLOCK)]


# --- normalisation -------------------------------------------------------------------------------


def test_identifiers_are_normalised_as_santa_stores_them(corpus: Path, env: Env) -> None:
    signed = file_info(corpus / BINARYRULES / "allowed_signingid")
    adhoc = file_info(corpus / BINARYRULES / "allowed_cdhash")
    assert signed.team_id and signed.santa_signing_id and signed.signing_chain and adhoc.cdhash
    team, _, signing = signed.santa_signing_id.partition(":")
    assert team == signed.team_id
    given = [
        ((), signed.sha256.upper(), signed.sha256),
        (("--certificate",), signed.signing_chain[0].sha256.upper(), signed.signing_chain[0].sha256),
        (("--cdhash",), adhoc.cdhash.upper(), adhoc.cdhash),
        (("--teamid",), signed.team_id.lower(), signed.team_id.upper()),
        (("--signingid",), f"{team.lower()}:{signing}", f"{team.upper()}:{signing}"),
        (("--signingid",), f"{team.lower()}:{signing.upper()}", f"{team.upper()}:{signing.upper()}"),  # case kept
        (("--signingid",), "PlatForm:com.apple.Example", "platform:com.apple.Example"),
    ]
    for flags, typed, stored in given:
        rc, out, err = env.run("--allow", *flags, "--identifier", typed)
        assert rc == 0, err
        assert out.endswith(f": {stored}.\n")
        # --check finds it by any spelling.
        rc, out, _ = env.run("--check", *flags, "--identifier", typed)
        assert rc == 0 and out.startswith("Allowed (")

    rc, out, _ = env.run("--list")
    assert rc == 0
    listed = [line.split() for line in out.splitlines()]
    assert sorted(row[2] for row in listed) == sorted(stored for _, _, stored in given)
    for row in listed:
        if row[0] in ("BINARY", "CERTIFICATE", "CDHASH"):
            assert row[2] == row[2].lower()
        if row[0] == "TEAMID":
            assert row[2] == row[2].upper()
    rc, out, _ = env.run("--list", "--json")
    assert sorted(r["identifier"] for r in json.loads(out)["rules"]) == sorted(s for _, _, s in given)


# --- bad identifiers ------------------------------------------------------------------------------

SHA_MESSAGE = "BINARY or CERTIFICATE rules require a valid SHA-256"
CDHASH_MESSAGE = "CDHASH rules require a valid hex string of length 40"


def _bad_identifiers(corpus: Path) -> list[tuple[tuple[str, ...], str, str | None]]:
    """(type flags, a bad identifier, santactl's message or None where santactl has none of its own)."""
    fi = file_info(corpus / BINARYRULES / "allowed_signingid")
    cd = file_info(corpus / BINARYRULES / "allowed_cdhash").cdhash
    assert fi.team_id and fi.signing_chain and cd
    sha, cert, team = fi.sha256, fi.signing_chain[0].sha256, fi.team_id
    return [
        ((), sha[:-1], SHA_MESSAGE),
        ((), sha + "0", SHA_MESSAGE),
        ((), sha[:-1] + "g", SHA_MESSAGE),
        ((), " " + sha[1:], SHA_MESSAGE),  # never trimmed ([N])
        ((), cd, SHA_MESSAGE),  # a cdhash is not a SHA-256
        (("--certificate",), cert[:-2], SHA_MESSAGE),
        (("--certificate",), cert[:-1] + "z", SHA_MESSAGE),
        (("--cdhash",), cd[:-1], CDHASH_MESSAGE),
        (("--cdhash",), cd + "00", CDHASH_MESSAGE),
        (("--cdhash",), cd[:-1] + "x", CDHASH_MESSAGE),
        (("--cdhash",), sha, CDHASH_MESSAGE),
        (("--teamid",), team[:-1], None),
        (("--teamid",), team + "A", None),
        (("--teamid",), team[:-1] + "-", None),
        (("--signingid",), "com.example.tool", None),
        (("--signingid",), f"{team}:", None),
        (("--signingid",), f"{team[:-1]}:com.example.tool", None),
        (("--signingid",), ":com.example.tool", None),
        (("--signingid",), "platforms:com.example.tool", None),
    ]


def test_bad_identifiers_are_refused_and_nothing_is_stored(corpus: Path, env: Env) -> None:
    for flags, ident, message in _bad_identifiers(corpus):
        for state in ("--allow", "--block", "--remove"):
            rc, out, err = env.run(state, *flags, "--identifier", ident)
            assert rc == 1, (flags, ident)
            assert out == ""
            assert err.startswith("Failed to modify rules: "), err
            if message is not None:
                assert err == f"Failed to modify rules: {message}\n"
            else:
                assert RuleType[flags[0].removeprefix("--").upper()].name in err  # names the rule type
        assert env.stored() == []


def test_path_without_that_identifier_fails(corpus: Path, env: Env) -> None:
    unsigned = corpus / BINARYRULES / "goodbinary"
    assert file_info(unsigned).signing_status == "unsigned"
    for flags in (("--certificate",), ("--teamid",), ("--signingid",), ("--cdhash",)):
        rc, out, err = env.run("--allow", *flags, "--path", str(unsigned))
        assert (rc, out) == (1, "")
        assert err.startswith("Failed to modify rules: ") and str(unsigned) in err
    missing = corpus / BINARYRULES / "no-such-binary"
    rc, out, err = env.run("--allow", "--path", str(missing))
    assert (rc, out) == (1, "")
    assert err.startswith("Failed to modify rules: ") and str(missing) in err
    rc, _, err = env.run("--allow")
    assert rc == 1 and err.startswith("Failed to modify rules: ")
    assert env.stored() == []


def test_a_state_is_required(corpus: Path, env: Env) -> None:
    sha = file_info(corpus / BINARYRULES / "goodbinary").sha256
    rc, out, err = env.run("--identifier", sha)
    assert (rc, out) == (1, "")
    assert "--allow" in err and "--check" in err
    assert env.stored() == []


# --- custom messages -----------------------------------------------------------------------------


def test_message_is_stored_and_shown(corpus: Path, env: Env) -> None:
    sha = file_info(corpus / BINARYRULES / "badbinary").sha256
    message = 'Blocked by IT: "badbinary" — ask #help'
    assert env.run("--block", "--identifier", sha, "--message", message)[0] == 0
    assert env.stored() == [Rule(sha, RuleType.BINARY, RuleState.BLOCK, custom_msg=message)]
    rc, out, _ = env.run("--list")
    assert rc == 0 and out.rstrip("\n").endswith(f"{sha}  {message}")
    rc, out, _ = env.run("--list", "--json")
    assert json.loads(out)["rules"] == [
        {"identifier": sha, "policy": "BLOCKLIST", "rule_type": "BINARY", "custom_msg": message, "custom_url": ""}
    ]
    # An empty message is no message (santactl).
    assert env.run("--block", "--identifier", sha, "--message", "")[0] == 0
    assert env.stored() == [Rule(sha, RuleType.BINARY, RuleState.BLOCK)]


# --- list / export / import ------------------------------------------------------------------------


def _fill(corpus: Path, env: Env) -> None:
    """One rule of every type and several states, some with messages."""
    states = ["--allow", "--block", "--silent-block", "--compiler", "--allow"]
    for i, (kind, state) in enumerate(zip(KINDS, states, strict=True)):
        extra = ("--message", f"rule {i}: {kind.kind}") if i % 2 == 0 else ()
        assert env.run(state, *kind.flags, "--path", str(_path(corpus, kind)), *extra)[0] == 0


def test_list_json_round_trips_through_export_and_import(corpus: Path, tmp_path: Path, env: Env) -> None:
    _fill(corpus, env)
    rc, out, _ = env.run("--list", "--json")
    assert rc == 0
    listed = json.loads(out)
    assert len(listed["rules"]) == len(KINDS)
    for r in listed["rules"]:
        assert set(r) == {"identifier", "policy", "rule_type", "custom_msg", "custom_url"}
    assert listed == {"rules": [r.to_wire() for r in env.stored()]}

    exported = tmp_path / "rules.json"
    assert env.run("--export", str(exported)) == (0, f"Exported {len(KINDS)} rules to {exported}.\n", "")
    assert json.loads(exported.read_text(encoding="utf-8")) == listed

    other = Env(write_config(tmp_path, tmp_path / "other"), tmp_path / "other", env.capsys)
    assert other.run("--import", str(exported)) == (0, f"Imported {len(KINDS)} rules from {exported}.\n", "")
    assert other.stored() == env.stored()
    rc, out, _ = other.run("--list", "--json")
    assert rc == 0 and json.loads(out) == listed

    # The --list --json document itself is an import document.
    document = tmp_path / "listed.json"
    document.write_text(json.dumps(listed), encoding="utf-8")
    third = Env(write_config(tmp_path, tmp_path / "third"), tmp_path / "third", env.capsys)
    assert third.run("--import", str(document))[0] == 0
    assert third.stored() == env.stored()


def _transitive(corpus: Path, env: Env) -> Rule:
    """A transitive rule as santad creates it locally (santactl cannot add one)."""
    sha = file_info(corpus / BINARYRULES / "noop").sha256
    rule = Rule.create(sha, RuleType.BINARY, RuleState.ALLOW_TRANSITIVE)
    env.state.mkdir(parents=True, exist_ok=True)
    with RuleStore(env.rules_db) as store:
        store.add_rules([rule])
    return rule


@pytest.mark.parametrize(
    ("flags", "keeps_old", "keeps_transitive"),
    [((), True, True), (("--clean",), False, True), (("--clean-all",), False, False)],
    ids=["plain", "clean", "clean-all"],
)
def test_import_clean_semantics(
    corpus: Path, tmp_path: Path, env: Env, flags: tuple[str, ...], keeps_old: bool, keeps_transitive: bool
) -> None:
    old_sha = file_info(corpus / BINARYRULES / "badbinary").sha256
    new_sha = file_info(corpus / BINARYRULES / "goodbinary").sha256
    assert env.run("--block", "--identifier", old_sha)[0] == 0
    transitive = _transitive(corpus, env)
    document = tmp_path / "import.json"
    document.write_text(
        json.dumps({"rules": [{"identifier": new_sha.upper(), "policy": "ALLOWLIST", "rule_type": "BINARY"}]}),
        encoding="utf-8",
    )
    assert env.run("--import", str(document), *flags) == (0, f"Imported 1 rules from {document}.\n", "")
    stored = {r.identifier: r for r in env.stored()}
    assert stored.pop(new_sha) == Rule(new_sha, RuleType.BINARY, RuleState.ALLOW)
    assert (old_sha in stored) is keeps_old
    assert (transitive.identifier in stored) is keeps_transitive
    if keeps_transitive:
        assert stored[transitive.identifier].state is RuleState.ALLOW_TRANSITIVE


def test_export_leaves_out_transitive_rules(corpus: Path, tmp_path: Path, env: Env) -> None:
    sha = file_info(corpus / BINARYRULES / "badbinary").sha256
    assert env.run("--block", "--identifier", sha)[0] == 0
    _transitive(corpus, env)
    exported = tmp_path / "out.json"
    assert env.run("--export", str(exported)) == (0, f"Exported 1 rules to {exported}.\n", "")
    assert json.loads(exported.read_text(encoding="utf-8")) == {
        "rules": [{"identifier": sha, "policy": "BLOCKLIST", "rule_type": "BINARY", "custom_msg": "", "custom_url": ""}]
    }


def test_export_refuses_to_replace_a_file_without_force(corpus: Path, tmp_path: Path, env: Env) -> None:
    """As `config import -o`: an existing FILE is kept unless --force says to replace it."""
    sha = file_info(corpus / BINARYRULES / "badbinary").sha256
    assert env.run("--block", "--identifier", sha)[0] == 0
    exported = tmp_path / "out.json"
    exported.write_text("keep me\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "santacore", "rule", "--config", str(env.config), "--export", str(exported)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"santacore rule: {exported} exists (use --force to replace it)\n"
    assert exported.read_text(encoding="utf-8") == "keep me\n"
    assert env.run("--export", str(exported), "--force") == (0, f"Exported 1 rules to {exported}.\n", "")
    assert json.loads(exported.read_text(encoding="utf-8"))["rules"][0]["identifier"] == sha


@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["text", "json"])
def test_list_shows_transitive_rules(corpus: Path, env: Env, json_flag: tuple[str, ...]) -> None:
    """rules.db holds the transitive rules santad makes; listing must not fail on them (--check shows them)."""
    sha = file_info(corpus / BINARYRULES / "badbinary").sha256
    assert env.run("--block", "--identifier", sha)[0] == 0
    transitive = _transitive(corpus, env)
    rc, out, err = env.run("--check", "--identifier", transitive.identifier)
    assert rc == 0 and out.startswith("Allowed (Binary, Transitive)\nlast access date: ")

    rc, out, err = env.run("--list", *json_flag)
    assert (rc, err) == (0, "")
    if json_flag:
        assert sha in [r["identifier"] for r in json.loads(out)["rules"]]
    else:
        assert transitive.identifier in out and sha in out


def test_export_is_atomic(corpus: Path, tmp_path: Path, env: Env) -> None:
    """The export replaces FILE whole; a failed export leaves neither FILE changed nor a stray temporary file."""
    sha = file_info(corpus / BINARYRULES / "badbinary").sha256
    assert env.run("--block", "--identifier", sha)[0] == 0
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    target = out_dir / "rules.json"
    target.write_text("old contents", encoding="utf-8")
    assert env.run("--export", str(target), "--force")[0] == 0
    assert [r["identifier"] for r in json.loads(target.read_text(encoding="utf-8"))["rules"]] == [sha]
    assert sorted(p.name for p in out_dir.iterdir()) == ["rules.json"]

    blocked = out_dir / "taken.json"
    blocked.mkdir()  # a directory where the file should go
    rc, out, err = env.run("--export", str(blocked), "--force")
    assert (rc, out) == (1, "")
    assert str(blocked) in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["rules.json", "taken.json"]
    assert blocked.is_dir() and list(blocked.iterdir()) == []


def test_a_bad_import_changes_nothing(corpus: Path, tmp_path: Path, env: Env) -> None:
    keep = file_info(corpus / BINARYRULES / "badbinary").sha256
    good = file_info(corpus / BINARYRULES / "goodbinary").sha256
    assert env.run("--block", "--identifier", keep)[0] == 0
    before = env.stored()
    document = tmp_path / "bad.json"
    document.write_text(
        json.dumps(
            {
                "rules": [
                    {"identifier": good, "policy": "ALLOWLIST", "rule_type": "BINARY"},
                    {"identifier": good[:-1], "policy": "ALLOWLIST", "rule_type": "BINARY"},
                ]
            }
        ),
        encoding="utf-8",
    )
    for flags in ((), ("--clean",), ("--clean-all",)):
        rc, out, err = env.run("--import", str(document), *flags)
        assert (rc, out) == (1, "")
        assert err.startswith("Failed to modify rules: Invalid rule #2")
        assert env.stored() == before
    not_json = tmp_path / "not.json"
    not_json.write_text("{rules: [", encoding="utf-8")
    rc, _, err = env.run("--import", str(not_json), "--clean-all")
    assert rc == 1 and err.startswith("Failed to modify rules: ") and str(not_json) in err
    assert env.stored() == before


# --- central management --------------------------------------------------------------------------


def _static_rule(corpus: Path) -> dict[str, str]:
    return {
        "identifier": file_info(corpus / BINARYRULES / "badbinary").sha256,
        "policy": "BLOCKLIST",
        "rule_type": "BINARY",
    }


@pytest.mark.parametrize("manager", ["SyncBaseURL", "StaticRules"])
def test_centrally_managed_rules_are_refused_without_force(
    corpus: Path, tmp_path: Path, env: Env, manager: str
) -> None:
    value: Any = "https://sync.example.com/santa" if manager == "SyncBaseURL" else [_static_rule(corpus)]
    managed = write_config(tmp_path, env.state, **{manager: value})
    sha = file_info(corpus / BINARYRULES / "goodbinary").sha256
    document = tmp_path / "import.json"
    document.write_text(json.dumps({"rules": [{"identifier": sha, "policy": "ALLOWLIST", "rule_type": "BINARY"}]}))

    for args in (
        ("--allow", "--identifier", sha),
        ("--block", "--identifier", sha),
        ("--silent-block", "--identifier", sha),
        ("--compiler", "--identifier", sha),
        ("--remove", "--identifier", sha),
        ("--allow", "--identifier", "not even a hash"),  # refused before it is validated
        ("--import", str(document)),
        ("--import", str(document), "--clean-all"),
    ):
        rc, out, err = env.run(*args, config=managed)
        assert rc == 1, args
        assert CENTRAL in out + err
        assert "Added rule" not in out
        assert env.stored() == []

    # --check is always allowed.
    assert env.run("--check", "--identifier", sha, config=managed) == (0, NO_RULE + "\n", "")
    # --force bypasses the refusal (santactl's debug builds).
    rc, out, err = env.run("--allow", "--identifier", sha, "--force", config=managed)
    assert (rc, out, err) == (0, f"Added rule for SHA-256: {sha}.\n", "")
    assert env.stored() == [Rule(sha, RuleType.BINARY, RuleState.ALLOW)]
    assert env.run("--check", "--identifier", sha, config=managed) == (0, "Allowed (Binary)\n", "")
    assert env.run("--remove", "--identifier", sha, "--force", config=managed)[0] == 0
    assert env.run("--import", str(document), "--force", config=managed)[0] == 0
    assert env.stored() == [Rule(sha, RuleType.BINARY, RuleState.ALLOW)]


def test_empty_sync_base_url_is_not_central_management(corpus: Path, tmp_path: Path, env: Env) -> None:
    config = write_config(tmp_path, env.state, SyncBaseURL="")
    sha = file_info(corpus / BINARYRULES / "goodbinary").sha256
    assert env.run("--allow", "--identifier", sha, config=config)[0] == 0


# --- the store -----------------------------------------------------------------------------------


def test_a_foreign_text_file_is_refused_and_left_alone(corpus: Path, env: Env) -> None:
    env.state.mkdir()
    env.rules_db.write_bytes(b"these are my notes, not a database\n")
    before = env.rules_db.read_bytes()
    sha = file_info(corpus / BINARYRULES / "goodbinary").sha256
    for args in (
        ("--allow", "--identifier", sha),
        ("--check", "--identifier", sha),
        ("--list",),
        ("--list", "--json"),
    ):
        rc, out, err = env.run(*args)
        assert (rc, out) == (1, ""), args
        assert str(env.rules_db) in err and "not an SQLite database" in err
        assert "Traceback" not in err
    assert env.rules_db.read_bytes() == before
    assert sorted(p.name for p in env.state.iterdir()) == ["rules.db"]


def test_a_foreign_sqlite_database_is_refused_and_left_alone(corpus: Path, env: Env) -> None:
    env.state.mkdir()
    with sqlite3.connect(env.rules_db) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('keep me')")
    db.close()
    before = env.rules_db.read_bytes()
    sha = file_info(corpus / BINARYRULES / "goodbinary").sha256
    rc, out, err = env.run("--allow", "--identifier", sha)
    assert (rc, out) == (1, "")
    assert str(env.rules_db) in err and "not a rules database" in err
    assert env.rules_db.read_bytes() == before


def test_a_directory_as_rules_db_is_refused(corpus: Path, env: Env) -> None:
    env.rules_db.mkdir(parents=True)
    rc, out, err = env.run("--list")
    assert (rc, out) == (1, "")
    assert str(env.rules_db) in err


def test_store_is_created_private(corpus: Path, env: Env) -> None:
    sha = file_info(corpus / BINARYRULES / "goodbinary").sha256
    assert env.run("--allow", "--identifier", sha)[0] == 0
    assert env.rules_db.stat().st_mode & 0o777 == 0o600


def test_settings_come_from_the_environment(
    corpus: Path, env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SANTACORE_CONFIG", str(env.config))
    sha = file_info(corpus / BINARYRULES / "goodbinary").sha256
    assert main(["rule", "--allow", "--identifier", sha]) == 0
    assert capsys.readouterr().out == f"Added rule for SHA-256: {sha}.\n"
    assert env.stored() == [Rule(sha, RuleType.BINARY, RuleState.ALLOW)]


def test_a_bad_config_is_reported(tmp_path: Path, env: Env) -> None:
    bad = write_config(tmp_path, env.state, ClientMode=9)
    rc, out, err = env.run("--list", config=bad)
    assert (rc, out) == (1, "")
    assert f"{bad}: ClientMode: " in err


# --- the console script ---------------------------------------------------------------------------


def test_subprocess_smoke(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "banned_cdhash"
    cdhash = file_info(path).cdhash
    assert cdhash
    base = [sys.executable, "-m", "santacore", "rule", "--config", str(env.config)]
    done = subprocess.run(
        [*base, "--block", "--cdhash", "--path", str(path)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"Added rule for CDHash: {cdhash}.\n", "")
    done = subprocess.run(
        [*base, "--check", "--cdhash", "--identifier", cdhash.upper()], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, "Blocked (CDHash)\n")
    done = subprocess.run([*base, "--block", "--identifier", "xyz"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"Failed to modify rules: {SHA_MESSAGE}\n")
    assert env.stored() == [Rule(cdhash, RuleType.CDHASH, RuleState.BLOCK)]
