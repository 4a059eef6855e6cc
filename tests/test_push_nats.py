"""Push notifications (addendum §1) against a real nats-server: the scheduler's push client, tag/host/FCM-style
messages, reconnect after a broker restart, the interval while push is configured, rule-only syncs by push."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from santacore.santad.rule_store import RuleStore
from santacore.sync.scheduler import SyncDaemon
from santacore.sync.stages import SyncStatus
from santacore.sync.state import load_state
from santacore.testing import SyncServer
from santacore.testing.push import NatsBroker, PushSide
from tests.push_broker import ScriptedRandom, broker  # noqa: F401 -- the fixture
from tests.sync_client import FACTS, MACHINE
from tests.test_sync_scheduler import fast_transport, wait_for
from tests.test_sync_stages import Client, make_client, wire_rules


@pytest.fixture
def server() -> Iterator[SyncServer]:
    with SyncServer(batch_size=2, page_size=2, full_sync_interval=900) as s:
        yield s


def daemon_for(client: Client, rng: ScriptedRandom, lines: list[str], **options: object) -> SyncDaemon:
    return SyncDaemon(
        client.config,
        transport_factory=fast_transport,
        facts=FACTS,
        first_sync_delay=0,
        rng=rng,
        log=lines.append,
        reachability_probe=lambda: True,
        **options,  # type: ignore[arg-type]
    )


def started(lines: list[str], what: str = "Full sync starting") -> int:
    return sum(1 for line in list(lines) if line.startswith(what))


def test_tag_message_syncs_within_its_jitter_host_message_at_once(
    tmp_path: Path,
    server: SyncServer,
    broker: NatsBroker,  # noqa: F811
) -> None:
    server.push = PushSide.for_broker(broker, tags=["santa.tag.global", "santa.host.testdevice", "bad.subject"])
    client = make_client(tmp_path, server)
    rng = ScriptedRandom(2, 0)  # the tag message's jitter, then a reconnect's (unused)
    lines: list[str] = []
    with daemon_for(client, rng, lines) as daemon:
        daemon.start()
        wait_for(lambda: daemon.push_client is not None and daemon.push_client.connected)
        assert started(lines) == 1 and "Next full sync in 14400 s" in lines  # §1.8: T_push from the preflight
        assert any("skipping invalid subject 'bad.subject'" in line for line in lines)
        # A tag message with max_jitter 5: the delay is randrange(5), here 2 s.
        sent = time.monotonic()
        server.push.publish_tag("santa.tag.global", max_jitter=5)
        wait_for(lambda: started(lines) == 2)
        took = time.monotonic() - sent
        assert rng.asked == [5] and 2.0 <= took < 8.0, took  # due exactly 2 s on; the rest is load
        assert any("full sync in 2 s" in line for line in lines)
        # A host subject: at once, whatever its payload.
        wait_for(lambda: lines.count("Next full sync in 14400 s") == 2)
        sent = time.monotonic()
        server.push.publish_host()
        wait_for(lambda: started(lines) == 3)
        assert time.monotonic() - sent < 2.0
        assert rng.asked == [5]  # no jitter drawn for a host subject
        wait_for(lambda: started(lines, "Full sync finished: success") == 3)
    assert len(server.requests_for("preflight")) == 3
    # push_notification_token (addendum §1.1 #8): NATS sends the machine ID once a push client exists.
    tokens = [p.get("push_notification_token") for p in server.preflights[MACHINE]]
    assert tokens == [None, MACHINE, MACHINE]


def test_reconnect_after_broker_restart_syncs_within_0_to_600_s(
    tmp_path: Path,
    server: SyncServer,
    broker: NatsBroker,  # noqa: F811
) -> None:
    server.push = PushSide.for_broker(broker)
    client = make_client(tmp_path, server)
    rng = ScriptedRandom(1)  # the reconnect's jitter: 1 s
    lines: list[str] = []
    with daemon_for(client, rng, lines) as daemon:
        daemon.start()
        wait_for(lambda: daemon.push_client is not None and daemon.push_client.connected)
        wait_for(lambda: "Next full sync in 14400 s" in lines)
        broker.restart()
        wait_for(lambda: started(lines) == 2, timeout=20)
        assert rng.asked == [601]  # arc4random_uniform(601): 0–600 s
        assert any(line.startswith("Push: reconnected (1 s jitter): full sync in 1 s") for line in lines)


def test_interval_is_push_interval_until_a_preflight_drops_push(
    tmp_path: Path,
    server: SyncServer,
    broker: NatsBroker,  # noqa: F811
) -> None:
    server.push = PushSide.for_broker(broker, full_sync_interval=None)
    client = make_client(tmp_path, server)
    lines: list[str] = []
    with daemon_for(client, ScriptedRandom(), lines) as daemon:
        daemon.start()
        wait_for(lambda: daemon.push_client is not None and daemon.push_client.connected)
        wait_for(lambda: lines.count("Next full sync in 900 s") == 1)  # no push interval sent: the normal one
        assert daemon.push_client is not None and daemon.push_client.full_sync_interval == 14400
        server.push.full_sync_interval = 14400
        assert daemon.request_sync().status is SyncStatus.SUCCESS
        wait_for(lambda: "Next full sync in 14400 s" in lines)  # §1.8: 4 h while push is configured
        server.push.enabled = False  # the next preflight drops push
        assert daemon.request_sync().status is SyncStatus.SUCCESS
        wait_for(lambda: lines.count("Next full sync in 900 s") == 2)
        assert daemon.push_client is None
        assert any("Push notifications stopped: the preflight carries no push configuration" in x for x in lines)
        # A failed preflight with a push client: min(T_push, 600).
        server.push.enabled = True
        assert daemon.request_sync().status is SyncStatus.SUCCESS
        wait_for(lambda: lines.count("Next full sync in 14400 s") == 2)
        server.add_fault("status", stage="preflight", times=5, status=500)
        assert daemon.request_sync().status is SyncStatus.PREFLIGHT_FAILED
        wait_for(lambda: "Next full sync in 600 s" in lines)


def test_rule_sync_message_runs_a_rule_only_sync(
    corpus: Path,
    tmp_path: Path,
    server: SyncServer,
    broker: NatsBroker,  # noqa: F811
) -> None:
    server.push = PushSide.for_broker(broker, global_rule_sync_deadline=1200)
    client = make_client(tmp_path, server)
    rng = ScriptedRandom(1)
    lines: list[str] = []
    with daemon_for(client, rng, lines) as daemon:
        daemon.start()
        wait_for(lambda: daemon.push_client is not None and daemon.push_client.connected)
        wait_for(lambda: "Next full sync in 14400 s" in lines)
        preflights, postflights = len(server.requests_for("preflight")), len(server.requests_for("postflight"))
        server.add_rules(wire_rules(corpus, "badbinary", "noop", "banned_cdhash"))
        # Addressed to another machine: after randrange(deadline) s, the deadline from the preflight.
        server.push.publish_fcm("rule_sync", target_host_id="someone-else")
        wait_for(lambda: started(lines, "Rule-only sync finished") == 1)
        assert rng.asked == [1200]
        # Addressed to this machine (any case): at once.
        server.add_rules(wire_rules(corpus, "badcert"))
        server.push.publish_fcm("rule_sync", target_host_id=MACHINE.lower())
        wait_for(lambda: started(lines, "Rule-only sync finished") == 2)
        assert rng.asked == [1200]
        with RuleStore(client.config.rules_db, read_only=True) as rules:
            assert rules.counts().binary == 4
        # No preflight, no postflight, no eventupload: ruledownload only (3 rules, page size 2 → 2 pages; then 1).
        assert len(server.requests_for("preflight")) == preflights
        assert len(server.requests_for("postflight")) == postflights
        assert len(server.requests_for("ruledownload")) == 1 + 2 + 2
        # full_sync / config_sync / log_sync: a full sync now.
        server.push.publish_fcm("config_sync")
        wait_for(lambda: started(lines) == 2)
    assert load_state(client.state_path).rule_sync_last_success is not None


class Recorder:
    """A PushDelegate that records what it is asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, str]] = []

    def push_full_sync(self, delay: float, reason: str) -> None:
        self.calls.append(("full", delay, reason))

    def push_rule_sync(self, delay: float, reason: str) -> None:
        self.calls.append(("rule", delay, reason))


