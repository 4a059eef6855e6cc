"""The stored-event model, its wire forms and its events.db record (spec §3.2, §4, §5.1, §6.6, §9.1).

Expectations (keys, order, types, omissions) come from the spec; values come from the corpus
files through `file_info`/`hash_bundle` and from the manifest, never from literals.
"""

from __future__ import annotations

import dataclasses
import json
import os
import plistlib
import pwd
import secrets
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from santacore.errors import SantacoreError
from santacore.identity.bundle import hash_bundle
from santacore.identity.fileinfo import FileInfo, file_info
from santacore.santad import event_builders as builders
from santacore.santad import events as ev
from santacore.santad.decisions import Decision
from santacore.santad.event_builders import bundle_events, encode_entitlements, execution_event
from santacore.santad.events import (
    DISTANT_FUTURE,
    Certificate,
    EventDecodeError,
    SigningStatus,
    StoredEvent,
    Variant,
    upload_body,
    with_bundle_fields,
)
from santacore.santad.sessions import (
    CS_DEV_CODE,
    CS_HARD,
    CS_KILL,
    CS_SIGNED,
    CS_VALID,
    ExecutionContext,
    UtmpEntry,
    parse_utmp,
    sessions,
)
from tests.spec_tables import SPEC_EVENT_FIELDS

EVENT_KEYS = tuple(k for k, _ in SPEC_EVENT_FIELDS)
# §4.1: [N]'s fields 29–34, as protobuf-JSON spells them.
N_KEYS = ("entitlementInfo", "csFlags", "signingStatus", "secureSigningTime", "signingTime", "static_rule")
# §4.3: Certificate keys in order.
CERT_KEYS = ("sha256", "cn", "org", "ou", "valid_from", "valid_until")
# §4.4: what a BUNDLE_BINARY event never carries.
NO_BUNDLE_BINARY_KEYS = (
    "execution_time",
    "executing_user",
    "pid",
    "ppid",
    "parent_name",
    "logged_in_users",
    "current_sessions",
    "quarantine_data_url",
    "quarantine_referer_url",
    "quarantine_timestamp",
    "quarantine_agent_bundle_id",
)
# The §4.1 example's key set (an execution event of a signed binary in a bundle).
EXAMPLE_KEYS = {
    "file_sha256",
    "file_path",
    "file_name",
    "executing_user",
    "execution_time",
    "logged_in_users",
    "current_sessions",
    "decision",
    "file_bundle_id",
    "file_bundle_path",
    "file_bundle_name",
    "file_bundle_version",
    "file_bundle_version_string",
    "pid",
    "ppid",
    "parent_name",
    "team_id",
    "signing_id",
    "cdhash",
    "signing_chain",
}
PROTOBUF_VARIANTS = (Variant.GOOGLE, Variant.GOOGLE_2024_6, Variant.NORTHPOLESEC)
# The §4.1 example's process context.
EXAMPLE_CONTEXT = ExecutionContext(
    executing_user="bob",
    pid=8123,
    ppid=1,
    parent_name="launchd",
    logged_in_users=("bob",),
    current_sessions=("bob@console", "bob@ttys001"),
    cs_flags=CS_SIGNED | CS_VALID | CS_KILL | CS_HARD,
)
EXAMPLE_TIME = 1718035512.8042209
SIGNED = (
    "santa/northpolesec/santad/testdata/binaryrules/allowed_teamid",
    "santa/northpolesec/common/verifyinghasher/testdata/hw_team_signed",
)
UNSIGNED = "santa/northpolesec/santad/testdata/binaryrules/goodbinary"
INCONSISTENT = "registry/pypi/py2app/0.28.10/py2app/apptemplate/prebuilt/main-universal2"
ENTITLED = "santa/northpolesec/common/verifyinghasher/testdata/hw_entitled"
BUNDLE_EXAMPLE = "santa/northpolesec/common/testdata/BundleExample.app"


