"""santacore.sync.protocol against spec §1.2, §1.6, §2.3, §3, §4.1, §9.

Request bytes are checked whole (key order, omissions, number formatting, escaping) for each variant; response
parsing is table-driven, one row per acceptance or rejection rule of §2.3 / §9.3.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from santacore.errors import SyncError
from santacore.identity.bundle import hash_bundle
from santacore.identity.fileinfo import file_info
from santacore.santad.decisions import ClientMode, Decision
from santacore.santad.event_builders import bundle_events, execution_event
from santacore.santad.events import Certificate, StoredEvent, Variant
from santacore.santad.rule_store import RuleCounts
from santacore.santad.rules import Rule, RuleState, RuleType
from santacore.santad.sessions import CS_HARD, CS_KILL, CS_SIGNED, CS_VALID, ExecutionContext
from santacore.sync import host
from santacore.sync import protocol as p
from santacore.sync import responses as r
from santacore.sync.host import HostFacts
from santacore.sync.protocol import SyncType
from santacore.sync.responses import (
    EventUploadResponse,
    FileAccessAction,
    PostflightResponse,
    PreflightResponse,
    performed_sync_type,
)
from santacore.sync.wire import encode_json, format_double, strip_xssi
from tests.sync_client import ordered, parsed_in_order, spec_eventupload

G, G6, GJ, N = Variant.GOOGLE, Variant.GOOGLE_2024_6, Variant.GOOGLE_JSON, Variant.NORTHPOLESEC
PROTOBUF = (G, G6, N)
MID = "9B0F3E52-6C1D-4E8A-B7F2-0D4C5A6E7F81"
SHA = "3c5e1a0f9d2b7e4c6a8f0b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f"
CDHASH = "0f3c9e2b7a11d4c5e6f708192a3b4c5d6e7f8091"
MAC = HostFacts(
    hostname="mac-17.corp.example.com",
    os_version="14.6.1",
    os_build="23G93",
    model_identifier="Mac14,2",
    serial_number="C02XK1ABCDEF",
)
VERSION = "2024.9.674285143"
NO_RULES = RuleCounts()
SOME_RULES = RuleCounts(binary=12, certificate=3, compiler=2, transitive=5, teamid=1, signingid=4, cdhash=0, total=25)

# The §3.1 example: a [G] request from a machine with no rules in MONITOR mode.
SPEC_PREFLIGHT = (
    b'{"serial_num":"C02XK1ABCDEF","hostname":"mac-17.corp.example.com","os_version":"14.6.1","os_build":"23G93",'
    b'"model_identifier":"Mac14,2","santa_version":"2024.9.674285143","primary_user":"alice","client_mode":"MONITOR",'
    b'"machine_id":"9B0F3E52-6C1D-4E8A-B7F2-0D4C5A6E7F81"}'
)
MAC_PREFIX = (
    b'{"serial_num":"C02XK1ABCDEF","hostname":"mac-17.corp.example.com","os_version":"14.6.1","os_build":"23G93",'
    b'"model_identifier":"Mac14,2","santa_version":"2024.9.674285143"'
)


def preflight(**changes: Any) -> bytes:
    args: dict[str, Any] = dict(
        machine_id=MID,
        facts=MAC,
        rule_counts=NO_RULES,
        client_mode=ClientMode.MONITOR,
        primary_user="alice",
        santa_version=VERSION,
    )
    args.update(changes)
    variant = args.get("variant", G)
    return encode_json(p.preflight_request(**args), variant)


def pf(body: bytes | str, variant: Variant = G) -> PreflightResponse:
    return r.parse_preflight_response(body.encode() if isinstance(body, str) else body, variant)


def rules(body: bytes | str, variant: Variant = G) -> r.RuleDownloadResponse:
    return r.parse_ruledownload_response(body.encode() if isinstance(body, str) else body, variant)


# ---------------------------------------------------------------------------------------------
# Encoder (§2.3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\n", r"\n"),
        ("\r", r"\r"),
        ("\t", r"\t"),
        ("\b", r"\b"),
        ("\f", r"\f"),
        ('"', r"\""),
        ("\\", r"\\"),
        ("\x00", r"\u0000"),
        ("\x0b", r"\u000b"),
        ("\x1f", r"\u001f"),
        ("<", r"\u003c"),
        (">", r"\u003e"),
        ("\x7f", r"\u007f"),
        ("\x85", r"\u0085"),
        ("\x9f", r"\u009f"),
        ("\u00ad", r"\u00ad"),
        ("\u0600", r"\u0600"),
        ("\u0603", r"\u0603"),
        ("\u06dd", r"\u06dd"),
        ("\u070f", r"\u070f"),
        ("\u17b4", r"\u17b4"),
        ("\u17b5", r"\u17b5"),
        ("\u200b", r"\u200b"),
        ("\u200f", r"\u200f"),
        ("\u2028", r"\u2028"),
        ("\u202e", r"\u202e"),
        ("\u2060", r"\u2060"),
        ("\u2064", r"\u2064"),
        ("\u206a", r"\u206a"),
        ("\u206f", r"\u206f"),
        ("\ufeff", r"\ufeff"),
        ("\ufff9", r"\ufff9"),
        ("\ufffb", r"\ufffb"),
        ("\U0001d173", r"\ud834\udd73"),
        ("\U0001d17a", r"\ud834\udd7a"),
        ("\U000e0001", r"\udb40\udc01"),
        ("\U000e0020", r"\udb40\udc20"),
        ("\U000e007f", r"\udb40\udc7f"),
        ("\ud800", " "),  # a lone surrogate is undecodable input: protobuf writes a space
    ],
)
def test_protobuf_json_escapes(text: str, expected: str) -> None:
    for variant in PROTOBUF:
        assert encode_json({"k": f"a{text}b"}, variant) == f'{{"k":"a{expected}b"}}'.encode()


@pytest.mark.parametrize(
    "text",
    [
        *("/", "&", "'", "=", "é", "\u00a0", "\u00ac", "\u05ff", "\u0604", "\u200a", "\u2010", "\u2027"),
        *("\u202f", "\u2065", "\u2069", "\u2070", "\ufff8", "\ufffc", "\ufffd", "\U0001d172", "\U0001d17b"),
        *("\U0001f600", "\U000e0000", "\U000e0002", "\U000e0080"),
    ],
)
def test_protobuf_json_leaves_other_characters_alone(text: str) -> None:
    assert encode_json([text]) == f'["{text}"]'.encode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1718035512.804221, "1718035512.8042209"),  # §2.3 / §4.1: %.17g, not the shortest form
        (1718035512.8042209, "1718035512.8042209"),
        (1718035512.5, "1718035512.5"),
        (0.1, "0.1"),
        (1 / 3, "0.33333333333333331"),
        (600.0, "600"),
        (-0.0, "-0"),
        (1e20, "1e+20"),
        (1.5e-7, "1.5e-07"),
        (123456789012345678.0, "1.2345678901234568e+17"),
        (float("nan"), '"NaN"'),
        (float("inf"), '"Infinity"'),
        (float("-inf"), '"-Infinity"'),
    ],
)
def test_protobuf_json_doubles(value: float, expected: str) -> None:
    assert format_double(value) == expected
    assert encode_json({"d": value}) == b'{"d":' + expected.encode() + b"}"


def test_protobuf_json_is_compact_in_caller_order() -> None:
    obj = {"z": 1, "a": [True, False, None, -5, "x"], "m": {"b": {}, "a": []}}
    assert encode_json(obj) == b'{"z":1,"a":[true,false,null,-5,"x"],"m":{"b":{},"a":[]}}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/", r"\/"),
        ('"', r"\""),
        ("\\", r"\\"),
        ("\n", r"\n"),
        ("\t", r"\t"),
        ("\x01", r"\u0001"),
        ("\x1f", r"\u001f"),
        ("<", "<"),
        (">", ">"),
        ("&", "&"),
        ("é", "é"),
        ("\u2028", "\u2028"),
        ("\x7f", "\x7f"),
    ],
)
def test_google_json_escapes(text: str, expected: str) -> None:
    assert encode_json({"k": text}, GJ) == f'{{"k":"{expected}"}}'.encode()


def test_google_json_numbers() -> None:
    assert encode_json([600.0, 0.1, 1718035512.804221, 12.75, 7], GJ) == b"[600,0.1,1718035512.804221,12.75,7]"
    with pytest.raises(ValueError):
        encode_json([float("nan")], GJ)


def test_encoder_rejects_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError):
        encode_json({1: "x"})
    with pytest.raises(TypeError):
        encode_json({"x": {1, 2}})


@given(st.text())
def test_encoded_strings_read_back(text: str) -> None:
    for variant in (G, GJ):
        decoded = json.loads(encode_json([text], variant))
        expected = "".join(" " if 0xD800 <= ord(c) <= 0xDFFF else c for c in text) if variant is G else text
        assert decoded == [expected]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_encoded_doubles_read_back(value: float) -> None:
    assert json.loads(encode_json([value])) == [value]
    assert json.loads(encode_json([value], GJ)) == [value]


# ---------------------------------------------------------------------------------------------
# santa_version and host facts


def test_default_santa_version() -> None:
    assert host.default_santa_version("0.1.0") == "2024.9.1000"
    assert host.default_santa_version("1.2.3") == "2024.9.1002003"
    assert host.default_santa_version("0.1.0.dev1") == "2024.9.1000"
    assert host.default_santa_version("2") == "2024.9.2000000"
    version = host.default_santa_version()
    assert version.startswith(host.SANTA_RELEASE + ".")
    assert all(part.isdigit() for part in version.split("."))  # Zentral: tuple(int(i) for i in v.split("."))
    assert json.loads(encode_json(p.preflight_request(**_args())))["santa_version"] == version


def _args(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(machine_id=MID, facts=MAC, rule_counts=NO_RULES, client_mode=ClientMode.MONITOR)
    args.update(changes)
    return args


def test_parse_os_release() -> None:
    text = 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n# comment\nID=debian\nPRETTY_NAME=\'x y\'\nQ="a \\"b\\""\n\nbad'
    assert host.parse_os_release(text) == {
        "NAME": "Debian GNU/Linux",
        "VERSION_ID": "12",
        "ID": "debian",
        "PRETTY_NAME": "x y",
        "Q": 'a "b"',
    }


@pytest.mark.parametrize(
    ("os_release", "kernel", "version"),
    [
        ('VERSION_ID="12"', "6.1.0-18-amd64", "12"),
        ('VERSION_ID="22.04"', "5.15.0-91-generic", "22.04"),
        ("ID=arch", "6.8.1-arch1-1", "6.8.1"),  # rolling: no VERSION_ID
        ("VERSION_ID=rolling", "6.8.1-arch1-1", "6.8.1"),
        ("", "weird", ""),
    ],
)
def test_linux_host_facts(os_release: str, kernel: str, version: str) -> None:
    facts = host.linux_host_facts(
        hostname="h", os_release=os_release, kernel_release=kernel, product_name=" ThinkPad\n"
    )
    assert facts == HostFacts(
        hostname="h", os_version=version, os_build=kernel, model_identifier="ThinkPad", serial_number=None
    )


def test_current_host_facts() -> None:
    facts = HostFacts.current()
    for value in (facts.hostname, facts.os_version, facts.os_build, facts.model_identifier):
        assert isinstance(value, str)
    assert facts.serial_number is None or facts.serial_number
    if platform.system() == "Linux":
        assert facts.serial_number is None  # the machine ID is sent instead


def test_unknown_serial_sends_the_machine_id() -> None:
    facts = HostFacts(hostname="h", os_version="12", os_build="6.1.0", model_identifier="")
    for variant in Variant:
        body = p.preflight_request(**_args(facts=facts, variant=variant))
        assert body["serial_num"] == MID


# ---------------------------------------------------------------------------------------------
# preflight request (§3.1)


def test_preflight_spec_example_bytes() -> None:
    assert preflight() == SPEC_PREFLIGHT
    assert preflight(variant=G6) == SPEC_PREFLIGHT  # 2024.7 key spelling, same fields
    assert preflight(variant=N) == SPEC_PREFLIGHT  # [N]-only fields at their defaults are omitted


def test_preflight_every_field_in_field_order() -> None:
    body = preflight(
        rule_counts=SOME_RULES,
        client_mode=ClientMode.LOCKDOWN,
        requested_sync_type=SyncType.CLEAN,
        push_notification_token="tok/en",
    )
    assert body == MAC_PREFIX + (
        b',"primary_user":"alice","push_notification_token":"tok/en","client_mode":"LOCKDOWN",'
        b'"request_clean_sync":true,"binary_rule_count":12,"certificate_rule_count":3,"compiler_rule_count":2,'
        b'"transitive_rule_count":5,"teamid_rule_count":1,"signingid_rule_count":4,'
        b'"machine_id":"9B0F3E52-6C1D-4E8A-B7F2-0D4C5A6E7F81"}'
    )


@pytest.mark.parametrize(
    ("requested", "sent"), [(SyncType.NORMAL, False), (SyncType.CLEAN, True), (SyncType.CLEAN_ALL, True)]
)
def test_preflight_request_clean_sync(requested: SyncType, sent: bool) -> None:
    for variant in Variant:
        body = p.preflight_request(**_args(requested_sync_type=requested, variant=variant))
        assert body.get("request_clean_sync", False) is sent
        assert ("request_clean_sync" in body) is sent  # false is omitted, [G-JSON] included


@pytest.mark.parametrize(
    ("mode", "variant", "sent"),
    [
        (ClientMode.MONITOR, G, "MONITOR"),
        (ClientMode.LOCKDOWN, G, "LOCKDOWN"),
        (ClientMode.STANDALONE, G, None),  # [G] knows no STANDALONE: omitted (§3.1 #9, §9.3 item 2)
        (ClientMode.STANDALONE, G6, None),
        (ClientMode.STANDALONE, GJ, None),
        (ClientMode.STANDALONE, N, "STANDALONE"),
        (None, G, None),
        (None, N, None),
        (None, GJ, None),
    ],
)
def test_preflight_client_mode(mode: ClientMode | None, variant: Variant, sent: str | None) -> None:
    body = p.preflight_request(**_args(client_mode=mode, variant=variant))
    assert body.get("client_mode") == sent


def test_preflight_northpolesec_extras() -> None:
    body = preflight(
        variant=N,
        client_mode=ClientMode.STANDALONE,
        push_notification_sync=True,
        sip_status=0x6F,
        primary_user_groups=("staff", "admin"),
    )
    assert body == MAC_PREFIX + (
        b',"primary_user":"alice","client_mode":"STANDALONE","machine_id":"9B0F3E52-6C1D-4E8A-B7F2-0D4C5A6E7F81",'
        b'"push_notification_sync":true,"sipStatus":111,"primary_user_groups":["staff","admin"]}'
    )
    # Only [N] sends them.
    assert preflight(push_notification_sync=True, sip_status=1, primary_user_groups=("x",)) == SPEC_PREFLIGHT


def test_preflight_google_json_bytes() -> None:
    body = preflight(variant=GJ, primary_user="", push_notification_token="fcm", requested_sync_type=SyncType.CLEAN_ALL)
    assert body == MAC_PREFIX + (
        b',"primary_user":"","fcm_token":"fcm","client_mode":"MONITOR","request_clean_sync":true,'
        b'"binary_rule_count":0,"certificate_rule_count":0,"compiler_rule_count":0,"transitive_rule_count":0,'
        b'"teamid_rule_count":0,"signingid_rule_count":0,"cdhash_rule_count":0}'
    )


def test_preflight_omits_empty_strings_and_zero_counters() -> None:
    facts = HostFacts(hostname="h", os_version="", os_build="", model_identifier="", serial_number="")
    body = encode_json(p.preflight_request(machine_id="", facts=facts, rule_counts=NO_RULES, client_mode=None))
    assert body == b'{"hostname":"h","santa_version":"' + host.default_santa_version().encode() + b'"}'


def test_preflight_counters_are_uint32() -> None:
    counts = RuleCounts(binary=2**32 + 3, cdhash=7)
    body = p.preflight_request(**_args(rule_counts=counts))
    assert body["binary_rule_count"] == 3 and body["cdhash_rule_count"] == 7
    assert list(body).index("cdhash_rule_count") == list(body).index("machine_id") - 1


def test_preflight_escaping_per_variant() -> None:
    facts = HostFacts(hostname="a/b<c>&d", os_version="1", os_build="x", model_identifier="m", serial_number="s")
    assert b'"hostname":"a/b\\u003cc\\u003e&d"' in preflight(facts=facts)
    assert b'"hostname":"a\\/b<c>&d"' in preflight(facts=facts, variant=GJ)


# ---------------------------------------------------------------------------------------------
# eventupload request (§3.2, §4.1)

SIGNED = (
    "santa/northpolesec/santad/testdata/binaryrules/allowed_teamid",
    "santa/northpolesec/common/verifyinghasher/testdata/hw_team_signed",
)
UNSIGNED = "santa/northpolesec/santad/testdata/binaryrules/goodbinary"
BUNDLE_EXAMPLE = "santa/northpolesec/common/testdata/BundleExample.app"
CONTEXT = ExecutionContext(
    executing_user="bob",
    pid=8123,
    ppid=1,
    parent_name="launchd",
    logged_in_users=("bob",),
    current_sessions=("bob@console", "bob@ttys001"),
    cs_flags=CS_SIGNED | CS_VALID | CS_KILL | CS_HARD,
)
EXAMPLE_TIME = 1718035512.8042209


def _corpus_events(corpus: Path) -> list[StoredEvent]:
    events = [
        execution_event(file_info(corpus / path), Decision.BLOCK_UNKNOWN, context=CONTEXT, now=EXAMPLE_TIME)
        for path in (*SIGNED, UNSIGNED)
    ]
    events.append(execution_event(file_info(corpus / UNSIGNED), Decision.UNKNOWN, now=1718035512.0))
    events += bundle_events(hash_bundle(corpus / BUNDLE_EXAMPLE))
    return events


@pytest.mark.parametrize("variant", list(Variant))
def test_eventupload_body_follows_the_spec_tables(corpus: Path, variant: Variant) -> None:
    """Every event of the corpus (signed, unsigned, UNKNOWN, BUNDLE_BINARY) as §3.2/§4.1–4.4 describe it, keys in
    field order; built by `spec_eventupload` from the tables, not by the product's serialiser."""
    events = _corpus_events(corpus)
    body = encode_json(p.eventupload_request(events, MID, variant), variant)
    assert parsed_in_order(body) == ordered(spec_eventupload(events, MID, variant))  # doubles round-trip exactly
    if variant is not GJ:
        assert b'"execution_time":1718035512.8042209,' in body
        assert b'"machine_id":"' + MID.encode() + b'"}' in body
    else:
        assert b'"execution_time":1718035512.804221,' in body and b"machine_id" not in body
        assert b'"file_path":"\\/' in body  # NSJSONSerialization escapes every slash