def test_connect_retries_with_backoff_until_the_broker_is_up() -> None:
    from santacore.sync.push.nats_client import NatsPushClient
    from santacore.sync.push.settings import push_settings_from_preflight

    with NatsBroker() as down:
        down.stop()  # its port and credentials, nobody listening
        side = PushSide.for_broker(down)
        fields = side.preflight_fields()
        settings = push_settings_from_preflight(
            {"push_server": fields["pushServer"], "push_token": fields["pushToken"], "push_key": fields["pushKey"]}
            | {"push_deviceid": fields["pushDeviceid"], "push_tags": fields["pushTags"]}
        )
        lines: list[str] = []
        client = NatsPushClient(
            Recorder(), machine_id=MACHINE, rng=ScriptedRandom(), log=lines.append, reconnect_wait=0.05
        )
        try:
            client.configure(settings)
            wait_for(lambda: any("retry 2 in 1.0 s" in x for x in lines))  # 2^0 × 1.0 (the factor's midpoint)
            wait_for(lambda: any("retry 3 in 2.0 s" in x for x in lines))  # 2^1 × 1.0
            assert not client.connected
            down.start()
            wait_for(lambda: any(x.startswith("Push notifications connected") for x in lines), timeout=10)
            assert client.connected
        finally:
            client.close()
        assert not client.connected


