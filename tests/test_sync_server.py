"""santacore.testing.SyncServer, driven with plain httpx (never santacore's own client)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from santacore.testing import Fault, PreflightSettings, ServerSettings, SyncServer, serve
from santacore.testing.profiles import XSSI_PREFIX, XSSI_SHORT_PREFIX

MID = "9B0F3E52-6C1D-4E8A-B7F2-0D4C5A6E7F81"
MID2 = "1C2D3E4F-5A6B-4C7D-8E9F-A0B1C2D3E4F5"
SHA = "3c5e1a0f9d2b7e4c6a8f0b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f"
BUNDLE = "b" * 64
PREFLIGHT = {
    "serial_num": "C02XK1ABCDEF",
    "hostname": "mac-17.corp.example.com",
    "os_version": "14.6.1",
    "os_build": "23G93",
    "model_identifier": "Mac14,2",
    "santa_version": "2024.9.674285143",
    "primary_user": "alice",
    "client_mode": "MONITOR",
    "machine_id": MID,
}
EVENT = {
    "file_sha256": SHA,
    "file_path": "/Applications/Acme.app/Contents/MacOS",
    "file_name": "Acme",
    "executing_user": "bob",
    "execution_time": 1718035512.8042209,
    "decision": "BLOCK_UNKNOWN",
    "signing_chain": [{"sha256": "5d" * 32, "cn": "Acme", "valid_from": 1647447514, "valid_until": 1805213914}],
}


def rule(n: int, policy: str = "BLOCKLIST") -> dict[str, Any]:
    return {"identifier": f"{n:064x}", "policy": policy, "rule_type": "BINARY"}


def encode(body: Any, encoding: str) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if encoding == "deflate":
        return zlib.compress(raw), {"Content-Encoding": "deflate"}
    if encoding == "gzip":
        return gzip.compress(raw), {"Content-Encoding": "gzip"}
    if encoding == "raw-deflate":
        packer = zlib.compressobj(wbits=-15)
        return packer.compress(raw) + packer.flush(), {"Content-Encoding": "deflate"}
    return raw, {}


def post(
    client: httpx.Client,
    server: SyncServer,
    stage: str,
    body: Any = None,
    *,
    mid: str = MID,
    encoding: str = "deflate",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    content, extra = encode({} if body is None else body, encoding)
    all_headers = {"Content-Type": "application/json", "User-Agent": "santactl-sync/2024.9.1", **extra}
    return client.post(server.url(stage, mid), content=content, headers={**all_headers, **(headers or {})})


def full_sync(client: httpx.Client, server: SyncServer, mid: str = MID, **headers: str) -> list[dict[str, Any]]:
    """preflight → ruledownload (all pages) → postflight; returns the rules received."""
    assert post(client, server, "preflight", {**PREFLIGHT, "machine_id": mid}, mid=mid, headers=headers).is_success
    rules: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = post(client, server, "ruledownload", {"cursor": cursor} if cursor else {}, mid=mid, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        rules += page["rules"] or []
        cursor = page.get("cursor")
        if not cursor:
            break
    assert post(client, server, "postflight", {"rules_received": len(rules)}, mid=mid, headers=headers).is_success
    return rules


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


# -- every stage, per profile ------------------------------------------------------------------------


def test_google_round_trip(client: httpx.Client) -> None:
    with SyncServer(rules=[rule(1)], batch_size=25, enable_bundles=True, allowed_path_regex="^/opt/") as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/"
        pre = post(client, server, "preflight", PREFLIGHT)
        assert pre.status_code == 200
        assert pre.headers["content-type"] == "application/json"
        assert pre.text == (
            '{"client_mode":"MONITOR","batch_size":25,"enable_bundles":true,"full_sync_interval":600,'
            '"allowed_path_regex":"^/opt/"}'
        )
        up = post(client, server, "eventupload", {"events": [EVENT], "machine_id": MID})
        assert (up.status_code, up.json()) == (200, {})
        down = post(client, server, "ruledownload", {"machine_id": MID})
        assert down.json() == {"rules": [rule(1)]}  # one page: no cursor
        post_ = post(client, server, "postflight", {"rules_received": 1, "rules_processed": 1, "machine_id": MID})
        assert (post_.status_code, post_.text) == (200, "{}")
    assert server.preflights == {MID: [PREFLIGHT]}
    assert server.events == {MID: [EVENT]}
    assert server.postflights == {MID: [{"rules_received": 1, "rules_processed": 1, "machine_id": MID}]}
    stages = [(r.method, r.stage, r.machine_id, r.status) for r in server.requests]
    assert stages == [("POST", s, MID, 200) for s in ("preflight", "eventupload", "ruledownload", "postflight")]
    first = server.requests[0]
    assert first.header("user-agent") == "santactl-sync/2024.9.1"
    assert zlib.decompress(first.raw_body) == first.body and first.data == PREFLIGHT
    assert server.errors == []


def test_northpolesec_round_trip(client: httpx.Client) -> None:
    with SyncServer(
        profile="northpolesec", client_mode="STANDALONE", rules=[rule(2, "CEL") | {"cel_expr": "true"}]
    ) as s:
        assert (
            post(client, s, "preflight", {**PREFLIGHT, "client_mode": "STANDALONE"}).json()["client_mode"]
            == "STANDALONE"
        )
        assert (
            post(client, s, "eventupload", {"events": [EVENT], "file_access_events": [{"target": "/x"}]}).json() == {}
        )
        assert post(client, s, "ruledownload", {}).json()["rules"][0]["cel_expr"] == "true"
        assert post(client, s, "postflight", {"syncType": "NORMAL", "rulesHash": "abc"}).json() == {}
    assert s.postflights[MID] == [{"syncType": "NORMAL", "rulesHash": "abc"}]


def test_moroz_round_trip(client: httpx.Client) -> None:
    with SyncServer(profile="moroz", rules=[rule(3) | {"custom_msg": "no <b>", "file_bundle_hash": "x"}]) as server:
        assert server.base_url.endswith("/v1/santa/")
        pre = post(client, server, "preflight", PREFLIGHT)
        assert pre.headers["content-type"] == "application/json; charset=utf-8"
        assert pre.text.startswith('{\n  "client_mode": "MONITOR",\n') and pre.text.endswith("}\n")
        assert list(pre.json()) == [
            "client_mode",
            "blocked_path_regex",
            "allowed_path_regex",
            "batch_size",
            "enable_all_event_upload",
            "enable_bundles",
            "enable_transitive_rules",
            "clean_sync",
            "full_sync_interval",
        ]
        assert pre.json()["clean_sync"] is True and pre.json()["allowed_path_regex"] == ""  # sample config
        up = post(client, server, "eventupload", {"events": [EVENT | {"file_bundle_hash": BUNDLE}]})
        assert up.json() == {"Err": None}  # never asks for bundle binaries
        down = post(client, server, "ruledownload", {})
        assert down.json() == {
            "rules": [{"rule_type": "BINARY", "policy": "BLOCKLIST", "identifier": f"{3:064x}", "custom_msg": "no <b>"}]
        }
        assert "\\u003cb\\u003e" in down.text  # Go's HTML-safe escaping
        assert post(client, server, "postflight", {"rules_received": 1}).json() == {"NoOp": {}}
    assert server.events[MID][0]["file_bundle_hash"] == BUNDLE


def test_zentral_round_trip(client: httpx.Client) -> None:
    auth = {"Zentral-Authorization": "Bearer s3cret"}
    with SyncServer(profile="zentral", enrollment_secret="s3cret", rules=[rule(4)], batch_size=10) as server:
        pre = post(client, server, "preflight", PREFLIGHT, headers=auth)
        assert pre.json() == {
            "client_mode": "MONITOR",
            "batch_size": 10,
            "full_sync_interval": 600,
            "enable_bundles": False,
            "enable_transitive_rules": False,
            "enable_all_event_upload": False,
            "allowed_path_regex": "(?!)",
            "blocked_path_regex": "(?!)",
            "sync_type": "CLEAN",  # a newly enrolled machine
        }
        assert post(client, server, "eventupload", {"events": [EVENT]}, headers=auth).json() == {}
        first = post(client, server, "ruledownload", {}, headers=auth).json()
        assert first["rules"] == [rule(4)] and first["cursor"]
        last = post(client, server, "ruledownload", {"cursor": first["cursor"]}, headers=auth).json()
        assert last == {"rules": []}  # the acknowledging empty page
        assert post(client, server, "postflight", {"rules_received": 1, "syncType": "CLEAN"}, headers=auth).text == "{}"
    assert server.machines[MID.lower()]["pending_sync_type"] is None
    assert server.events == {MID.lower(): [EVENT]}


# -- request bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["deflate", "gzip", "none"])
def test_request_encodings_decoded(client: httpx.Client, encoding: str) -> None:
    with SyncServer() as server:
        assert post(client, server, "preflight", PREFLIGHT, encoding=encoding).status_code == 200
    assert server.preflights[MID] == [PREFLIGHT]
    assert server.requests[0].body == json.dumps(PREFLIGHT).encode()


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (encode(PREFLIGHT, "raw-deflate")[0], {"Content-Encoding": "deflate"}, 400),  # deflate means zlib-wrapped
        (b"\x78\x9cgarbage", {"Content-Encoding": "deflate"}, 400),
        (zlib.compress(b"{}")[:-3], {"Content-Encoding": "deflate"}, 400),  # truncated stream
        (b"{}", {"Content-Encoding": "br"}, 415),
        (b'{"serial_num":"x"}', {"Content-Type": "application/x-protobuf"}, 400),  # JSON labelled protobuf
        (b"{not json", {}, 400),
        (b'{"batch_size": NaN}', {}, 400),
        (b"[1, 2]", {}, 400),
    ],
)
def test_bad_request_bodies(client: httpx.Client, body: bytes, headers: dict[str, str], status: int) -> None:
    with SyncServer() as server:
        response = client.post(server.url("preflight", MID), content=body, headers=headers)
    assert response.status_code == status and "error" in response.json()
    assert server.preflights == {}


def test_empty_body_is_all_defaults(client: httpx.Client) -> None:
    with SyncServer() as server:
        assert client.post(server.url("ruledownload", MID)).status_code == 200


@pytest.mark.parametrize(
    ("stage", "body", "ok"),
    [
        ("preflight", {"request_clean_sync": "true"}, False),  # bools accept only true/false
        ("preflight", {"binary_rule_count": "12"}, True),  # quoted integers are fine
        ("preflight", {"binaryRuleCount": 12.0, "serialNumber": "X"}, True),  # camelCase, proto name, 12.0
        ("preflight", {"binary_rule_count": 1.5}, False),
        ("preflight", {"cdhash_rule_count": -1}, False),
        ("preflight", {"client_mode": "SOMETHING_NEW"}, True),  # unknown enum names become 0
        ("preflight", {"client_mode": True}, False),
        ("preflight", {"hostname": 7}, False),
        ("preflight", {"unknown_key": {"x": [1]}}, True),
        ("eventupload", {"events": [EVENT | {"pid": "12"}]}, True),
        ("eventupload", {"events": [EVENT | {"logged_in_users": "bob"}]}, False),
        ("eventupload", {"events": [EVENT | {"signing_chain": [{"valid_from": 1.5}]}]}, False),
        ("eventupload", {"events": [None]}, False),
        ("eventupload", {"events": {"0": EVENT}}, False),
        ("ruledownload", {"cursor": 5}, False),
        ("postflight", {"rules_received": True}, False),
    ],
)
def test_protobuf_json_request_types(client: httpx.Client, stage: str, body: Any, ok: bool) -> None:
    with SyncServer() as server:
        response = post(client, server, stage, body)
    assert response.status_code == (200 if ok else 400), response.text


def test_oversized_request_is_413(client: httpx.Client) -> None:
    with SyncServer(max_body_size=1024) as server:
        big = client.post(server.url("preflight", MID), content=b" " * 2048)
        assert big.status_code == 413 and big.headers["connection"] == "close"
        bomb = zlib.compress(b'{"hostname": "' + b"a" * 20000 + b'"}')  # 20 kB inflated from a few dozen bytes
        assert len(bomb) < 1024
        inflated = client.post(server.url("preflight", MID), content=bomb, headers={"Content-Encoding": "deflate"})
        assert inflated.status_code == 413
        chunked = client.post(server.url("preflight", MID), content=iter([b" " * 600, b" " * 600]))
        assert chunked.status_code == 413
        assert client.post(server.url("preflight", MID), content=iter([b"{", b"}"])).status_code == 200
    assert [r.status for r in server.requests] == [413, 413, 413, 200]


def test_routes_and_methods(client: httpx.Client) -> None:
    with SyncServer() as server:
        assert client.get(server.url("preflight", MID)).status_code == 405
        assert client.post(f"{server.base_url}nope/{MID}").status_code == 404
        assert client.post(f"{server.base_url}preflight/").status_code == 404
        assert client.post(f"{server.base_url}preflight/{MID}/extra").status_code == 404
        assert client.post(server.url("postflight", "machine with spaces"), content=b"{}").status_code == 200
    assert server.postflights == {"machine with spaces": [{}]}


# -- rules, pagination, sync types ----------------------------------------------------------------------


def test_pagination_with_cursors(client: httpx.Client) -> None:
    with SyncServer(rules=[rule(n) for n in range(7)], page_size=3) as server:
        pages = []
        cursor = None
        while True:
            page = post(client, server, "ruledownload", {"cursor": cursor} if cursor else {}).json()
            pages.append(page)
            cursor = page.get("cursor")
            if cursor is None:
                break
        assert [len(p["rules"]) for p in pages] == [3, 3, 1]
        assert [r for p in pages for r in p["rules"]] == [rule(n) for n in range(7)]
        assert "cursor" not in pages[-1]  # [G-JSON] loops while the key is present at all
        # a cursor is single-use and belongs to one machine
        first = post(client, server, "ruledownload", {}).json()["cursor"]
        assert post(client, server, "ruledownload", {"cursor": first}, mid=MID2).status_code == 400
        assert post(client, server, "ruledownload", {"cursor": "bogus"}).status_code == 400
        # the set is snapshotted at the first page: a rule added mid-download waits for the next sync
        cursor = post(client, server, "ruledownload", {}).json()["cursor"]
        server.add_rules([rule(99)])
        rest = post(client, server, "ruledownload", {"cursor": cursor}).json()
        assert rule(99) not in rest["rules"]


def test_rule_management(client: httpx.Client) -> None:
    with SyncServer(rules=[rule(1), rule(2)]) as server:
        server.add_rules([rule(1, "ALLOWLIST")])  # replaces by (identifier, rule_type)
        server.add_rules([rule(5)], machine_id=MID)
        assert server.rules == [rule(1, "ALLOWLIST"), rule(2)]
        assert server.rules_for(MID) == [rule(1, "ALLOWLIST"), rule(2), rule(5)]
        assert server.remove_rule(f"{2:064x}", "BINARY") and not server.remove_rule("nope", "BINARY")
        assert full_sync(client, server) == [rule(1, "ALLOWLIST"), rule(5)]
        assert full_sync(client, server, MID2) == [rule(1, "ALLOWLIST")]
        server.clear_rules()
        assert full_sync(client, server, MID2) == []
        with pytest.raises(ValueError, match="rule_type"):
            server.add_rules([{"identifier": "x"}])


def test_sync_type_requested_until_postflight(client: httpx.Client) -> None:
    with SyncServer() as server:
        assert "sync_type" not in post(client, server, "preflight", PREFLIGHT).json()
        # request_clean_sync → CLEAN, repeated until a postflight completes the sync
        assert (
            post(client, server, "preflight", PREFLIGHT | {"request_clean_sync": True}).json()["sync_type"] == "CLEAN"
        )
        assert post(client, server, "preflight", PREFLIGHT).json()["sync_type"] == "CLEAN"
        post(client, server, "postflight", {})
        assert "sync_type" not in post(client, server, "preflight", PREFLIGHT).json()
        server.set_sync_type("CLEAN_ALL", machine_id=MID)
        assert post(client, server, "preflight", PREFLIGHT).json()["sync_type"] == "CLEAN_ALL"
        assert "sync_type" not in post(client, server, "preflight", PREFLIGHT, mid=MID2).json()
        server.set_sync_type("NORMAL")  # global: every preflight
        assert post(client, server, "preflight", PREFLIGHT, mid=MID2).json()["sync_type"] == "NORMAL"


def test_northpolesec_clean_sync_needs_sync_type_in_postflight(client: httpx.Client) -> None:
    with SyncServer(profile="northpolesec") as server:
        server.set_sync_type("CLEAN", machine_id=MID)
        post(client, server, "preflight", PREFLIGHT)
        post(client, server, "postflight", {"syncType": "NORMAL"})
        assert post(client, server, "preflight", PREFLIGHT).json()["sync_type"] == "CLEAN"
        post(client, server, "postflight", {"sync_type": "CLEAN"})  # the proto field name also parses
        assert "sync_type" not in post(client, server, "preflight", PREFLIGHT).json()


def test_preflight_extra_and_settings(client: httpx.Client) -> None:
    with SyncServer(preflight_extra={"block_usb_mount": True, "remount_usb_mode": ["rdonly"]}) as server:
        server.preflight.client_mode = "LOCKDOWN"
        server.preflight.blocked_path_regex = ""
        body = post(client, server, "preflight", PREFLIGHT).json()
    assert body["client_mode"] == "LOCKDOWN" and body["blocked_path_regex"] == ""
    assert body["block_usb_mount"] is True and body["remount_usb_mode"] == ["rdonly"]


# -- bundles ----------------------------------------------------------------------------------------------


def bundle_binary(n: int, count: int) -> dict[str, Any]:
    return {
        "file_sha256": f"{n:064x}",
        "file_name": f"bin{n}",
        "decision": "BUNDLE_BINARY",
        "file_bundle_hash": BUNDLE,
        "file_bundle_binary_count": count,
    }


def test_bundle_binaries_requested_until_complete(client: httpx.Client) -> None:
    blocked = EVENT | {"file_bundle_hash": BUNDLE, "file_bundle_binary_count": 3}
    with SyncServer(enable_bundles=True) as server:
        assert post(client, server, "eventupload", {"events": [blocked, blocked]}).json() == {
            "event_upload_bundle_binaries": [BUNDLE]
        }
        assert post(client, server, "eventupload", {"events": [bundle_binary(1, 3), bundle_binary(2, 3)]}).json() == {}
        assert not server.bundles[BUNDLE].complete
        assert post(client, server, "eventupload", {"events": [blocked]}, mid=MID2).json() == {
            "event_upload_bundle_binaries": [BUNDLE]
        }
        post(client, server, "eventupload", {"events": [bundle_binary(2, 3), bundle_binary(3, 3)]}, mid=MID2)
        bundle = server.bundles[BUNDLE]
        assert bundle.complete and bundle.binary_count == 3 and len(bundle.binaries) == 3
        assert post(client, server, "eventupload", {"events": [blocked]}).json() == {}  # nobody asked again


def test_bundles_not_requested_when_disabled(client: httpx.Client) -> None:
    blocked = EVENT | {"file_bundle_hash": BUNDLE, "file_bundle_binary_count": 1}
    with SyncServer() as server:
        assert post(client, server, "eventupload", {"events": [blocked]}).json() == {}
        server.preflight.enable_bundles = True
        assert post(client, server, "eventupload", {"events": [blocked]}).json() != {}
        server.quirks.bundle_requests = "never"
        assert post(client, server, "eventupload", {"events": [blocked]}).json() == {}


# -- XSRF --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("custom", [None, "X-Custom-Token"])
def test_xsrf_required(client: httpx.Client, custom: str | None) -> None:
    with SyncServer(require_xsrf=True, xsrf_header=custom) as server:
        assert post(client, server, "preflight", PREFLIGHT).status_code == 403
        xsrf = client.post(server.url("xsrf", MID))
        assert xsrf.status_code == 200 and xsrf.content == b""
        token = xsrf.headers["X-XSRF-TOKEN"]
        assert xsrf.headers.get("X-XSRF-TOKEN-HEADER") == custom
        name = custom or "X-XSRF-TOKEN"
        assert post(client, server, "preflight", PREFLIGHT, headers={name: token}).status_code == 200
        assert post(client, server, "preflight", PREFLIGHT, headers={name: "wrong"}).status_code == 403
        assert post(client, server, "preflight", PREFLIGHT, mid=MID2, headers={name: token}).status_code == 403
        assert client.post(server.url("xsrf", MID)).headers["X-XSRF-TOKEN"] == token  # stable per machine
        server.add_fault("status", stage="xsrf", status=500)
        assert client.post(server.url("xsrf", MID)).status_code == 500
    assert server.preflights == {MID: [PREFLIGHT]}


# -- faults ------------------------------------------------------------------------------------------------


DELAY = 0.4  # seconds of the delay fault


def fault_effect(client: httpx.Client, server: SyncServer) -> str:
    """What one preflight sees: "ok", or how it differs from a plain answer. "slow": the server delayed it and the
    answer took at least the delay (a lower bound, which a loaded machine cannot break)."""
    start = time.monotonic()
    try:
        response = post(client, server, "preflight", PREFLIGHT)
    except httpx.RemoteProtocolError:
        return "protocol-error"
    if server.requests[-1].fault == "delay":
        return "slow" if time.monotonic() - start >= DELAY else "delay-not-waited"
    if response.status_code != 200:
        return f"http-{response.status_code}"
    if response.headers.get("content-encoding"):
        return "compressed-" + response.headers["content-encoding"]
    text = response.text
    if len(response.content) >= 100_000:
        return "oversized"
    if text.startswith((XSSI_PREFIX, XSSI_SHORT_PREFIX)):
        return "xssi"
    try:
        body = json.loads(text)
    except ValueError:
        return "malformed"
    return "ok" if isinstance(body["batch_size"], int) else "wrong-types"


@pytest.mark.parametrize(
    ("kind", "options", "effect"),
    [
        ("status", {"status": 500}, "http-500"),
        ("status", {"status": 403}, "http-403"),
        ("status", {"status": 404}, "http-404"),
        ("status", {"status": 302}, "http-302"),
        ("delay", {"delay": DELAY}, "slow"),
        ("drop", {}, "protocol-error"),
        ("truncate", {}, "protocol-error"),
        ("malformed_json", {}, "malformed"),
        ("wrong_types", {}, "wrong-types"),
        ("oversized", {"size": 200_000}, "oversized"),
        ("xssi", {}, "xssi"),
        ("xssi", {"prefix": XSSI_SHORT_PREFIX}, "xssi"),
        ("compress", {"encoding": "gzip"}, "compressed-gzip"),
        ("compress", {"encoding": "deflate"}, "compressed-deflate"),
    ],
)
def test_fault_fires_exactly_times(client: httpx.Client, kind: Any, options: dict[str, Any], effect: str) -> None:
    with SyncServer() as server:
        fault = server.add_fault(kind, stage="preflight", times=2, **options)
        assert post(client, server, "postflight", {}).status_code == 200  # other stages untouched
        effects = [fault_effect(client, server) for _ in range(3)]
    assert effects == [effect, effect, "ok"]
    assert fault.fired == 2 and fault.done and len(server.faults) == 0
    assert [r.fault for r in server.requests_for("preflight")] == [kind, kind, None]


def test_fault_details(client: httpx.Client) -> None:
    with SyncServer() as server:
        server.add_fault("status", status=302, stage="ruledownload")
        redirect = post(client, server, "ruledownload", {})
        assert redirect.status_code == 302 and redirect.headers["location"] == server.base_url + "redirected"
        server.add_fault("compress", encoding="gzip")
        compressed = post(client, server, "preflight", PREFLIGHT)
        assert compressed.json()["batch_size"] == 50  # httpx decoded it transparently
        server.add_fault("xssi")
        assert post(client, server, "preflight", PREFLIGHT).content.startswith(b")]}'\n{")
        server.add_fault("wrong_types", fields={"rules": "nope"})
        assert post(client, server, "ruledownload", {}).json() == {"rules": "nope"}
        server.add_fault("oversized", size=100_000)
        big = post(client, server, "ruledownload", {})
        assert len(big.content) == 100_000 and big.json() == {"rules": []}
        server.add_fault("status", status=503, body=b"<html>down</html>", headers={"Retry-After": "1"})
        down = post(client, server, "postflight", {})
        assert (down.status_code, down.text, down.headers["retry-after"]) == (503, "<html>down</html>", "1")


def test_fault_matching_by_machine_and_skip(client: httpx.Client) -> None:
    with SyncServer() as server:
        server.faults.append(Fault("status", status=500, machine_id=MID2, times=1))
        server.add_fault("status", status=418, stage="eventupload", skip=1)
        assert post(client, server, "preflight", PREFLIGHT).status_code == 200
        assert post(client, server, "preflight", PREFLIGHT, mid=MID2).status_code == 500
        assert post(client, server, "eventupload", {}).status_code == 200  # skipped
        assert post(client, server, "eventupload", {}).status_code == 418
        assert post(client, server, "eventupload", {}).status_code == 200
        assert len(server.faults) == 0 and len(server.faults.fired) == 2
        server.add_fault("drop", times=5)
        server.faults.clear()
        assert post(client, server, "preflight", PREFLIGHT).status_code == 200
    with pytest.raises(ValueError):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Fault("drop", stage="nowhere")


def test_failed_stage_is_not_applied(client: httpx.Client) -> None:
    with SyncServer() as server:
        server.add_fault("status", status=500, stage="eventupload")
        server.add_fault("drop", stage="eventupload")
        assert post(client, server, "eventupload", {"events": [EVENT]}).status_code == 500
        with pytest.raises(httpx.RemoteProtocolError):
            post(client, server, "eventupload", {"events": [EVENT]})
        server.add_fault("truncate", stage="eventupload")  # processed, then the answer is cut
        with pytest.raises(httpx.RemoteProtocolError):
            post(client, server, "eventupload", {"events": [EVENT]})
    assert server.events == {MID: [EVENT]}
    assert [r.status for r in server.requests] == [500, None, 200]


# -- Zentral ---------------------------------------------------------------------------------------------


def test_zentral_enrollment(client: httpx.Client) -> None:
    auth = {"Zentral-Authorization": "Bearer s3cret"}
    with SyncServer(profile="zentral", enrollment_secret="s3cret") as server:
        for stage in ("eventupload", "ruledownload", "postflight"):
            refused = post(client, server, stage, {}, headers=auth)
            assert refused.status_code == 403 and "Machine not enrolled" in refused.text
            assert refused.headers["content-type"].startswith("text/html")
        missing = post(client, server, "preflight", PREFLIGHT)
        assert (missing.status_code, missing.json()) == (401, {"detail": "Unauthorized"})
        wrong = post(client, server, "preflight", PREFLIGHT, headers={"Zentral-Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        assert post(client, server, "preflight", PREFLIGHT, mid="not-a-uuid", headers=auth).status_code == 403
        assert post(client, server, "preflight", PREFLIGHT, headers=auth).status_code == 200
        # the machine ID is a UUID in any case or format
        assert post(client, server, "ruledownload", {}, mid=MID.lower().replace("-", ""), headers=auth).is_success
    assert list(server.machines) == [MID.lower()]


def test_zentral_enrollment_header_is_a_quirk(client: httpx.Client) -> None:
    quirks = {"enrollment_header": "Authorization"}
    with SyncServer(profile="zentral", enrollment_secret="k", quirks=quirks) as server:
        assert post(client, server, "preflight", PREFLIGHT, headers={"Authorization": "Bearer k"}).status_code == 200
    with SyncServer(profile="zentral", quirks={"enrollment": False}) as server:
        assert post(client, server, "postflight", {}).status_code == 200


@pytest.mark.parametrize(
    ("encoding", "status"), [("deflate", 200), ("zlib", 200), ("none", 200), ("gzip", 400), ("raw-deflate", 500)]
)
def test_zentral_request_encodings(client: httpx.Client, encoding: str, status: int) -> None:
    content, headers = encode(PREFLIGHT, "deflate" if encoding == "zlib" else encoding)
    if encoding == "zlib":
        headers = {"Content-Encoding": "zlib"}
    with SyncServer(profile="zentral") as server:
        assert client.post(server.url("preflight", MID), content=content, headers=headers).status_code == status


@pytest.mark.parametrize(
    ("stage", "body"),
    [
        ("preflight", {k: v for k, v in PREFLIGHT.items() if k != "santa_version"}),
        ("preflight", PREFLIGHT | {"os_version": "6.5.0-27-generic"}),
        ("eventupload", {"events": [EVENT | {"decision": 8}]}),
        ("eventupload", {"events": [{"decision": "BLOCK_BINARY"}]}),
    ],
)
def test_zentral_500s(client: httpx.Client, stage: str, body: Any) -> None:
    with SyncServer(profile="zentral") as server:
        assert post(client, server, "preflight", PREFLIGHT).status_code == 200
        response = post(client, server, stage, body)
    assert response.status_code == 500 and response.headers["content-type"].startswith("text/html")


def test_zentral_sync_types(client: httpx.Client) -> None:
    with SyncServer(profile="zentral") as server:
        old = post(client, server, "preflight", PREFLIGHT | {"santa_version": "2023.12.1"}).json()
        assert old["clean_sync"] is True and "sync_type" not in old
        # a postflight with the snake_case key does not confirm the clean sync: it is asked again
        post(client, server, "postflight", {"sync_type": "CLEAN"})
        assert post(client, server, "preflight", PREFLIGHT).json()["sync_type"] == "CLEAN"
        post(client, server, "postflight", {"syncType": "CLEAN"})
        assert post(client, server, "preflight", PREFLIGHT).json()["sync_type"] == "NORMAL"
        assert (
            post(client, server, "preflight", PREFLIGHT | {"request_clean_sync": True}).json()["sync_type"] == "CLEAN"
        )


def test_zentral_sends_only_changes(client: httpx.Client) -> None:
    with SyncServer(profile="zentral", rules=[rule(n) for n in range(3)], batch_size=2) as server:
        assert full_sync(client, server) == [rule(0), rule(1), rule(2)]
        post(client, server, "postflight", {"syncType": "CLEAN"})  # confirm the enrollment clean sync
        assert full_sync(client, server) == []
        server.add_rules([rule(1, "ALLOWLIST"), rule(7)])
        server.remove_rule(f"{0:064x}", "BINARY")
        changes = full_sync(client, server)
        assert changes == [
            rule(1, "ALLOWLIST"),
            rule(7),
            {"identifier": f"{0:064x}", "policy": "REMOVE", "rule_type": "BINARY"},
        ]
        assert full_sync(client, server) == []
        # a download never confirmed by a postflight is sent again
        post(client, server, "preflight", PREFLIGHT)
        server.add_rules([rule(8)])
        assert post(client, server, "ruledownload", {}).json()["rules"] == [rule(8)]
        assert full_sync(client, server) == [rule(8)]


def test_zentral_unconfirmed_clean_sync_brings_removals_back(client: httpx.Client) -> None:
    with SyncServer(profile="zentral", rules=[rule(1), rule(2)]) as server:
        full_sync(client, server)  # clean (enrollment); its postflight lacks syncType, so it is not confirmed
        server.remove_rule(f"{2:064x}", "BINARY")
        assert full_sync(client, server) == [rule(1)]  # still clean, so the full set again
        post(client, server, "preflight", PREFLIGHT)
        post(client, server, "postflight", {"syncType": "CLEAN"})
        assert full_sync(client, server) == [{"identifier": f"{2:064x}", "policy": "REMOVE", "rule_type": "BINARY"}]


def test_zentral_bundles_asked_whatever_the_settings(client: httpx.Client) -> None:
    blocked = EVENT | {"decision": "ALLOW_UNKNOWN", "file_bundle_hash": BUNDLE, "file_bundle_binary_count": 2}
    with SyncServer(profile="zentral") as server:
        post(client, server, "preflight", PREFLIGHT)
        assert post(client, server, "eventupload", {"events": [blocked]}).json() == {
            "event_upload_bundle_binaries": [BUNDLE]
        }
        extra = [bundle_binary(n, 2) for n in range(3)]  # more distinct binaries than the count
        post(client, server, "eventupload", {"events": extra})
        assert not server.bundles[BUNDLE].complete
        assert post(client, server, "eventupload", {"events": [blocked]}).json() != {}


# -- Moroz -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "status"), [("deflate", 200), ("gzip", 500), ("none", 500), ("raw-deflate", 500)])
def test_moroz_reads_only_zlib(client: httpx.Client, encoding: str, status: int) -> None:
    with SyncServer(profile="moroz") as server:
        response = post(client, server, "preflight", PREFLIGHT, encoding=encoding)
        assert response.status_code == status
        if status == 500:
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert response.json() == {"error": "zlib: invalid header"}
        # the header is not consulted: zlib without Content-Encoding is fine
        unlabeled = client.post(server.url("eventupload", MID), content=zlib.compress(b'{"events": []}'))
        assert unlabeled.status_code == 200


def test_moroz_quirks(client: httpx.Client) -> None:
    with SyncServer(profile="moroz") as server:
        # the ruledownload body is never read
        assert client.post(server.url("ruledownload", MID), content=b"\x00junk").json() == {"rules": None}
        for body in (
            PREFLIGHT | {"client_mode": "STANDALONE"},
            PREFLIGHT | {"client_mode": "monitor"},
            PREFLIGHT | {"binary_rule_count": "3"},
            PREFLIGHT | {"binary_rule_count": 3.5},
            {"events": [EVENT | {"signing_chain": [{"valid_from": 1.5e9}]}]},
        ):
            stage = "eventupload" if "events" in body else "preflight"
            assert post(client, server, stage, body).status_code == 500, body
        assert post(client, server, "preflight", PREFLIGHT | {"CLIENT_MODE": "LOCKDOWN", "Hostname": "h"}).is_success
        assert client.post(server.url("postflight", MID), content=zlib.compress(b'{"rules_received": 1} trailing'))
        assert client.post(server.url("xsrf", MID)).status_code == 404  # no XSRF route
        assert client.post(f"http://127.0.0.1:{server.port}/preflight/{MID}").status_code == 404
        assert client.get(server.url("preflight", MID)).status_code == 405
        assert server.preflights[MID][0]["CLIENT_MODE"] == "LOCKDOWN"
        with pytest.raises(ValueError, match="policy"):
            server.add_rules([rule(1, "SILENT_BLOCKLIST")])


def test_moroz_quirks_toggle_individually(client: httpx.Client) -> None:
    quirks = {"null_empty_rules": False, "request_decoding": "http", "default_clean_sync": False}
    with SyncServer(profile="moroz", quirks=quirks) as server:
        assert server.quirks.path_prefix == "/v1/santa" and not server.quirks.paginate
        assert post(client, server, "ruledownload", {}).json() == {"rules": []}
        assert post(client, server, "preflight", PREFLIGHT, encoding="gzip").json()["clean_sync"] is False
        server.set_sync_type("CLEAN_ALL")
        assert post(client, server, "preflight", PREFLIGHT, encoding="none").json()["clean_sync"] is True
    with pytest.raises(ValueError, match="unknown quirks"):
        SyncServer(quirks={"no_such_quirk": True})
    with pytest.raises(ValueError, match="profile"):
        SyncServer(profile="upstream")
    with pytest.raises(ValueError, match="profile"):
        ServerSettings(profile="upstream")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no_such_setting"):
        SyncServer(no_such_setting=1)


def test_settings_object_and_overrides() -> None:
    base = ServerSettings(profile="northpolesec", preflight=PreflightSettings(batch_size=7), require_xsrf=True)
    with SyncServer(base, batch_size=3, enable_bundles=True) as server:
        assert server.settings.require_xsrf and server.profile == "northpolesec"
        assert (server.preflight.batch_size, server.preflight.enable_bundles) == (3, True)
        server.preflight.batch_size = 9  # the server's own copy; the settings stay as given
    assert base.preflight.batch_size == 7 and server.settings.preflight.batch_size == 3


# -- concurrency, state, lifecycle -----------------------------------------------------------------------


def test_concurrent_clients() -> None:
    machines = [f"00000000-0000-4000-8000-{n:012d}" for n in range(8)]
    failures: list[str] = []

    def sync(mid: str) -> None:
        try:
            with httpx.Client(timeout=10) as c:
                for _ in range(5):
                    full_sync(c, server, mid)
                    assert post(c, server, "eventupload", {"events": [EVENT]}, mid=mid).status_code == 200
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(f"{mid}: {exc!r}")

    with SyncServer(rules=[rule(n) for n in range(5)], page_size=2) as server:
        server.add_fault("delay", delay=0.2, stage="postflight")  # one slow answer must not block the others
        threads = [threading.Thread(target=sync, args=(mid,)) for mid in machines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert failures == []
    assert {mid: len(events) for mid, events in server.events.items()} == dict.fromkeys(machines, 5)
    assert len(server.requests) == 8 * 5 * (1 + 3 + 1 + 1)
    assert server.errors == []


def test_state_survives_restart(client: httpx.Client, tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    blocked = EVENT | {"file_bundle_hash": BUNDLE, "file_bundle_binary_count": 1}
    with SyncServer(profile="zentral", state_db=db, rules=[rule(1)]) as first:
        full_sync(client, first)
        post(client, first, "postflight", {"syncType": "CLEAN"})
        post(client, first, "eventupload", {"events": [blocked, bundle_binary(1, 1)]})
        first.add_rules([rule(2)], machine_id=MID)
    first.close()
    with SyncServer(profile="zentral", state_db=db) as second:
        assert second.rules == [rule(1)] and second.rules_for(MID) == [rule(1), rule(2)]
        assert second.bundles[BUNDLE].complete
        assert second.events[MID.lower()] == [blocked, bundle_binary(1, 1)]
        assert len(second.preflights[MID.lower()]) == 1
        # still enrolled, and the committed rules are remembered: only the change comes down
        assert post(client, second, "ruledownload", {}).json()["rules"] == [rule(2)]
        assert post(client, second, "eventupload", {"events": [blocked]}).json() == {}
    second.close()


def test_stop_and_restart_same_object(client: httpx.Client) -> None:
    server = SyncServer(rules=[rule(1)])
    with server:
        url = server.base_url
        assert post(client, server, "preflight", PREFLIGHT).status_code == 200  # leaves a keep-alive connection
        with pytest.raises(RuntimeError):
            server.start()
    assert not server.running
    with pytest.raises(httpx.TransportError):
        post(client, server, "preflight", PREFLIGHT)
    with server:
        assert server.base_url == url  # same port
        assert post(client, server, "ruledownload", {}).json() == {"rules": [rule(1)]}
    server.close()
    server.close()


def test_serve_in_process_rejects_bad_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert serve(["--profile", "nope"]) == 2
    bad = tmp_path / "rules.json"
    bad.write_text('{"rules": 5}')
    assert serve(["--rules", str(bad)]) == 2
    assert "expected a JSON list" in capsys.readouterr().err


def test_serve_cli(client: httpx.Client, tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [rule(1), rule(2)]}))
    code = "import sys; from santacore.testing import serve; sys.exit(serve(sys.argv[1:]))"
    args = ["--profile", "northpolesec", "--rules", str(rules), "--page-size", "1", "--quirk", "paginate=false"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/")
        response = client.post(f"{base_url}ruledownload/{MID}", content=b"{}")
        assert response.json() == {"rules": [rule(1), rule(2)]}  # paginate=false: one page despite page size 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_request_log_and_no_errors_when_a_client_gives_up_and_retries() -> None:
    lines: list[str] = []
    with SyncServer(request_log=lines.append) as server:
        server.add_fault("delay", stage="preflight", delay=0.5)
        with httpx.Client(timeout=0.1) as impatient, pytest.raises(httpx.TimeoutException):
            impatient.post(server.url("preflight", MID), json=PREFLIGHT)
        with httpx.Client(timeout=10) as patient:  # the retry races the first answer
            assert patient.post(server.url("preflight", MID), json=PREFLIGHT).is_success
            assert patient.post(server.url("eventupload", MID), json={"events": [EVENT]}).is_success
        time.sleep(0.6)  # the delayed answer is written to a connection the client closed
    assert server.errors == []
    assert f"preflight machine={MID} status=200 sync_type=NORMAL client_mode=MONITOR santa_version=" in lines[0]
    assert f"eventupload machine={MID} status=200 events_received=1" in lines
    delayed = [line for line in lines if "fault=delay" in line]  # usually "client disconnected before ..." too
    assert len(delayed) == 1 and delayed[0].startswith(f"preflight machine={MID} status=200 sync_type=NORMAL")