def _entry(manifest: dict[str, Any], path: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(f for f in manifest["files"] if f["path"] == path)
    return entry


def _expected(entry: dict[str, Any], name: str) -> Any:
    """A manifest field as Santa on an Apple-silicon host reports it."""
    if name in entry.get("host_dependent_fields", []):
        return entry[f"{name}_by_host"]["apple_silicon"]
    return entry[name]


def _is_type(value: Any, proto: str) -> bool:
    if proto == "string" or proto == "enum":
        return isinstance(value, str) and value != ""
    if proto == "double":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if proto in ("uint32", "int32"):
        return isinstance(value, int) and not isinstance(value, bool) and value != 0
    if proto == "list<string>":
        return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    assert proto == "list<Certificate>"
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _assert_proto_order(doc: dict[str, Any], keys: tuple[str, ...]) -> None:
    assert set(doc) <= set(keys), set(doc) - set(keys)
    assert list(doc) == [k for k in keys if k in doc]


def _as_production(fi: FileInfo) -> FileInfo:
    """`fi` with a leaf certificate that is a production (not development) signing certificate."""
    host = fi.host
    assert host is not None and host.chain
    leaf = dataclasses.replace(
        host.chain[0],
        extension_oids=("1.2.840.113635.100.6.1.13",),
        production_signing_oids=("1.2.840.113635.100.6.1.13",),
    )
    slices = tuple(dataclasses.replace(s, chain=(leaf, *s.chain[1:])) if s.arch == host.arch else s for s in fi.slices)
    return dataclasses.replace(fi, slices=slices)


def _full_event(decision: Decision = Decision.BLOCK_BINARY, **changes: Any) -> StoredEvent:
    """An event with every field set to a non-empty value."""
    values: dict[str, Any] = dict(
        file_sha256="a" * 64,
        file_path="/Applications/Acme.app/Contents/MacOS/Acme",
        decision=decision,
        occurrence_date=1718035512.5,
        executing_user="bob",
        logged_in_users=("bob",),
        current_sessions=("bob@console",),
        file_bundle_id="com.acme.app",
        file_bundle_path="/Applications/Acme.app",
        file_bundle_executable_rel_path="Contents/MacOS/Acme",
        file_bundle_name="Acme",
        file_bundle_version="412",
        file_bundle_version_string="4.1.2",
        file_bundle_hash="b" * 64,
        file_bundle_hash_millis=12.75,
        file_bundle_binary_count=3,
        pid=8123,
        ppid=1,
        parent_name="launchd",
        team_id="ABCDE12345",
        signing_id="ABCDE12345:com.acme.app",
        cdhash="c" * 40,
        quarantine_data_url="https://example.com/acme.dmg",
        quarantine_referer_url="https://example.com/",
        quarantine_timestamp=1718000000.9,
        quarantine_agent_bundle_id="com.google.Chrome",
        signing_chain=(Certificate("d" * 64, "Developer ID Application", "Acme Inc", "ABCDE12345", 1, 2),),
        entitlements=(("com.apple.security.cs.allow-jit", "true"),),
        entitlements_filtered=True,
        cs_flags=CS_SIGNED | CS_VALID,
        signing_status=SigningStatus.PRODUCTION,
        secure_signing_time=1700000000,
        signing_time=1700000001,
        static_rule=True,
        needs_bundle_hash=True,
    )
    values.update(changes)
    return StoredEvent(**values)


def _empty_event(decision: Decision = Decision.UNKNOWN) -> StoredEvent:
    """An event whose optional fields hold empty strings, zeros, empty lists and false."""
    return StoredEvent(
        file_sha256="a" * 64,
        file_path="/bin/yes",
        decision=decision,
        occurrence_date=0.0,
        executing_user="",
        file_bundle_id="",
        file_bundle_path="",
        file_bundle_hash="",
        file_bundle_hash_millis=0.0,
        file_bundle_binary_count=0,
        pid=0,
        ppid=0,
        parent_name="",
        team_id="",
        signing_id="",
        cdhash="",
        quarantine_data_url="",
        quarantine_timestamp=0.0,
        signing_chain=(Certificate("d" * 64, None, "", None, 0, 0),),
    )


# ---------------------------------------------------------------------------------------------
# Execution events on the wire


@pytest.mark.parametrize("path", SIGNED)
def test_execution_event_wire_key_by_key(corpus: Path, manifest: dict[str, Any], path: str) -> None:
    entry = _entry(manifest, path)
    fi = file_info(corpus / path)
    event = execution_event(fi, Decision.BLOCK_UNKNOWN, context=EXAMPLE_CONTEXT, now=EXAMPLE_TIME)
    wire = event.to_wire()
    _assert_proto_order(wire, EVENT_KEYS)
    types = dict(SPEC_EVENT_FIELDS)
    for key, value in wire.items():
        assert _is_type(value, types[key]), (key, value)

    full = str(corpus / path)
    assert wire["file_sha256"] == entry["sha256"]
    assert wire["file_path"] == os.path.dirname(full)
    assert wire["file_name"] == os.path.basename(full)
    assert wire["executing_user"] == EXAMPLE_CONTEXT.executing_user
    assert wire["execution_time"] == EXAMPLE_TIME
    assert wire["logged_in_users"] == list(EXAMPLE_CONTEXT.logged_in_users)
    assert wire["current_sessions"] == list(EXAMPLE_CONTEXT.current_sessions)
    assert wire["decision"] == "BLOCK_UNKNOWN"
    assert (wire["pid"], wire["ppid"], wire["parent_name"]) == (8123, 1, "launchd")
    # Signed with a development certificate: santad drops Team ID and Signing ID (§4.1 rows 21–22, §7.3).
    assert _expected(entry, "santa_signing_status") == "development"
    assert "team_id" not in wire and "signing_id" not in wire
    # CS_SIGNED + CS_VALID + CS_KILL/CS_HARD and a verified signature: the cdhash is carried (row 23).
    assert wire["cdhash"] == _expected(entry, "cdhash")
    chain = _expected(entry, "signing_chain")
    assert [list(c) for c in wire["signing_chain"]] == [list(CERT_KEYS)] * len(chain)
    assert wire["signing_chain"] == [{k: c[k] for k in CERT_KEYS} for c in chain]
    # Not in a bundle, not quarantined: none of those keys (§4.1 serialisation rules).
    assert not {k for k in wire if k.startswith(("file_bundle_", "quarantine_"))}
    # The §4.1 example's key set, less its bundle keys (this binary is in no bundle) and the dropped IDs.
    bundle_keys = {k for k in EXAMPLE_KEYS if k.startswith("file_bundle_")}
    assert set(wire) == EXAMPLE_KEYS - bundle_keys - {"team_id", "signing_id"}


@pytest.mark.parametrize("path", SIGNED)
def test_production_signed_execution_keeps_team_and_signing_id(
    corpus: Path, manifest: dict[str, Any], path: str
) -> None:
    entry = _entry(manifest, path)
    fi = _as_production(file_info(corpus / path))
    assert fi.signing_status == "production"
    wire = execution_event(fi, Decision.ALLOW_TEAMID, context=EXAMPLE_CONTEXT, now=EXAMPLE_TIME).to_wire()
    assert wire["team_id"] == entry["team_id"]
    assert wire["signing_id"] == entry["santa_signing_id"]
    assert wire["decision"] == "ALLOW_TEAMID"
    assert set(wire) == EXAMPLE_KEYS - {k for k in EXAMPLE_KEYS if k.startswith("file_bundle_")}


def test_runtime_cs_dev_code_drops_ids(corpus: Path) -> None:
    fi = _as_production(file_info(corpus / SIGNED[0]))
    flags = CS_SIGNED | CS_VALID | CS_KILL | CS_DEV_CODE
    event = execution_event(fi, Decision.BLOCK_UNKNOWN, context=ExecutionContext(cs_flags=flags))
    assert event.team_id is None and event.signing_id is None and event.cdhash == fi.cdhash


@pytest.mark.parametrize("flags", [0, CS_SIGNED | CS_VALID, CS_SIGNED | CS_KILL, CS_VALID | CS_HARD])
def test_cdhash_needs_signed_valid_and_kill_or_hard(corpus: Path, flags: int) -> None:
    fi = file_info(corpus / SIGNED[0])
    event = execution_event(fi, Decision.BLOCK_UNKNOWN, context=ExecutionContext(cs_flags=flags))
    assert event.cdhash is None
    assert "cdhash" not in event.to_wire()
    assert event.cs_flags == flags


def test_default_flags_come_from_the_code_directory(corpus: Path) -> None:
    fi = file_info(corpus / SIGNED[0])
    host = fi.host
    assert host is not None and host.signature is not None
    flags = builders.static_cs_flags(fi)
    assert flags & CS_SIGNED and flags & CS_VALID
    assert bool(flags & (CS_KILL | CS_HARD)) == bool(host.signature.flags & (CS_KILL | CS_HARD))
    assert builders.static_cs_flags(file_info(corpus / UNSIGNED)) == 0


def test_unsigned_execution_event(corpus: Path, manifest: dict[str, Any]) -> None:
    assert _entry(manifest, UNSIGNED)["signed"] is False
    event = execution_event(file_info(corpus / UNSIGNED), Decision.BLOCK_BINARY, context=EXAMPLE_CONTEXT)
    assert (event.team_id, event.signing_id, event.signing_chain) == (None, None, ())
    assert event.cdhash == ""  # §4.1 row 23: unsigned → empty string
    wire = event.to_wire()
    assert not {"team_id", "signing_id", "cdhash", "signing_chain"} & set(wire)
    legacy = event.to_wire(Variant.GOOGLE_JSON)
    assert legacy["cdhash"] == "" and legacy["signing_chain"] == []
    assert event.to_wire(Variant.NORTHPOLESEC)["signingStatus"] == "SIGNING_STATUS_UNSIGNED"


def test_invalid_signature_execution_event(corpus: Path, manifest: dict[str, Any]) -> None:
    assert _entry(manifest, INCONSISTENT)["santa_signing_consistency"] == "inconsistent"
    event = execution_event(file_info(corpus / INCONSISTENT), Decision.BLOCK_BINARY, context=EXAMPLE_CONTEXT)
    # Validation failed: no Team ID, Signing ID, cdhash or chain (§7.3).
    assert (event.team_id, event.signing_id, event.cdhash, event.signing_chain) == (None, None, None, ())
    assert event.to_wire(Variant.NORTHPOLESEC)["signingStatus"] == "SIGNING_STATUS_INVALID"


def test_execution_event_in_a_bundle_uses_the_nearest_bundle(corpus: Path, manifest: dict[str, Any]) -> None:
    b = next(x for x in manifest["bundles"] if x["bundle_root"] == BUNDLE_EXAMPLE)
    fi = file_info(corpus / b["bundle_root"] / b["main_executable"])
    wire = execution_event(fi, Decision.BLOCK_UNKNOWN, context=EXAMPLE_CONTEXT).to_wire()
    assert wire["file_bundle_path"] == str(corpus / b["bundle_root"])
    assert wire["file_bundle_id"] == b["bundle_id"]
    assert wire["file_bundle_name"] == b["bundle_name"]
    assert wire["file_bundle_version"] == b["bundle_version"]
    assert wire["file_bundle_version_string"] == b["bundle_version_string"]
    # Only bundle hashing sets these (§4.1 rows 11, 15–17).
    for key in ("file_bundle_executable_rel_path", "file_bundle_hash", "file_bundle_hash_millis"):
        assert key not in wire
    _assert_proto_order(wire, EVENT_KEYS)


def test_execution_event_rejects_bundle_binary(corpus: Path) -> None:
    with pytest.raises(ValueError, match="bundle_events"):
        execution_event(file_info(corpus / UNSIGNED), Decision.BUNDLE_BINARY)


def test_northpolesec_extras(corpus: Path, manifest: dict[str, Any]) -> None:
    entry = _entry(manifest, ENTITLED)
    fi = file_info(corpus / ENTITLED)
    event = execution_event(fi, Decision.ALLOW_UNKNOWN, context=EXAMPLE_CONTEXT, now=EXAMPLE_TIME)
    wire = event.to_wire(Variant.NORTHPOLESEC)
    _assert_proto_order(wire, (*EVENT_KEYS, *N_KEYS))
    info = wire["entitlementInfo"]
    assert list(info) == ["entitlements"]  # entitlementsFiltered false: omitted
    assert [e["key"] for e in info["entitlements"]] == list(entry["entitlements"])
    assert [json.loads(e["value"]) for e in info["entitlements"]] == list(entry["entitlements"].values())
    assert wire["csFlags"] == event.cs_flags != 0
    assert wire["signingStatus"] == "SIGNING_STATUS_" + entry["santa_signing_status"].upper()
    assert wire["signingTime"] == entry["signing_time"]
    assert "secureSigningTime" not in wire and entry["secure_signing_time"] is None
    assert "static_rule" not in wire
    # The other variants know none of these keys.
    for variant in (Variant.GOOGLE, Variant.GOOGLE_2024_6, Variant.GOOGLE_JSON):
        assert not set(N_KEYS) & set(event.to_wire(variant))


# ---------------------------------------------------------------------------------------------
# Variant rules


def test_full_event_every_variant_in_proto_order() -> None:
    event = _full_event()
    for variant in Variant:
        wire = event.to_wire(variant)
        keys = (*EVENT_KEYS, *N_KEYS) if variant is Variant.NORTHPOLESEC else EVENT_KEYS
        _assert_proto_order(wire, keys)
        assert set(wire) == set(keys)
        assert list(wire["signing_chain"][0]) == list(CERT_KEYS)


def test_counters_and_timestamps_per_variant() -> None:
    event = _full_event(file_bundle_hash_millis=12.999)
    google = event.to_wire(Variant.GOOGLE)
    assert google["file_bundle_hash_millis"] == 12  # truncated to uint32
    assert google["file_bundle_binary_count"] == 3
    assert google["quarantine_timestamp"] == 1718000000  # uint32 of the double
    assert google["execution_time"] == 1718035512.5
    quirk = event.to_wire(Variant.GOOGLE_2024_6)
    assert quirk["file_bundle_hash_millis"] == "12" and quirk["file_bundle_binary_count"] == "3"
    legacy = event.to_wire(Variant.GOOGLE_JSON)
    assert legacy["file_bundle_hash_millis"] == 12.999  # [G-JSON]: the double itself
    assert legacy["quarantine_timestamp"] == 1718000000.9
    assert event.to_wire(Variant.NORTHPOLESEC)["file_bundle_hash_millis"] == 12
    huge = _full_event(file_bundle_hash_millis=float(2**32 + 5))
    assert huge.to_wire()["file_bundle_hash_millis"] == 5


@pytest.mark.parametrize("variant", PROTOBUF_VARIANTS)
def test_protobuf_json_omits_empty_values(variant: Variant) -> None:
    event = _empty_event(Decision.BLOCK_BINARY)
    wire = event.to_wire(variant)
    expected = {"file_sha256", "file_path", "file_name", "decision", "signing_chain"}
    if variant is Variant.NORTHPOLESEC:
        expected.add("entitlementInfo")  # a present (empty) message
        assert wire["entitlementInfo"] == {}
    assert set(wire) == expected
    # Certificate entries omit empty values too (§4.3).
    assert wire["signing_chain"] == [{"sha256": "d" * 64}]


def test_unknown_decision_per_variant() -> None:
    event = _empty_event(Decision.UNKNOWN)
    assert "decision" not in event.to_wire(Variant.GOOGLE)  # enum 0 omitted
    assert "decision" not in event.to_wire(Variant.GOOGLE_2024_6)
    assert event.to_wire(Variant.GOOGLE_JSON)["decision"] == "UNKNOWN"
    assert not event.uploaded_in(Variant.NORTHPOLESEC)
    with pytest.raises(ValueError):
        event.to_wire(Variant.NORTHPOLESEC)


def test_google_json_omits_only_nil() -> None:
    event = _empty_event(Decision.BLOCK_BINARY)
    wire = event.to_wire(Variant.GOOGLE_JSON)
    for key in ("executing_user", "file_bundle_id", "team_id", "signing_id", "cdhash", "quarantine_data_url"):
        assert wire[key] == ""
    assert wire["pid"] == 0 and wire["file_bundle_binary_count"] == 0 and wire["file_bundle_hash_millis"] == 0
    assert wire["logged_in_users"] == [] and wire["current_sessions"] == []
    assert wire["signing_chain"] == [{"sha256": "d" * 64, "org": "", "valid_from": 0, "valid_until": 0}]
    # Never set: left out. signing_chain and quarantine_timestamp are always sent.
    bare = StoredEvent(file_sha256="a" * 64, file_path="/bin/yes", decision=Decision.BLOCK_BINARY, occurrence_date=1.0)
    legacy = bare.to_wire(Variant.GOOGLE_JSON)
    assert legacy["signing_chain"] == [] and legacy["quarantine_timestamp"] == 0
    assert "file_bundle_hash_millis" not in legacy and "team_id" not in legacy and "pid" not in legacy
    google = bare.to_wire(Variant.GOOGLE)
    assert "signing_chain" not in google and "quarantine_timestamp" not in google


@pytest.mark.parametrize("variant", list(Variant))
def test_bundle_binary_carries_no_process_data(variant: Variant) -> None:
    event = _full_event(Decision.BUNDLE_BINARY)
    assert event.execution_time is None
    wire = event.to_wire(variant)
    assert wire["decision"] == "BUNDLE_BINARY"
    carried = set(NO_BUNDLE_BINARY_KEYS) & set(wire)
    if variant is Variant.GOOGLE_JSON:
        assert carried == {"quarantine_timestamp"} and wire["quarantine_timestamp"] == 0
    else:
        assert carried == set()
    for key in ("file_bundle_hash", "cdhash", "team_id", "signing_id", "signing_chain"):
        assert key in wire


def test_upload_body_per_variant() -> None:
    known, unknown = _full_event(), _empty_event(Decision.UNKNOWN)
    body = upload_body([known, unknown], "50C7E1EB-2EF5-42D4-A084-A7966FC45A95")
    assert list(body) == ["events", "machine_id"]
    assert body["machine_id"] == "50C7E1EB-2EF5-42D4-A084-A7966FC45A95"
    assert body["events"] == [known.to_wire(), unknown.to_wire()]
    n_body = upload_body([known, unknown], "m", variant=Variant.NORTHPOLESEC)
    assert n_body["events"] == [known.to_wire(Variant.NORTHPOLESEC)]  # no v1 decision: not uploaded
    assert upload_body([known], "m", variant=Variant.GOOGLE_JSON) == {"events": [known.to_wire(Variant.GOOGLE_JSON)]}
    assert upload_body([unknown], "m", variant=Variant.NORTHPOLESEC) == {"machine_id": "m"}
    json.dumps(body, allow_nan=False)  # serialisable as is


def test_path_split_like_nsstring() -> None:
    cases = {"/usr/bin/yes": ("/usr/bin", "yes"), "/yes": ("/", "yes"), "yes": ("", "yes"), "/a/b/": ("/a", "b")}
    for path, (directory, name) in cases.items():
        event = dataclasses.replace(_full_event(), file_path=path)
        assert (event.file_directory, event.file_name) == (directory, name)
        wire = event.to_wire(Variant.GOOGLE_JSON)
        assert (wire["file_path"], wire["file_name"]) == (directory, name)


# ---------------------------------------------------------------------------------------------
# BUNDLE_BINARY events


def _santa_bundles(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in manifest["bundles"] if b["santa_ancestor_bundle_root"] is not None]


def test_bundle_events_for_every_corpus_bundle(corpus: Path, manifest: dict[str, Any]) -> None:
    checked = 0
    for b in _santa_bundles(manifest):
        ancestor = next(x for x in manifest["bundles"] if x["bundle_root"] == b["santa_ancestor_bundle_root"])
        root = corpus / ancestor["bundle_root"]
        bh = hash_bundle(corpus / b["bundle_root"])
        events = bundle_events(bh)
        assert len(events) == b["santa_bundleinfo"]["binary_count"] == ancestor["binary_count"], b["bundle_root"]
        assert {os.path.relpath(e.file_path, root): e.file_sha256 for e in events}.items() <= ancestor[
            "binaries"
        ].items()
        assert {e.file_sha256 for e in events} == set(ancestor["binaries"].values())
        assert len({e.idx for e in events}) == len(events)
        for event in events:
            assert event.decision is Decision.BUNDLE_BINARY
            assert event.occurrence_date == DISTANT_FUTURE and event.execution_time is None
            assert event.file_bundle_hash == ancestor["bundle_hash"] == b["santa_bundleinfo"]["bundle_hash"]
            assert event.file_bundle_binary_count == ancestor["binary_count"]
            assert event.file_bundle_hash_millis == bh.hash_millis
            assert event.file_bundle_path == str(root)
            assert event.file_bundle_id == ancestor["bundle_id"]
            assert event.file_bundle_name == ancestor["bundle_name"]
            assert event.file_bundle_version == ancestor["bundle_version"]
            assert event.file_bundle_version_string == ancestor["bundle_version_string"]
            assert event.file_bundle_executable_rel_path == ancestor["main_executable"]
            assert (event.executing_user, event.pid, event.ppid, event.logged_in_users) == (None, None, None, ())
            relpath = os.path.relpath(event.file_path, corpus)
            entry = next((f for f in manifest["files"] if f["path"] == relpath), None)
            if entry is not None and entry["is_macho"]:
                consistency = entry["santa_signing_consistency"]
                signed = consistency in ("adhoc", "signed")
                no_cdhash = "" if consistency == "unsigned" else None  # inconsistent universal: none
                assert event.cdhash == (_expected(entry, "cdhash") if signed else no_cdhash)
                assert event.team_id == (entry["team_id"] if signed else None)
                assert event.signing_id == (_expected(entry, "santa_signing_id") if signed else None)
            for variant in Variant:
                wire = event.to_wire(variant)
                assert wire["file_bundle_hash"] == ancestor["bundle_hash"]
                assert wire["file_bundle_path"] == str(root)
                assert "execution_time" not in wire
                if variant in (Variant.GOOGLE, Variant.NORTHPOLESEC):
                    assert wire.get("file_bundle_hash_millis", 0) == int(bh.hash_millis)
            checked += 1
    assert checked >= 8


def test_no_bundle_hash_no_events(corpus: Path, manifest: dict[str, Any]) -> None:
    empty = next(b for b in _santa_bundles(manifest) if b["binary_count"] == 0)
    bh = hash_bundle(corpus / empty["bundle_root"])
    assert bh.bundle_hash is None and bundle_events(bh) == []
    event = _full_event(file_bundle_hash=None, file_bundle_hash_millis=None, file_bundle_binary_count=None)
    assert with_bundle_fields(event, bh) is event  # §6.6: handled as a plain event


def _plist(path: Path, identifier: str, executable: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        plistlib.dumps({"CFBundleIdentifier": identifier, "CFBundleExecutable": executable, "CFBundleName": identifier})
    )


@pytest.fixture
def nested_app(corpus: Path, tmp_path: Path) -> Path:
    """Outer.app holding a developer-signed main executable (twice), an inconsistent universal
    binary, and Inner.appex (not an ancestor-bundle extension) with an unsigned executable."""
    app = tmp_path / "Outer.app"
    _plist(app / "Contents" / "Info.plist", "com.example.outer", "Outer")
    macos = app / "Contents" / "MacOS"
    macos.mkdir(parents=True)
    shutil.copyfile(corpus / SIGNED[1], macos / "Outer")
    shutil.copyfile(corpus / SIGNED[1], macos / "OuterCopy")
    shutil.copyfile(corpus / INCONSISTENT, macos / "Mixed")
    appex = app / "Contents" / "PlugIns" / "Inner.appex"
    _plist(appex / "Contents" / "Info.plist", "com.example.inner", "Inner")
    (appex / "Contents" / "MacOS").mkdir(parents=True)
    shutil.copyfile(corpus / UNSIGNED, appex / "Contents" / "MacOS" / "Inner")
    return app


def test_bundle_events_signing_values_per_binary(nested_app: Path, manifest: dict[str, Any]) -> None:
    bh = hash_bundle(nested_app)
    events = {os.path.basename(e.file_path): e for e in bundle_events(bh)}
    assert bh.binary_count == 3 == len(events)  # Outer and OuterCopy share a SHA-256: one event
    signed = events.get("Outer") or events["OuterCopy"]
    entry = _entry(manifest, SIGNED[1])
    # BUNDLE_BINARY events keep Team ID and Signing ID (no santad development drop) and the cdhash.
    assert signed.team_id == entry["team_id"]
    assert signed.signing_id == entry["santa_signing_id"]
    assert signed.cdhash == _expected(entry, "cdhash")
    assert [c.sha256 for c in signed.signing_chain] == [c["sha256"] for c in _expected(entry, "signing_chain")]
    # A universal binary failing the consistency check: no cdhash (§4.1 row 23).
    mixed = events["Mixed"]
    assert (mixed.cdhash, mixed.team_id, mixed.signing_id, mixed.signing_chain) == (None, None, None, ())
    # Unsigned: empty cdhash, omitted in protobuf-JSON, "" in [G-JSON].
    inner = events["Inner"]
    assert inner.cdhash == "" and "cdhash" not in inner.to_wire()
    assert inner.to_wire(Variant.GOOGLE_JSON)["cdhash"] == ""
    for event in events.values():
        assert event.file_bundle_path == str(nested_app) and event.file_bundle_id == "com.example.outer"
        assert event.file_bundle_executable_rel_path == "Contents/MacOS/Outer"


def test_with_bundle_fields_keeps_the_nearest_bundle(nested_app: Path) -> None:
    inner_exe = nested_app / "Contents" / "PlugIns" / "Inner.appex" / "Contents" / "MacOS" / "Inner"
    blocked = execution_event(file_info(inner_exe), Decision.BLOCK_UNKNOWN, needs_bundle_hash=True)
    assert blocked.file_bundle_path == str(inner_exe.parents[2]) and blocked.file_bundle_id == "com.example.inner"
    bh = hash_bundle(inner_exe)
    assert bh.bundle_root == str(nested_app)
    updated = with_bundle_fields(blocked, bh)
    assert updated.idx == blocked.idx
    assert (updated.file_bundle_path, updated.file_bundle_id, updated.file_bundle_name) == (
        blocked.file_bundle_path,
        blocked.file_bundle_id,
        blocked.file_bundle_name,
    )
    assert updated.file_bundle_hash == bh.bundle_hash == updated.bundle_hash
    assert updated.file_bundle_binary_count == bh.binary_count == len(bundle_events(bh))
    assert updated.file_bundle_hash_millis == bh.hash_millis
    assert updated.file_bundle_executable_rel_path == "Contents/MacOS/Outer"
    wire = updated.to_wire()
    assert wire.get("file_bundle_hash_millis", 0) == int(bh.hash_millis)  # absent when under 1 ms (zero)
    assert wire["execution_time"] == blocked.occurrence_date


# ---------------------------------------------------------------------------------------------
# events.db records


def test_record_holds_internal_fields(corpus: Path) -> None:
    event = execution_event(file_info(corpus / SIGNED[0]), Decision.BLOCK_TEAMID, needs_bundle_hash=True)
    doc = json.loads(event.to_record())
    assert doc["decision"] == Decision.BLOCK_TEAMID.event_state  # SNTEventState, not the wire string
    assert doc["file_path"] == str(corpus / SIGNED[0])  # the full path
    assert doc["idx"] == event.idx and doc["occurrence_date"] == event.occurrence_date
    assert doc["needs_bundle_hash"] is True
    assert StoredEvent.from_record(event.to_record()) == event
    assert event.unique_id == event.file_sha256 == doc["file_sha256"]


def test_record_round_trip_for_corpus_events(corpus: Path, manifest: dict[str, Any]) -> None:
    samples = [execution_event(file_info(corpus / p), Decision.ALLOW_UNKNOWN) for p in (*SIGNED, UNSIGNED, ENTITLED)]
    for b in _santa_bundles(manifest):
        samples += bundle_events(hash_bundle(corpus / b["bundle_root"]))
    for event in samples:
        again = StoredEvent.from_record(event.to_record())
        assert again == event
        for variant in Variant:
            if event.uploaded_in(variant):
                assert again.to_wire(variant) == event.to_wire(variant)


_text = st.text(max_size=20)
_opt_text = st.none() | _text
_u32 = st.integers(0, 2**32 - 1)
_opt_float = st.none() | st.floats(allow_nan=False, allow_infinity=False)
_certs = st.builds(Certificate, _text, _opt_text, _opt_text, _opt_text, _u32, _u32)
_events = st.builds(
    StoredEvent,
    file_sha256=_text,
    file_path=_text,
    decision=st.sampled_from(list(Decision)),
    occurrence_date=st.floats(allow_nan=False, allow_infinity=False),
    executing_user=_opt_text,
    logged_in_users=st.lists(_text, max_size=3).map(tuple),
    current_sessions=st.lists(_text, max_size=3).map(tuple),
    file_bundle_id=_opt_text,
    file_bundle_path=_opt_text,
    file_bundle_executable_rel_path=_opt_text,
    file_bundle_name=_opt_text,
    file_bundle_version=_opt_text,
    file_bundle_version_string=_opt_text,
    file_bundle_hash=_opt_text,
    file_bundle_hash_millis=_opt_float,
    file_bundle_binary_count=st.none() | _u32,
    pid=st.none() | st.integers(-(2**31), 2**31 - 1),
    ppid=st.none() | st.integers(-(2**31), 2**31 - 1),
    parent_name=_opt_text,
    team_id=_opt_text,
    signing_id=_opt_text,
    cdhash=_opt_text,
    quarantine_data_url=_opt_text,
    quarantine_referer_url=_opt_text,
    quarantine_timestamp=_opt_float,
    quarantine_agent_bundle_id=_opt_text,
    signing_chain=st.lists(_certs, max_size=3).map(tuple),
    entitlements=st.lists(st.tuples(_text, _text), max_size=3).map(tuple),
    entitlements_filtered=st.booleans(),
    cs_flags=_u32,
    signing_status=st.none() | st.sampled_from(list(SigningStatus)),
    secure_signing_time=st.none() | _u32,
    signing_time=st.none() | _u32,
    static_rule=st.booleans(),
    idx=_u32,
    needs_bundle_hash=st.booleans(),
)


@given(_events)
def test_record_round_trip(event: StoredEvent) -> None:
    record = event.to_record()
    assert isinstance(record, bytes)
    assert StoredEvent.from_record(record) == event


@given(_events)
def test_every_variant_serialises(event: StoredEvent) -> None:
    for variant in Variant:
        if not event.uploaded_in(variant):
            continue
        wire = event.to_wire(variant)
        keys = (*EVENT_KEYS, *N_KEYS) if variant is Variant.NORTHPOLESEC else EVENT_KEYS
        _assert_proto_order(wire, keys)
        json.dumps(wire, allow_nan=False)
        if variant is not Variant.GOOGLE_JSON:
            assert all(v or k == "entitlementInfo" for k, v in wire.items())


def _good_record() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_full_event().to_record())
    return doc