def test_eventupload_spec_example_bytes() -> None:
    """§4.1's example, compact, byte for byte."""
    event = StoredEvent(
        file_sha256=SHA,
        file_path="/Applications/Acme.app/Contents/MacOS/Acme",
        decision=Decision.BLOCK_UNKNOWN,
        occurrence_date=EXAMPLE_TIME,
        executing_user="bob",
        logged_in_users=("bob",),
        current_sessions=("bob@console", "bob@ttys001"),
        file_bundle_id="com.acme.app",
        file_bundle_path="/Applications/Acme.app",
        file_bundle_name="Acme",
        file_bundle_version="412",
        file_bundle_version_string="4.1.2",
        pid=8123,
        ppid=1,
        parent_name="launchd",
        team_id="ABCDE12345",
        signing_id="ABCDE12345:com.acme.app",
        cdhash=CDHASH,
        signing_chain=(
            Certificate(
                "5d4c1e7a0b2f39886e1d2c3b4a59687f0e1d2c3b4a5968778695a4b3c2d1e0f9",
                "Developer ID Application: Acme Inc (ABCDE12345)",
                "Acme Inc",
                "ABCDE12345",
                1647447514,
                1805213914,
            ),
        ),
    )
    body = encode_json(p.eventupload_request([event], "50C7E1EB-2EF5-42D4-A084-A7966FC45A95"))
    assert body == (
        b'{"events":[{"file_sha256":"' + SHA.encode() + b'",'
        b'"file_path":"/Applications/Acme.app/Contents/MacOS","file_name":"Acme","executing_user":"bob",'
        b'"execution_time":1718035512.8042209,"logged_in_users":["bob"],'
        b'"current_sessions":["bob@console","bob@ttys001"],"decision":"BLOCK_UNKNOWN",'
        b'"file_bundle_id":"com.acme.app","file_bundle_path":"/Applications/Acme.app","file_bundle_name":"Acme",'
        b'"file_bundle_version":"412","file_bundle_version_string":"4.1.2","pid":8123,"ppid":1,'
        b'"parent_name":"launchd","team_id":"ABCDE12345","signing_id":"ABCDE12345:com.acme.app",'
        b'"cdhash":"' + CDHASH.encode() + b'","signing_chain":[{'
        b'"sha256":"5d4c1e7a0b2f39886e1d2c3b4a59687f0e1d2c3b4a5968778695a4b3c2d1e0f9",'
        b'"cn":"Developer ID Application: Acme Inc (ABCDE12345)","org":"Acme Inc","ou":"ABCDE12345",'
        b'"valid_from":1647447514,"valid_until":1805213914}]}],"machine_id":"50C7E1EB-2EF5-42D4-A084-A7966FC45A95"}'
    )


