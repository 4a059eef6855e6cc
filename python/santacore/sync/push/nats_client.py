"""`NatsPushClient`: North Pole Security's push client (addendum §1.3–§1.5) on nats-py, on a thread of its own.

* `configure(settings)` after each successful preflight: nothing without the full configuration (server, JWT,
  NKey seed, device ID: the missing ones are logged) or when the server is not allowed (`server_problem`); a new
  server, JWT or seed → disconnect and connect anew; a new device ID or tag set → unsubscribe and subscribe again.
  The push full-sync interval is taken only from a complete configuration (§1.8).
* Authentication: the creds block built from push_token (user JWT) and push_key (user NKey seed), as Santa does.
  `tls://` servers get TLS first (Santa's `TLSHandshakeFirst`) with the default trust store or `tls_context`.
* Subscriptions: each valid entry of push_tags, once (§1.4); invalid ones are logged and skipped. The commands
  subject `santa.host.<device>.commands` (signed NATS commands, §1.6) is not subscribed: out of santacore's scope.
* Messages (`santacore.sync.push.messages.interpret`) become `delegate.push_full_sync` / `push_rule_sync` calls,
  one at a time on the client's event loop.
* Connection (§1.5): nats-py's own reconnect handles a lost connection (every 2 s, for ever); a reconnect asks for
  a full sync after 0–600 s. A failed first connect, or a connection the library closed, is retried by hand after
  1, 2, 4 … 256 s (× 0.75–1.25), then every 300–600 s; a success resets the count.

`rng` (default `random.SystemRandom()`) gives every random delay: `rng.randrange(n)` as arc4random_uniform(n),
`rng.uniform(a, b)` for the backoff factor; tests pass a seeded or scripted one.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from santacore.sync.push.client import PushDelegate
from santacore.sync.push.messages import RECONNECT_JITTER, connect_retry_delay, interpret, valid_subject
from santacore.sync.push.settings import DEFAULT_PUSH_FULL_SYNC_INTERVAL, PushSettings

__all__ = ["NatsPushClient"]

CONNECT_TIMEOUT: Final = 60.0  # Santa: natsOptions_SetTimeout(60000)
RECONNECT_WAIT: Final = 2.0  # nats-py's default; Santa leaves nats.c's own


class NatsPushClient:
    """See the module docstring. `log` gets one line per connection change and message; never the secrets."""

    def __init__(
        self,
        delegate: PushDelegate,
        *,
        machine_id: str,
        rng: random.Random | None = None,
        log: Callable[[str], None] = lambda line: None,
        server_problem: Callable[[str], str | None] = lambda server: None,
        tls_context: ssl.SSLContext | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        reconnect_wait: float = RECONNECT_WAIT,
    ) -> None:
        self._delegate = delegate
        self._machine_id = machine_id
        self._rng = rng if rng is not None else random.SystemRandom()
        self._log = log
        self._server_problem = server_problem
        self._tls_context = tls_context
        self._connect_timeout = connect_timeout
        self._reconnect_wait = reconnect_wait
        self._settings: PushSettings | None = None
        self._interval = DEFAULT_PUSH_FULL_SYNC_INTERVAL
        self._connected = False
        self._closing = False
        self._attempt = 0
        self._nc: Any = None
        self._subs: list[Any] = []
        self._retry: asyncio.TimerHandle | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.reconnects = 0
        """How many times the library reconnected (each asked for a 0–600 s sync)."""

    # -- the interface ----------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def full_sync_interval(self) -> int:
        return self._interval

    @property
    def token(self) -> str | None:
        return self._machine_id if self._settings is not None else None

    @property
    def settings(self) -> PushSettings | None:
        return self._settings

    def configure(self, settings: PushSettings) -> None:
        if self._closing:
            return
        if not settings.configured:
            self._log(f"Push notifications not configured: preflight lacks {', '.join(settings.missing())}")
            return
        problem = self._server_problem(settings.server)
        if problem is not None:
            self._log(f"Push notifications not configured: {problem}")
            return
        if settings.full_sync_interval is not None:
            self._interval = settings.full_sync_interval
        loop = self._ensure_loop()
        asyncio.run_coroutine_threadsafe(self._apply(settings), loop).result(timeout=30)

    def close(self, timeout: float = 5.0) -> None:
        self._closing = True
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=timeout)
        except Exception as e:  # a broker that does not answer the close: the loop is stopped anyway
            self._log(f"Push client: closing: {type(e).__name__}: {e}")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None
        self._connected = False

    # -- the event loop's thread ------------------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(target=main, name="santacore-push", daemon=True)
            self._thread.start()
            ready.wait(10)
            self._loop = loop
        return self._loop

    async def _apply(self, new: PushSettings) -> None:
        old, self._settings = self._settings, new
        if old is None or (old.server, old.token, old.key) != (new.server, new.token, new.key):
            if old is not None:
                self._log("Push credentials or server changed: reconnecting")
            await self._disconnect()
            self._attempt = 0
            self._start_connect()
        elif old.device_id != new.device_id or set(old.tags) != set(new.tags):
            self._log("Push tags or device ID changed: subscribing again")
            await self._subscribe()

    def _start_connect(self) -> None:
        self._retry = None
        if not self._closing and self._settings is not None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect(self._settings))

    async def _connect(self, settings: PushSettings) -> None:
        import nats
        from nats.aio.client import RawCredentials

        tls = urlsplit(settings.server).scheme.lower() == "tls"
        self._attempt += 1
        try:
            nc = await nats.connect(
                servers=[settings.server],
                user_credentials=RawCredentials(settings.credentials()),
                name="santacore",
                connect_timeout=self._connect_timeout,
                allow_reconnect=True,
                # One retry for the first connect (then Santa's backoff takes over); for ever once connected.
                max_reconnect_attempts=1,
                reconnect_time_wait=self._reconnect_wait,
                tls=(self._tls_context or ssl.create_default_context()) if tls else None,
                tls_handshake_first=tls,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
                closed_cb=self._on_closed,
            )
        except Exception as e:  # nats' errors, OSError, TimeoutError
            self._log(f"Push connection to {settings.server} failed: {type(e).__name__}: {e}")
            self._schedule_retry()
            return
        if self._closing or settings is not self._settings:
            await nc.close()
            return
        nc.options["max_reconnect_attempts"] = -1
        self._nc, self._connected, self._attempt = nc, True, 0
        await self._subscribe()
        self._log(f"Push notifications connected to {settings.server} ({len(self._subs)} subjects)")

    def _schedule_retry(self) -> None:
        if self._closing or self._retry is not None:
            return
        delay = connect_retry_delay(self._attempt, uniform=self._rng.uniform, randbelow=self._randbelow)
        self._log(f"Push connection: retry {self._attempt + 1} in {delay:.1f} s")
        self._retry = asyncio.get_running_loop().call_later(delay, self._start_connect)

    async def _subscribe(self) -> None:
        nc, settings = self._nc, self._settings
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception as e:  # a closed connection: nothing to undo
                self._log(f"Push: unsubscribe failed: {type(e).__name__}: {e}")
        self._subs = []
        if nc is None or settings is None:
            return
        seen: set[str] = set()
        for subject in settings.tags:
            if subject in seen:
                continue
            if not valid_subject(subject):
                self._log(f"Push: skipping invalid subject {subject!r}")
                continue
            seen.add(subject)
            self._subs.append(await nc.subscribe(subject, cb=self._on_message))
        await nc.flush(timeout=int(self._connect_timeout))

    async def _disconnect(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        nc, self._nc, self._subs, self._connected = self._nc, None, [], False
        if nc is not None:
            try:
                await nc.close()
            except Exception as e:  # already closed
                self._log(f"Push: close failed: {type(e).__name__}: {e}")

    async def _shutdown(self) -> None:
        await self._disconnect()
        task = self._connecting
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except BaseException:  # its cancellation
                pass

    # -- callbacks ---------------------------------------------------------------------------------------------

    def _randbelow(self, n: int) -> int:
        return self._rng.randrange(n) if n > 0 else 0

    async def _on_message(self, msg: Any) -> None:
        settings = self._settings
        if self._closing or settings is None:
            return
        action = interpret(
            msg.subject,
            bytes(msg.data),
            machine_id=self._machine_id,
            rule_sync_deadline=settings.global_rule_sync_deadline,
            randbelow=self._randbelow,
        )
        if action is None:
            self._log(f"Push message on {msg.subject} ignored")
        elif action.kind == "rule":
            self._delegate.push_rule_sync(action.delay, action.reason)
        else:
            self._delegate.push_full_sync(action.delay, action.reason)

    async def _on_error(self, e: Exception) -> None:
        if not self._closing:
            self._log(f"Push connection error: {type(e).__name__}: {e}")

    async def _on_disconnected(self) -> None:
        self._connected = False  # no interval change (§1.8): only the reconnect's sync

    async def _on_reconnected(self) -> None:
        self._connected = True
        if self._closing:
            return
        self.reconnects += 1
        delay = self._randbelow(RECONNECT_JITTER)
        self._delegate.push_full_sync(delay, f"reconnected ({delay} s jitter)")

    async def _on_closed(self) -> None:
        if self._closing or self._nc is None:
            return  # our own close
        self._nc, self._subs, self._connected = None, [], False
        self._log("Push connection closed by the library: reconnecting with backoff")
        self._schedule_retry()