BAD_RECORDS: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not utf-8", b"\xff\xfe"),
    ("not json", b"{idx: 1}"),
    ("array", b"[]"),
    ("null", b"null"),
    ("number", b"42"),
]
_CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("missing idx", {"idx": None}),
    ("missing file_sha256", {"file_sha256": None}),
    ("missing file_path", {"file_path": None}),
    ("missing occurrence_date", {"occurrence_date": None}),
    ("missing decision", {"decision": None}),
    ("idx string", {"idx": "1"}),
    ("idx negative", {"idx": -1}),
    ("idx too large", {"idx": 2**32}),
    ("idx bool", {"idx": True}),
    ("decision string", {"decision": "BLOCK_BINARY"}),
    ("sha256 number", {"file_sha256": 5}),
    ("occurrence string", {"occurrence_date": "now"}),
    ("users not strings", {"logged_in_users": [1]}),
    ("users not a list", {"logged_in_users": "bob"}),
    ("chain not objects", {"signing_chain": [1]}),
    ("certificate without dates", {"signing_chain": [{"sha256": "x"}]}),
    ("entitlement without value", {"entitlements": [{"key": "k"}]}),
    ("unknown signing status", {"signing_status": "SIGNING_STATUS_BOGUS"}),
    ("pid float", {"pid": 1.5}),
    ("needs_bundle_hash number", {"needs_bundle_hash": 1}),
]
for _name, _change in _CHANGES:
    _doc = _good_record()
    for _k, _v in _change.items():
        if _v is None:
            del _doc[_k]
        else:
            _doc[_k] = _v
    BAD_RECORDS.append((_name, json.dumps(_doc).encode()))


