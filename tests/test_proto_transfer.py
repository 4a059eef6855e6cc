"""SyncEnableProtoTransfer (addendum §3): binary protobuf bodies, built from the same values as the protobuf-JSON
mode; golden bytes written by hand from the spec's tables; full syncs in both formats against each profile of the
testing server; the server's refusals."""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format, text_format

from santacore.errors import SyncError
from santacore.santad.decisions import ClientMode, Decision
from santacore.santad.events import Certificate, SigningStatus, StoredEvent, Variant
from santacore.santad.rule_store import RuleCounts
from santacore.sync import protocol as p
from santacore.sync import responses as r
from santacore.sync.binary import PROTOBUF_TYPE, encode_request
from santacore.sync.host import HostFacts
from santacore.sync.protocol import SyncType
from santacore.sync.stages import SyncStatus
from santacore.sync.wire import encode_json
from santacore.syncv1 import santa_sync_v1_pb2 as pb
from santacore.testing import SyncServer
from tests.conftest import REPO_ROOT
from tests.sync_client import MACHINE, SyncTestClient, write_config

GOLDEN = REPO_ROOT / "tests" / "golden"
MID = "9B0F3E52-6C1D-4E8A-B7F2-0D4C5A6E7F81"
MAC = HostFacts(
    hostname="mac-17.corp.example.com",
    os_version="14.6.1",
    os_build="23G93",
    model_identifier="Mac14,2",
    serial_number="C02XK1ABCDEF",
)
PROTOBUF_VARIANTS = (Variant.GOOGLE, Variant.NORTHPOLESEC)


