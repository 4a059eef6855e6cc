"""One end-to-end sync per server profile (google, northpolesec, moroz, zentral), preflight to postflight and
again, asserting what the server received byte for byte wherever the spec fixes it:

* every request: ``POST <base><stage>/<machine_id>`` (the ID verbatim), ``Content-Type: application/json``,
  ``Content-Encoding: deflate`` with a zlib stream (``78 9c``), ``User-Agent: santactl-sync/...`` (§2.1, §2.2);
* preflight, ruledownload and postflight bodies: compact protobuf-JSON, keys in field-number order, defaults
  omitted (§2.3, §3.1, §3.3, §3.4) — compared with bytes built here from the spec's tables;
* the rule counts of the second sync's preflight, once the first sync's rules are in rules.db (§3.1 #11–17);
* each rule page's cursor echoed verbatim in the next request (§3.3), awkward characters included;
* each eventupload body the batch in store order (§4.6), as the spec's event table describes it (§3.2, §4.1), its
  doubles printed as protobuf does (§2.3).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

from santacore.config.settings import Config
from santacore.santad.decisions import ClientMode, Decision
from santacore.santad.events import StoredEvent, Variant
from santacore.santad.rule_store import RuleStore
from santacore.sync.host import default_santa_version
from santacore.sync.protocol import SyncType
from santacore.sync.stages import SyncResult, SyncStatus
from santacore.sync.state import effective_config, load_state
from santacore.testing import RecordedRequest, SyncServer
from tests.sync_client import (
    FACTS,
    MACHINE,
    SyncTestClient,
    ordered,
    parsed_in_order,
    protobuf_double,
    spec_eventupload,
    write_config,
)

SECRET = "s3cret-enrollment"
COUNT_KEYS = ("binary", "certificate", "compiler", "transitive", "teamid", "signingid", "cdhash")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# Six rules, one of each type plus a compiler rule: counts binary 2 (compiler included), compiler 1, the rest 1.
RULES: list[dict[str, Any]] = [
    {"identifier": sha("rule-binary"), "policy": "BLOCKLIST", "rule_type": "BINARY"},
    {"identifier": sha("rule-compiler"), "policy": "ALLOWLIST_COMPILER", "rule_type": "BINARY"},
    {"identifier": sha("rule-cert"), "policy": "BLOCKLIST", "rule_type": "CERTIFICATE"},
    {"identifier": "ABCDE12345", "policy": "ALLOWLIST", "rule_type": "TEAMID"},
    {"identifier": "ABCDE12345:com.acme.app", "policy": "BLOCKLIST", "rule_type": "SIGNINGID"},
    {"identifier": sha("rule-cdhash")[:40], "policy": "BLOCKLIST", "rule_type": "CDHASH"},
]
COUNTS_AFTER = {"binary": 2, "certificate": 1, "compiler": 1, "teamid": 1, "signingid": 1, "cdhash": 1}
EMPTY_RULES_HASH = "99aa06d3014798d86001c324468d497f"  # addendum §4: the empty table
# Cursors a careless client would mangle: '/', '?', '&', '+', '=', spaces, '<>' (escaped by protobuf-JSON), non-ASCII.
AWKWARD_CURSORS = ("page/2?after=ab&c=1+2==", "  <b>ümlaut — ✓</b>  ", '3:{"k":[1]}\\x', "4", "5", "6")


def synthetic_event(i: int, *, bundle_hash: str | None = None) -> StoredEvent:
    bundle: dict[str, Any] = {}
    if bundle_hash is not None:
        bundle = {
            "file_bundle_id": "com.acme.app",
            "file_bundle_path": "/Applications/Acme.app",
            "file_bundle_name": "Acme",
            "file_bundle_version": "412",
            "file_bundle_version_string": "4.1.2",
            "file_bundle_hash": bundle_hash,
            "file_bundle_binary_count": 3,
            "file_bundle_hash_millis": 12.0,
        }
    return StoredEvent(
        file_sha256=sha(f"profile-event-{i}"),
        file_path=f"/Applications/Acme.app/Contents/MacOS/tool-{i}" if bundle else f"/usr/local/bin/tool-{i}",
        decision=Decision.BLOCK_UNKNOWN,
        occurrence_date=1718035512.804221 + i,
        executing_user="bob",
        logged_in_users=("bob",),
        current_sessions=("bob@console", "bob@ttys001"),
        pid=8000 + i,
        ppid=1,
        parent_name="launchd",
        **bundle,
    )


# --------------------------------------------------------------------------------------------------
# Client helpers


class Client(SyncTestClient):
    """The names these tests use, over the shared sync test client, syncing in one wire variant."""

    def __init__(self, config: Config, variant: Variant = Variant.GOOGLE) -> None:
        super().__init__(config)
        self.variant = variant

    def sync(self) -> SyncResult:
        return self.run_sync(variant=self.variant)

    def pending(self) -> int:
        return self.pending_count()

    def rule_count(self) -> int:
        return len(self.stored_rules())

    def rules_hash(self) -> str:
        with RuleStore(self.config.rules_db) as store:
            return store.rules_hash()


def make_client(
    tmp_path: Path, server: SyncServer, extra: str = "", variant: Variant = Variant.GOOGLE, *, clean_upload: bool = True
) -> Client:
    """`clean_upload`: SyncEnableCleanSyncEventUpload, so events go up whatever the sync type (§1.6, §9.3 item 4)."""
    config = write_config(tmp_path, server, f"SyncEnableCleanSyncEventUpload = {str(clean_upload).lower()}\n{extra}")
    return Client(config, variant)


# --------------------------------------------------------------------------------------------------
# What the spec says the server must receive


def protobuf_json(obj: dict[str, Any]) -> bytes:
    """Compact, '/' and non-ASCII as is, '<' '>' escaped: MessageToJsonString for the strings used here (§2.3)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").encode()


