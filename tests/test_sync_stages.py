"""A full sync end to end (sync/stages.py) against santacore.testing.SyncServer on loopback:
stage outcomes of §1.1/§1.5, nothing lost when a stage fails, clean syncs, server profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from santacore.identity.fileinfo import file_info
from santacore.santad.decisions import ClientMode
from santacore.santad.event_builders import file_event
from santacore.santad.event_store import EventStore
from santacore.santad.events import StoredEvent
from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import Rule, RuleState, RuleType
from santacore.sync.protocol import SyncType
from santacore.sync.stages import SyncResult, SyncStatus, request_sync_type
from santacore.sync.state import load_state
from santacore.testing import SyncServer
from tests.sync_client import MACHINE, SyncTestClient, write_config

BINARYRULES = "santa/northpolesec/santad/testdata/binaryrules"


class Client(SyncTestClient):
    """The names these tests use, over the shared sync test client."""

    def sync(self, server: SyncServer, *, machine_id: str = MACHINE) -> SyncResult:
        return self.run_sync(machine_id=machine_id)

    def pending(self) -> int:
        return self.pending_count()

    def rules(self) -> list[Rule]:
        return self.stored_rules()


def make_client(tmp_path: Path, server: SyncServer, extra: str = "") -> Client:
    return Client(write_config(tmp_path, server, extra))


@pytest.fixture
def server() -> Iterator[SyncServer]:
    with SyncServer(batch_size=2, page_size=2) as s:
        yield s


def corpus_events(corpus: Path, count: int) -> list[StoredEvent]:
    names = sorted(os.listdir(corpus / BINARYRULES))[:count]
    return [file_event(file_info(corpus / BINARYRULES / n)) for n in names]


def wire_rules(corpus: Path, *names: str) -> list[dict[str, Any]]:
    return [
        {"identifier": file_info(corpus / BINARYRULES / n).sha256, "policy": "BLOCKLIST", "rule_type": "BINARY"}
        for n in names
    ]


def test_full_sync_uploads_applies_and_persists(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    server.add_rules(wire_rules(corpus, "badbinary", "banned_cdhash", "noop"))
    server.preflight.client_mode = "LOCKDOWN"  # applied at postflight
    client = make_client(tmp_path, server)
    events = corpus_events(corpus, 5)
    client.queue(events)
    result = client.sync(server)
    assert result.status is SyncStatus.SUCCESS
    assert result.events_uploaded == 5 and client.pending() == 0
    assert sorted(e["file_sha256"] for e in server.events[MACHINE]) == sorted(e.file_sha256 for e in events)
    assert [r.stage for r in server.requests].count("eventupload") == 3  # batches of the server's size 2
    assert result.rules_received == result.rules_processed == result.rules_applied == 3
    assert {r.identifier for r in client.rules()} == {
        x["identifier"] for x in wire_rules(corpus, "badbinary", "banned_cdhash", "noop")
    }
    state = load_state(client.state_path)
    assert state.client_mode is ClientMode.LOCKDOWN and state.full_sync_last_success is not None
    # What the server received is Santa's wire form: zlib-compressed protobuf-JSON.
    preflight = server.requests_for("preflight")[0]
    assert preflight.header("Content-Encoding") == "deflate" and preflight.raw_body[:2] == b"\x78\x9c"
    assert preflight.data is not None and preflight.data["machine_id"] == MACHINE


def test_preflight_failure_stops_and_keeps_everything(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    server.add_rules(wire_rules(corpus, "badbinary"))
    server.add_fault("status", stage="preflight", times=5, status=500)
    client = make_client(tmp_path, server)
    client.queue(corpus_events(corpus, 3))
    result = client.sync(server)
    assert result.status is SyncStatus.PREFLIGHT_FAILED
    assert "500" in (result.error or "")
    assert client.pending() == 3 and client.rules() == []
    assert {r.stage for r in server.requests} == {"preflight"}
    assert load_state(client.state_path).full_sync_last_success is None


def test_failed_event_batch_keeps_the_rest_and_the_sync_goes_on(
    corpus: Path, tmp_path: Path, server: SyncServer
) -> None:
    server.add_rules(wire_rules(corpus, "badbinary"))
    server.add_fault("status", stage="eventupload", skip=1, times=5, status=503)
    client = make_client(tmp_path, server)
    client.queue(corpus_events(corpus, 5))
    result = client.sync(server)
    assert result.status is SyncStatus.SUCCESS  # §1.1 step 3: the stage never fails the sync
    assert result.events_uploaded == 2 and client.pending() == 3
    assert len(server.events[MACHINE]) == 2
    assert result.rules_applied == 1
    # Nothing lost: the next sync delivers the rest.
    again = client.sync(server)
    assert again.events_uploaded == 3 and client.pending() == 0 and len(server.events[MACHINE]) == 5


def test_failed_rule_page_applies_nothing(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    server.add_rules(wire_rules(corpus, "badbinary", "banned_cdhash", "noop", "goodbinary"))
    server.add_fault("status", stage="ruledownload", skip=1, times=5, status=500)
    client = make_client(tmp_path, server)
    result = client.sync(server)
    assert result.status is SyncStatus.RULE_DOWNLOAD_FAILED
    assert client.rules() == []  # the first page arrived but is not applied alone
    assert server.requests_for("postflight") == []
    assert load_state(client.state_path).client_mode is None  # preflight settings not applied


def test_postflight_failure_is_ignored(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    server.preflight.client_mode = "LOCKDOWN"
    server.add_fault("status", stage="postflight", times=5, status=500)
    client = make_client(tmp_path, server)
    result = client.sync(server)
    assert result.status is SyncStatus.SUCCESS
    assert load_state(client.state_path).client_mode is ClientMode.LOCKDOWN


def test_clean_all_sync_replaces_rules_and_drops_events_unsent(
    corpus: Path, tmp_path: Path, server: SyncServer
) -> None:
    """Santa's own behaviour (SyncEnableCleanSyncEventUpload = false): a clean sync deletes the
    queued events unsent (§1.6)."""
    client = make_client(tmp_path, server, "SyncEnableCleanSyncEventUpload = false\n")
    with RuleStore(client.config.rules_db) as store:
        local = Rule.create(file_info(corpus / BINARYRULES / "goodbinary").sha256, RuleType.BINARY, RuleState.ALLOW)
        store.add_rules([local])
    server.add_rules(wire_rules(corpus, "badbinary"))
    client.queue(corpus_events(corpus, 2))
    request_sync_type(client.state_path, SyncType.CLEAN_ALL)
    result = client.sync(server)
    assert result.status is SyncStatus.SUCCESS and result.performed is SyncType.CLEAN_ALL
    assert [r.identifier for r in client.rules()] == [wire_rules(corpus, "badbinary")[0]["identifier"]]
    assert result.events_dropped_clean == 2 and client.pending() == 0 and MACHINE not in server.events
    assert server.preflights[MACHINE][0]["request_clean_sync"] is True
    assert load_state(client.state_path).sync_type_required is SyncType.NORMAL


def test_clean_sync_uploads_events_by_default(corpus: Path, tmp_path: Path, server: SyncServer) -> None:
    """santacore's default keeps events through a clean sync: a fresh rules.db asks for CLEAN_ALL
    (§1.6), and the events queued before the first sync still reach the server."""
    client = make_client(tmp_path, server)
    events = corpus_events(corpus, 3)
    client.queue(events)
    result = client.sync(server)
    assert result.performed is SyncType.CLEAN_ALL
    assert server.preflights[MACHINE][0]["request_clean_sync"] is True
    assert result.events_uploaded == 3 and result.events_dropped_clean == 0 and client.pending() == 0
    assert server.postflights[MACHINE][0]["syncType"] == "CLEAN_ALL"  # reported, so Zentral sees it done
    second = client.sync(server)
    assert second.performed is SyncType.NORMAL


def test_server_quirks_of_moroz_and_zentral(corpus: Path, tmp_path: Path) -> None:
    for profile in ("moroz", "zentral"):
        with SyncServer(profile=profile, rules=wire_rules(corpus, "badbinary")) as srv:
            client = make_client(tmp_path / profile, srv)
            client.queue(corpus_events(corpus, 1))
            result = client.sync(srv)
            assert result.status is SyncStatus.SUCCESS, (profile, result.error, result.log)
            assert client.pending() == 0 and result.rules_applied == 1, profile


def test_kill_9_mid_upload_loses_nothing(corpus: Path, tmp_path: Path) -> None:
    """A `santacore sync` process killed with SIGKILL while a batch is in flight: every event is
    either acknowledged by the server or still in events.db, and the next sync delivers the rest."""
    import signal
    import subprocess
    import sys
    import time

    with SyncServer(batch_size=2) as srv:
        srv.add_fault("delay", stage="eventupload", skip=1, times=1, delay=30.0)
        client = make_client(tmp_path, srv)
        events = corpus_events(corpus, 6)
        client.queue(events)
        env = dict(os.environ, SANTACORE_CONFIG=os.fspath(tmp_path / "santacore.toml"))
        child = subprocess.Popen([sys.executable, "-m", "santacore", "sync"], env=env, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while len(srv.requests_for("eventupload")) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)  # the second batch has reached the server and is being held
            assert len(srv.requests_for("eventupload")) == 2
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        acknowledged = [e["file_sha256"] for e in srv.events.get(MACHINE, [])]
        with EventStore(client.config.events_db) as store:
            kept = [StoredEvent.from_record(r.data).file_sha256 for batch in store.pending(100) for r in batch]
            assert store.integrity_check() == ["ok"]
        assert len(acknowledged) == 2 and len(kept) == 4
        assert sorted(acknowledged + kept) == sorted(e.file_sha256 for e in events)
        srv.faults.clear()
        result = client.sync(srv)
        assert result.status is SyncStatus.SUCCESS and client.pending() == 0
        assert sorted(e["file_sha256"] for e in srv.events[MACHINE]) == sorted(e.file_sha256 for e in events)


@pytest.mark.parametrize("protocol", ["google-json", "northpolesec", "google-2024.6"])
def test_older_and_forked_wire_forms_sync(corpus: Path, tmp_path: Path, protocol: str) -> None:
    """`SyncProtocol` switches the whole sync to another release's wire form (§9.1)."""

    with SyncServer(rules=wire_rules(corpus, "badbinary")) as srv:
        client = make_client(tmp_path, srv, f'SyncProtocol = "{protocol}"\n')
        client.queue(corpus_events(corpus, 2))
        result = client.run_sync()  # in the configuration's SyncProtocol
        assert result.status is SyncStatus.SUCCESS, (protocol, result.error, result.log)
        assert result.events_uploaded == 2 and result.rules_applied == 1
        pre = srv.requests_for("preflight")[0]
        assert pre.data is not None
        assert ("machine_id" in pre.data) is (protocol != "google-json")  # [G-JSON] has no machine_id key


def test_check_record_upload_sends_a_denial_at_once(
    corpus: Path, tmp_path: Path, server: SyncServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`santacore check --record --upload -v`: santad's immediate single-event upload of a denial (§5.4), with
    the HTTP exchange shown; the exit status says the file is blocked (3)."""
    from santacore.cli import main

    client = make_client(tmp_path, server, "ClientMode = 2\n")
    target = corpus / BINARYRULES / "badbinary"
    config = os.fspath(tmp_path / "santacore.toml")
    assert main(["check", "--config", config, "--record", "--upload", "-v", str(target)]) == 3
    exchanges = [line for line in capsys.readouterr().err.splitlines() if line.startswith("HTTP POST")]
    assert len(exchanges) == 1 and "/eventupload/" in exchanges[0] and "-> 200" in exchanges[0], exchanges
    (received,) = server.events[MACHINE]
    assert received["file_sha256"] == file_info(target).sha256 and received["decision"] == "BLOCK_UNKNOWN"
    assert client.pending() == 0  # acknowledged, so deleted (a failed upload keeps it: test_sync_scheduler)
