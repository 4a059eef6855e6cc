"""The rules hash in preflight and postflight (addendum §4) and every wire SyncType 0–6 (addendum §5), in both
formats, against the testing server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import xxhash

from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import Rule
from santacore.sync.protocol import SyncType, WireSyncType
from santacore.sync.stages import SyncStatus, request_sync_type
from santacore.testing import SyncServer
from tests.sync_client import SyncTestClient, write_config

EMPTY_TABLE_HASH = "99aa06d3014798d86001c324468d497f"  # addendum §4: XXH3-128 of nothing
LOCAL = {"identifier": "ZZZZZ11111", "policy": "BLOCKLIST", "rule_type": "TEAMID"}
SERVED = [
    {"identifier": "ABCDE12345", "policy": "ALLOWLIST", "rule_type": "TEAMID"},
    {"identifier": hashlib.sha256(b"x").hexdigest(), "policy": "BLOCKLIST", "rule_type": "BINARY"},
]


def client(tmp_path: Path, server: SyncServer, protocol: str = "northpolesec", proto: bool = False) -> SyncTestClient:
    extra = f'SyncProtocol = "{protocol}"\nSyncEnableProtoTransfer = {str(proto).lower()}\n'
    return SyncTestClient(write_config(tmp_path, server, extra))


def rules_hash(c: SyncTestClient) -> str:
    with RuleStore(c.config.rules_db) as store:
        return store.rules_hash()


def add_local_rule(c: SyncTestClient) -> None:
    with RuleStore(c.config.rules_db) as store:
        store.add_rules([Rule.from_wire(LOCAL)])


@pytest.mark.parametrize("proto", [False, True], ids=["json", "protobuf"])
def test_rules_hash_before_and_after(tmp_path: Path, proto: bool) -> None:
    with SyncServer(profile="northpolesec") as server:
        server.add_rules(SERVED)
        c = client(tmp_path, server, proto=proto)
        first = c.run_sync()
        assert first.status is SyncStatus.SUCCESS, first.log
        (pre,) = server.requests_for("preflight")
        (post,) = server.requests_for("postflight")
        assert pre.data["rulesHash"] == EMPTY_TABLE_HASH == xxhash.xxh3_128_hexdigest(b"")  # taken before download
        after = rules_hash(c)
        assert post.data["rulesHash"] == after != EMPTY_TABLE_HASH  # taken after it
        # The two served rules, hashed as addendum §4 says (identifier, cel_expr, seatbelt, state, type; LE int32).
        rows = [("ABCDE12345", 1, 4000), (SERVED[1]["identifier"], 2, 1000)]
        data = b"".join(i.encode() + s.to_bytes(4, "little") + t.to_bytes(4, "little") for i, s, t in rows)
        assert after == xxhash.xxh3_128_hexdigest(data)
        assert c.run_sync().status is SyncStatus.SUCCESS
        assert server.requests_for("preflight")[1].data["rulesHash"] == after


def test_google_sends_no_rules_hash(tmp_path: Path) -> None:
    with SyncServer() as server:
        c = client(tmp_path, server, "google")
        assert c.run_sync().status is SyncStatus.SUCCESS
        assert all("rulesHash" not in rec.data for rec in server.requests if rec.stage in ("preflight", "postflight"))


@pytest.mark.parametrize("proto", [False, True], ids=["json", "protobuf"])
@pytest.mark.parametrize(
    "wire", [WireSyncType.CLEAN_STANDALONE, WireSyncType.CLEAN_RULES, WireSyncType.CLEAN_FILE_ACCESS_RULES]
)
def test_sync_types_4_to_6_are_normal(tmp_path: Path, wire: WireSyncType, proto: bool) -> None:
    with SyncServer(profile="northpolesec") as server:
        server.add_rules(SERVED)
        c = client(tmp_path, server, proto=proto)
        assert c.run_sync().status is SyncStatus.SUCCESS  # the first (clean) sync
        add_local_rule(c)
        server.quirks.honour_clean_request = False
        server.set_sync_type(wire.name)
        request_sync_type(c.state_path, SyncType.CLEAN)  # asked for a clean sync; the server answers 4–6
        result = c.run_sync()
        assert result.status is SyncStatus.SUCCESS and result.performed is SyncType.NORMAL
        assert "treats as NORMAL" in result.log[0] and wire.name in result.log[0], result.log
        assert LOCAL["identifier"] in {r.identifier for r in c.stored_rules()}  # nothing deleted
        assert server.requests_for("postflight")[-1].data["syncType"] == "NORMAL"
        # The requested clean sync was not done, so it is requested again (addendum §5).
        assert c.run_sync().status is SyncStatus.SUCCESS
        assert server.requests_for("preflight")[-1].data["request_clean_sync"] is True


@pytest.mark.parametrize(
    ("wire", "performed", "local_kept"),
    [
        (WireSyncType.SYNC_TYPE_UNSPECIFIED, SyncType.NORMAL, True),
        (WireSyncType.NORMAL, SyncType.NORMAL, True),
        (WireSyncType.CLEAN, SyncType.CLEAN, False),
        (WireSyncType.CLEAN_ALL, SyncType.CLEAN_ALL, False),
    ],
)
def test_sync_types_0_to_3(tmp_path: Path, wire: WireSyncType, performed: SyncType, local_kept: bool) -> None:
    with SyncServer(profile="northpolesec") as server:
        server.add_rules(SERVED)
        c = client(tmp_path, server, proto=True)
        assert c.run_sync().status is SyncStatus.SUCCESS
        add_local_rule(c)
        server.set_sync_type(wire.name)
        result = c.run_sync()
        assert result.status is SyncStatus.SUCCESS and result.performed is performed, result.log
        assert (LOCAL["identifier"] in {r.identifier for r in c.stored_rules()}) is local_kept
        assert server.requests_for("postflight")[-1].data["syncType"] == performed.name


def test_zero_rule_clean_sync_deletes_nothing_but_is_reported(tmp_path: Path) -> None:
    """Addendum §5's caveat: no rules downloaded → no cleanup, yet postflight says CLEAN and the request is cleared."""
    with SyncServer(profile="northpolesec") as server:
        c = client(tmp_path, server, proto=True)
        assert c.run_sync().status is SyncStatus.SUCCESS
        add_local_rule(c)
        request_sync_type(c.state_path, SyncType.CLEAN)
        result = c.run_sync()
        assert result.performed is SyncType.CLEAN and result.rules_received == 0
        assert [r.identifier for r in c.stored_rules()] == [LOCAL["identifier"]]
        assert server.requests_for("postflight")[-1].data["syncType"] == "CLEAN"
        assert c.run_sync().performed is SyncType.NORMAL  # SyncTypeRequired was reset
        assert "request_clean_sync" not in server.requests_for("preflight")[-1].data