# ---------------------------------------------------------------------------------------------
# ruledownload and postflight requests (§3.3, §3.4)


@pytest.mark.parametrize(
    ("cursor", "variant", "expected"),
    [
        (None, G, b'{"machine_id":"m"}'),
        ("", G, b'{"machine_id":"m"}'),
        ("c/1<", G, b'{"cursor":"c/1\\u003c","machine_id":"m"}'),
        ("c", G6, b'{"cursor":"c","machine_id":"m"}'),
        ("c", N, b'{"cursor":"c","machine_id":"m"}'),
        (None, GJ, b"{}"),  # §3.3: the first [G-JSON] body is exactly {}
        ("c/1", GJ, b'{"cursor":"c\\/1"}'),
        ("", GJ, b'{"cursor":""}'),
    ],
)
def test_ruledownload_request(cursor: str | None, variant: Variant, expected: bytes) -> None:
    assert encode_json(p.ruledownload_request(cursor, "m", variant), variant) == expected


@pytest.mark.parametrize(
    ("kwargs", "variant", "expected"),
    [
        ({"rules_received": 7, "rules_processed": 5}, G, b'{"rules_received":7,"rules_processed":5,"machine_id":"m"}'),
        ({"rules_received": 0, "rules_processed": 0}, G, b'{"machine_id":"m"}'),
        ({"rules_received": 3, "rules_processed": 0, "sync_type": SyncType.CLEAN}, G, b'{"rules_received":3,'),
        ({"rules_received": 7, "rules_processed": 5}, G6, b'{"rules_received":"7","rules_processed":"5",'),
        ({"rules_received": 0, "rules_processed": 0}, G6, b'{"machine_id":"m"}'),
        ({"rules_received": 7, "rules_processed": 5}, N, b'{"rules_received":7,"rules_processed":5,"machine_id":"m",'),
        ({"rules_received": 0, "rules_processed": 0}, GJ, b'{"rules_received":0,"rules_processed":0}'),
        ({"rules_received": 2**32 + 1, "rules_processed": 1}, G, b'{"rules_received":1,"rules_processed":1,'),
    ],
)
def test_postflight_request(kwargs: dict[str, Any], variant: Variant, expected: bytes) -> None:
    body = encode_json(p.postflight_request(machine_id="m", variant=variant, **kwargs), variant)
    assert body.startswith(expected)
    assert (b"syncType" in body) is (variant is N)


@pytest.mark.parametrize("sync_type", list(SyncType))
def test_postflight_sync_type(sync_type: SyncType) -> None:
    # [N] reports the performed type; NORMAL (enum 1) is non-zero and printed (§3.4 #4). Zentral reads only this key.
    expected = b'{"rules_received":1,"machine_id":"m","syncType":"' + sync_type.name.encode() + b'"}'

    def body(variant: Variant, report: bool | None = None) -> bytes:
        request = p.postflight_request(
            rules_received=1,
            rules_processed=0,
            machine_id="m",
            sync_type=sync_type,
            variant=variant,
            report_sync_type=report,
        )
        return encode_json(request, variant)

    assert body(N) == expected
    assert body(G, True) == expected
    assert b"syncType" not in body(N, False) and b"syncType" not in body(G)
    assert sync_type.proto_number == int(sync_type) + 1 and sync_type.wire == sync_type.name


# ---------------------------------------------------------------------------------------------
# Response parsing: §2.3 acceptance rules (protobuf variants)

DEFAULTS = PreflightResponse()
XSSI_1 = b")]}'\n"
XSSI_2 = b"])}"