def preflight_body(
    counts: dict[str, int], *, client_mode: str, clean: bool = False, rules_hash: str | None = None
) -> bytes:
    """§3.1 request, field-number order, zero counters and false omitted (serial: the machine ID on Linux);
    `rules_hash`: [N]'s `rulesHash` (22, addendum §4)."""
    body: dict[str, Any] = {
        "serial_num": MACHINE,
        "hostname": FACTS.hostname,
        "os_version": FACTS.os_version,
        "os_build": FACTS.os_build,
        "model_identifier": FACTS.model_identifier,
        "santa_version": default_santa_version(),
        "client_mode": client_mode,
    }
    if clean:
        body["request_clean_sync"] = True
    body.update((f"{k}_rule_count", counts[k]) for k in COUNT_KEYS if counts.get(k))
    body["machine_id"] = MACHINE
    if rules_hash is not None:
        body["rulesHash"] = rules_hash
    return protobuf_json(body)


def ruledownload_body(cursor: str | None) -> bytes:
    return protobuf_json({"cursor": cursor, "machine_id": MACHINE} if cursor else {"machine_id": MACHINE})


def postflight_body(received: int, processed: int, sync_type: str | None, rules_hash: str | None = None) -> bytes:
    body: dict[str, Any] = {"rules_received": received, "rules_processed": processed, "machine_id": MACHINE}
    if sync_type is not None:
        body["syncType"] = sync_type
    if rules_hash is not None:
        body["rulesHash"] = rules_hash
    return protobuf_json(body)


def wire_body(rec: RecordedRequest, server: SyncServer, *, extra_headers: dict[str, str] | None = None) -> bytes:
    """Check the transport-level form of one request (§2.1, §2.2) and return its decompressed body."""
    prefix = server.base_url.split(str(server.port), 1)[1]
    assert rec.method == "POST"
    assert rec.path == f"{prefix}{rec.stage}/{MACHINE}"
    assert rec.header("Content-Type") == "application/json"
    assert (rec.header("User-Agent") or "").startswith("santactl-sync/")
    assert rec.header("Content-Encoding") == "deflate"
    assert rec.raw_body[:2] == b"\x78\x9c", rec.raw_body[:8]
    for name, value in (extra_headers or {}).items():
        assert rec.header(name) == value, name
    body = zlib.decompress(rec.raw_body)  # a complete zlib stream: raises if truncated or raw deflate
    assert rec.body in (None, body)  # Moroz never reads the ruledownload body (§9.2)
    return body


def check_ruledownload(server: SyncServer, requests: list[RecordedRequest], answers: list[Any]) -> None:
    """Each request carries the previous page's cursor verbatim; the first none (§3.3)."""
    assert len(requests) == len(answers)
    cursor: str | None = None
    for rec, answer in zip(requests, answers, strict=True):
        assert wire_body(rec, server) == ruledownload_body(cursor)
        cursor = answer.get("cursor") or None
    assert cursor is None  # the last page had none: the client stopped there


