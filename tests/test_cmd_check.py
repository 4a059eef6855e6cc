"""`santacore check PATH [--record] [--json]`: santad's decision for a corpus file (spec §8.3–8.5) —
client modes, every rule type, precedence, silent blocks, path scopes, static rules, page-zero and
bad-signature protection — and with --record the event santad would store (§5.2, §4.1).

Rules are added through `santacore rule` or `RuleStore`; values come from the manifest or `file_info`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from santacore.cli import main
from santacore.identity.fileinfo import file_info
from santacore.santad.event_store import EventRow, EventStore
from santacore.santad.events import StoredEvent
from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import Rule, RuleState, RuleType

BINARYRULES = "santa/northpolesec/santad/testdata/binaryrules"
COMMON = "santa/northpolesec/common/testdata"
MONITOR, LOCKDOWN = 1, 2
NOT_RECORDED = "Not recorded: santad creates no event for this decision.\n"
NO_SYNC = "Not recorded: SyncBaseURL is not set, so santad would not store the event.\n"
SYNC_URL = "https://sync.example.com/santa"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


@dataclass
class Env:
    tmp: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    @property
    def rules_db(self) -> Path:
        return self.state / "rules.db"

    @property
    def events_db(self) -> Path:
        return self.state / "events.db"

    def config(self, **values: Any) -> Path:
        path = self.tmp / f"santacore-{len(list(self.tmp.glob('santacore-*.toml')))}.toml"
        lines = [f"StateDirectory = {_toml(str(self.state))}"] + [f"{k} = {_toml(v)}" for k, v in values.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def add(self, *rules: Rule) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        with RuleStore(self.rules_db) as store:
            store.add_rules(rules)

    def rule(self, *args: str) -> None:
        """Add a rule through `santacore rule` (no central management in this config)."""
        self.capsys.readouterr()
        assert main(["rule", "--config", str(self.config()), *args]) == 0
        self.capsys.readouterr()

    def check(self, path: Path | str, *args: str, **config: Any) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main(["check", "--config", str(self.config(**config)), str(path), *args])
        out, err = self.capsys.readouterr()
        return rc, out, err

    def decide(self, path: Path | str, **config: Any) -> dict[str, Any]:
        rc, out, err = self.check(path, "--json", **config)
        doc: dict[str, Any] = json.loads(out)
        assert rc == (0 if doc["allowed"] else 3), err  # the exit status a script branches on
        return doc

    def rules(self) -> list[Rule]:
        with RuleStore(self.rules_db) as store:
            return store.rules()

    def events(self) -> list[EventRow]:
        if not self.events_db.exists():
            return []
        with EventStore(self.events_db) as store:
            return [row for batch in store.pending(1000) for row in batch]


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANTACORE_CONFIG", raising=False)


@pytest.fixture
def env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Env:
    return Env(tmp_path, capsys)


def _entry(manifest: dict[str, Any], rel: str) -> dict[str, Any]:
    return next(f for f in manifest["files"] if f["path"] == rel)


def _text(out: str) -> dict[str, str]:
    """check's text lines as {label: value}."""
    fields: dict[str, str] = {}
    for line in out.splitlines():
        label, sep, value = line.partition(": ")
        assert sep, line
        fields[label.strip()] = value
    return fields


# --- client modes ----------------------------------------------------------------------------------