ACCEPTED: list[tuple[str, bytes, Callable[[PreflightResponse], Any], Any]] = [
    ("empty body: all defaults", b"", lambda r: r, DEFAULTS),
    ("empty object: all defaults", b"{}", lambda r: r, DEFAULTS),
    ("xssi prefix )]}'\\n stripped", XSSI_1 + b'{"batch_size":7}', lambda r: r.batch_size, 7),
    ("xssi prefix ])} stripped", XSSI_2 + b'{"batch_size":7}', lambda r: r.batch_size, 7),
    ("whitespace around the document", b' \n\t{"batch_size":7}\n', lambda r: r.batch_size, 7),
    ("pretty-printed", b'{\n  "batch_size": 7\n}\n', lambda r: r.batch_size, 7),
    ("integer", b'{"batch_size":7}', lambda r: r.batch_size, 7),
    ("quoted integer", b'{"batch_size":"7"}', lambda r: r.batch_size, 7),
    ("quoted integer with +", b'{"batch_size":"+7"}', lambda r: r.batch_size, 7),
    ("integral float", b'{"batch_size":7.0}', lambda r: r.batch_size, 7),
    ("integral float with exponent", b'{"batch_size":0.7e1}', lambda r: r.batch_size, 7),
    ("quoted integral float", b'{"batch_size":"7.0"}', lambda r: r.batch_size, 7),
    ("quoted exponent", b'{"batch_size":"7e0"}', lambda r: r.batch_size, 7),
    ("negative zero", b'{"batch_size":-0}', lambda r: r.batch_size, 50),
    ("uint32 max", b'{"full_sync_interval":4294967295}', lambda r: r.full_sync_interval, 4294967295),
    ("batch_size 0 means 50", b'{"batch_size":0}', lambda r: r.batch_size, 50),
    ("null is absent (uint32)", b'{"batch_size":null}', lambda r: r.batch_size, 50),
    ("null is absent (bool)", b'{"enable_bundles":null}', lambda r: r.enable_bundles, None),
    ("null is absent (string)", b'{"allowed_path_regex":null}', lambda r: r.allowed_path_regex, None),
    ("null is absent (enum)", b'{"client_mode":null}', lambda r: r.client_mode, None),
    ("null is absent (optional enum)", b'{"sync_type":null}', lambda r: r.sync_type, None),
    ("null is absent (list)", b'{"block_usb_mount":true,"remount_usb_mode":null}', lambda r: r.remount_usb_mode, ()),
    ("json name", b'{"batchSize":7}', lambda r: r.batch_size, 7),
    ("json_name of a renamed field", b'{"full_sync_interval":3600}', lambda r: r.full_sync_interval, 3600),
    ("proto name", b'{"full_sync_interval_seconds":3600}', lambda r: r.full_sync_interval, 3600),
    ("camelCase proto name", b'{"fullSyncIntervalSeconds":3600}', lambda r: r.full_sync_interval, 3600),
    ("deprecated proto name", b'{"deprecated_clean_sync":true}', lambda r: r.clean_sync, True),
    ("camelCase of a json_name is not a key", b'{"cleanSync":true}', lambda r: r.clean_sync, False),
    ("nesting within protobuf's depth limit", b'{"x":' + b"[" * 99 + b"]" * 99 + b"}", lambda r: r, DEFAULTS),
    ("unknown keys of any type ignored", b'{"Err":null,"NoOp":{},"x":[1,"a",{"b":[]}],"y":1.5}', lambda r: r, DEFAULTS),
    ("case matters for keys", b'{"Batch_Size":7,"BATCH_SIZE":"junk"}', lambda r: r.batch_size, 50),
    ("a field then null", b'{"batch_size":7,"batchSize":null}', lambda r: r.batch_size, 7),
    ("null then a field", b'{"batch_size":null,"batchSize":7}', lambda r: r.batch_size, 7),
    ("bool true", b'{"enable_bundles":true}', lambda r: r.enable_bundles, True),
    ("bool false (present)", b'{"enable_bundles":false}', lambda r: r.enable_bundles, False),
    ("empty string is present", b'{"allowed_path_regex":""}', lambda r: r.allowed_path_regex, ""),
    ("escapes decoded", b'{"blocked_path_regex":"^\\/x\\u00e9\\ud83d\\ude00"}', lambda r: r.blocked_path_regex,
     "^/xé😀"),
    ("enum name", b'{"client_mode":"LOCKDOWN"}', lambda r: r.client_mode, ClientMode.LOCKDOWN),
    ("enum number", b'{"client_mode":2}', lambda r: r.client_mode, ClientMode.LOCKDOWN),
    ("enum integral float", b'{"client_mode":2.0}', lambda r: r.client_mode, ClientMode.LOCKDOWN),
    ("enum quoted number", b'{"client_mode":"1"}', lambda r: r.client_mode, ClientMode.MONITOR),
    ("enum quoted number, spaces", b'{"client_mode":" 2 "}', lambda r: r.client_mode, ClientMode.LOCKDOWN),
    ("enum 0: no change", b'{"client_mode":"UNKNOWN_CLIENT_MODE"}', lambda r: r.client_mode, None),
    ("plain enum, unknown name → 0", b'{"client_mode":"lockdown"}', lambda r: r.client_mode, None),
    ("plain enum, unknown quoted float", b'{"client_mode":"2.5"}', lambda r: r.client_mode, None),
    ("plain enum, unknown number kept", b'{"client_mode":7}', lambda r: r.client_mode, None),
    ("plain enum, negative number", b'{"client_mode":-1}', lambda r: r.client_mode, None),
    ("[G] has no STANDALONE", b'{"client_mode":"STANDALONE"}', lambda r: r.client_mode, None),
    ("[G] STANDALONE number", b'{"client_mode":3}', lambda r: r.client_mode, None),
    ("optional enum, unknown name → unset", b'{"sync_type":"Clean"}', lambda r: r.sync_type, None),
    ("optional enum, unknown number kept", b'{"sync_type":99}', lambda r: r.sync_type, 99),
    ("optional enum, quoted number", b'{"sync_type":"2"}', lambda r: r.sync_type, 2),
    ("optional enum, lowercase alias", b'{"syncType":"clean_all"}', lambda r: r.sync_type, 3),
    ("optional enum, UNSPECIFIED present", b'{"sync_type":"SYNC_TYPE_UNSPECIFIED"}', lambda r: r.sync_type, 0),
    ("list of strings", b'{"block_usb_mount":true,"remount_usb_mode":["noexec","rdonly"]}',
     lambda r: r.remount_usb_mode, ("noexec", "rdonly")),
]  # fmt: skip


@pytest.mark.parametrize("variant", PROTOBUF)
@pytest.mark.parametrize(("rule", "body", "get", "expected"), ACCEPTED, ids=[row[0] for row in ACCEPTED])
def test_preflight_accepts(
    rule: str, body: bytes, get: Callable[[PreflightResponse], Any], expected: Any, variant: Variant
) -> None:
    if variant is N and (b"STANDALONE" in body or body == b'{"client_mode":3}'):
        expected = ClientMode.STANDALONE  # [N] knows STANDALONE (§9.1)
    if variant is N and expected == DEFAULTS:
        expected = PreflightResponse(full_sync_interval=None, push_notification_full_sync_interval=None)
    assert get(pf(body, variant)) == expected