def spec_example_event(**changes: Any) -> StoredEvent:
    """§4.1's example event."""
    values: dict[str, Any] = dict(
        file_sha256="3c5e1a0f9d2b7e4c6a8f0b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f",
        file_path="/Applications/Acme.app/Contents/MacOS/Acme",
        decision=Decision.BLOCK_UNKNOWN,
        occurrence_date=1718035512.8042209,
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
        cdhash="0f3c9e2b7a11d4c5e6f708192a3b4c5d6e7f8091",
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
    values.update(changes)
    return StoredEvent(**values)


def preflight_body(variant: Variant, **changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        machine_id=MID,
        facts=MAC,
        rule_counts=RuleCounts(),
        client_mode=ClientMode.MONITOR,
        primary_user="alice",
        santa_version="2024.9.674285143",
        variant=variant,
    )
    args.update(changes)
    return p.preflight_request(**args)


def golden_message(name: str, message: Any) -> Any:
    return text_format.Parse((GOLDEN / name).read_text(encoding="utf-8"), message)


def golden_hex(name: str) -> bytes:
    lines = (GOLDEN / name).read_text(encoding="utf-8").splitlines()
    return bytes.fromhex("".join(line.split("#")[0] for line in lines))


# --------------------------------------------------------------------------------------------------
# Each stage: the binary body holds exactly what the JSON body holds


def _same_fields(stage: str, body: dict[str, Any], variant: Variant) -> None:
    binary = encode_request(stage, body)
    message = {"preflight": pb.PreflightRequest, "eventupload": pb.EventUploadRequest}.get(stage)
    message = message or {"ruledownload": pb.RuleDownloadRequest, "postflight": pb.PostflightRequest}[stage]
    decoded = message.FromString(binary)
    assert json_format.MessageToDict(decoded) == json.loads(encode_json(body, variant))


@pytest.mark.parametrize("variant", PROTOBUF_VARIANTS)
def test_every_stage_sends_the_json_fields(variant: Variant) -> None:
    everything = dict(
        rule_counts=RuleCounts(binary=12, certificate=3, compiler=2, transitive=5, teamid=1, signingid=4, cdhash=7),
        client_mode=ClientMode.LOCKDOWN,
        requested_sync_type=SyncType.CLEAN,
        push_notification_token="tok/en",
        push_notification_sync=True,
        sip_status=0x6F,
        primary_user_groups=("staff", "admin"),
        rules_hash="a6cb5171bbb8895820d61e395592b293",
    )
    if variant is not Variant.NORTHPOLESEC:
        everything = {k: v for k, v in everything.items() if k in ("rule_counts", "client_mode", "requested_sync_type")}
    _same_fields("preflight", preflight_body(variant, **everything), variant)
    _same_fields("preflight", preflight_body(variant), variant)
    n_fields = dict(
        entitlements=(("com.apple.security.get-task-allow", "true"),),
        entitlements_filtered=True,
        cs_flags=0x2000301,
        signing_status=SigningStatus.PRODUCTION,
        signing_time=1718000000,
        secure_signing_time=1718000001,
        static_rule=True,
    )
    events = [
        spec_example_event(),
        spec_example_event(decision=Decision.BUNDLE_BINARY, file_bundle_hash="ab" * 32, file_bundle_binary_count=3),
        spec_example_event(**n_fields),
    ]
    _same_fields("eventupload", p.eventupload_request(events, MID, variant), variant)
    _same_fields("ruledownload", p.ruledownload_request(None, MID, variant), variant)
    _same_fields("ruledownload", p.ruledownload_request("page/2?after=ab&c=1+2==", MID, variant), variant)
    for sync_type in SyncType:
        body = p.postflight_request(
            rules_received=5, rules_processed=4, machine_id=MID, sync_type=sync_type, variant=variant
        )
        _same_fields("postflight", body, variant)


def test_northpolesec_event_fields_on_the_wire() -> None:
    event = spec_example_event(cs_flags=0x2000301, signing_status=SigningStatus.ADHOC, static_rule=True)
    decoded = pb.EventUploadRequest.FromString(
        encode_request("eventupload", p.eventupload_request([event], MID, Variant.NORTHPOLESEC))
    )
    (e,) = decoded.events
    assert (e.cs_flags, e.signing_status, e.static_rule) == (0x2000301, pb.SIGNING_STATUS_ADHOC, True)
    assert e.HasField("entitlement_info")  # [N] always sets the message, maybe empty (§4.1)


# --------------------------------------------------------------------------------------------------
# Golden bytes, written by hand from the spec's tables


def test_preflight_golden() -> None:
    sent = encode_request("preflight", preflight_body(Variant.NORTHPOLESEC))
    assert sent == golden_hex("preflight_request.hex")
    assert sent == golden_message("preflight_request.txtpb", pb.PreflightRequest()).SerializeToString()
    assert encode_request("preflight", preflight_body(Variant.GOOGLE)) == sent


def test_eventupload_golden() -> None:
    body = p.eventupload_request([spec_example_event()], "50C7E1EB-2EF5-42D4-A084-A7966FC45A95", Variant.GOOGLE)
    sent = encode_request("eventupload", body)
    expected = golden_message("eventupload_request.txtpb", pb.EventUploadRequest())
    assert pb.EventUploadRequest.FromString(sent) == expected
    assert sent == expected.SerializeToString()
    # Field 5 is a double: tag 0x29 (5 << 3 | 1, 64-bit) then the value's 8 little-endian bytes (§4.1).
    assert b"\x29" + struct.pack("<d", 1718035512.8042209) in sent


# --------------------------------------------------------------------------------------------------
# Responses in binary


def test_binary_responses_parse() -> None:
    answer = pb.PreflightResponse(
        client_mode=pb.LOCKDOWN,
        sync_type=pb.CLEAN_ALL,
        batch_size=7,
        enable_bundles=False,
        full_sync_interval_seconds=90,
    )
    got = r.parse_preflight_response(answer.SerializeToString(), Variant.NORTHPOLESEC, binary=True)
    assert (got.client_mode, got.sync_type, got.batch_size, got.enable_bundles) == (ClientMode.LOCKDOWN, 3, 7, False)
    assert got.full_sync_interval == 90 and got.enable_transitive_rules is None
    # A zero-length 200 is the empty message (addendum §3).
    assert r.parse_preflight_response(b"", Variant.NORTHPOLESEC, binary=True) == r.parse_preflight_response(
        b"{}", Variant.NORTHPOLESEC
    )
    rules = pb.RuleDownloadResponse(
        rules=[pb.Rule(identifier="ABCDE12345", policy=pb.BLOCKLIST, rule_type=pb.TEAMID)], cursor="next"
    )
    page = r.parse_ruledownload_response(rules.SerializeToString(), Variant.GOOGLE, binary=True)
    assert (page.received, page.processed, page.cursor) == (1, 1, "next")
    wanted = pb.EventUploadResponse(event_upload_bundle_binaries=["ab" * 32]).SerializeToString()
    assert r.parse_eventupload_response(wanted, binary=True).event_upload_bundle_binaries == ("ab" * 32,)


@pytest.mark.parametrize("body", [b'{"batch_size":7}', b"\xff\xff\xff", b"\x0a\x05ab"])
def test_unparseable_binary_fails_the_stage(body: bytes) -> None:
    """No fallback to JSON: a body that ParseFromString refuses fails the stage (addendum §3)."""
    with pytest.raises(SyncError, match="Failed to parse preflight response protobuf") as info:
        r.parse_preflight_response(body, Variant.NORTHPOLESEC, binary=True)
    assert info.value.stage == "preflight"


# --------------------------------------------------------------------------------------------------
# Full syncs in both formats


RULES = [
    {"identifier": "ABCDE12345", "policy": "ALLOWLIST", "rule_type": "TEAMID"},
    {"identifier": "ABCDE12345:com.acme.app", "policy": "BLOCKLIST", "rule_type": "SIGNINGID"},
    {"identifier": "c" * 64, "policy": "BLOCKLIST", "rule_type": "BINARY"},
]
PROFILES = {  # profile → (SyncProtocol, accepts binary protobuf)
    "google": ("google", True),
    "northpolesec": ("northpolesec", True),
    "moroz": ("google", False),
    "zentral": ("northpolesec", False),
}


def _client(tmp_path: Path, server: SyncServer, protocol: str, proto: bool) -> SyncTestClient:
    extra = f'SyncProtocol = "{protocol}"\nSyncEnableProtoTransfer = {str(proto).lower()}\n'
    return SyncTestClient(write_config(tmp_path, server, extra + "SyncEnableCleanSyncEventUpload = true\n"))


@pytest.mark.parametrize("proto", [False, True], ids=["json", "protobuf"])
@pytest.mark.parametrize("profile", list(PROFILES))
def test_full_sync_in_each_format(tmp_path: Path, profile: str, proto: bool) -> None:
    protocol, supported = PROFILES[profile]
    machine = MACHINE
    with SyncServer(profile=profile, page_size=2, enable_bundles=True) as server:
        server.add_rules(RULES)
        client = _client(tmp_path, server, protocol, proto)
        client.queue([spec_example_event(file_sha256=f"{i:064x}", file_bundle_hash="ab" * 32) for i in range(3)])
        result = client.run_sync(machine_id=machine)
        if proto and not supported:  # Moroz and Zentral read JSON only: a clear 4xx
            assert result.status is SyncStatus.PREFLIGHT_FAILED
            assert server.requests[0].status == 415
            assert "HTTP Response: 415" in (result.error or "")
            assert {rec.status for rec in server.requests} == {415}  # (the test client's retry policy retries 4xx)
            return
        assert result.status is SyncStatus.SUCCESS, (result.error, result.log)
        assert result.events_uploaded == 3 and client.pending_count() == 0
        assert {rule.identifier for rule in client.stored_rules()} == {
            "ABCDE12345",
            "ABCDE12345:com.acme.app",
            "c" * 64,
        }
        stages = [rec for rec in server.requests if rec.stage != "xsrf"]
        assert {rec.wire_format for rec in stages} == {"protobuf" if proto else "json"}
        for rec in stages:
            assert rec.header("Content-Type") == (PROTOBUF_TYPE if proto else "application/json")
            if profile != "moroz" or rec.stage != "ruledownload":
                assert rec.header("Content-Encoding") == "deflate" and zlib.decompress(rec.raw_body) == rec.body
        # What the server read is the same whichever the format: the preflight's JSON value.
        (pre,) = server.requests_for("preflight")
        assert pre.data["machine_id"] == machine and pre.data["client_mode"] == "MONITOR"
        second = client.run_sync(machine_id=machine)
        again = SyncType.CLEAN if profile == "moroz" else SyncType.NORMAL  # Moroz's sample config: clean every time
        assert second.status is SyncStatus.SUCCESS and second.performed is again, second.log


def test_server_answers_in_the_request_format(tmp_path: Path) -> None:
    with SyncServer(profile="northpolesec", batch_size=9) as server, httpx.Client() as http:
        message = pb.PreflightRequest(serial_number="S", santa_version="2025.1", machine_id=MACHINE)
        reply = http.post(
            server.url("preflight", MACHINE),
            content=message.SerializeToString(),
            headers={"Content-Type": PROTOBUF_TYPE},
        )
        assert reply.status_code == 200 and reply.headers["content-type"] == PROTOBUF_TYPE
        assert pb.PreflightResponse.FromString(reply.content).batch_size == 9
        assert server.requests[0].data == {"serial_num": "S", "santa_version": "2025.1", "machine_id": MACHINE}
        as_json = http.post(server.url("preflight", MACHINE), json={"serial_num": "S"})
        assert as_json.headers["content-type"] == "application/json" and as_json.json()["batch_size"] == 9


@pytest.mark.parametrize(
    ("profile", "body", "content_type", "status", "says"),
    [
        ("google", b'{"serial_num":"x"}', PROTOBUF_TYPE, 400, "not a serialized santa.sync.v1.PreflightRequest"),
        ("google", b"\x0a\x01x\x48\x01", "application/json", 400, "needs Content-Type: application/x-protobuf"),
        ("moroz", b"\x0a\x01x", PROTOBUF_TYPE, 415, "JSON bodies only"),
        ("zentral", b"\x0a\x01x", PROTOBUF_TYPE, 415, "JSON bodies only"),
    ],
)
def test_server_refuses_a_mismatched_format(
    profile: str, body: bytes, content_type: str, status: int, says: str
) -> None:
    with SyncServer(profile=profile) as server, httpx.Client() as http:
        machine = "00000000-0000-4000-8000-000000000001"
        reply = http.post(server.url("preflight", machine), content=body, headers={"Content-Type": content_type})
        assert reply.status_code == status
        assert re.search(re.escape(says), server.requests[0].error or ""), server.requests[0].error


def test_google_json_refuses_proto_transfer(tmp_path: Path) -> None:
    with SyncServer() as server:
        client = _client(tmp_path, server, "google-json", True)
        with pytest.raises(SyncError, match="SyncEnableProtoTransfer needs a protobuf SyncProtocol"):
            client.run_sync()
