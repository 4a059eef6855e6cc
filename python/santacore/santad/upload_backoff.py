"""santad's in-memory dedup of immediate event uploads (spec §5.3, "upload backoff").

What it suppresses: only the *immediate*, out-of-sync eventupload of a just-stored event (a denied execution, the
bundle-hashed event of §4.5 step 3, the SendEvents batch of `BUNDLE_BINARY` events). The event is written to
`events.db` before this check and stays there either way, so a suppressed event still goes up with the next full
sync. What it does not touch: full-sync uploads, which read every stored row and are never deduplicated, and
storing itself (santacore stores every event; [N]'s 4-hour "unactionable event" store cache is not this class).

Key: the file SHA-256 for a plain event, the bundle hash for bundle events (for a batch, its first event's).
A key passes if no upload for it was *initiated* in the last `window` seconds (600); passing records the time.
Capacity: [G] an `NSCache` of 128 entries (evicts at will), [N] a 1024-entry cache; the default is [N]'s 1024.
When full, the oldest entry is evicted: eviction can only let an upload through early, never suppress one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["DEFAULT_CAPACITY", "DEFAULT_WINDOW", "UploadBackoff"]

DEFAULT_CAPACITY = 1024  # [N] SantaCache size; [G] uses NSCache countLimit 128
DEFAULT_WINDOW = 600.0  # seconds


class UploadBackoff:
    """Which immediate uploads to skip. `clock` returns seconds (default `time.monotonic`, immune to wall-clock
    jumps). Thread-safe."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        window: float = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if window < 0:
            raise ValueError(f"window must not be negative, got {window}")
        self.capacity = capacity
        self.window = window
        self._clock = clock
        self._started: OrderedDict[str, float] = OrderedDict()  # key -> time the last upload was initiated
        self._lock = threading.Lock()

    def should_upload(self, key: str) -> bool:
        """True if an immediate upload for `key` may go now (and record now as its time); False to skip it.

        A clock that went backwards (now before the recorded time) lets the upload through: an extra upload is
        harmless, an indefinitely suppressed one is not."""
        if not key:
            raise ValueError("upload backoff key must be a non-empty string")
        with self._lock:
            now = self._clock()
            started = self._started.get(key)
            if started is not None and 0 <= now - started < self.window:
                return False
            self._started[key] = now
            self._started.move_to_end(key)
            self._expire(now)
            while len(self._started) > self.capacity:
                self._started.popitem(last=False)
            return True

    def forget(self, key: str) -> None:
        """Drop `key`'s entry so the next upload for it passes: after a failed plain or SendEvents upload, and
        after SendEvents so the `BUNDLE_BINARY` batch (same bundle-hash key) goes up. Unknown keys are ignored."""
        with self._lock:
            self._started.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._started.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._started)

    def __contains__(self, key: object) -> bool:
        """True if `key` would be suppressed now."""
        with self._lock:
            started = self._started.get(key) if isinstance(key, str) else None
            return started is not None and 0 <= self._clock() - started < self.window

    def _expire(self, now: float) -> None:
        # Entries are in order of recording, so expired ones sit at the front (with a monotonic clock).
        while self._started:
            key, started = next(iter(self._started.items()))
            if 0 <= now - started < self.window:
                return
            del self._started[key]