REJECTED: list[tuple[str, bytes]] = [
    ("prefix only: empty JSON", XSSI_1),
    ("second prefix only: empty JSON", XSSI_2),
    ("prefix removed only once", XSSI_1 + XSSI_2 + b"{}"),
    ("prefix removed only once (reverse)", XSSI_2 + XSSI_1 + b"{}"),
    ("prefix not at the start", b" " + XSSI_1 + b"{}"),
    ("whitespace only", b"  \n"),
    ("unparseable", b"not json"),
    ("truncated", b'{"batch_size":7'),
    ("trailing garbage", b"{}x"),
    ("two documents", b"{}{}"),
    ("single quotes", b"{'batch_size':7}"),
    ("trailing comma", b'{"batch_size":7,}'),
    ("array document", b"[]"),
    ("null document", b"null"),
    ("number document", b"5"),
    ("string document", b'"x"'),
    ("invalid UTF-8", b'{"x":"\xff"}'),
    ("UTF-8 BOM", b"\xef\xbb\xbf{}"),
    ("NaN literal", b'{"x":NaN}'),
    ("Infinity literal", b'{"x":-Infinity}'),
    ("unpaired high surrogate", b'{"x":"\\ud800"}'),
    ("unpaired low surrogate", b'{"x":"\\udc00"}'),
    ("raw control character", b'{"x":"a\x01b"}'),
    ("deep nesting", b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("nesting past protobuf's depth limit", b'{"x":' + b"[" * 100 + b"]" * 100 + b"}"),
    ("fractional integer", b'{"batch_size":7.5}'),
    ("quoted fractional integer", b'{"batch_size":"7.5"}'),
    ("negative integer", b'{"batch_size":-1}'),
    ("quoted negative integer", b'{"batch_size":"-1"}'),
    ("integer over uint32", b'{"batch_size":4294967296}'),
    ("quoted integer over uint32", b'{"full_sync_interval":"4294967296"}'),
    ("huge float", b'{"batch_size":1e300}'),
    ("float overflow", b'{"batch_size":1e400}'),
    ("non-number string", b'{"batch_size":"abc"}'),
    ("empty string integer", b'{"batch_size":""}'),
    ("leading space in quoted number", b'{"batch_size":" 7"}'),
    ("trailing space in quoted number", b'{"batch_size":"7 "}'),
    ("hex string", b'{"batch_size":"0x10"}'),
    ("quoted inf", b'{"batch_size":"inf"}'),
    ("quoted NaN", b'{"batch_size":"NaN"}'),
    ("bool for integer", b'{"batch_size":true}'),
    ("array for integer", b'{"batch_size":[7]}'),
    ("object for integer", b'{"batch_size":{}}'),
    ("number for bool", b'{"enable_bundles":1}'),
    ("zero for bool", b'{"enable_bundles":0}'),
    ("string for bool", b'{"enable_bundles":"true"}'),
    ("string false for bool", b'{"clean_sync":"false"}'),
    ("array for bool", b'{"enable_bundles":[]}'),
    ("number for string", b'{"allowed_path_regex":5}'),
    ("bool for string", b'{"blocked_path_regex":false}'),
    ("array for string", b'{"whitelist_regex":["a"]}'),
    ("object for string", b'{"allowed_path_regex":{}}'),
    ("bool for enum", b'{"client_mode":true}'),
    ("array for enum", b'{"client_mode":["MONITOR"]}'),
    ("object for enum", b'{"sync_type":{}}'),
    ("fractional enum number", b'{"sync_type":2.5}'),
    ("enum number over int32", b'{"client_mode":2147483648}'),
    ("enum number under int32", b'{"sync_type":-2147483649}'),
    ("string for list", b'{"remount_usb_mode":"noexec"}'),
    ("null inside a list", b'{"remount_usb_mode":[null]}'),
    ("number inside a string list", b'{"remount_usb_mode":[5]}'),
    ("object for list", b'{"remount_usb_mode":{}}'),
    ("field set twice, two names", b'{"batch_size":1,"batchSize":2}'),
    ("field set twice, same name", b'{"batch_size":1,"batch_size":1}'),
    ("field set twice, json and proto name", b'{"clean_sync":true,"deprecated_clean_sync":true}'),
    ("field set twice, three spellings", b'{"full_sync_interval":60,"fullSyncIntervalSeconds":60}'),
]


@pytest.mark.parametrize("variant", PROTOBUF)
@pytest.mark.parametrize(("rule", "body"), REJECTED, ids=[row[0] for row in REJECTED])
def test_preflight_rejects(rule: str, body: bytes, variant: Variant) -> None:
    with pytest.raises(SyncError) as info:
        pf(body, variant)
    assert info.value.stage == "preflight"


# The document-level rows (before the first field-level one) apply to every stage.
GENERIC_REJECTED = REJECTED[: [row[0] for row in REJECTED].index("fractional integer")]


@pytest.mark.parametrize("variant", PROTOBUF)
@pytest.mark.parametrize(("rule", "body"), GENERIC_REJECTED, ids=[row[0] for row in GENERIC_REJECTED])
def test_every_stage_rejects_bad_documents(rule: str, body: bytes, variant: Variant) -> None:
    for parse, stage in (
        (r.parse_eventupload_response, "eventupload"),
        (r.parse_ruledownload_response, "ruledownload"),
    ):
        with pytest.raises(SyncError) as info:
            parse(body, variant)
        assert info.value.stage == stage
    # Santa ignores the postflight answer (§3.4): the failure is only reported.
    error = r.parse_postflight_response(body, variant).error
    assert error is not None and "postflight" in error


@pytest.mark.parametrize("variant", PROTOBUF)
def test_every_stage_accepts_empty_and_unknown(variant: Variant) -> None:
    for body in (b"", b"{}", XSSI_1 + b'{"Err":null,"NoOp":{}}', b'{"error":"x"}\n'):
        assert r.parse_eventupload_response(body, variant) == EventUploadResponse()
        assert r.parse_ruledownload_response(body, variant) == r.RuleDownloadResponse()
        assert r.parse_postflight_response(body, variant) == PostflightResponse()


# ---------------------------------------------------------------------------------------------
# Other preflight fields (§3.1)


@pytest.mark.parametrize("variant", PROTOBUF)
@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ('{"enable_bundles":false,"bundles_enabled":true}', "enable_bundles", False),  # the new key wins
        ('{"bundles_enabled":true}', "enable_bundles", True),
        ('{"deprecated_bundles_enabled":true}', "enable_bundles", True),
        ('{"transitive_whitelisting_enabled":true}', "enable_transitive_rules", True),
        ('{"enabled_transitive_whitelisting":false,"transitive_whitelisting_enabled":true}', "enable_transitive_rules",
         False),
        ('{"enable_transitive_rules":true,"enabled_transitive_whitelisting":false}', "enable_transitive_rules", True),
        ('{"enable_all_event_upload":true}', "enable_all_event_upload", True),
        ('{"disable_unknown_event_upload":false}', "disable_unknown_event_upload", False),
        ('{"allowed_path_regex":"","whitelist_regex":"^/x"}', "allowed_path_regex", ""),
        ('{"whitelist_regex":"^/x"}', "allowed_path_regex", "^/x"),
        ('{"blacklist_regex":"^/y"}', "blocked_path_regex", "^/y"),
        ('{"blocked_path_regex":"(?!)"}', "blocked_path_regex", "(?!)"),  # Zentral's empty regex (§9.4)
        ('{"remount_usb_mode":["noexec"]}', "remount_usb_mode", None),  # only read with block_usb_mount ([G])
        ('{"block_usb_mount":false}', "remount_usb_mode", ()),
        ('{"block_usb_mount":false,"remount_usb_mode":[]}', "block_usb_mount", False),
        ('{"override_file_access_action":"AUDIT_ONLY"}', "override_file_access_action", FileAccessAction.AUDIT_ONLY),
        ('{"override_file_access_action":"AuditOnly"}', "override_file_access_action", FileAccessAction.AUDIT_ONLY),
        ('{"override_file_access_action":"None"}', "override_file_access_action", FileAccessAction.NONE),
        ('{"override_file_access_action":"DISABLE"}', "override_file_access_action", FileAccessAction.DISABLE),
        ('{"override_file_access_action":"Disable"}', "override_file_access_action", FileAccessAction.DISABLE),
        ('{"override_file_access_action":3}', "override_file_access_action", FileAccessAction.DISABLE),
        ('{"override_file_access_action":"2"}', "override_file_access_action", FileAccessAction.AUDIT_ONLY),
        ('{"override_file_access_action":"auditonly"}', "override_file_access_action", None),
        ('{"override_file_access_action":"FILE_ACCESS_ACTION_UNSPECIFIED"}', "override_file_access_action", None),
        ('{"override_file_access_action":9}', "override_file_access_action", None),
        ('{"client_mode":"MONITOR"}', "client_mode", ClientMode.MONITOR),
        ('{"clientMode":"LOCKDOWN"}', "client_mode", ClientMode.LOCKDOWN),
        ('{"clean_sync":true}', "clean_sync", True),
        ('{"clean_sync":false}', "clean_sync", False),
    ],
)  # fmt: skip
def test_preflight_fields(body: str, field: str, expected: Any, variant: Variant) -> None:
    assert getattr(pf(body, variant), field) == expected


def test_northpolesec_client_mode_standalone() -> None:
    assert pf('{"client_mode":"STANDALONE"}', N).client_mode is ClientMode.STANDALONE
    assert pf('{"client_mode":3}', N).client_mode is ClientMode.STANDALONE
    assert pf('{"client_mode":"STANDALONE"}', G).client_mode is None


MOROZ_PREFLIGHT = b"""{
  "client_mode": "MONITOR",
  "blocked_path_regex": "",
  "allowed_path_regex": "",
  "batch_size": 100,
  "enable_all_event_upload": true,
  "enable_bundles": false,
  "enable_transitive_rules": false,
  "clean_sync": true,
  "full_sync_interval": 600
}
"""


@pytest.mark.parametrize("variant", list(Variant))
def test_moroz_preflight(variant: Variant) -> None:
    """§9.2: every field present, "" regexes, the deprecated clean_sync true: every sync is CLEAN (§9.3 item 4)."""
    r = pf(MOROZ_PREFLIGHT, variant)
    assert r.client_mode is ClientMode.MONITOR
    assert (r.allowed_path_regex, r.blocked_path_regex) == ("", "")
    assert (r.batch_size, r.full_sync_interval, r.sync_type, r.clean_sync) == (100, 600, None, True)
    assert (r.enable_all_event_upload, r.enable_bundles, r.enable_transitive_rules) == (True, False, False)
    assert performed_sync_type(SyncType.NORMAL, r) is SyncType.CLEAN
    assert performed_sync_type(SyncType.CLEAN_ALL, r) is SyncType.CLEAN_ALL


@pytest.mark.parametrize("variant", list(Variant))
def test_zentral_preflight(variant: Variant) -> None:
    body = b'{"batch_size":50,"client_mode":"LOCKDOWN","full_sync_interval":600,"enable_bundles":true,'
    body += b'"enable_transitive_rules":false,"allowed_path_regex":"(?!)","blocked_path_regex":"(?!)",'
    body += b'"sync_type":"CLEAN_ALL"}'
    r = pf(body, variant)
    assert r.client_mode is ClientMode.LOCKDOWN and r.allowed_path_regex == "(?!)" and r.enable_bundles is True
    assert performed_sync_type(SyncType.NORMAL, r) is SyncType.CLEAN_ALL


# ---------------------------------------------------------------------------------------------
# §1.6: the sync type performed, exhaustively