@pytest.mark.parametrize(("name", "blob"), BAD_RECORDS, ids=[n for n, _ in BAD_RECORDS])
def test_undecodable_records(name: str, blob: bytes) -> None:
    with pytest.raises(EventDecodeError) as info:
        StoredEvent.from_record(blob)
    assert isinstance(info.value, SantacoreError) and isinstance(info.value, ValueError)
    assert str(info.value)


def test_unmapped_event_state_decodes_as_unknown() -> None:
    doc = _good_record()
    doc["decision"] = 1 << 44  # SNTEventStateAllowCompiler: no wire name
    event = StoredEvent.from_record(json.dumps(doc).encode())
    assert event.decision is Decision.UNKNOWN
    assert not event.uploaded_in(Variant.NORTHPOLESEC) and "decision" not in event.to_wire()


def test_record_refuses_non_finite_numbers() -> None:
    with pytest.raises(ValueError):
        _full_event(occurrence_date=float("nan")).to_record()


# ---------------------------------------------------------------------------------------------
# idx, context, sessions, entitlements


def test_idx_is_random_unsigned_32_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    idxs = [StoredEvent(file_sha256="a", file_path="/a", decision=Decision.ALLOW_UNKNOWN, occurrence_date=0).idx]
    idxs += [ev.new_idx() for _ in range(999)]
    assert all(0 <= i < 2**32 for i in idxs)
    assert len(set(idxs)) >= len(idxs) - 1  # a collision among 1000 draws is ~1e-4 likely; two are not
    calls: list[int] = []

    def fake(bits: int) -> int:
        calls.append(bits)
        return 2**32 - 1

    monkeypatch.setattr(secrets, "randbits", fake)
    assert ev.new_idx() == 2**32 - 1 and calls == [32]


