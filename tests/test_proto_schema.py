"""santacore's santa.sync.v1 schema (proto/santa_sync_v1.proto) against the spec's field tables, and the checked-in
generated module against what proto/generate.py writes now."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from santacore.syncv1 import santa_sync_v1_pb2 as pb
from tests.conftest import REPO_ROOT
from tests.spec_tables import SPEC_EVENT_FIELDS

_TYPES = {1: "double", 8: "bool", 9: "string", 12: "bytes", 13: "uint32", 5: "int32", 14: "enum", 11: "message"}


def _spec_type(f: Any) -> str:
    kind = _TYPES[f.type]
    if f.message_type is not None:
        kind = f.message_type.name
    return f"list<{kind}>" if f.is_repeated else kind


def test_checked_in_module_is_what_protoc_generates(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate", REPO_ROOT / "proto" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in module.generate(tmp_path):
        checked_in = REPO_ROOT / "python" / "santacore" / "syncv1" / path.name
        assert checked_in.read_bytes() == path.read_bytes(), f"{path.name} is stale: run proto/generate.py"


def test_event_fields_follow_spec_4_1() -> None:
    fields = pb.Event.DESCRIPTOR.fields
    table = [(f.json_name, _spec_type(f)) for f in fields[:28]]
    assert table == [(k, t) for k, t in SPEC_EVENT_FIELDS]
    assert [f.number for f in fields] == list(range(1, 35))
    # [N] 29–34: no json_name except static_rule, so protobuf prints lowerCamelCase (§4.1).
    assert [f.json_name for f in fields[28:]] == [
        "entitlementInfo",
        "csFlags",
        "signingStatus",
        "secureSigningTime",
        "signingTime",
        "static_rule",
    ]


# §3.1, §3.2, §3.3, §3.4 request tables and addendum §4: (number, JSON key) in field order.
REQUEST_KEYS = {
    pb.PreflightRequest: [
        *enumerate(
            "serial_num hostname os_version os_build model_identifier santa_version primary_user"
            " push_notification_token client_mode request_clean_sync binary_rule_count certificate_rule_count"
            " compiler_rule_count"
            " transitive_rule_count teamid_rule_count signingid_rule_count cdhash_rule_count machine_id"
            " push_notification_sync sipStatus primary_user_groups rulesHash".split(),
            start=1,
        )
    ],
    pb.EventUploadRequest: [(1, "events"), (2, "machine_id"), (4, "file_access_events")],
    pb.RuleDownloadRequest: [(1, "cursor"), (2, "machine_id")],
    pb.PostflightRequest: [(1, "rules_received"), (2, "rules_processed"), (3, "machine_id"), (4, "syncType"),
                           (5, "rulesHash")],
}  # fmt: skip


@pytest.mark.parametrize("message", list(REQUEST_KEYS), ids=lambda m: m.DESCRIPTOR.name)
def test_request_json_keys_follow_the_spec(message: Any) -> None:
    assert [(f.number, f.json_name) for f in message.DESCRIPTOR.fields] == REQUEST_KEYS[message]


def test_preflight_response_fields() -> None:
    d = pb.PreflightResponse.DESCRIPTOR
    by_number = {f.number: (f.name, f.json_name) for f in d.fields}
    assert by_number[8] == ("full_sync_interval_seconds", "full_sync_interval")
    assert by_number[9] == ("push_notification_full_sync_interval_seconds", "push_notification_full_sync_interval")
    assert by_number[10][1] == "push_notification_global_rule_sync_deadline"
    assert by_number[1007] == ("deprecated_clean_sync", "clean_sync")
    assert by_number[1003][1] == "fcm_full_sync_interval" and by_number[1004][1] == "fcm_global_rule_sync_deadline"
    # Addendum §1.1 push fields.
    assert {n: by_number[n][0] for n in (20, 21, 22, 23, 24, 31, 33)} == {
        20: "push_server",
        21: "push_token",
        22: "push_key",
        23: "push_deviceid",
        24: "push_tags",
        31: "push_hmac_key",
        33: "push_issuer_token",
    }
    # Explicit presence where the spec says "absent = keep" (§3.1) and for the optional sync_type (§1.6).
    present = {f.name for f in d.fields if f.has_presence}
    assert {"sync_type", "enable_bundles", "allowed_path_regex", "override_file_access_action"} <= present
    assert "batch_size" not in present


def test_enums_follow_the_spec() -> None:
    sync_type = {v.name: v.number for v in pb.SyncType.DESCRIPTOR.values}
    assert sync_type == {
        "SYNC_TYPE_UNSPECIFIED": 0,
        "NORMAL": 1,
        "normal": 1,
        "CLEAN": 2,
        "clean": 2,
        "CLEAN_ALL": 3,
        "clean_all": 3,
        "CLEAN_STANDALONE": 4,
        "CLEAN_RULES": 5,
        "CLEAN_FILE_ACCESS_RULES": 6,
    }  # addendum §5
    assert pb.Decision.Value("BLOCK_BINARY_MISMATCH") == 18 and pb.Decision.Value("ALLOW_PLATFORM") == 19
    assert pb.Decision.Value("BUNDLE_BINARY") == 15 and pb.Decision.Value("BLOCK_CDHASH") == 14
    assert pb.Policy.Value("CEL") == 6 and pb.Policy.Value("SILENT_TTY_BLOCKLIST") == 9
    assert pb.Policy.Value("WHITELIST") == 1 and pb.RuleType.Value("CDHASH") == 5
    assert pb.ClientMode.Value("STANDALONE") == 3
    assert pb.SigningStatus.Value("SIGNING_STATUS_PRODUCTION") == 5
    assert pb.Rule.DESCRIPTOR.fields_by_name["cel_expr"].number == 9
    assert pb.Rule.DESCRIPTOR.fields_by_name["deprecated_sha256"].json_name == "sha256"