def test_later_preflights_resubscribe_and_reconnect(
    tmp_path: Path,
    server: SyncServer,
    broker: NatsBroker,  # noqa: F811
) -> None:
    server.push = PushSide.for_broker(broker, tags=["santa.tag.a"])
    client = make_client(tmp_path, server)
    lines: list[str] = []
    with daemon_for(client, ScriptedRandom(), lines) as daemon:
        daemon.start()
        wait_for(lambda: daemon.push_client is not None and daemon.push_client.connected)
        server.push.tags = ["santa.tag.b"]
        assert daemon.request_sync().status is SyncStatus.SUCCESS
        wait_for(lambda: any("Push tags or device ID changed: subscribing again" in x for x in lines))
        server.push.publish_tag("santa.tag.a", max_jitter=0)  # no longer subscribed
        server.push.publish_tag("santa.tag.b", max_jitter=0)
        wait_for(lambda: any("message on santa.tag.b" in x for x in lines))
        assert not any("message on santa.tag.a" in x for x in lines)
        server.push.credentials = broker.auth.publisher  # new credentials: a new connection
        assert daemon.request_sync().status is SyncStatus.SUCCESS
        wait_for(lambda: any("Push credentials or server changed: reconnecting" in x for x in lines))
        wait_for(lambda: sum(x.startswith("Push notifications connected") for x in lines) == 2)


def test_a_push_server_outside_the_allowlist_is_refused(
    tmp_path: Path,
    server: SyncServer,
    broker: NatsBroker,  # noqa: F811
) -> None:
    server.push = PushSide.for_broker(broker)
    client = make_client(tmp_path, server, 'PushServerAllowlist = ["push.example.com"]\n')
    lines: list[str] = []
    with daemon_for(client, ScriptedRandom(), lines) as daemon:
        daemon.start()
        wait_for(lambda: "Next full sync in 900 s" in lines)  # the normal interval: no push client
        assert daemon.push_client is None
    refused = (
        "Push notifications refused: push server host '127.0.0.1' is not in PushServerAllowlist (push.example.com)"
    )
    assert refused in lines
    assert not any("Push notifications connected" in x for x in lines)
