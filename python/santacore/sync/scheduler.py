"""`SyncDaemon`: santasyncservice as a process — full-sync timer, sync queue, reachability monitor (§1.2–1.5).

`SyncDaemon(config).run()` runs in the foreground until `stop()`; `start()` runs the same loop on a thread.

Timers (§1.2, santacore guidance):

* the first full sync `first_sync_delay` seconds (15) after the loop starts;
* after every full sync — timer or requested, whatever its outcome — the next one `full_sync_interval()` later:
  the server's `full_sync_interval` persisted by the last postflight (sync state), else FullSyncInterval from the
  configuration (600), never below 60 s. Santa re-arms to a 4-hour fallback after a failed preflight ([G]); the
  spec's santacore guidance re-arms to the current interval after any outcome, as here.

Reachability (§1.5): after a failed preflight the daemon probes the server every `probe_interval` seconds
(`santacore.sync.reachability`, or the injected `reachability_probe`) and syncs at once when it turns from
unreachable to reachable, instead of waiting out the interval; the next sync that passes preflight stops it.

Push (addendum §1, `santacore.sync.push`): after each successful preflight the daemon starts, reconfigures or
drops its push client (the `push_client_factory`'s; default the NATS client when EnablePushNotifications is on and
nats-py is installed) per the preflight's push fields and PushServerAllowlist. A push message re-arms the full-sync
timer (`push_full_sync`) or arms the rule-sync timer (`push_rule_sync`; the last fire time armed wins). While a push
client exists and the server sent a push interval, the next full sync is that interval (§1.8); after a failed
preflight with a push client, min(push interval, 600 s). A push re-arm during a sync outlives that sync's re-arm.

Rule-only syncs (addendum §2, `santacore.sync.rule_sync`): `submit_rule_sync()` / `request_rule_sync()` and the
rule-sync timer queue them on the same serial queue as full syncs, outside the limit of two.

Not implemented: the reachability monitor after a failed immediate upload (only a failed preflight starts it);
timer leeway; NATS commands (§1.6).

One sync at a time (§1.2, §1.4): full syncs run on the daemon's loop thread and hold the state directory's sync lock
(`santacore.sync.lock`), the one `santacore sync` takes, so a `santacore sync` in another process waits for the
daemon's sync and the daemon for it. The daemon polls that lock instead of blocking on it, so `stop()` is not held
up by another process's sync. As kMaxEnqueuedSyncs, at most two full syncs are running or waiting; a third
`request_sync()` is answered TOO_MANY_SYNCS at once.

Stopping: `stop()` (SIGTERM/SIGINT in `santacore syncd`) ends the HTTP attempt in flight within a fraction of a
second (the default transport's `cancelled`), and every further request of that sync fails at once, as on a network
failure. The stages
guarantee what is left is consistent: rules are applied in one transaction after the last page, settings only at
postflight, and events leave events.db only after a 200. Requests still queued are answered UNKNOWN without
running.

Immediate uploads (`record_event`, `record_bundle_hash`; `santacore.sync.uploads`) run on the calling thread,
beside a full sync as santad's run beside santasyncservice's; both sides delete rows only after a 200, so the worst
a race does is send an event twice. They share the daemon's transport and its dedup cache (`backoff`).

The library prints nothing: every line goes to the `log` callable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Final

from santacore.config.settings import Config
from santacore.errors import NotABundleError, StoreError, SyncError
from santacore.identity.bundle import BundleHash, hash_bundle
from santacore.santad.event_store import EventStore
from santacore.santad.events import StoredEvent, Variant
from santacore.santad.rule_store import RuleStore
from santacore.santad.upload_backoff import UploadBackoff
from santacore.sync import protocol, responses, uploads
from santacore.sync.context import SyncContext, config_variant, open_sync_context
from santacore.sync.daemon_transport import DaemonTransport
from santacore.sync.host import HostFacts, resolve_machine_id
from santacore.sync.lock import lock_holder, sync_lock
from santacore.sync.protocol import DEFAULT_FULL_SYNC_INTERVAL, MINIMUM_FULL_SYNC_INTERVAL, SyncType
from santacore.sync.push.client import PushClient
from santacore.sync.push.service import PushClientFactory, PushService
from santacore.sync.push.settings import PushSettings
from santacore.sync.reachability import server_reachable
from santacore.sync.rule_sync import rule_sync
from santacore.sync.settings import TransportSettings
from santacore.sync.stages import SyncResult, SyncStatus, full_sync, request_sync_type
from santacore.sync.state import SyncState, effective_config, load_state
from santacore.sync.transport import Exchange, Transport
from santacore.sync.uploads import UploadOutcome

__all__ = ["DEFAULT_FIRST_SYNC_DELAY", "MAX_ENQUEUED_SYNCS", "SyncDaemon", "TransportFactory"]

DEFAULT_FIRST_SYNC_DELAY: Final = 15.0  # §1.2: syncSecondsFromNow:15
DEFAULT_PROBE_INTERVAL: Final = 10.0  # seconds between reachability probes after a failed preflight
MAX_ENQUEUED_SYNCS: Final = 2  # §1.2: kMaxEnqueuedSyncs, one running + one waiting
_STOP_POLL: Final = 0.1

TransportFactory = Callable[[Config, str], Transport]


@dataclass
class _Request:
    sync_type: SyncType | None  # None: the timer's sync
    future: Future[SyncResult]
    rules_only: bool = False  # addendum §2: a rule-download-only sync, outside the limit of two


class SyncDaemon:
    """Santa's sync service for one configuration (see the module docstring).

    `transport_factory(config, machine_id)` makes the Transport (default: one with `TransportSettings.from_config`
    whose retry sleeps end early when the daemon stops). `clock` (seconds, default `time.monotonic`) and `sleep`
    schedule the timer; the default sleep is cut short by `request_sync` and `stop`, an injected one is called with
    the whole wait (a test's fake sleep can advance a fake clock). `log` receives one line per stage and outcome, and
    (default transport) one per failed attempt; `trace`, with the default transport, one `Exchange` per HTTP exchange.
    `backoff` is the dedup cache of immediate uploads (default: a fresh `UploadBackoff`). `machine_id` and
    `variant` default to the configuration's (`resolve_machine_id`, SyncProtocol).
    Raises ValueError when SyncBaseURL or the machine ID is missing."""

    def __init__(
        self,
        config: Config,
        *,
        transport_factory: TransportFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        first_sync_delay: float = DEFAULT_FIRST_SYNC_DELAY,
        log: Callable[[str], None] = lambda line: None,
        machine_id: str | None = None,
        facts: HostFacts | None = None,
        variant: Variant | None = None,
        backoff: UploadBackoff | None = None,
        reachability_probe: Callable[[], bool] | None = None,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        trace: Callable[[Exchange], None] | None = None,
        push_client_factory: PushClientFactory | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not config.sync_base_url:
            raise ValueError("Missing SyncBaseURL: the sync daemon has no server to sync with")
        ident = machine_id or resolve_machine_id(config)
        if not ident:
            raise ValueError("Missing MachineID: the sync daemon cannot name this machine")
        if first_sync_delay < 0:
            raise ValueError(f"first_sync_delay must not be negative, got {first_sync_delay}")
        self.config = config
        self.machine_id = ident
        self.first_sync_delay = float(first_sync_delay)
        self.variant = variant if variant is not None else config_variant(config)
        self.facts = facts if facts is not None else HostFacts.current()
        self.backoff = backoff if backoff is not None else UploadBackoff()
        self.batch_size: int = protocol.DEFAULT_BATCH_SIZE
        """The last preflight's `batch_size` (Santa's in-memory value), used for SendEvents batches."""
        self.last_result: SyncResult | None = None
        self.syncs_run = 0
        self._factory = transport_factory or self._default_transport
        self._probe = reachability_probe or self._server_reachable
        self.probe_interval = probe_interval
        self.monitoring_reachability = False
        """§1.5: after a failed preflight the daemon watches for the server to become reachable
        and then syncs at once, instead of waiting out the full interval."""
        self._clock = clock
        self._sleep = sleep
        self._log = log
        self._trace = trace
        self._lock = threading.Lock()  # guards the queue, the slot count and the lifecycle flags
        self._open_lock = threading.Lock()
        self._queue: deque[_Request] = deque()
        self._slots = 0  # full syncs running or queued (kMaxEnqueuedSyncs)
        self._started = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop_ident: int | None = None
        self._done = threading.Event()
        self._transport: DaemonTransport | None = None
        self._events: EventStore | None = None
        self._rules: RuleStore | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.rng = rng if rng is not None else random.SystemRandom()
        self.push = PushService(config, self, machine_id=ident, rng=self.rng, log=log, factory=push_client_factory)
        self._preflight_push: PushSettings | None = None
        self._due = 0.0  # the full-sync timer's fire time (self._clock())
        self._due_generation = 0  # bumped by every push re-arm
        self.rule_sync_due: float | None = None
        """The rule-sync timer's fire time, None when disarmed (addendum §2)."""
        self.rules_only_run = 0

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def state_path(self) -> str:
        return os.fspath(self.config.sync_state_path)

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def running(self) -> bool:
        """True from `start()`/`run()` until the loop has ended."""
        return self._started and not self._done.is_set()

    def open(self) -> None:
        """Make the transport and open events.db and rules.db (done by `run`/`start`, and on the first
        `record_event`). Raises SyncError (unusable TLS material), StoreError or OSError."""
        with self._open_lock:
            if self._transport is None:
                self._transport = DaemonTransport(self._factory(self.config, self.machine_id), self)
            if self._events is None:
                self._events = EventStore(self.config.events_db)
            if self._rules is None:
                self._rules = RuleStore(self.config.rules_db)

    def close(self) -> None:
        """Close the stores, the transport and the wake pipe (after the loop has ended)."""
        with self._open_lock:
            for resource in (self._rules, self._events, self._transport):
                if resource is not None:
                    resource.close()
            self._transport, self._events, self._rules = None, None, None
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_r = self._wake_w = -1

    def __enter__(self) -> SyncDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.close()

    def run(self, *, max_syncs: int | None = None) -> None:
        """Run the scheduler in the calling thread until `stop()` (or after `max_syncs` full syncs)."""
        self._begin()
        self._loop_ident = threading.get_ident()
        try:
            self._loop(max_syncs)
        finally:
            self._finish()

    def start(self, *, max_syncs: int | None = None) -> None:
        """Open everything here (so errors raise in the caller), then run the scheduler on a thread."""
        self._begin()
        self._thread = threading.Thread(
            target=self._thread_main, args=(max_syncs,), name="santacore-syncd", daemon=True
        )
        self._thread.start()
        self._loop_ident = self._thread.ident

    def stop(self, *, wait: bool = True, timeout: float | None = None) -> bool:
        """Ask the loop to end: the sync in flight is finished or aborted cleanly, queued requests are answered
        UNKNOWN. Safe from a signal handler with `wait=False` (it only sets a flag and writes to a pipe).
        With `wait`, returns whether the loop ended within `timeout`."""
        self._stopping = True
        self._wake()
        if not wait or threading.get_ident() == self._loop_ident or not self._started:
            return self._done.is_set()
        return self._done.wait(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the loop to end; True if it has."""
        return self._done.wait(timeout)

    def _begin(self) -> None:
        with self._lock:
            if self._started:
                raise RuntimeError("the sync daemon runs only once")
            self._started = True
        try:
            self.open()
        except BaseException:
            self._done.set()
            raise

    def _thread_main(self, max_syncs: int | None) -> None:
        try:
            self._loop(max_syncs)
        finally:
            self._finish()

    def _finish(self) -> None:
        self.push.drop("the sync daemon is stopping")
        with self._lock:
            self._stopping = True
            pending = list(self._queue)
            self._queue.clear()
            self._slots -= len(pending)
        for request in pending:
            request.future.set_result(
                SyncResult(status=SyncStatus.UNKNOWN, error="the sync daemon stopped before this sync ran")
            )
        self._log("Sync daemon stopped")
        self._done.set()

    # -- requests --------------------------------------------------------------------------------------------

    def submit_sync(self, sync_type: SyncType = SyncType.NORMAL) -> Future[SyncResult]:
        """Queue an on-demand full sync (santactl sync, §1.4) behind any running one; the future gets its
        result. CLEAN/CLEAN_ALL is persisted as the requested type (§1.6) when the sync starts. Refused at once
        with TOO_MANY_SYNCS when two syncs are already running or waiting, with UNKNOWN once stopping."""
        return self._enqueue(_Request(sync_type, Future()), counted=True)

    def request_sync(self, sync_type: SyncType = SyncType.NORMAL, *, timeout: float | None = None) -> SyncResult:
        """`submit_sync` and wait: blocks until the sync in progress (if any) and then this one have finished."""
        return self.submit_sync(sync_type).result(timeout)

    def submit_rule_sync(self) -> Future[SyncResult]:
        """Queue a rule-download-only sync (addendum §2) behind any running sync; not counted against the limit
        of two full syncs. UNKNOWN once stopping."""
        return self._enqueue(_Request(None, Future(), rules_only=True), counted=False)

    def _enqueue(self, request: _Request, *, counted: bool) -> Future[SyncResult]:
        """Put `request` on the serial queue; its future says UNKNOWN once stopping, and TOO_MANY_SYNCS when it
        is `counted` against the limit of two full syncs and two are already running or waiting."""
        future = request.future
        with self._lock:
            if not self._started:
                raise RuntimeError("the sync daemon is not running: call start() or run() first")
            if self._stopping or self._done.is_set():
                future.set_result(SyncResult(status=SyncStatus.UNKNOWN, error="the sync daemon is stopping"))
                return future
            if counted:
                if self._slots >= MAX_ENQUEUED_SYNCS:
                    future.set_result(
                        SyncResult(
                            status=SyncStatus.TOO_MANY_SYNCS, error="Too many syncs in progress, try again later."
                        )
                    )
                    return future
                self._slots += 1
            self._queue.append(request)
        self._wake()
        return future

    def request_rule_sync(self, *, timeout: float | None = None) -> SyncResult:
        """`submit_rule_sync` and wait for its result."""
        return self.submit_rule_sync().result(timeout)

    # -- push (PushDelegate) ---------------------------------------------------------------------------------

    def push_full_sync(self, delay: float, reason: str) -> None:
        """Re-arm the full-sync timer `delay` seconds from now (Santa's syncSecondsFromNow:)."""
        with self._lock:
            self._due = self._clock() + delay
            self._due_generation += 1
        self._log(f"Push: {reason}: full sync in {delay:g} s")
        self._wake()

    def push_rule_sync(self, delay: float, reason: str) -> None:
        """Arm the rule-sync timer `delay` seconds from now, replacing any pending fire time."""
        with self._lock:
            self.rule_sync_due = self._clock() + delay
        self._log(f"Push: {reason}: rule-only sync in {delay:g} s")
        self._wake()

    @property
    def push_client(self) -> PushClient | None:
        """The push client while one exists (after a preflight that configured push)."""
        return self.push.client

    def full_sync_interval(self) -> int:
        """Seconds until the next timed full sync: the persisted server value, else the configuration's
        FullSyncInterval, else 600; at least 60 (§1.2)."""
        value = self._effective_config().full_sync_interval or DEFAULT_FULL_SYNC_INTERVAL
        return max(MINIMUM_FULL_SYNC_INTERVAL, value)

    # -- immediate uploads -----------------------------------------------------------------------------------

    def record_event(self, event: StoredEvent) -> str:
        """santad after a decision (§5.4 steps 2–3): `santacore.sync.uploads.record_event` with bundles enabled as
        the server's EnableBundles, else the configuration's. A denial in a bundle then waits for
        `record_bundle_hash`. Returns an `UploadOutcome` value. Runs on the calling thread (network time included)."""
        bundles = self._effective_config().enable_bundles
        with self._context() as ctx:
            return uploads.record_event(ctx, event, self.backoff, bundles_enabled=bundles)

    def needs_bundle_hash(self, event: StoredEvent) -> bool:
        """§4.5 step 1: a denial of a binary inside a bundle while bundles are enabled (the server's
        EnableBundles, else the configuration's)."""
        return uploads.needs_bundle_hash(event, bundles_enabled=self._effective_config().enable_bundles)

    def record_bundle_hash(self, event: StoredEvent, bundle_hash: BundleHash | None = None) -> str:
        """§4.5 steps 2–4 for an event `record_event` stored as `NEEDS_BUNDLE_HASH`: hash its bundle (unless
        `bundle_hash` is given, e.g. by a hashing service) and run `upload_bundle_event` with the last preflight's
        batch size. As [N] (the spec's guidance), only such events are hashed; others, and files in no bundle,
        give `NO_BUNDLE_HASH` and stay as stored."""
        if not (event.needs_bundle_hash or self.needs_bundle_hash(event)):
            self._log(f"Event for {event.file_name} does not need a bundle hash")
            return UploadOutcome.NO_BUNDLE_HASH
        if bundle_hash is None:
            try:
                bundle_hash = hash_bundle(event.file_path)
            except (NotABundleError, OSError) as e:
                self._log(f"No bundle hash for {event.file_name}: {e}")
                return UploadOutcome.NO_BUNDLE_HASH
        flagged = dataclasses.replace(event, needs_bundle_hash=True)
        with self._context() as ctx:
            return uploads.upload_bundle_event(ctx, flagged, bundle_hash, self.backoff, batch_size=self.batch_size)

    def note_preflight(self, reply: bytes, *, binary: bool = False) -> None:
        """Keep the `batch_size` of a preflight answer (Santa's in-memory value, for §4.5's SendEvents batches)."""
        try:
            parsed = responses.parse_preflight_response(reply, self.variant, binary=binary)
        except SyncError:
            return  # the preflight stage reports it
        self.batch_size = parsed.batch_size or self.batch_size
        self._preflight_push = parsed.push

    @contextlib.contextmanager
    def _context(self) -> Iterator[SyncContext]:
        """The daemon's transport and stores (opened if need be), its facts, variant and log."""
        self.open()
        transport, events, rules = self._transport, self._events, self._rules
        if transport is None or events is None or rules is None:
            raise StoreError("the sync daemon has been closed")
        with open_sync_context(
            self.config,
            machine_id=self.machine_id,
            transport=transport,
            events=events,
            rules=rules,
            facts=self.facts,
            variant=self.variant,
            log=self._log,
        ) as ctx:
            client = self.push_client  # NATS: the machine ID while a push client is configured
            ctx.push_token = client.token if client is not None else None
            yield ctx

    def _effective_config(self) -> Config:
        """The configuration with the last sync's server settings on top; a state file that cannot be read
        counts as none (and is reported)."""
        try:
            state = load_state(self.state_path)
        except StoreError as e:
            self._log(f"Cannot read the sync state, using the local configuration: {e}")
            state = SyncState()
        return effective_config(self.config, state)

    # -- the loop --------------------------------------------------------------------------------------------

    def _loop(self, max_syncs: int | None) -> None:
        with self._lock:
            self._due = self._clock() + self.first_sync_delay
        self._log(f"Sync daemon started for {self.machine_id}; first full sync in {self.first_sync_delay:g} s")
        done = 0
        unreachable_seen = False
        while not self._stopping and (max_syncs is None or done < max_syncs):
            with self._lock:
                request = self._queue.popleft() if self._queue else None
                now = self._clock()
                if request is None and self.rule_sync_due is not None and now >= self.rule_sync_due:
                    self.rule_sync_due = None  # disarmed, then run (addendum §2)
                    request = _Request(None, Future(), rules_only=True)
                due, rule_due = self._due, self.rule_sync_due
            if request is not None and request.rules_only:
                self._run_rules_only(request)
                continue
            if request is None:
                now = self._clock()
                remaining = due - now if rule_due is None else min(due - now, rule_due - now)
                if remaining <= 0 < due - now:
                    continue  # the rule-sync timer fired: picked up at the top
                if remaining > 0 and self.monitoring_reachability:
                    # Santa's path monitor fires on a change from unreachable to reachable, not
                    # merely because the server is reachable (it may be up and answering 500s).
                    self._wait(min(remaining, self.probe_interval))
                    if self._stopping:
                        continue
                    if not self._probe():
                        unreachable_seen = True
                    elif unreachable_seen:
                        self._log("Sync server reachable again: full sync now")
                        with self._lock:
                            self._due = self._clock()
                    continue
                if remaining > 0:
                    self._wait(remaining)
                    continue
                with self._lock:
                    self._slots += 1
                request = _Request(None, Future())
            generation = self._due_generation
            result = self._run(request)
            unreachable_seen = False
            done += 1
            if self._stopping or (max_syncs is not None and done >= max_syncs):
                break
            # Re-armed after any outcome (§1.2 santacore guidance), to §1.8's interval while push is on.
            failed = result.status is SyncStatus.PREFLIGHT_FAILED
            interval = self.push.next_interval(preflight_failed=failed, normal=self.full_sync_interval())
            with self._lock:
                if self._due_generation != generation:  # a push re-armed the timer during the sync: it wins
                    continue
                self._due = self._clock() + interval
            self._log(f"Next full sync in {interval} s")

    def _run(self, request: _Request) -> SyncResult:
        kind = "timed" if request.sync_type is None else "requested"
        self._log(f"Full sync starting ({kind})")
        self._preflight_push = None
        try:
            result = self._sync(request.sync_type)
        except Exception as e:  # a broken store or a bug: report it, keep the daemon alive, retry at the next timer
            result = SyncResult(status=SyncStatus.UNKNOWN, error=f"{type(e).__name__}: {e}")
        with self._lock:
            self._slots -= 1
        self.last_result = result
        self.syncs_run += 1
        # §1.5: a failed preflight starts the reachability monitor; the next successful one stops it.
        self.monitoring_reachability = result.status is SyncStatus.PREFLIGHT_FAILED
        if result.status is SyncStatus.SUCCESS and self._rules is not None:
            # The CLEAN_ALL a fresh rules.db asks for has been done: the store stays open, so forget "fresh".
            self._rules.created_fresh = False
        if result.status is not SyncStatus.PREFLIGHT_FAILED and not self._stopping:
            try:
                self.push.update(self._preflight_push)
            except Exception as e:  # a push client that cannot start must not stop the daemon
                self._log(f"Push notifications not started: {type(e).__name__}: {e}")
        if result.error:
            self._log(f"Full sync failed: {result.error}")
        self._log(
            f"Full sync finished: {result.status.name.lower()}; events uploaded {result.events_uploaded}, "
            f"left {result.events_left}; rules received {result.rules_received}, applied {result.rules_applied}"
        )
        request.future.set_result(result)
        return result

    def _run_rules_only(self, request: _Request) -> None:
        self._log("Rule-only sync starting")
        try:
            with sync_lock(self.config.state_directory, stop=lambda: self._stopping, waiting=self._waiting) as held:
                if not held:
                    result = SyncResult(status=SyncStatus.UNKNOWN, error="stopped while another sync held the lock")
                else:
                    with self._context() as ctx:
                        result = rule_sync(ctx, state_path=self.state_path)
        except Exception as e:  # a broken store or a bug: report it, keep the daemon alive
            result = SyncResult(status=SyncStatus.UNKNOWN, error=f"{type(e).__name__}: {e}")
        self.rules_only_run += 1
        if result.error:
            self._log(f"Rule-only sync failed: {result.error}")
        self._log(
            f"Rule-only sync finished: {result.status.name.lower()}; rules received {result.rules_received}, "
            f"applied {result.rules_applied}"
        )
        request.future.set_result(result)

    def _sync(self, sync_type: SyncType | None) -> SyncResult:
        # The lock is polled, so that `stop()` is not held up by another process's sync.
        with sync_lock(self.config.state_directory, stop=lambda: self._stopping, waiting=self._waiting) as held:
            if not held:
                return SyncResult(status=SyncStatus.UNKNOWN, error="stopped while another sync held the sync lock")
            if sync_type is not None and sync_type is not SyncType.NORMAL:
                request_sync_type(self.state_path, sync_type)
            with self._context() as ctx:
                return full_sync(ctx, state_path=self.state_path)

    def _waiting(self) -> None:
        holder = lock_holder(self.config.state_directory)
        self._log(f"Waiting for another sync to finish ({holder} holds the sync lock)")

    # -- waiting ---------------------------------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (already woken) or closed
            os.write(self._wake_w, b"!")

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
            return
        with contextlib.suppress(InterruptedError):
            select.select([self._wake_r], [], [], seconds)
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 512):
                pass

    def _retry_sleep(self, seconds: float) -> None:
        """The transport's sleep between attempts (§2.4): ends the retries once the daemon is stopping."""
        deadline = time.monotonic() + seconds
        while True:
            if self._stopping:
                raise SyncError("not retried: the sync daemon is stopping")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, _STOP_POLL))

    def _server_reachable(self) -> bool:
        return server_reachable(self.config.sync_base_url or "")

    def _default_transport(self, config: Config, machine_id: str) -> Transport:
        settings = TransportSettings.from_config(config)
        retry = dataclasses.replace(settings.retry, sleep=self._retry_sleep)
        transport = Transport(dataclasses.replace(settings, retry=retry), machine_id, log=self._log, trace=self._trace)
        transport.cancelled = lambda: self._stopping  # a stop ends the attempt in flight within a fraction of a second
        return transport
