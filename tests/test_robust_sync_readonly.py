"""Read-only stores (`read_only=True`) for the commands that only look, the real count of events left after a
failed sync, and no upload from an events.db that could not then delete the batch."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from santacore.errors import StoreError
from santacore.santad.event_store import EventStore
from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import Rule, RuleState, RuleType
from santacore.sync.stages import SyncStatus, full_sync
from tests.sync_client import FACTS, MACHINE, SyncTestClient, fast_settings
from tests.test_robust_sync_deadline import config_for, raw_server, reply
from tests.test_sync_faults import synthetic_event

RULE = Rule.create(hashlib.sha256(b"read-only").hexdigest(), RuleType.BINARY, RuleState.ALLOW)


def test_rule_store_read_only_lists_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "rules.db"
    with RuleStore(path) as store:
        store.add_rules([RULE])
    before = path.read_bytes()
    with RuleStore(path, read_only=True) as store:
        assert store.rules() == [RULE.validated()]
        assert store.counts().total == 1
        with pytest.raises(StoreError, match="read-only"):
            store.add_rules([RULE])
        with pytest.raises(StoreError, match="read-only"):
            store.clear()
    assert path.read_bytes() == before


def test_rule_store_read_only_never_creates_the_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no rules database"):
        RuleStore(tmp_path / "rules.db", read_only=True)
    assert not (tmp_path / "rules.db").exists()


def test_event_store_read_only_counts_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    client_events = [synthetic_event(i) for i in range(3)]
    with EventStore(path) as store:
        from santacore.santad.execution import store_events

        store_events(store, client_events)
        assert store.writable() is None
    with EventStore(path, read_only=True) as store:
        assert store.count() == 3
        assert store.writable() is not None
        with pytest.raises(StoreError):
            store.delete([row.idx for rows in store.pending(10) for row in rows])
        assert store.count() == 3


def answer_everything(conn: socket.socket, stage: str, attempt: int) -> None:
    reply(conn, {})


def failing_preflight(conn: socket.socket, stage: str, attempt: int) -> None:
    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")


def test_failed_preflight_reports_the_events_left(tmp_path: Path) -> None:
    with raw_server(failing_preflight) as server:
        client = SyncTestClient(config_for(tmp_path, server.base_url))
        client.queue([synthetic_event(i) for i in range(19)])
        result = client.run_sync()
    assert result.status is SyncStatus.PREFLIGHT_FAILED
    assert result.events_left == 19


def test_no_upload_from_an_events_db_that_cannot_delete(tmp_path: Path) -> None:
    from santacore.sync.context import open_sync_context

    with raw_server(answer_everything) as server:
        client = SyncTestClient(config_for(tmp_path, server.base_url))
        client.queue([synthetic_event(i) for i in range(5)])
        with (
            EventStore(client.config.events_db, read_only=True) as events,
            open_sync_context(
                client.config,
                machine_id=MACHINE,
                settings=fast_settings(client.config),
                facts=FACTS,
                events=events,
            ) as ctx,
        ):
            result = full_sync(ctx, state_path=client.state_path)
        assert server.count("eventupload") == 0
    assert result.events_uploaded == 0
    assert result.events_left == 5
    assert any("not writable" in line for line in result.log)
    assert client.pending_count() == 5


def test_a_read_only_rules_db_fails_the_download_before_it_starts(tmp_path: Path) -> None:
    """Found before the first ruledownload request, not after every page has been fetched."""
    from santacore.sync.context import open_sync_context

    with raw_server(answer_everything) as server:
        client = SyncTestClient(config_for(tmp_path, server.base_url))
        client.queue([synthetic_event(i) for i in range(3)])
        with RuleStore(client.config.rules_db) as store:
            store.add_rules([RULE])
            assert store.writable() is None
        with (
            RuleStore(client.config.rules_db, read_only=True) as rules,
            open_sync_context(
                client.config, machine_id=MACHINE, settings=fast_settings(client.config), facts=FACTS, rules=rules
            ) as ctx,
        ):
            assert rules.writable() == f"{rules.path}: opened read-only"
            result = full_sync(ctx, state_path=client.state_path)
        assert server.count("preflight") == 1 and server.count("eventupload") == 1
        assert server.count("ruledownload") == 0 and server.count("postflight") == 0
    assert result.status is SyncStatus.RULE_DOWNLOAD_FAILED
    assert result.error is not None and "rules.db is not writable" in result.error
    assert client.pending_count() == 0  # the events were uploaded: events.db was writable
    with RuleStore(client.config.rules_db, read_only=True) as store:
        assert store.rules() == [RULE.validated()]