def check_eventuploads(
    server: SyncServer, requests: list[RecordedRequest], events: list[StoredEvent], batch: int, variant: Variant
) -> None:
    """Batches of the server's size in store (idx) order (§4.6), each the spec's body for its events (§3.2, §4.1):
    keys in field order, values equal, every `execution_time` written as protobuf-JSON writes a double (§2.3)."""
    in_order = sorted(events, key=lambda e: e.idx)
    chunks = [in_order[i : i + batch] for i in range(0, len(in_order), batch)]
    assert len(requests) == len(chunks)
    for rec, chunk in zip(requests, chunks, strict=True):
        body = wire_body(rec, server)
        assert parsed_in_order(body) == ordered(spec_eventupload(chunk, MACHINE, variant))
        assert b" " not in body  # compact (§2.3); no value here holds a space
        for event in chunk:
            assert f'"execution_time":{protobuf_double(event.occurrence_date)},'.encode() in body


def preflight_without_clean_request(body: bytes) -> bytes:
    """The body with `request_clean_sync` taken out (checked on its own in test_fresh_rules_db_requests_clean_all)."""
    return body.replace(b'"request_clean_sync":true,', b"")


def performed_name(result: SyncResult) -> str:
    assert result.performed is not None
    return result.performed.name


# --------------------------------------------------------------------------------------------------
# google: protobuf-JSON [G] server, paginated rules


def test_google_profile_end_to_end(tmp_path: Path) -> None:
    with SyncServer(profile="google", batch_size=2, page_size=2, new_cursor=iter(AWKWARD_CURSORS).__next__) as server:
        server.add_rules(RULES)
        server.preflight.client_mode = "LOCKDOWN"
        client = make_client(tmp_path, server)
        events = [synthetic_event(i) for i in range(5)]
        client.queue(events)

        first = client.sync()
        assert first.status is SyncStatus.SUCCESS, (first.error, first.log)
        assert first.events_uploaded == 5 and client.pending() == 0
        assert first.rules_received == first.rules_processed == first.rules_applied == 6

        (pre,) = server.requests_for("preflight")
        assert preflight_without_clean_request(wire_body(pre, server)) == preflight_body({}, client_mode="MONITOR")
        check_eventuploads(server, server.requests_for("eventupload"), events, 2, Variant.GOOGLE)
        check_ruledownload(server, server.requests_for("ruledownload"), server.answers("ruledownload"))
        assert [a.get("cursor") for a in server.answers("ruledownload")] == [*AWKWARD_CURSORS[:2], None]
        (post,) = server.requests_for("postflight")
        # [G] sends no syncType; santacore adds it after a clean sync (here: rules.db is new) so servers
        # that wait for it see the clean sync done (§9.4).
        reported = None if first.performed is SyncType.NORMAL else performed_name(first)
        assert wire_body(post, server) == postflight_body(6, 6, reported)
        assert sorted(e["file_sha256"] for e in server.events[MACHINE]) == sorted(e.file_sha256 for e in events)
        assert load_state(client.state_path).client_mode is ClientMode.LOCKDOWN

        # Second sync: the rules are counted, the server's client mode reported, nothing to upload.
        second = client.sync()
        assert second.status is SyncStatus.SUCCESS, (second.error, second.log)
        pre2 = server.requests_for("preflight")[1]
        assert wire_body(pre2, server) == preflight_body(COUNTS_AFTER, client_mode="LOCKDOWN")
        assert len(server.requests_for("eventupload")) == 3  # store empty: stage skipped
        check_ruledownload(server, server.requests_for("ruledownload")[3:], server.answers("ruledownload")[3:])
        assert client.rule_count() == 6


def test_fresh_rules_db_requests_clean_all(tmp_path: Path) -> None:
    """§1.6: a rules database created from scratch sets the requested sync type to CLEAN_ALL, so the first
    preflight carries `request_clean_sync: true` and the sync performed is CLEAN_ALL."""
    with SyncServer(profile="google") as server:
        client = make_client(tmp_path, server)
        result = client.sync()
        assert result.status is SyncStatus.SUCCESS
        (pre,) = server.requests_for("preflight")
        body = wire_body(pre, server)
        assert json.loads(body).get("request_clean_sync") is True, body.decode()
        assert body == preflight_body({}, client_mode="MONITOR", clean=True)
        assert result.performed is SyncType.CLEAN_ALL


# --------------------------------------------------------------------------------------------------
# northpolesec: [N] server, paginated rules, bundle-binary requests, syncType in postflight