R_NORMAL = (SyncType.NORMAL, SyncType.NORMAL, SyncType.NORMAL)
R_CLEAN = (SyncType.CLEAN, SyncType.CLEAN, SyncType.CLEAN_ALL)
R_CLEAN_ALL = (SyncType.CLEAN_ALL, SyncType.CLEAN_ALL, SyncType.CLEAN_ALL)
# The table's rows, by the response's sync_type (requested NORMAL, CLEAN, CLEAN_ALL → performed).
SYNC_TYPE_ROWS: dict[str, tuple[SyncType, SyncType, SyncType]] = {"NORMAL": R_NORMAL, "CLEAN": R_CLEAN}
SYNC_TYPE_ROWS["CLEAN_ALL"] = R_CLEAN_ALL
ABSENT = "absent"  # the two clean_sync rows apply
# (JSON value of sync_type, row) per variant; None = the key is left out.
PROTOBUF_SYNC_TYPES: list[tuple[Any, str]] = [
    (None, ABSENT),
    ("NORMAL", "NORMAL"),
    ("normal", "NORMAL"),
    ("SYNC_TYPE_UNSPECIFIED", "NORMAL"),
    (0, "NORMAL"),
    (1, "NORMAL"),
    ("1", "NORMAL"),
    (99, "NORMAL"),  # an unrecognised *number* is kept and handled as NORMAL
    ("99", "NORMAL"),
    (-1, "NORMAL"),
    ("CLEAN", "CLEAN"),
    ("clean", "CLEAN"),
    (2, "CLEAN"),
    ("2", "CLEAN"),
    (2.0, "CLEAN"),
    ("CLEAN_ALL", "CLEAN_ALL"),
    ("clean_all", "CLEAN_ALL"),
    (3, "CLEAN_ALL"),
    ("3", "CLEAN_ALL"),
    ("Clean", ABSENT),  # an unrecognised *string* is dropped as if absent
    ("CLEAN ", ABSENT),
    ("cleanall", ABSENT),
    ("", ABSENT),
    ("CLEAN_RULES", ABSENT),
]
G_SYNC_TYPES = [*PROTOBUF_SYNC_TYPES, ("CLEAN_STANDALONE", ABSENT), (4, "NORMAL")]
N_SYNC_TYPES = [*PROTOBUF_SYNC_TYPES[:-1], ("CLEAN_RULES", "NORMAL"), ("CLEAN_STANDALONE", "NORMAL")]
N_SYNC_TYPES += [("CLEAN_FILE_ACCESS_RULES", "NORMAL"), (4, "NORMAL")]
# [G-JSON] compared the lower-cased string: any case; any other non-empty string is present and NORMAL.
GJ_SYNC_TYPES: list[tuple[Any, str]] = [
    (None, ABSENT),
    ("", ABSENT),
    ("normal", "NORMAL"),
    ("NORMAL", "NORMAL"),
    ("Clean", "CLEAN"),
    ("CLEAN", "CLEAN"),
    ("clean_ALL", "CLEAN_ALL"),
    ("CLEAN_STANDALONE", "NORMAL"),
    ("weird", "NORMAL"),
    (2, ABSENT),  # not a string: ignored
]
CASES = [(G, *row) for row in G_SYNC_TYPES] + [(G6, *row) for row in G_SYNC_TYPES]
CASES += [(N, *row) for row in N_SYNC_TYPES] + [(GJ, *row) for row in GJ_SYNC_TYPES]


@pytest.mark.parametrize("clean_sync", [None, False, True])
@pytest.mark.parametrize(("variant", "sync_type", "row"), CASES)
def test_performed_sync_type_table(variant: Variant, sync_type: Any, row: str, clean_sync: bool | None) -> None:
    doc: dict[str, Any] = {}
    if sync_type is not None:
        doc["sync_type"] = sync_type
    if clean_sync is not None:
        doc["clean_sync"] = clean_sync
    response = pf(json.dumps(doc), variant)
    if row == ABSENT:
        expected = R_CLEAN if clean_sync else R_NORMAL  # "no sync_type, clean_sync true / no-or-false" rows
    else:
        expected = SYNC_TYPE_ROWS[row]  # clean_sync ignored when sync_type is present
    for requested, performed in zip(SyncType, expected, strict=True):
        assert performed_sync_type(requested, response) is performed


@pytest.mark.parametrize("sync_type", [None, 0, 1, 2, 3, 4, 5, 6, 99, -1])
@pytest.mark.parametrize("clean_sync", [False, True])
@pytest.mark.parametrize("requested", list(SyncType))
def test_performed_sync_type_function(sync_type: int | None, clean_sync: bool, requested: SyncType) -> None:
    response = PreflightResponse(sync_type=sync_type, clean_sync=clean_sync)
    if sync_type is None:
        row = R_CLEAN if clean_sync else R_NORMAL
    else:
        row = {2: R_CLEAN, 3: R_CLEAN_ALL}.get(sync_type, R_NORMAL)
    assert performed_sync_type(requested, response) is row[requested]


# ---------------------------------------------------------------------------------------------
# §1.2: interval floors and replacements per variant


@pytest.mark.parametrize(
    ("value", "google", "northpolesec"),
    [(None, 600, None), (0, 600, None), (1, 600, 60), (59, 600, 60), (60, 60, 60), (61, 61, 61), (86400, 86400, 86400)],
)
def test_full_sync_interval(value: int | None, google: int, northpolesec: int | None) -> None:
    body = "{}" if value is None else json.dumps({"full_sync_interval": value})
    assert pf(body, G).full_sync_interval == google
    assert pf(body, G6).full_sync_interval == google
    assert pf(body, GJ).full_sync_interval == google
    assert pf(body, N).full_sync_interval == northpolesec
    assert r.effective_full_sync_interval(value or 0, G) == google
    assert r.effective_full_sync_interval(value or 0, N) == northpolesec


@pytest.mark.parametrize(
    ("doc", "google", "northpolesec", "google_json"),
    [
        ({}, 14400, None, 14400),
        ({"push_notification_full_sync_interval": 0}, 14400, None, 14400),
        ({"push_notification_full_sync_interval": 30}, 14400, 60, 14400),
        ({"push_notification_full_sync_interval": 599}, 14400, 599, 14400),
        ({"push_notification_full_sync_interval": 600}, 600, 600, 14400),  # [G-JSON] read only fcm_*
        ({"fcm_full_sync_interval": 700}, 700, 700, 700),  # deprecated key when the new one is 0/absent
        ({"fcm_full_sync_interval": 30}, 14400, 60, 14400),
        ({"push_notification_full_sync_interval": 0, "fcm_full_sync_interval": 900}, 900, 900, 900),
        ({"push_notification_full_sync_interval": 800, "fcm_full_sync_interval": 900}, 800, 800, 900),
    ],
)
def test_push_full_sync_interval(doc: dict[str, int], google: int, northpolesec: int | None, google_json: int) -> None:
    body = json.dumps(doc)
    assert pf(body, G).push_notification_full_sync_interval == google
    assert pf(body, N).push_notification_full_sync_interval == northpolesec
    assert pf(body, GJ).push_notification_full_sync_interval == google_json


@pytest.mark.parametrize(
    ("doc", "protobuf", "google_json"),
    [
        ({}, 600, 600),
        ({"push_notification_global_rule_sync_deadline": 59}, 600, 600),
        ({"push_notification_global_rule_sync_deadline": 599}, 600, 600),
        ({"push_notification_global_rule_sync_deadline": 601}, 601, 600),
        ({"fcm_global_rule_sync_deadline": 59}, 600, 600),
        ({"fcm_global_rule_sync_deadline": 60}, 600, 60),  # [G-JSON] floor is 60
        ({"fcm_global_rule_sync_deadline": 900}, 900, 900),
    ],
)
def test_global_rule_sync_deadline(doc: dict[str, int], protobuf: int, google_json: int) -> None:
    body = json.dumps(doc)
    for variant in PROTOBUF:
        assert pf(body, variant).push_notification_global_rule_sync_deadline == protobuf
    assert pf(body, GJ).push_notification_global_rule_sync_deadline == google_json


# ---------------------------------------------------------------------------------------------
# ruledownload response (§3.3, §9.2, §9.3)

BIN = "A" * 64
CERT = "b" * 64


def _rule(**fields: Any) -> dict[str, Any]:
    return {"identifier": BIN, "policy": "ALLOWLIST", "rule_type": "BINARY", **fields}


