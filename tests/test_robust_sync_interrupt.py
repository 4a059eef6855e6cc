"""Ctrl-C (SIGINT) to a `santacore sync` a person runs, at each stage: it says "interrupted", exits 130 with no
traceback, and leaves the stores consistent — rules.db all old (nothing of an unfinished download applied),
events.db holding exactly the events the server has not acknowledged — and the next sync completes the work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from santacore.santad.event_store import EventStore
from santacore.sync.stages import SyncStatus
from santacore.testing import SyncServer
from tests.sync_client import MACHINE
from tests.test_sync_scheduler import wait_for
from tests.test_sync_stages import corpus_events, make_client, wire_rules


@pytest.mark.parametrize("stage", ["preflight", "eventupload", "ruledownload", "postflight"])
def test_ctrl_c_in_each_stage_keeps_the_stores_consistent(corpus: Path, tmp_path: Path, stage: str) -> None:
    with SyncServer(batch_size=2, page_size=1) as srv:
        srv.add_rules(wire_rules(corpus, "badbinary", "noop"))  # two pages
        srv.add_fault("delay", stage=stage, times=1, delay=3.0)  # the request we interrupt is in flight
        client = make_client(tmp_path, srv)
        events = corpus_events(corpus, 3)  # two upload batches
        client.queue(events)
        child = subprocess.Popen(
            [sys.executable, "-m", "santacore", "sync", "--config", os.fspath(tmp_path / "santacore.toml")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: len(srv.requests_for(stage)) >= 1 or child.poll() is not None, timeout=60)
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 130, (out, err)
        assert err.endswith("santacore: interrupted\n") and "Traceback" not in err, err
        # A download is applied whole once its last page is in (§1.5), before postflight; never in part.
        assert len(client.rules()) == (2 if stage == "postflight" else 0)
        # events.db holds exactly the events the server did not acknowledge, intact.
        received = {e["file_sha256"] for e in srv.events.get(MACHINE, [])}
        with EventStore(client.config.events_db) as store:
            assert store.integrity_check() == ["ok"]
            pending = {row.unique_id for batch in store.pending() for row in batch}
        assert pending | received == {e.file_sha256 for e in events}
        # An event the server has may stay queued only if its batch was in flight (sent, not acknowledged).
        assert len(pending & received) <= 2
        # The next sync completes the work (the delay fault was for one request only).
        result = client.sync(srv)
        assert result.status is SyncStatus.SUCCESS, result.error
        assert len(client.rules()) == 2 and client.pending() == 0
