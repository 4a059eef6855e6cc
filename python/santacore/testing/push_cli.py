"""The push side of `santacore testing serve`: `--push` starts a real nats-server on loopback and hands its
settings out in preflight; lines typed on stdin publish messages, so a person can watch a push trigger a sync.

Commands (one per line on stdin):
  tag [SUBJECT] [MAX_JITTER]    a SyncRequest on a tag subject (default santa.tag.global; no MAX_JITTER: 180 s)
  host                          a message on santa.host.<device id> (a full sync at once)
  fcm ACTION [TARGET_HOST_ID]   an FCM-style JSON action: full_sync, config_sync, log_sync, rule_sync
  restart                       restart the broker (the client reconnects and syncs within 0–600 s)
  off | on                      stop or resume sending the push fields in preflight
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
from collections.abc import Callable
from typing import Any

from santacore.testing.push import NatsBroker, PushSide

__all__ = ["COMMANDS_HELP", "add_push_arguments", "run_commands", "start_push"]

COMMANDS_HELP = __doc__.split("Commands (one per line on stdin):\n", 1)[1] if __doc__ else ""


def add_push_arguments(parser: argparse.ArgumentParser, int_at_least: Callable[[int], Any]) -> None:
    push = parser.add_argument_group("push notifications (NATS)")
    push.add_argument(
        "--push",
        action="store_true",
        help="start a nats-server on loopback (JWT authentication) and send its push settings in preflight; "
        "then type commands on stdin to publish messages (see below)",
    )
    push.add_argument(
        "--push-tag",
        action="append",
        default=None,
        metavar="SUBJECT",
        help="a subject the client subscribes to (repeatable; default: santa.tag.global and santa.host.DEVICE)",
    )
    push.add_argument(
        "--push-device-id", default="testdevice", metavar="ID", help="push_deviceid (default: testdevice)"
    )
    push.add_argument(
        "--push-interval",
        type=int_at_least(0),
        default=14400,
        metavar="SECONDS",
        help="push_notification_full_sync_interval (0: not sent; default: 14400)",
    )
    push.add_argument(
        "--push-rule-sync-deadline",
        type=int_at_least(0),
        default=600,
        metavar="SECONDS",
        help="push_notification_global_rule_sync_deadline (0: not sent; default: 600)",
    )


def start_push(args: argparse.Namespace, host: str) -> tuple[NatsBroker, PushSide]:
    """Start the broker and make the push side (RuntimeError when nats-server is missing or does not start)."""
    broker = NatsBroker(host=host if host in ("127.0.0.1", "::1", "localhost") else "127.0.0.1").start()
    device = args.push_device_id
    side = PushSide.for_broker(
        broker,
        device_id=device,
        tags=list(args.push_tag or ["santa.tag.global", f"santa.host.{device}"]),
        full_sync_interval=args.push_interval or None,
        global_rule_sync_deadline=args.push_rule_sync_deadline or None,
    )
    return broker, side


def run_command(line: str, broker: NatsBroker, side: PushSide, say: Callable[[str], None]) -> None:
    words = shlex.split(line)
    if not words:
        return
    verb, rest = words[0].lower(), words[1:]
    try:
        if verb == "tag":
            subject = rest[0] if rest else "santa.tag.global"
            jitter = int(rest[1]) if len(rest) > 1 else None
            side.publish_tag(subject, jitter)
            say(f"push: published SyncRequest(max_jitter={jitter}) on {subject}")
        elif verb == "host":
            side.publish_host()
            say(f"push: published on santa.host.{side.device_id}")
        elif verb == "fcm" and rest:
            fields = {"target_host_id": rest[1]} if len(rest) > 1 else {}
            side.publish_fcm(rest[0], **fields)
            say(f"push: published FCM-style action {rest[0]} on santa.tag.global")
        elif verb == "restart":
            broker.restart()
            say(f"push: broker restarted on {broker.url}")
        elif verb in ("on", "off"):
            side.enabled = verb == "on"
            say(f"push: preflight {'sends' if side.enabled else 'no longer sends'} the push fields")
        else:
            say(f"push: unknown command {line.strip()!r}; commands:\n{COMMANDS_HELP}")
    except (RuntimeError, ValueError, IndexError) as e:
        say(f"push: {e}")


def run_commands(broker: NatsBroker, side: PushSide, stop: threading.Event, say: Callable[[str], None]) -> None:
    """Read commands from stdin on a daemon thread until EOF or `stop`."""

    def main() -> None:
        for line in sys.stdin:
            if stop.is_set():
                return
            run_command(line, broker, side, say)

    threading.Thread(target=main, name="santacore-push-commands", daemon=True).start()