def test_northpolesec_profile_end_to_end(tmp_path: Path) -> None:
    bundle = sha("acme-bundle")
    with SyncServer(
        profile="northpolesec",
        batch_size=3,
        page_size=4,
        enable_bundles=True,
        new_cursor=iter(AWKWARD_CURSORS).__next__,
    ) as server:
        server.add_rules(RULES)
        client = make_client(tmp_path, server, variant=Variant.NORTHPOLESEC)
        events = [synthetic_event(i, bundle_hash=bundle if i < 2 else None) for i in range(5)]
        client.queue(events)

        first = client.sync()
        assert first.status is SyncStatus.SUCCESS, (first.error, first.log)
        assert first.events_uploaded == 5 and client.pending() == 0

        (pre,) = server.requests_for("preflight")
        empty = preflight_body({}, client_mode="MONITOR", rules_hash=EMPTY_RULES_HASH)  # taken before the download
        assert preflight_without_clean_request(wire_body(pre, server)) == empty
        uploads = server.requests_for("eventupload")
        check_eventuploads(server, uploads, events, 3, Variant.NORTHPOLESEC)
        # The server asked for the bundle's binaries; during a full sync the request is ignored (§4.5 step 5).
        assert {"event_upload_bundle_binaries": [bundle]} in server.answers("eventupload")
        assert all(e.get("decision") != "BUNDLE_BINARY" for e in server.events[MACHINE])
        assert not server.bundles[bundle].complete
        check_ruledownload(server, server.requests_for("ruledownload"), server.answers("ruledownload"))
        assert [a.get("cursor") for a in server.answers("ruledownload")] == [AWKWARD_CURSORS[0], None]
        (post,) = server.requests_for("postflight")
        after = client.rules_hash()
        assert after != EMPTY_RULES_HASH
        assert wire_body(post, server) == postflight_body(6, 6, performed_name(first), after)  # [N]: syncType, hash

        second = client.sync()
        assert second.status is SyncStatus.SUCCESS, (second.error, second.log)
        assert second.performed is SyncType.NORMAL  # any clean sync of the first was confirmed by its postflight
        pre2 = server.requests_for("preflight")[1]
        assert wire_body(pre2, server) == preflight_body(COUNTS_AFTER, client_mode="MONITOR", rules_hash=after)
        post2 = server.requests_for("postflight")[1]
        assert wire_body(post2, server) == postflight_body(6, 6, "NORMAL", after)
        assert client.rule_count() == 6


# --------------------------------------------------------------------------------------------------
# moroz: /v1/santa prefix, zlib whatever the headers, Go-pretty answers, one page, clean_sync every time


def test_moroz_profile_end_to_end(tmp_path: Path) -> None:
    with SyncServer(profile="moroz", batch_size=2) as server:
        server.add_rules(RULES)
        assert server.base_url.endswith("/v1/santa/")
        client = make_client(tmp_path, server)
        events = [synthetic_event(i) for i in range(3)]
        client.queue(events)

        first = client.sync()
        assert first.status is SyncStatus.SUCCESS, (first.error, first.log)
        assert server.errors == [] and all(r.status == 200 for r in server.requests)
        assert first.performed in (SyncType.CLEAN, SyncType.CLEAN_ALL)  # the sample config's clean_sync = true
        assert first.events_uploaded == 3 and client.pending() == 0  # uploaded: SyncEnableCleanSyncEventUpload

        (pre,) = server.requests_for("preflight")
        assert preflight_without_clean_request(wire_body(pre, server)) == preflight_body({}, client_mode="MONITOR")
        check_eventuploads(server, server.requests_for("eventupload"), events, 2, Variant.GOOGLE)
        assert server.answers("eventupload") == [{"Err": None}] * 2  # an unknown key, ignored
        rules_requests = server.requests_for("ruledownload")
        assert len(rules_requests) == 1  # no cursor: one page
        assert wire_body(rules_requests[0], server) == ruledownload_body(None)
        (post,) = server.requests_for("postflight")
        # Moroz's sample config makes every sync clean; santacore reports it (§9.4 needs it for Zentral).
        assert wire_body(post, server) == postflight_body(6, 6, performed_name(first))
        assert server.answers("postflight") == [{"NoOp": {}}]
        # "" path regexes are stored as sent and mean "no regex" (§9.3 item 3).
        state = load_state(client.state_path)
        assert state.allowed_path_regex == "" and state.blocked_path_regex == ""
        effective = effective_config(client.config, state)
        assert effective.allowed_path_regex is None and effective.blocked_path_regex is None

        second = client.sync()
        assert second.status is SyncStatus.SUCCESS, (second.error, second.log)
        assert second.performed is SyncType.CLEAN
        pre2 = server.requests_for("preflight")[1]
        assert wire_body(pre2, server) == preflight_body(COUNTS_AFTER, client_mode="MONITOR")
        assert client.rule_count() == 6  # the clean sync replaced the rules with the same six


