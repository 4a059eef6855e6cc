"""The fault matrix: every sync stage × every server/transport fault, against SyncServer on loopback.

For each (stage, fault) one full sync runs and must end with the outcome §1.1/§1.5 document:

* preflight fails    → PREFLIGHT_FAILED; nothing else is requested, nothing changes;
* an event batch fails → SUCCESS; that batch and the later ones stay in events.db (§4.6–4.7);
* a rule page fails  → RULE_DOWNLOAD_FAILED; rules.db and the sync state are left as they were;
* postflight fails   → SUCCESS; the preflight settings are applied all the same (§3.4);
* anti-XSSI prefixes and compressed responses are not faults at all: the sync succeeds (§2.2, §2.3).

Every case also checks: the error (or log line) names the stage and the cause; no exception escapes;
the client waited only between the attempts of the faulted exchange, Santa's 4, 8, 16, 32 s (recorded by an injected
sleep that does not sleep, so no wall clock is timed on a shared machine); events.db and rules.db pass
`PRAGMA integrity_check`; no event is lost (each is on the server or still pending), and a second sync
with the faults gone delivers the rest.

`pytest -s tests/test_sync_faults.py 2>/dev/null` prints the matrix (stage, fault, outcome) at the end (stderr
carries the test server's "Connection reset by peer" tracebacks: the client closes the connection on non-200s).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from santacore.config.settings import Config
from santacore.santad.decisions import ClientMode, Decision
from santacore.santad.event_store import EventStore
from santacore.santad.events import StoredEvent
from santacore.santad.rule_store import RuleStore
from santacore.santad.rules import Rule, RuleState, RuleType
from santacore.sync.retry import RetryPolicy, santa_backoff
from santacore.sync.stages import SyncResult, SyncStatus
from santacore.sync.state import SyncState, load_state
from santacore.testing import FaultKind, SyncServer
from tests.sync_client import MACHINE, SyncTestClient, write_config

ATTEMPTS = RetryPolicy().attempts  # Santa's 5 (§2.4)
MAX_RESPONSE_BYTES = 64 * 1024  # small, so the "oversized" fault is cheap
STAGES = ("preflight", "eventupload", "ruledownload", "postflight")
EVENTS = 5  # uploaded in batches of 2: [2, 2, 1]
RULES = 5  # downloaded in pages of 2: [2, 2, 1]
BATCH = 2
EXCHANGES = {"preflight": 1, "eventupload": 3, "ruledownload": 3, "postflight": 1}  # requests without faults


# --------------------------------------------------------------------------------------------------
# Client helpers


def synthetic_event(i: int) -> StoredEvent:
    sha = hashlib.sha256(f"fault-matrix-event-{i}".encode()).hexdigest()
    return StoredEvent(
        file_sha256=sha,
        file_path=f"/usr/local/bin/tool-{i}",
        decision=Decision.BLOCK_UNKNOWN,
        occurrence_date=1718035512.804221 + i,
        executing_user="bob",
        logged_in_users=("bob",),
        current_sessions=("bob@console",),
        pid=1000 + i,
        ppid=1,
        parent_name="launchd",
    )


def wire_rule(i: int) -> dict[str, Any]:
    return {
        "identifier": hashlib.sha256(f"fault-matrix-rule-{i}".encode()).hexdigest(),
        "policy": "BLOCKLIST",
        "rule_type": "BINARY",
    }


LOCAL_RULE = Rule.create(hashlib.sha256(b"local-rule").hexdigest(), RuleType.BINARY, RuleState.ALLOW)


class Client(SyncTestClient):
    """The names these tests use, over the shared sync test client, with a small response limit. `sleeps`: every
    sleep the transport asked for between attempts (recorded, not slept)."""

    def __init__(self, config: Config, timeout: float = 5.0) -> None:
        super().__init__(config)
        self.timeout = timeout
        self.sleeps: list[float] = []

    def sync(self, server: SyncServer) -> SyncResult:
        retry = RetryPolicy(sleep=self.sleeps.append)
        return self.run_sync(timeout=self.timeout, max_response_bytes=MAX_RESPONSE_BYTES, retry=retry)

    def pending(self) -> list[str]:
        """file_sha256 of every pending event."""
        return self.pending_sha256()

    def rules(self) -> set[tuple[str, int, int]]:
        return {(r.identifier, int(r.type), int(r.state)) for r in self.stored_rules()}

    def add_local_rule(self, rule: Rule) -> None:
        with RuleStore(self.config.rules_db) as store:
            store.add_rules([rule])

    def integrity(self) -> tuple[list[str], list[str]]:
        with EventStore(self.config.events_db) as store:
            events = store.integrity_check()
        conn = sqlite3.connect(f"file:{self.config.rules_db}?mode=ro", uri=True)
        try:
            rules = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
        return events, rules


def make_client(tmp_path: Path, server: SyncServer, *, timeout: float = 5.0) -> Client:
    return Client(write_config(tmp_path, server), timeout)


# --------------------------------------------------------------------------------------------------
# The matrix


@dataclass(frozen=True)
class FaultCase:
    """One column of the matrix. `fails`: the faulted request fails (else the sync must not notice).
    `attempts`: requests the client makes for the faulted exchange. `cause`: regex the error names."""

    name: str
    kind: FaultKind
    options: dict[str, Any] = field(default_factory=dict)
    fails: bool = True
    attempts: int = ATTEMPTS
    cause: str = ""
    timeout: float = 5.0
    quirks: dict[str, Any] = field(default_factory=dict)
    stages: tuple[str, ...] = STAGES
    body_fault: bool = False  # a fault in the body of a 200 (postflight's body is ignored, §3.4)
    # Failing faults hit the second event batch / rule page (the first gets through) unless set here.
    first_page: bool = False


# Wrong JSON types per stage: each fails protobuf-JSON parsing (§2.3).
WRONG_TYPES: dict[str, dict[str, Any]] = {
    "preflight": {"batch_size": "x", "client_mode": True},
    "eventupload": {"event_upload_bundle_binaries": "not-a-list"},
    "ruledownload": {"rules": {"identifier": "not-a-list"}},
    "postflight": {"NoOp": 1, "rules": "x"},  # PostflightResponse has no fields: nothing to be wrong
}

CASES: tuple[FaultCase, ...] = (
    FaultCase("500 x5", "status", {"status": 500, "times": ATTEMPTS}, cause=r"HTTP Response: 500"),
    FaultCase(
        "403 x5, no XSRF route",
        "status",
        {"status": 403, "times": ATTEMPTS},
        cause=r"HTTP Response: 403",
        quirks={"xsrf_route": False},
    ),
    FaultCase(
        "403 once, XSRF handshake",
        "status",
        {"status": 403, "times": 1},
        fails=False,
        attempts=2,
    ),
    FaultCase("302 redirect x5", "status", {"status": 302, "times": ATTEMPTS}, cause=r"HTTP Response: 302"),
    FaultCase(
        "delay > timeout x5",
        "delay",
        {"delay": 1.5, "times": ATTEMPTS},
        cause=r"timed out after 0\.5 s",
        timeout=0.5,
    ),
    FaultCase("dropped connection x5", "drop", {"times": ATTEMPTS}, cause=r"closed the connection without a response"),
    # On the first rule page: SyncServer's cursors are single-use, so a retry of page 2 whose first
    # attempt was answered (then cut short) would get 400 "unknown cursor" instead.
    FaultCase("truncated body x5", "truncate", {"times": ATTEMPTS}, cause=r"cut short", first_page=True),
    FaultCase(
        "malformed JSON",
        "malformed_json",
        {"times": 1},
        attempts=1,
        cause=r"Failed to parse \w+ response JSON",
        body_fault=True,
    ),
    FaultCase(
        "wrong JSON types",
        "wrong_types",
        {"times": 1},
        attempts=1,
        cause=r"Failed to parse \w+ response JSON: (batch_size|rules|event_upload_bundle_binaries|client_mode)",
        body_fault=True,
    ),
    FaultCase(
        "wrong JSON types: cursor a number",
        "wrong_types",
        {"times": 1, "fields": {"cursor": 7}},
        attempts=1,
        cause=r"cursor: expected a string",
        stages=("ruledownload",),
        body_fault=True,
    ),
    FaultCase(
        "oversized body",
        "oversized",
        {"times": 1, "size": 1024 * 1024},
        attempts=1,
        cause=r"larger than 65536 bytes \(max_response_bytes\)",
    ),
    FaultCase("XSSI prefix )]}'\\n", "xssi", {"times": 50, "prefix": ")]}'\n"}, fails=False, attempts=1),
    FaultCase("XSSI prefix ])}", "xssi", {"times": 50, "prefix": "])}"}, fails=False, attempts=1),
    FaultCase("gzip response", "compress", {"times": 50, "encoding": "gzip"}, fails=False, attempts=1),
    FaultCase("deflate response", "compress", {"times": 50, "encoding": "deflate"}, fails=False, attempts=1),
)

MATRIX = [(stage, case) for case in CASES for stage in STAGES if stage in case.stages]
ROWS: list[tuple[str, str, str, str]] = []
HEADINGS = ("stage", "fault", "outcome", "error / log line")


@pytest.fixture(scope="module", autouse=True)
def print_matrix() -> Iterator[None]:
    yield
    if not ROWS:
        return
    order = {name: i for i, name in enumerate(c.name for c in CASES)}
    rows = sorted(ROWS, key=lambda r: (STAGES.index(r[0]), order.get(r[1], 99)))
    widths = [max(len(r[i]) for r in [HEADINGS, *rows]) for i in range(len(HEADINGS))]
    print("\n\nFault matrix (stage x fault -> outcome)")
    print("  ".join(h.ljust(w) for h, w in zip(HEADINGS, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _expected_status(stage: str, case: FaultCase) -> SyncStatus:
    if not case.fails or stage in ("eventupload", "postflight"):
        return SyncStatus.SUCCESS
    return SyncStatus.PREFLIGHT_FAILED if stage == "preflight" else SyncStatus.RULE_DOWNLOAD_FAILED


def untouched(state: SyncState) -> bool:
    """No preflight setting applied and no success recorded (the requested sync type may be set)."""
    return state == SyncState(sync_type_required=state.sync_type_required)


def _outcome(result: SyncResult, client: Client, attempts: int, elapsed: float) -> str:
    text = result.status.name
    pending = len(client.pending())
    text += f"; {result.events_uploaded} up / {pending} kept; {result.rules_applied} rules applied"
    return f"{text}; {attempts} attempt{'s' * (attempts != 1)}; {elapsed:.2f} s"


def _said(result: SyncResult) -> str:
    """The error, else the first log line reporting a failure, with the port number elided."""
    line = result.error or next((x for x in result.log if "failed" in x.lower()), "-")
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", line)


@pytest.mark.parametrize(("stage", "case"), MATRIX, ids=[f"{s}-{c.name}" for s, c in MATRIX])
def test_fault(tmp_path: Path, stage: str, case: FaultCase) -> None:
    # The server answers every preflight NORMAL, so the sync is a normal one even once a fresh rules.db makes
    # the client ask for CLEAN_ALL (§1.6): the local rule stays, the events go up.
    quirks = {"honour_clean_request": False, **case.quirks}
    with SyncServer(batch_size=BATCH, page_size=BATCH, client_mode="LOCKDOWN", quirks=quirks) as server:
        server.preflight.full_sync_interval = 1200
        server.add_rules([wire_rule(i) for i in range(RULES)])
        client = make_client(tmp_path, server, timeout=case.timeout)
        events = [synthetic_event(i) for i in range(EVENTS)]
        client.queue(events)
        client.add_local_rule(LOCAL_RULE)
        rules_before = client.rules()
        batches = sorted(events, key=lambda e: e.idx)
        first_batch = {e.file_sha256 for e in batches[:BATCH]}

        options = dict(case.options)
        if case.kind == "wrong_types":
            options.setdefault("fields", WRONG_TYPES[stage])
        # A failing event batch or rule page is the second one: the first got through (§4.6, §3.3).
        skip = 1 if case.fails and stage in ("eventupload", "ruledownload") else 0
        if stage == "ruledownload" and case.first_page:
            skip = 0
        fault = server.add_fault(case.kind, stage=stage, skip=skip, **options)

        started = time.monotonic()
        try:
            result = client.sync(server)
        except Exception as exc:  # pragma: no cover - the assertion is the point
            pytest.fail(f"an exception escaped full_sync: {type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - started
        # Requests for the faulted exchange: all of the stage's, less the fault-free ones around it.
        attempts = len(server.requests_for(stage)) - (skip if case.fails else EXCHANGES[stage] - 1)
        ROWS.append((stage, case.name, _outcome(result, client, attempts, elapsed), _said(result)))

        # The fault did happen, as many times as the client tried.
        assert fault.fired >= 1, "the fault never fired"
        assert attempts == case.attempts, [(r.stage, r.status, r.fault) for r in server.requests]
        # Santa's sleeps before each retry of the faulted exchange, and none anywhere else (§2.4); none before the
        # retry an XSRF token fixes (santacore retries that at once).
        wanted_sleeps = [] if "XSRF handshake" in case.name else [santa_backoff(a) for a in range(2, case.attempts + 1)]
        assert client.sleeps == wanted_sleeps
        assert server.errors == []

        # The documented outcome.
        expected = _expected_status(stage, case)
        assert result.status is expected, (result.error, result.log)
        stage_failed = case.fails and not (stage == "postflight" and case.body_fault)
        if stage_failed:
            said = result.error if expected is not SyncStatus.SUCCESS else "\n".join(result.log)
            assert said is not None
            label = {
                "preflight": r"^preflight: ",
                "eventupload": r"Event upload failed",
                "ruledownload": r"^ruledownload: ",
                "postflight": r"Postflight failed",
            }[stage]
            assert re.search(label, said, re.M), said
            assert re.search(case.cause, said), said
        else:
            assert result.error is None, result.error

        pending = client.pending()
        state = load_state(client.state_path)
        stages_seen = {r.stage for r in server.requests}
        if expected is SyncStatus.PREFLIGHT_FAILED:
            assert stages_seen <= {"preflight", "xsrf"}
            assert sorted(pending) == sorted(e.file_sha256 for e in events)
            assert client.rules() == rules_before
            assert untouched(state)
        elif expected is SyncStatus.RULE_DOWNLOAD_FAILED:
            assert len(server.requests_for("ruledownload")) == skip + case.attempts  # page 1, then page 2's attempts
            assert client.rules() == rules_before  # page 1 arrived, but nothing is applied alone
            assert server.requests_for("postflight") == []
            assert untouched(state)  # preflight settings are applied only at postflight
            assert pending == [] and result.events_uploaded == EVENTS
        else:
            assert state.client_mode is ClientMode.LOCKDOWN and state.full_sync_interval == 1200
            assert state.full_sync_last_success is not None
            assert client.rules() == rules_before | {
                (wire_rule(i)["identifier"], int(RuleType.BINARY), int(RuleState.BLOCK)) for i in range(RULES)
            }
            assert len(server.requests_for("postflight")) >= 1
            if stage == "eventupload" and case.fails:
                # The first batch went up; the failed batch and every later one are still queued.
                assert result.events_uploaded == BATCH
                assert set(pending) == {e.file_sha256 for e in events} - first_batch
                assert len(pending) == EVENTS - BATCH
            else:
                assert pending == [] and result.events_uploaded == EVENTS
        if stage == "preflight" and case.name.startswith("403 x5"):
            assert all(r.header("X-XSRF-TOKEN") is None for r in server.requests)
            assert [r.status for r in server.requests_for("xsrf")][:1] == [404]
        if "redirect" in case.name:
            assert all(r.stage is not None for r in server.requests), "the client followed a redirect"

        # Stores intact; nothing lost: every queued event is on the server or still pending.
        assert client.integrity() == (["ok"], ["ok"])
        received = {e["file_sha256"] for e in server.events.get(MACHINE, [])}
        assert received | set(pending) == {e.file_sha256 for e in events}

        # And the next sync, the fault gone, delivers the rest and applies the rules.
        server.faults.clear()
        again = Client(client.config, timeout=5.0).sync(server)
        assert again.status is SyncStatus.SUCCESS, (again.error, again.log)
        assert client.pending() == []
        assert {e["file_sha256"] for e in server.events[MACHINE]} == {e.file_sha256 for e in events}
        assert len(client.rules()) == RULES + 1