@pytest.mark.parametrize("variant", PROTOBUF)
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, Rule(BIN.lower(), RuleType.BINARY, RuleState.ALLOW)),
        ({"policy": "WHITELIST"}, Rule(BIN.lower(), RuleType.BINARY, RuleState.ALLOW)),
        ({"policy": "ALLOWLIST_COMPILER"}, Rule(BIN.lower(), RuleType.BINARY, RuleState.ALLOW_COMPILER)),
        ({"policy": "WHITELIST_COMPILER"}, Rule(BIN.lower(), RuleType.BINARY, RuleState.ALLOW_COMPILER)),
        ({"policy": "BLOCKLIST"}, Rule(BIN.lower(), RuleType.BINARY, RuleState.BLOCK)),
        ({"policy": "BLACKLIST"}, Rule(BIN.lower(), RuleType.BINARY, RuleState.BLOCK)),
        ({"policy": "SILENT_BLOCKLIST"}, Rule(BIN.lower(), RuleType.BINARY, RuleState.SILENT_BLOCK)),
        ({"policy": "SILENT_BLACKLIST"}, Rule(BIN.lower(), RuleType.BINARY, RuleState.SILENT_BLOCK)),
        ({"policy": "REMOVE"}, Rule(BIN.lower(), RuleType.BINARY, RuleState.REMOVE)),
        ({"policy": 3, "rule_type": 2, "identifier": CERT}, Rule(CERT, RuleType.CERTIFICATE, RuleState.BLOCK)),
        (
            {"policy": "3", "rule_type": None, "ruleType": "2", "identifier": CERT},
            Rule(CERT, RuleType.CERTIFICATE, RuleState.BLOCK),
        ),
        ({"rule_type": "TEAMID", "identifier": "abcde12345"}, Rule("ABCDE12345", RuleType.TEAMID, RuleState.ALLOW)),
        (
            {"rule_type": "SIGNINGID", "identifier": "platform:com.apple.ls"},
            Rule("platform:com.apple.ls", RuleType.SIGNINGID, RuleState.ALLOW),
        ),
        ({"rule_type": "CDHASH", "identifier": CDHASH}, Rule(CDHASH, RuleType.CDHASH, RuleState.ALLOW)),
        ({"identifier": "", "sha256": BIN}, Rule(BIN.lower(), RuleType.BINARY, RuleState.ALLOW)),  # legacy alias
        (
            {"custom_msg": "no", "customUrl": "https://x/%file_sha%", "creation_time": 1.5, "file_bundle_hash": "h"},
            Rule(BIN.lower(), RuleType.BINARY, RuleState.ALLOW, "no", "https://x/%file_sha%"),
        ),
        ({"custom_msg": "", "custom_url": None}, Rule(BIN.lower(), RuleType.BINARY, RuleState.ALLOW)),
    ],
)
def test_rules_accepted(fields: dict[str, Any], expected: Rule, variant: Variant) -> None:
    page = rules(json.dumps({"rules": [_rule(**fields)]}), variant)
    assert page.rules == (expected,) and page.received == 1 and page.skipped == ()


@pytest.mark.parametrize("variant", PROTOBUF)
@pytest.mark.parametrize(
    "fields",
    [
        {"policy": "allowlist"},  # enum names are case-sensitive in protobuf-JSON
        {"policy": "ALLOW"},
        {"policy": "POLICY_UNKNOWN"},
        {"policy": 0},
        {"policy": 77},
        {"policy": None},
        {"policy": "CEL"},  # [N] knows it, santacore cannot store it; [G] does not know it
        {"policy": "SILENT_GUI_BLOCKLIST"},
        {"policy": 8},
        {"rule_type": "binary"},
        {"rule_type": "PACKAGE"},
        {"rule_type": "RULETYPE_UNKNOWN"},
        {"rule_type": 9},
        {"rule_type": None},
        {"identifier": ""},  # Moroz's legacy sha256-keyed rules (§3.3)
        {"identifier": None},
        {"identifier": "abc"},
        {"identifier": "A" * 63},
        {"rule_type": "TEAMID", "identifier": "ABCDE1234!"},
        {"rule_type": "SIGNINGID", "identifier": "com.apple.ls"},
    ],
)
def test_rules_skipped_and_counted(fields: dict[str, Any], variant: Variant) -> None:
    doc = {"rules": [_rule(), _rule(**fields), _rule(rule_type="CERTIFICATE")], "cursor": "next"}
    page = rules(json.dumps(doc), variant)
    assert page.received == 3 and page.processed == 2
    assert [s.index for s in page.skipped] == [1] and page.skipped[0].reason
    assert page.cursor == "next"


@pytest.mark.parametrize("variant", PROTOBUF)
@pytest.mark.parametrize(
    ("body", "cursor", "count"),
    [
        ('{"rules":null}', None, 0),  # Moroz with no rules (§9.2)
        ("{}", None, 0),
        ('{"rules":[]}', None, 0),
        ('{"cursor":"abc"}', "abc", 0),
        ('{"rules":[],"cursor":""}', None, 0),  # §9.3 item 6: absent, null or "" ends the download
        ('{"rules":[],"cursor":null}', None, 0),
        ('{"Rules":"junk","CURSOR":5}', None, 0),  # other spellings are unknown keys
    ],
)
def test_rules_pages(body: str, cursor: str | None, count: int, variant: Variant) -> None:
    page = rules(body, variant)
    assert page.cursor == cursor and page.received == count


@pytest.mark.parametrize("variant", PROTOBUF)
@pytest.mark.parametrize(
    "body",
    [
        '{"rules":{}}',
        '{"rules":"x"}',
        '{"rules":[null]}',  # null inside a repeated field
        '{"rules":["x"]}',
        '{"rules":[[]]}',
        '{"rules":[5]}',
        '{"cursor":5}',
        '{"cursor":["a"]}',
        '{"rules":[{"identifier":5}]}',
        '{"rules":[{"policy":true}]}',
        '{"rules":[{"rule_type":1.5}]}',
        '{"rules":[{"custom_msg":false}]}',
        '{"rules":[{"file_bundle_binary_count":-1}]}',
        '{"rules":[{"sha256":1}]}',
        '{"rules":[{"identifier":"a","identifier":"b"}]}',
        '{"rules":[{"rule_type":"BINARY","ruleType":"BINARY"}]}',
        '{"rules":[],"rules":[]}',
    ],
)
def test_rules_type_errors_fail_the_stage(body: str, variant: Variant) -> None:
    with pytest.raises(SyncError) as info:
        rules(body, variant)
    assert info.value.stage == "ruledownload"


def test_northpolesec_rule_fields_are_typed() -> None:
    body = json.dumps({"rules": [_rule(cel_expr=5)]})
    assert rules(body, G).processed == 1  # an unknown field to [G]
    with pytest.raises(SyncError):
        rules(body, N)
    assert rules(json.dumps({"rules": [_rule(cel_expr="true", notification_app_name="x")]}), N).processed == 1


MOROZ_RULES = (
    """{
  "rules": [
    {
      "rule_type": "BINARY",
      "policy": "BLOCKLIST",
      "identifier": "{BIN}",
      "custom_msg": "blocklist firefox"
    },
    {
      "rule_type": "BINARY",
      "policy": "ALLOWLIST",
      "identifier": ""
    },
    {
      "rule_type": "CERTIFICATE",
      "policy": "ALLOWLIST_COMPILER",
      "identifier": "{CERT}"
    }
  ]
}
""".replace("{BIN}", BIN).replace("{CERT}", CERT)
).encode()


@pytest.mark.parametrize("variant", list(Variant))
def test_moroz_rules(variant: Variant) -> None:
    """§9.2: one page, no cursor, a legacy `sha256` rule emitted with an empty identifier (ignored, counted)."""
    page = rules(MOROZ_RULES, variant)
    assert page.cursor is None and page.received == 3 and page.processed == 2
    assert page.rules[0] == Rule(BIN.lower(), RuleType.BINARY, RuleState.BLOCK, "blocklist firefox")
    assert page.rules[1] == Rule(CERT, RuleType.CERTIFICATE, RuleState.ALLOW_COMPILER)
    assert page.skipped[0].index == 1


# ---------------------------------------------------------------------------------------------
# eventupload and postflight responses (§3.2, §3.4, §4.5)


@pytest.mark.parametrize("variant", PROTOBUF)
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"event_upload_bundle_binaries":["abc","ABC"]}', ("abc", "ABC")),
        ('{"eventUploadBundleBinaries":["x"]}', ("x",)),
        ('{"event_upload_bundle_binaries":null}', ()),
        ('{"event_upload_bundle_binaries":[]}', ()),
        ('{"Err":null}', ()),  # Moroz (§9.2)
        ("{}", ()),  # Zentral with nothing to ask for (§9.4)
    ],
)
def test_eventupload_response(body: str, expected: tuple[str, ...], variant: Variant) -> None:
    assert r.parse_eventupload_response(body.encode(), variant).event_upload_bundle_binaries == expected


@pytest.mark.parametrize("variant", PROTOBUF)
@pytest.mark.parametrize(
    "body",
    [
        '{"event_upload_bundle_binaries":"abc"}',
        '{"event_upload_bundle_binaries":[null]}',
        '{"event_upload_bundle_binaries":[5]}',
        '{"event_upload_bundle_binaries":{}}',
        '{"event_upload_bundle_binaries":[],"eventUploadBundleBinaries":[]}',
    ],
)
def test_eventupload_response_rejects(body: str, variant: Variant) -> None:
    with pytest.raises(SyncError) as info:
        r.parse_eventupload_response(body.encode(), variant)
    assert info.value.stage == "eventupload"


def test_postflight_response_is_ignored() -> None:
    assert r.parse_postflight_response(b'{"NoOp": {}}\n') == PostflightResponse()  # Moroz
    assert r.parse_postflight_response(b"<html>") == PostflightResponse(error=r.parse_postflight_response(b"<").error)
    assert r.parse_postflight_response(b"<html>").error
    assert r.parse_postflight_response(b"<html>", GJ) == PostflightResponse()