# --------------------------------------------------------------------------------------------------
# zentral: enrollment header, UUID machine ID, trailing empty page, rule deltas, syncType in postflight


def test_zentral_profile_end_to_end(tmp_path: Path) -> None:
    auth = {"Zentral-Authorization": f"Bearer {SECRET}"}
    with SyncServer(
        profile="zentral",
        batch_size=2,
        page_size=4,
        enrollment_secret=SECRET,
        new_cursor=iter(AWKWARD_CURSORS).__next__,
    ) as server:
        server.add_rules(RULES)
        extra = f'SyncExtraHeaders = {{"Zentral-Authorization" = "Bearer {SECRET}"}}\n'
        client = make_client(tmp_path, server, extra)
        events = [synthetic_event(i) for i in range(3)]
        client.queue(events)

        first = client.sync()
        assert first.status is SyncStatus.SUCCESS, (first.error, first.log)
        assert server.errors == [] and all(r.status == 200 for r in server.requests)
        assert all(r.header("Zentral-Authorization") == auth["Zentral-Authorization"] for r in server.requests)
        assert first.performed is not None and first.performed is not SyncType.NORMAL  # enrollment: a clean sync
        assert first.events_uploaded == 3 and client.pending() == 0

        (pre,) = server.requests_for("preflight")
        assert preflight_without_clean_request(wire_body(pre, server, extra_headers=auth)) == preflight_body(
            {}, client_mode="MONITOR"
        )
        check_eventuploads(server, server.requests_for("eventupload"), events, 2, Variant.GOOGLE)
        # Pages of 4, then 2, then Zentral's empty last page; each cursor echoed verbatim.
        answers = server.answers("ruledownload")
        assert [len(a["rules"]) for a in answers] == [4, 2, 0]
        check_ruledownload(server, server.requests_for("ruledownload"), answers)
        (post,) = server.requests_for("postflight")
        post_body = wire_body(post, server, extra_headers=auth)
        sync_type = performed_name(first) if b'"syncType"' in post_body else None
        assert post_body == postflight_body(6, 6, sync_type)
        state = load_state(client.state_path)
        assert state.allowed_path_regex == "(?!)" and state.blocked_path_regex == "(?!)"

        second = client.sync()
        assert second.status is SyncStatus.SUCCESS, (second.error, second.log)
        pre2 = server.requests_for("preflight")[1]
        assert wire_body(pre2, server, extra_headers=auth) == preflight_body(COUNTS_AFTER, client_mode="MONITOR")
        assert client.rule_count() == 6


def test_zentral_clean_sync_is_confirmed(tmp_path: Path) -> None:
    """§9.4: Zentral reads the performed type only from the postflight's `syncType`; without it the enrollment
    clean sync is never confirmed, every later preflight is answered CLEAN again and, with the default
    SyncEnableCleanSyncEventUpload = false (§1.6), every sync deletes the pending events unsent."""
    with SyncServer(profile="zentral", enrollment_secret=SECRET) as server:
        server.add_rules(RULES)
        extra = f'SyncExtraHeaders = {{"Zentral-Authorization" = "Bearer {SECRET}"}}\n'
        client = make_client(tmp_path, server, extra, clean_upload=False)
        first = client.sync()
        assert first.status is SyncStatus.SUCCESS
        assert first.performed in (SyncType.CLEAN, SyncType.CLEAN_ALL)  # enrollment (CLEAN_ALL: fresh rules.db)
        event = synthetic_event(99)
        client.queue([event])
        second = client.sync()
        assert second.status is SyncStatus.SUCCESS
        postflights = server.postflights[MACHINE.lower()]  # Zentral keys machines by their UUID's text
        uploaded = [e["file_sha256"] for e in server.events.get(MACHINE.lower(), [])]
        outcome = {
            "first postflight syncType": postflights[0].get("syncType"),
            "second sync performed": second.performed,
            "second sync events uploaded": uploaded,
            "second sync events dropped unsent": second.events_dropped_clean,
        }
        assert outcome == {
            "first postflight syncType": performed_name(first),
            "second sync performed": SyncType.NORMAL,
            "second sync events uploaded": [event.file_sha256],
            "second sync events dropped unsent": 0,
        }