def test_lockdown_blocks_unknown(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    fi = file_info(path)
    rc, out, err = env.check(path, ClientMode=LOCKDOWN)
    assert (rc, err) == (3, "")  # blocked
    assert _text(out) == {
        "Path": fi.path,
        "Mode": "LOCKDOWN",
        "Decision": "BLOCK_UNKNOWN",
        "Rule": "None",
        "Reason": "No rule matched; Lockdown mode blocks",
    }
    doc = env.decide(path, ClientMode=LOCKDOWN)
    assert doc["path"] == fi.path
    assert doc["sha256"] == _entry(manifest, f"{BINARYRULES}/goodbinary")["sha256"]
    assert doc["mode"] == "LOCKDOWN"
    assert doc["decision"] == "BLOCK_UNKNOWN"
    assert doc["allowed"] is False and doc["silent"] is False
    assert doc["rule"] is None and doc["rule_text"] is None
    assert doc["lockdown_would_block"] is False


def test_monitor_allows_unknown_and_says_lockdown_would_block(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    for config in ({"ClientMode": MONITOR}, {}):  # MONITOR is the default
        rc, out, err = env.check(path, **config)
        assert (rc, err) == (0, "")
        fields = _text(out)
        assert fields["Mode"] == "MONITOR" and fields["Decision"] == "ALLOW_UNKNOWN"
        assert "LOCKDOWN would block" in fields["Note"]
        doc = env.decide(path, **config)
        assert doc["decision"] == "ALLOW_UNKNOWN"
        assert doc["allowed"] is True
        assert doc["lockdown_would_block"] is True


def test_standalone_blocks_unknown(corpus: Path, env: Env) -> None:
    doc = env.decide(corpus / BINARYRULES / "goodbinary", ClientMode=3)
    assert (doc["mode"], doc["decision"], doc["lockdown_would_block"]) == ("STANDALONE", "BLOCK_UNKNOWN", False)


def test_note_only_for_mode_default_allows(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    env.rule("--allow", "--path", str(path))
    rc, out, _ = env.check(path, ClientMode=MONITOR)
    assert rc == 0 and "Note" not in _text(out)
    assert env.decide(path, ClientMode=MONITOR)["lockdown_would_block"] is False


# --- rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "flags", "state", "decision"),
    [
        ("goodbinary", (), "--allow", "ALLOW_BINARY"),
        ("badbinary", (), "--block", "BLOCK_BINARY"),
        ("goodcert", ("--certificate",), "--allow", "ALLOW_CERTIFICATE"),
        ("badcert", ("--certificate",), "--block", "BLOCK_CERTIFICATE"),
        ("allowed_cdhash", ("--cdhash",), "--allow", "ALLOW_CDHASH"),
        ("banned_cdhash", ("--cdhash",), "--block", "BLOCK_CDHASH"),
    ],
)
def test_rules_decide(corpus: Path, env: Env, file: str, flags: tuple[str, ...], state: str, decision: str) -> None:
    path = corpus / BINARYRULES / file
    fi = file_info(path)
    env.rule(state, *flags, "--path", str(path))
    (rule,) = env.rules()
    # Allows are checked in LOCKDOWN and blocks in MONITOR, so the mode default cannot pass for the rule.
    mode = LOCKDOWN if decision.startswith("ALLOW") else MONITOR
    doc = env.decide(path, ClientMode=mode)
    assert doc["decision"] == decision
    assert doc["allowed"] is decision.startswith("ALLOW")
    assert doc["rule"] == rule.to_wire()
    label = {"ALLOW": "Allowed", "BLOCK": "Blocked"}[decision.split("_")[0]]
    assert doc["rule_text"] == f"{label} ({RuleType[decision.split('_', 1)[1]].label})"
    rc, out, _ = env.check(path, ClientMode=mode)
    assert rc == (0 if decision.startswith("ALLOW") else 3)
    fields = _text(out)
    assert fields["Decision"] == decision
    assert fields["Rule"] == f"{doc['rule_text']} ({rule.identifier})"
    if rule.type is RuleType.CERTIFICATE:
        assert fi.signing_chain and rule.identifier == fi.signing_chain[0].sha256
    if rule.type is RuleType.CDHASH:
        assert fi.signing_status == "adhoc" and rule.identifier == fi.cdhash


def test_certificate_rule_applies_to_development_signed_code(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    path = corpus / COMMON / "signed-with-teamid"
    fi = file_info(path)
    assert fi.signing_status == "development"
    leaf = _entry(manifest, f"{COMMON}/signed-with-teamid")["signing_chain"][0]["sha256"]
    assert fi.signing_chain[0].sha256 == leaf
    env.rule("--block", "--certificate", "--identifier", leaf)
    doc = env.decide(path, ClientMode=MONITOR)
    assert (doc["decision"], doc["rule"]["identifier"]) == ("BLOCK_CERTIFICATE", leaf)


@pytest.mark.parametrize(
    ("file", "flags", "state"),
    [
        ("allowed_teamid", ("--teamid",), "--allow"),
        ("banned_teamid", ("--teamid",), "--block"),
        ("allowed_signingid", ("--signingid",), "--allow"),
        ("banned_signingid", ("--signingid",), "--block"),
    ],
)
def test_team_and_signing_id_rules_on_the_signed_corpus(
    corpus: Path, manifest: dict[str, Any], env: Env, file: str, flags: tuple[str, ...], state: str
) -> None:
    """santad drops Team ID and Signing ID of development-signed code before the lookup (§7.3, §8.3 step 2),
    so such a rule exists but does not decide; on production-signed code it would."""
    path = corpus / BINARYRULES / file
    fi = file_info(path)
    entry = _entry(manifest, f"{BINARYRULES}/{file}")
    assert fi.team_id == entry["team_id"] and fi.santa_signing_id == entry["santa_signing_id"]
    env.rule(state, *flags, "--path", str(path))
    (rule,) = env.rules()
    assert rule.identifier == (fi.team_id if flags == ("--teamid",) else fi.santa_signing_id)

    development = fi.signing_status == "development" and fi.signing_chain[0].is_development
    kind = "TEAMID" if flags == ("--teamid",) else "SIGNINGID"
    for mode, default in ((MONITOR, "ALLOW_UNKNOWN"), (LOCKDOWN, "BLOCK_UNKNOWN")):
        doc = env.decide(path, ClientMode=mode)
        if development:
            assert (doc["decision"], doc["rule"]) == (default, None)
        else:
            assert doc["decision"] == ("ALLOW_" if state == "--allow" else "BLOCK_") + kind
    assert development, "the corpus' team-signed binaries are development-signed"


def test_binary_block_beats_team_id_allow(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "banned_teamid_allowed_binary"
    env.rule("--allow", "--teamid", "--path", str(path))
    env.rule("--block", "--path", str(path))
    assert env.decide(path, ClientMode=MONITOR)["decision"] == "BLOCK_BINARY"


def test_binary_allow_beats_certificate_block(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "banned_teamid_allowed_binary"
    env.rule("--block", "--certificate", "--path", str(path))
    assert env.decide(path, ClientMode=MONITOR)["decision"] == "BLOCK_CERTIFICATE"
    env.rule("--allow", "--path", str(path))
    assert env.decide(path, ClientMode=LOCKDOWN)["decision"] == "ALLOW_BINARY"


def test_cdhash_beats_binary(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "allowed_cdhash"
    env.rule("--block", "--path", str(path))
    env.rule("--allow", "--cdhash", "--path", str(path))
    assert env.decide(path, ClientMode=LOCKDOWN)["decision"] == "ALLOW_CDHASH"


def test_silent_block(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "badbinary"
    env.rule("--silent-block", "--path", str(path), "--message", "quietly no")
    rc, out, _ = env.check(path)
    assert rc == 3
    fields = _text(out)
    assert fields["Decision"] == "BLOCK_BINARY (silent)"
    assert fields["Rule"].startswith("Blocked (Binary, Silent) (")
    doc = env.decide(path)
    assert (doc["decision"], doc["silent"], doc["allowed"]) == ("BLOCK_BINARY", True, False)
    assert doc["rule_text"] == "Blocked (Binary, Silent)"
    assert doc["custom_msg"] == "quietly no"
    assert doc["rule"]["policy"] == "SILENT_BLOCKLIST"


def test_compiler_rule(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    env.rule("--compiler", "--path", str(path))
    assert env.decide(path, ClientMode=LOCKDOWN)["decision"] == "ALLOW_BINARY"  # transitive rules off
    doc = env.decide(path, ClientMode=LOCKDOWN, EnableTransitiveRules=True)
    assert (doc["decision"], doc["allowed"]) == ("ALLOW_COMPILER", True)


@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["text", "json"])
def test_transitive_rule_decides_when_enabled(corpus: Path, env: Env, json_flag: tuple[str, ...]) -> None:
    """A transitive rule (santad made it) allows with EnableTransitiveRules; check must report it."""
    path = corpus / BINARYRULES / "goodbinary"
    env.add(Rule.create(file_info(path).sha256, RuleType.BINARY, RuleState.ALLOW_TRANSITIVE))
    assert env.decide(path, ClientMode=LOCKDOWN)["decision"] == "BLOCK_UNKNOWN"  # off: no match
    rc, out, err = env.check(path, *json_flag, ClientMode=LOCKDOWN, EnableTransitiveRules=True)
    assert (rc, err) == (0, "")
    decision = json.loads(out)["decision"] if json_flag else _text(out)["Decision"]
    assert decision == "ALLOW_TRANSITIVE"


# --- scopes, static rules, protections ---------------------------------------------------------------


def test_blocked_path_regex(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    fi = file_info(path)
    blocked = re.escape(os.path.dirname(fi.path)) + "/good.*"
    doc = env.decide(path, ClientMode=MONITOR, BlockedPathRegex=blocked)
    assert (doc["decision"], doc["explanation"], doc["rule"]) == ("BLOCK_SCOPE", "Blocked Path Regex", None)
    # The regex is anchored at the start of the path, as Santa anchors it.
    assert env.decide(path, ClientMode=MONITOR, BlockedPathRegex="good.*")["decision"] == "ALLOW_UNKNOWN"
    # Blocked beats allowed when both match.
    both = env.decide(path, ClientMode=LOCKDOWN, BlockedPathRegex=blocked, AllowedPathRegex=blocked)
    assert both["decision"] == "BLOCK_SCOPE"
    # A rule comes before any scope.
    env.rule("--allow", "--path", str(path))
    assert env.decide(path, ClientMode=MONITOR, BlockedPathRegex=blocked)["decision"] == "ALLOW_BINARY"


def test_allowed_path_regex(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    fi = file_info(path)
    allowed = re.escape(os.path.dirname(fi.path)) + "/"
    doc = env.decide(path, ClientMode=LOCKDOWN, AllowedPathRegex=allowed)
    assert (doc["decision"], doc["explanation"], doc["allowed"]) == ("ALLOW_SCOPE", "Allowed Path Regex", True)
    assert doc["lockdown_would_block"] is False
    other = corpus / COMMON / "yikes-universal"
    assert env.decide(other, ClientMode=LOCKDOWN, AllowedPathRegex=allowed)["decision"] == "BLOCK_UNKNOWN"
    env.rule("--block", "--path", str(path))
    assert env.decide(path, ClientMode=LOCKDOWN, AllowedPathRegex=allowed)["decision"] == "BLOCK_BINARY"


def test_not_macho_is_allow_scope(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    path = corpus / COMMON / "GIAG2.crt"
    assert _entry(manifest, f"{COMMON}/GIAG2.crt")["is_macho"] is False
    doc = env.decide(path, ClientMode=LOCKDOWN)
    assert (doc["decision"], doc["explanation"]) == ("ALLOW_SCOPE", "Not a Mach-O")


def test_static_rules_beat_rules_db(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    sha = file_info(path).sha256
    env.rule("--allow", "--path", str(path))
    static = {"identifier": sha.upper(), "policy": "BLOCKLIST", "rule_type": "BINARY", "custom_msg": "static says no"}
    doc = env.decide(path, ClientMode=MONITOR, StaticRules=[static])
    assert doc["decision"] == "BLOCK_BINARY"
    assert doc["rule"] == {**static, "identifier": sha, "custom_url": ""}
    assert doc["custom_msg"] == "static says no"


def test_static_rules_come_before_every_database_type(corpus: Path, env: Env) -> None:
    """Static rules are looked up first (§8.3 step 2): a static certificate rule wins over a DB binary rule."""
    path = corpus / BINARYRULES / "goodcert"
    fi = file_info(path)
    env.rule("--block", "--path", str(path))
    static = {"identifier": fi.signing_chain[0].sha256, "policy": "ALLOWLIST", "rule_type": "CERTIFICATE"}
    assert env.decide(path, ClientMode=LOCKDOWN, StaticRules=[static])["decision"] == "ALLOW_CERTIFICATE"
    assert env.decide(path, ClientMode=LOCKDOWN)["decision"] == "BLOCK_BINARY"


def test_bad_static_rule_is_an_error(corpus: Path, env: Env) -> None:
    bad = {"identifier": "nope", "policy": "BLOCKLIST", "rule_type": "BINARY"}
    rc, out, err = env.check(corpus / BINARYRULES / "goodbinary", StaticRules=[bad])
    assert (rc, out) == (1, "")
    assert err.startswith("santacore check: ") and "SHA-256" in err


@pytest.mark.parametrize("file", ["bad_pagezero", "missing_pagezero"])
def test_page_zero_protection(corpus: Path, manifest: dict[str, Any], env: Env, file: str) -> None:
    path = corpus / COMMON / file
    entry = _entry(manifest, f"{COMMON}/{file}")
    assert entry["is_missing_pagezero"] is True and "i386" in entry["architectures"]
    assert file_info(path).missing_pagezero is True
    for config in ({}, {"EnablePageZeroProtection": True}):  # on by default
        doc = env.decide(path, ClientMode=MONITOR, **config)
        assert (doc["decision"], doc["explanation"]) == ("BLOCK_SCOPE", "Missing __PAGEZERO")
    assert env.decide(path, ClientMode=MONITOR, EnablePageZeroProtection=False)["decision"] == "ALLOW_UNKNOWN"
    assert env.decide(path, ClientMode=LOCKDOWN, EnablePageZeroProtection=False)["decision"] == "BLOCK_UNKNOWN"
    # A binary allow rule comes first (step 2 before step 6).
    env.rule("--allow", "--path", str(path))
    assert env.decide(path, ClientMode=MONITOR)["decision"] == "ALLOW_BINARY"


def test_page_zero_protection_leaves_normal_binaries(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    path = corpus / COMMON / "32bitplist"
    assert _entry(manifest, f"{COMMON}/32bitplist")["is_missing_pagezero"] is False
    assert env.decide(path, ClientMode=MONITOR)["decision"] == "ALLOW_UNKNOWN"


def test_bad_signature_protection(corpus: Path, env: Env) -> None:
    path = corpus / COMMON / "cal-yikes-universal"
    assert file_info(path).signing_status == "invalid"
    doc = env.decide(path, ClientMode=MONITOR, EnableBadSignatureProtection=True)
    assert (doc["decision"], doc["explanation"]) == ("BLOCK_CERTIFICATE", "Blocked due to signature error")
    assert env.decide(path, ClientMode=MONITOR)["decision"] == "ALLOW_UNKNOWN"
    # Unsigned is not a signature error.
    unsigned = corpus / BINARYRULES / "goodbinary"
    assert env.decide(unsigned, ClientMode=MONITOR, EnableBadSignatureProtection=True)["decision"] == "ALLOW_UNKNOWN"


# --- --record (§5.2) ---------------------------------------------------------------------------------


def _one_event(env: Env) -> tuple[EventRow, StoredEvent]:
    rows = env.events()
    assert len(rows) == 1
    return rows[0], StoredEvent.from_record(rows[0].data)


def test_record_stores_one_event(corpus: Path, manifest: dict[str, Any], env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    fi = file_info(path)
    sha = _entry(manifest, f"{BINARYRULES}/goodbinary")["sha256"]
    before = time.time()
    rc, out, err = env.check(path, "--record", ClientMode=LOCKDOWN, SyncBaseURL=SYNC_URL)
    after = time.time()
    assert rc == 3 and _text(out)["Decision"] == "BLOCK_UNKNOWN"
    row, event = _one_event(env)
    assert err == f"Recorded event {row.idx} (BLOCK_UNKNOWN) in {env.events_db}\n"
    assert row.unique_id == sha
    assert event.idx == row.idx
    assert event.decision.value == "BLOCK_UNKNOWN"
    assert event.file_sha256 == sha
    assert event.file_path == fi.path
    assert before <= event.occurrence_date <= after
    assert event.pid == os.getpid() and event.ppid == os.getppid()
    assert event.execution_time == event.occurrence_date
    wire = event.to_wire()
    assert (wire["decision"], wire["file_name"], wire["file_path"]) == (
        "BLOCK_UNKNOWN",
        "goodbinary",
        os.path.dirname(fi.path),
    )
    assert "cdhash" not in wire  # unsigned


def test_record_development_signed_drops_team_and_signing_id(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "allowed_teamid"
    fi = file_info(path)
    assert fi.signing_status == "development" and fi.team_id
    assert env.check(path, "--record", ClientMode=LOCKDOWN, SyncBaseURL=SYNC_URL)[0] == 3
    _, event = _one_event(env)
    assert (event.decision.value, event.team_id, event.signing_id) == ("BLOCK_UNKNOWN", None, None)
    assert [c.sha256 for c in event.signing_chain] == [c.sha256 for c in fi.signing_chain]


def test_record_a_blocking_rule(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "badbinary"
    env.rule("--block", "--path", str(path))
    rc, _, err = env.check(path, "--record", "--json", ClientMode=MONITOR, SyncBaseURL=SYNC_URL)
    assert rc == 3
    row, event = _one_event(env)
    assert err == f"Recorded event {row.idx} (BLOCK_BINARY) in {env.events_db}\n"
    assert (event.decision.value, event.file_sha256) == ("BLOCK_BINARY", file_info(path).sha256)


def test_record_allow_unknown_in_monitor(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    assert env.check(path, "--record", ClientMode=MONITOR, SyncBaseURL=SYNC_URL)[0] == 0
    _, event = _one_event(env)
    assert event.decision.value == "ALLOW_UNKNOWN"


def test_record_nothing_for_unknown_with_disable_unknown_event_upload(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    rc, out, err = env.check(path, "--record", ClientMode=MONITOR, SyncBaseURL=SYNC_URL, DisableUnknownEventUpload=True)
    assert (rc, err) == (0, NOT_RECORDED)
    assert _text(out)["Decision"] == "ALLOW_UNKNOWN"
    assert env.events() == []
    # ...unless every event is uploaded.
    config = {"DisableUnknownEventUpload": True, "EnableAllEventUpload": True}
    assert env.check(path, "--record", ClientMode=MONITOR, SyncBaseURL=SYNC_URL, **config)[0] == 0
    assert _one_event(env)[1].decision.value == "ALLOW_UNKNOWN"


@pytest.mark.parametrize(
    ("setup", "decision"),
    [("rule", "ALLOW_BINARY"), ("scope", "ALLOW_SCOPE")],
)
def test_record_other_allows_only_with_enable_all_event_upload(
    corpus: Path, env: Env, setup: str, decision: str
) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    config: dict[str, Any] = {"ClientMode": LOCKDOWN, "SyncBaseURL": SYNC_URL}
    if setup == "rule":
        env.rule("--allow", "--path", str(path))
    else:
        config["AllowedPathRegex"] = re.escape(file_info(path).path)
    rc, out, err = env.check(path, "--record", **config)
    assert (rc, err) == (0, NOT_RECORDED)
    assert _text(out)["Decision"] == decision
    assert env.events() == []
    rc, _, err = env.check(path, "--record", EnableAllEventUpload=True, **config)
    assert rc == 0
    row, event = _one_event(env)
    assert err == f"Recorded event {row.idx} ({decision}) in {env.events_db}\n"
    assert event.decision.value == decision


@pytest.mark.parametrize("mode", [MONITOR, LOCKDOWN])
def test_record_nothing_without_sync_base_url(corpus: Path, env: Env, mode: int) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    rc, out, err = env.check(path, "--record", ClientMode=mode, EnableAllEventUpload=True)
    assert (rc, err) == (0 if mode == MONITOR else 3, NO_SYNC)
    assert _text(out)["Decision"] in ("ALLOW_UNKNOWN", "BLOCK_UNKNOWN")
    assert not env.events_db.exists()


def test_no_record_without_the_flag(corpus: Path, env: Env) -> None:
    rc, _, err = env.check(corpus / BINARYRULES / "goodbinary", ClientMode=LOCKDOWN, SyncBaseURL=SYNC_URL)
    assert (rc, err) == (3, "")
    assert not env.events_db.exists()


def test_record_twice_stores_two_events(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "badbinary"
    for _ in range(2):
        assert env.check(path, "--record", ClientMode=LOCKDOWN, SyncBaseURL=SYNC_URL)[0] == 3
    rows = env.events()
    assert len(rows) == 2 and rows[0].idx != rows[1].idx
    assert {StoredEvent.from_record(r.data).file_sha256 for r in rows} == {file_info(path).sha256}


# --- errors ----------------------------------------------------------------------------------------


def test_missing_file(corpus: Path, env: Env) -> None:
    missing = corpus / BINARYRULES / "no-such-binary"
    rc, out, err = env.check(missing)
    assert (rc, out) == (1, "")
    assert err.startswith("santacore check: ") and str(missing) in err


def test_foreign_rules_db(corpus: Path, env: Env) -> None:
    env.state.mkdir()
    env.rules_db.write_text("not a database\n", encoding="utf-8")
    rc, out, err = env.check(corpus / BINARYRULES / "goodbinary", "--record", SyncBaseURL=SYNC_URL)
    assert (rc, out) == (1, "")
    assert str(env.rules_db) in err and "not an SQLite database" in err
    assert env.rules_db.read_text(encoding="utf-8") == "not a database\n"
    assert not env.events_db.exists()


def test_subprocess_smoke(corpus: Path, env: Env) -> None:
    path = corpus / BINARYRULES / "goodbinary"
    config = env.config(ClientMode=LOCKDOWN, SyncBaseURL=SYNC_URL)
    done = subprocess.run(
        [sys.executable, "-m", "santacore", "check", "--config", str(config), "--json", "--record", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr  # blocked
    doc = json.loads(done.stdout)
    assert (doc["decision"], doc["sha256"]) == ("BLOCK_UNKNOWN", file_info(path).sha256)
    row, event = _one_event(env)
    assert done.stderr == f"Recorded event {row.idx} (BLOCK_UNKNOWN) in {env.events_db}\n"
    assert event.pid != os.getpid() and event.ppid == os.getpid()


# --- exit status and usage -------------------------------------------------------------------------


def _santacore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "santacore", *args], capture_output=True, text=True, timeout=60)


def test_exit_status_a_script_can_branch_on(corpus: Path, env: Env) -> None:
    path = str(corpus / BINARYRULES / "goodbinary")
    assert _santacore("check", "--config", str(env.config(ClientMode=MONITOR)), path).returncode == 0
    assert _santacore("check", "--config", str(env.config(ClientMode=LOCKDOWN)), path).returncode == 3
    missing = _santacore("check", "--config", str(env.config()), str(env.tmp / "missing"))
    assert missing.returncode == 1 and missing.stdout == ""
    help_text = _santacore("check", "--help").stdout
    assert "0 allowed; 3 blocked; 1 error" in " ".join(help_text.split())


def test_upload_without_record_is_a_usage_error(corpus: Path, env: Env) -> None:
    done = _santacore("check", "--config", str(env.config()), "--upload", str(corpus / BINARYRULES / "goodbinary"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("usage: santacore check ")
    assert "santacore check: error: --upload uploads the recorded event and needs --record" in done.stderr