def test_current_context() -> None:
    ctx = ExecutionContext.current()
    assert ctx.pid == os.getpid() and ctx.ppid == os.getppid()
    assert ctx.executing_user == pwd.getpwuid(os.getuid()).pw_name
    assert isinstance(ctx.logged_in_users, tuple) and isinstance(ctx.current_sessions, tuple)
    assert len(ctx.current_sessions) >= len(ctx.logged_in_users)
    assert ctx.cs_flags is None


def _linux_record(ut_type: int, user: str, line: str, host: str) -> bytes:
    return struct.pack(
        "<h2xi32s4s32s256s2hi2i4i20s",
        ut_type,
        1,
        line.encode(),
        b"",
        user.encode(),
        host.encode(),
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        b"",
    )


def _darwin_record(ut_type: int, user: str, line: str, host: str) -> bytes:
    return struct.pack(
        "<256s4s32sih2x2i256s64s", user.encode(), b"", line.encode(), 1, ut_type, 0, 0, host.encode(), b""
    )


@pytest.mark.parametrize(("layout", "record"), [("linux", _linux_record), ("darwin", _darwin_record)])
def test_utmp_user_processes_and_sessions(layout: Any, record: Any) -> None:
    data = b"".join(
        [
            record(2, "reboot", "~", ""),  # BOOT_TIME
            record(7, "bob", "console", ""),
            record(7, "bob", "ttys000", ""),
            record(8, "carol", "ttys001", ""),  # DEAD_PROCESS
            record(7, "alice", "ttys002", "10.0.0.1"),
        ]
    )
    assert len(_linux_record(7, "a", "b", "c")) == 384 and len(_darwin_record(7, "a", "b", "c")) == 628
    entries = parse_utmp(data + b"\0" * 10, layout)  # a trailing partial record is ignored
    assert entries == [
        UtmpEntry("bob", "console", ""),
        UtmpEntry("bob", "ttys000", ""),
        UtmpEntry("alice", "ttys002", "10.0.0.1"),
    ]
    users, current = sessions(entries)
    assert users == ("bob", "alice")
    assert current == ("bob@console", "bob@ttys000", "alice@10.0.0.1")