# ---------------------------------------------------------------------------------------------
# [G-JSON] parsing (§2.3: loose types; §1.6 lower-cased sync_type; §3.3 cursor/rules rules)


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b"null", b"5", XSSI_1, b'{"x":NaN}', b'{"x":"\xff"}', b"{}x"]
)
def test_google_json_unparseable_is_empty(body: bytes) -> None:
    assert pf(body, GJ) == DEFAULTS
    assert r.parse_eventupload_response(body, GJ) == EventUploadResponse()
    with pytest.raises(SyncError) as info:
        rules(body, GJ)  # {} has no rules array
    assert info.value.stage == "ruledownload"


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        (XSSI_2 + b'{"batch_size":7}', "batch_size", 7),
        (b'{"batch_size":"7"}', "batch_size", 50),  # a string is not an NSNumber: ignored
        (b'{"batch_size":7.9}', "batch_size", 7),
        (b'{"batch_size":true}', "batch_size", 1),
        (b'{"batch_size":0}', "batch_size", 50),
        (b'{"enable_bundles":1}', "enable_bundles", True),  # any number is accepted for a bool
        (b'{"enable_bundles":0}', "enable_bundles", False),
        (b'{"enable_bundles":0.5}', "enable_bundles", True),
        (b'{"enable_bundles":"true"}', "enable_bundles", None),
        (b'{"enable_bundles":"x","bundles_enabled":1}', "enable_bundles", True),
        (b'{"enabled_transitive_whitelisting":0}', "enable_transitive_rules", False),
        (b'{"clean_sync":1}', "clean_sync", True),
        (b'{"clean_sync":"yes"}', "clean_sync", False),
        (b'{"client_mode":"LOCKDOWN"}', "client_mode", ClientMode.LOCKDOWN),
        (b'{"client_mode":"lockdown"}', "client_mode", None),  # exact-case match
        (b'{"client_mode":2}', "client_mode", None),
        (b'{"allowed_path_regex":5,"whitelist_regex":"^/a"}', "allowed_path_regex", "^/a"),
        (b'{"blocked_path_regex":""}', "blocked_path_regex", ""),
        (b'{"remount_usb_mode":["noexec",5]}', "remount_usb_mode", ("noexec",)),
        (b'{"block_usb_mount":1}', "block_usb_mount", True),
        (b'{"override_file_access_action":"AuditOnly"}', "override_file_access_action", FileAccessAction.AUDIT_ONLY),
        (b'{"sync_type":"Clean_All"}', "sync_type", 3),
        (b'{"batch_size":7,"batch_size":8}', "batch_size", 8),  # a dictionary: the last key wins
    ],
)
def test_google_json_loose_fields(body: bytes, field: str, expected: Any) -> None:
    assert getattr(pf(body, GJ), field) == expected


@pytest.mark.parametrize(
    ("body", "cursor", "processed"),
    [
        ('{"rules":[]}', None, 0),
        ('{"rules":[],"cursor":""}', "", 0),  # the loop continued while the key was present
        ('{"rules":[],"cursor":"c"}', "c", 0),
        ('{"rules":[],"cursor":5}', None, 0),
        ('{"rules":[null,"x",{"identifier":"' + BIN + '","policy":"allowlist","rule_type":"binary"}]}', None, 1),
    ],
)
def test_google_json_rules(body: str, cursor: str | None, processed: int) -> None:
    page = rules(body, GJ)
    assert page.cursor == cursor and page.processed == processed


@pytest.mark.parametrize("body", ['{"rules":null}', '{"rules":{}}', '{"cursor":"c"}', "{}"])
def test_google_json_rules_must_be_an_array(body: str) -> None:
    with pytest.raises(SyncError):
        rules(body, GJ)


def test_google_json_eventupload() -> None:
    body = b'{"event_upload_bundle_binaries":["a",5,null,"b"]}'
    assert r.parse_eventupload_response(body, GJ) == EventUploadResponse(("a", "b"))
    assert r.parse_eventupload_response(b'{"event_upload_bundle_binaries":"a"}', GJ) == EventUploadResponse()


# ---------------------------------------------------------------------------------------------
# Property: any JSON value in any response field yields a result or SyncError, nothing else

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["MONITOR", "LOCKDOWN", "CLEAN", "clean_all", "2", " 3 ", "ALLOWLIST", "BINARY", "7.0", "-0"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
PREFLIGHT_KEYS = [
    "client_mode",
    "clientMode",
    "sync_type",
    "syncType",
    "batch_size",
    "batchSize",
    "enable_bundles",
    "bundles_enabled",
    "deprecated_bundles_enabled",
    "enable_transitive_rules",
    "enabled_transitive_whitelisting",
    "transitive_whitelisting_enabled",
    "enable_all_event_upload",
    "disable_unknown_event_upload",
    "full_sync_interval",
    "full_sync_interval_seconds",
    "fullSyncIntervalSeconds",
    "push_notification_full_sync_interval",
    "fcm_full_sync_interval",
    "push_notification_global_rule_sync_deadline",
    "fcm_global_rule_sync_deadline",
    "allowed_path_regex",
    "whitelist_regex",
    "blocked_path_regex",
    "blacklist_regex",
    "block_usb_mount",
    "remount_usb_mode",
    "override_file_access_action",
    "clean_sync",
    "unknown",
]
RULE_KEYS = ["identifier", "policy", "rule_type", "ruleType", "custom_msg", "custom_url", "sha256"]
RULE_KEYS += ["file_bundle_hash", "file_bundle_binary_count", "cel_expr", "notification_app_name", "x"]
ALL_VARIANTS = st.sampled_from(list(Variant))


def _only_sync_errors(parse: Callable[[bytes, Variant], object], body: bytes, variant: Variant) -> None:
    try:
        parse(body, variant)
    except SyncError:
        pass


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(PREFLIGHT_KEYS), JSON_VALUES), ALL_VARIANTS, st.sampled_from(list(SyncType)))
def test_preflight_any_values(doc: dict[str, Any], variant: Variant, requested: SyncType) -> None:
    body = json.dumps(doc).encode()
    try:
        response = r.parse_preflight_response(body, variant)
    except SyncError as e:
        assert e.stage == "preflight"
        return
    assert isinstance(performed_sync_type(requested, response), SyncType)
    assert response.batch_size > 0
    assert response.full_sync_interval is None or response.full_sync_interval >= 60


@settings(max_examples=300)
@given(
    st.lists(st.dictionaries(st.sampled_from(RULE_KEYS), JSON_VALUES) | JSON_VALUES, max_size=4),
    JSON_VALUES,
    ALL_VARIANTS,
)
def test_ruledownload_any_values(entries: list[Any], cursor: Any, variant: Variant) -> None:
    body = json.dumps({"rules": entries, "cursor": cursor}).encode()
    try:
        page = r.parse_ruledownload_response(body, variant)
    except SyncError as e:
        assert e.stage == "ruledownload"
        return
    assert page.received == len(entries) == page.processed + len(page.skipped)
    assert all(isinstance(r, Rule) for r in page.rules)


@settings(max_examples=150)
@given(JSON_VALUES, ALL_VARIANTS)
def test_eventupload_and_postflight_any_values(value: Any, variant: Variant) -> None:
    for key in ("event_upload_bundle_binaries", "eventUploadBundleBinaries", "Err"):
        body = json.dumps({key: value}).encode()
        _only_sync_errors(r.parse_eventupload_response, body, variant)
        assert isinstance(r.parse_postflight_response(body, variant), PostflightResponse)


@settings(max_examples=200)
@given(st.binary(max_size=64) | st.sampled_from([XSSI_1, XSSI_2]).flatmap(lambda x: st.binary().map(x.__add__)))
def test_any_bytes(body: bytes) -> None:
    for variant in Variant:
        _only_sync_errors(r.parse_preflight_response, body, variant)
        _only_sync_errors(r.parse_eventupload_response, body, variant)
        _only_sync_errors(r.parse_ruledownload_response, body, variant)
        r.parse_postflight_response(body, variant)


@pytest.mark.parametrize(
    ("data", "stripped"),
    [
        (XSSI_1 + b'{"a": 1}', b'{"a": 1}'),
        (XSSI_2 + b"{}", b"{}"),
        (XSSI_1 + XSSI_2 + b"{}", XSSI_2 + b"{}"),  # only one prefix is removed
        (XSSI_1 + XSSI_1, XSSI_1),
        (b")]}'{}", b")]}'{}"),  # the 5-byte prefix needs its newline
        (b")]}{}", b")]}{}"),
        (XSSI_1, b""),
        (XSSI_2, b""),
        (b"{}", b"{}"),
        (b"", b""),
    ],
)
def test_strip_xssi(data: bytes, stripped: bytes) -> None:
    assert strip_xssi(data) == stripped
