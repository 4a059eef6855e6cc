"""`PushService`: the sync service's side of push (addendum §1.2, §1.3, §1.8) — when a push client exists, which
server it may use, and the full-sync interval it implies. The scheduler owns one and is its client's delegate.

After each successful preflight `update(settings)` starts, reconfigures or drops the client: nothing with
EnablePushNotifications off, without a complete configuration (server, JWT, seed, device ID), or with a server
outside PushServerAllowlist (default: SyncBaseURL's host). `next_interval(preflight_failed, normal)` is §1.8:
the push interval while a client exists and the server sent one; min(push interval, 600) after a failed
preflight with a client; else the normal interval."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

from santacore.config.settings import Config
from santacore.sync.push.client import PushClient, PushDelegate
from santacore.sync.push.settings import PushSettings, push_server_problem

__all__ = ["PUSH_FAILURE_INTERVAL", "PushClientFactory", "PushService"]

PUSH_FAILURE_INTERVAL: Final = 600  # §1.8: after a failed preflight with a push client, min(T_push, 600)
PushClientFactory = Callable[[PushDelegate], PushClient | None]


class PushService:
    """See the module docstring. `factory(delegate)` makes the client (default: `NatsPushClient`, or None with a
    log line when nats-py is not installed)."""

    def __init__(
        self,
        config: Config,
        delegate: PushDelegate,
        *,
        machine_id: str,
        rng: random.Random,
        log: Callable[[str], None],
        factory: PushClientFactory | None = None,
    ) -> None:
        self.config = config
        self.delegate = delegate
        self.machine_id = machine_id
        self.rng = rng
        self._log = log
        self._factory = factory or self._nats_client
        self.client: PushClient | None = None
        self.interval_sent = False
        """§1.8: the last successful preflight sent a push full-sync interval."""

    def _nats_client(self, delegate: PushDelegate) -> PushClient | None:
        try:
            import nats  # noqa: F401 -- the push extra

            from santacore.sync.push.nats_client import NatsPushClient
        except ImportError:
            self._log("Push notifications need nats-py: pip install 'santacore[push]'; using the normal interval")
            return None
        return NatsPushClient(delegate, machine_id=self.machine_id, rng=self.rng, log=self._log)

    def update(self, settings: PushSettings | None) -> None:
        """After a successful preflight (None: its answer was not seen): start, reconfigure or drop the client."""
        if settings is None:
            return
        if not self.config.enable_push_notifications:
            self.drop("EnablePushNotifications is off")
            return
        if not settings.configured:
            self.drop("the preflight carries no push configuration")
            return
        allow = self.config.push_server_allowlist
        problem = push_server_problem(settings.server, (self.config.sync_base_url_host,) if allow is None else allow)
        if problem is not None:
            self._log(f"Push notifications refused: {problem}")
            self.drop(problem)
            return
        if self.client is None:
            self.client = self._factory(self.delegate)
            if self.client is None:
                return
            self._log(f"Push notifications: connecting to {settings.server}")
        self.client.configure(settings)
        self.interval_sent = settings.full_sync_interval is not None

    def drop(self, why: str) -> None:
        """Close the client, if any (a preflight without push, SIGTERM)."""
        client, self.client = self.client, None
        self.interval_sent = False
        if client is not None:
            self._log(f"Push notifications stopped: {why}")
            client.close()

    def next_interval(self, *, preflight_failed: bool, normal: int) -> int:
        client = self.client
        if client is not None and preflight_failed:
            return min(client.full_sync_interval, PUSH_FAILURE_INTERVAL)
        if client is not None and self.interval_sent:
            return client.full_sync_interval
        return normal