def test_entitlement_encoding() -> None:
    ents = {
        "com.apple.security.cs.allow-jit": True,
        "com.apple.application-identifier": "TEAM/app",
        "keychain-access-groups": ["a", "b"],
        "blob": b"\x00\x01",
        "deep": {"a": {"b": {"c": {"d": {"e": 1}}}}},
    }
    pairs, filtered = encode_entitlements(ents)
    values = dict(pairs)
    assert list(values) == list(ents) and not filtered
    assert values["com.apple.security.cs.allow-jit"] == "true"
    assert values["com.apple.application-identifier"] == '"TEAM\\/app"'  # NSJSONSerialization escapes "/"
    assert json.loads(values["keychain-access-groups"]) == ["a", "b"]
    assert json.loads(values["blob"]) == "AAE="
    deep = json.loads(values["deep"])  # the dictionary is level 5, its values 4, ...
    assert isinstance(deep["a"]["b"]["c"], dict) and isinstance(deep["a"]["b"]["c"]["d"], str)
    many = {f"k{i}": i for i in range(builders.MAX_ENTITLEMENTS + 1)}
    pairs, filtered = encode_entitlements(many)
    assert len(pairs) == builders.MAX_ENTITLEMENTS and filtered
    assert encode_entitlements(None) == ((), False)
    assert encode_entitlements({}, filtered=True) == ((), True)


def test_the_model_and_a_sync_never_load_file_identity() -> None:
    """Reading, encoding and uploading stored events needs no FileInfo: the event model, the sync stages and
    the sync commands load neither santacore.identity.fileinfo nor LIEF; the builders load fileinfo (and LIEF
    only once a file is examined)."""
    probe = (
        "import sys\n"
        "import santacore.santad.events, santacore.sync.stages, santacore.commands.sync, santacore.commands.syncd\n"
        "print(sorted(m for m in ('lief', 'santacore.identity.fileinfo') if m in sys.modules))\n"
        "import santacore.santad.event_builders\n"
        "print(sorted(m for m in ('lief', 'santacore.identity.fileinfo') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == ["[]", "['santacore.identity.fileinfo']"], done.stderr
