"""What a push message means (sync/push/messages.py) and what preflight says about push (sync/push/settings.py):
subjects, SyncRequest payloads, FCM-style actions, jitter, the retry backoff, the preflight fields' minimums and
defaults, and the server allowlist. Pure functions, with a scripted random source."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from santacore.santad.events import Variant
from santacore.sync.push.messages import (
    DEFAULT_TAG_JITTER,
    PushAction,
    connect_retry_delay,
    interpret,
    parse_sync_request,
    valid_subject,
)
from santacore.sync.push.settings import push_server_problem, push_settings_from_preflight
from santacore.sync.responses import parse_preflight_response
from santacore.testing.push import fcm_message, sync_request

MACHINE = "9B0F3E52-6C1D-4E8A-B7F2-0D4C5A6E7F81"


def scripted(*answers: int) -> tuple[list[int], Callable[[int], int]]:
    asked: list[int] = []
    queue = list(answers)

    def randbelow(n: int) -> int:
        asked.append(n)
        return queue.pop(0)

    return asked, randbelow


@pytest.mark.parametrize(
    ("subject", "valid"),
    [
        ("santa.tag.global", True),
        ("santa.host.ABC123", True),
        ("santa.tag.", False),
        ("santa.tag.a.b", False),
        ("santa.tag.a-b", False),
        ("santa.host.x.commands", False),
        ("santa.other.x", False),
        ("tag.global", False),
    ],
)
def test_subject_validation(subject: str, valid: bool) -> None:
    assert valid_subject(subject) is valid


def test_sync_request_payloads() -> None:
    assert parse_sync_request(b"") is None
    assert parse_sync_request(sync_request(None)) is None
    assert parse_sync_request(sync_request(0)) == 0
    assert parse_sync_request(sync_request(300)) == 300
    assert parse_sync_request(b"\x12\x03abc\x08\x05") == 5  # an unknown field first is skipped
    assert parse_sync_request(b"\x08") is None  # truncated
    assert parse_sync_request(b"\x0b") is None  # a group: not a SyncRequest


def test_tag_and_host_messages() -> None:
    asked, rb = scripted(179, 42)
    act = interpret("santa.tag.global", b"", machine_id=MACHINE, rule_sync_deadline=600, randbelow=rb)
    assert act == PushAction("full", 179, f"message on santa.tag.global (max jitter {DEFAULT_TAG_JITTER} s)")
    act = interpret("santa.tag.x", sync_request(60), machine_id=MACHINE, rule_sync_deadline=600, randbelow=rb)
    assert act is not None and (act.kind, act.delay) == ("full", 42)
    act = interpret("santa.tag.x", sync_request(0), machine_id=MACHINE, rule_sync_deadline=600, randbelow=rb)
    assert act is not None and act.delay == 0  # max_jitter 0: at once, nothing drawn
    act = interpret("santa.host.dev", sync_request(60), machine_id=MACHINE, rule_sync_deadline=600, randbelow=rb)
    assert act is not None and (act.kind, act.delay) == ("full", 0)
    assert asked == [180, 60]


def test_fcm_actions() -> None:
    asked, rb = scripted(77)
    for action in ("full_sync", "config_sync", "log_sync"):
        act = interpret("santa.tag.g", fcm_message(action), machine_id=MACHINE, rule_sync_deadline=900, randbelow=rb)
        assert act is not None and (act.kind, act.delay) == ("full", 0)
    mine = fcm_message("rule_sync", target_host_id=MACHINE.lower())
    act = interpret("santa.tag.g", mine, machine_id=MACHINE, rule_sync_deadline=900, randbelow=rb)
    assert act is not None and (act.kind, act.delay) == ("rule", 0)
    bare = b'{"action": "rule_sync", "target_host_id": "other"}'  # the blob object itself
    act = interpret("santa.tag.g", bare, machine_id=MACHINE, rule_sync_deadline=900, randbelow=rb)
    assert act is not None and (act.kind, act.delay) == ("rule", 77)
    assert (
        interpret("santa.tag.g", fcm_message("noop"), machine_id=MACHINE, rule_sync_deadline=900, randbelow=rb) is None
    )
    assert asked == [900]


def test_connect_retry_backoff() -> None:
    def mid(a: float, b: float) -> float:
        return (a + b) / 2

    def low(a: float, b: float) -> float:
        return a

    delays = [connect_retry_delay(n, uniform=mid, randbelow=lambda n: 0) for n in range(1, 10)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert connect_retry_delay(3, uniform=low, randbelow=lambda n: 0) == 3.0  # × 0.75
    assert connect_retry_delay(10, uniform=mid, randbelow=lambda n: 300) == 600.0  # 300 + [0, 300]
    assert connect_retry_delay(40, uniform=mid, randbelow=lambda n: 0) == 300.0


def test_preflight_push_fields_minimums_and_defaults() -> None:
    body = (
        b'{"pushServer":"nats://push.example.com:4222","pushToken":"JWT","pushKey":"SU","pushDeviceid":"d",'
        b'"pushTags":["santa.tag.a","santa.host.d"],"push_notification_full_sync_interval":30,'
        b'"push_notification_global_rule_sync_deadline":100}'
    )
    push = parse_preflight_response(body, Variant.NORTHPOLESEC).push
    assert push.configured and push.tags == ("santa.tag.a", "santa.host.d")
    assert push.full_sync_interval == 60 and push.global_rule_sync_deadline == 600  # the floors
    assert "JWT" not in repr(push) and "SU" not in repr(push)  # never the secrets
    # google/santa's schema has no fields 20-24/31/33 (addendum §1.1): its client never sees them.
    assert not parse_preflight_response(body, Variant.GOOGLE).push.configured
    none = push_settings_from_preflight({})
    assert not none.configured and none.full_sync_interval is None and none.global_rule_sync_deadline == 600
    assert none.missing() == ["push_server", "push_key", "push_token", "push_deviceid"]
    fallback = push_settings_from_preflight(
        {"deprecated_fcm_full_sync_interval_seconds": 7200, "deprecated_fcm_global_rule_sync_deadline_seconds": 1800}
    )
    assert (fallback.full_sync_interval, fallback.global_rule_sync_deadline) == (7200, 1800)
    assert parse_preflight_response(body, Variant.GOOGLE_JSON).push.configured is False  # no such fields there


def test_server_allowlist() -> None:
    assert push_server_problem("nats://127.0.0.1:4222", ["127.0.0.1"]) is None
    assert push_server_problem("tls://a.push.northpole.security:443", [".push.northpole.security"]) is None
    assert push_server_problem("tls://Sync.Example.com:443", ["sync.example.com"]) is None
    problem = push_server_problem("nats://evil.example:4222", ["sync.example.com"])
    assert problem == "push server host 'evil.example' is not in PushServerAllowlist (sync.example.com)"
    assert "not a nats:// or tls:// URL" in str(push_server_problem("http://x:1", ["x"]))
