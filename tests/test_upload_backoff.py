"""The immediate-upload dedup cache (spec §5.3), driven by an injected clock."""

from __future__ import annotations

import threading

import pytest

from santacore.santad.upload_backoff import DEFAULT_CAPACITY, DEFAULT_WINDOW, UploadBackoff

SHA_A, SHA_B, BUNDLE = "a" * 64, "b" * 64, "c" * 64


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_defaults() -> None:
    backoff = UploadBackoff()
    assert (backoff.capacity, backoff.window) == (DEFAULT_CAPACITY, DEFAULT_WINDOW) == (1024, 600.0)


def test_window_is_600_seconds_from_the_last_initiated_upload() -> None:
    clock = Clock()
    backoff = UploadBackoff(clock=clock)
    assert backoff.should_upload(SHA_A)
    assert SHA_A in backoff
    for t in (0.0, 1.0, 599.999):
        clock.now = 1000.0 + t
        assert not backoff.should_upload(SHA_A), t  # suppressed, and the recorded time does not move
    clock.now = 1600.0
    assert SHA_A not in backoff
    assert backoff.should_upload(SHA_A)  # exactly 600 s later: `now - value < 600` no longer holds
    clock.now = 1601.0
    assert not backoff.should_upload(SHA_A)  # the pass recorded 1600 as the new start
    clock.now = 2200.0
    assert backoff.should_upload(SHA_A)


def test_keys_are_independent() -> None:
    clock = Clock()
    backoff = UploadBackoff(clock=clock)
    assert backoff.should_upload(SHA_A)
    assert backoff.should_upload(SHA_B)
    assert backoff.should_upload(BUNDLE)
    clock.now += 300
    assert not backoff.should_upload(SHA_A) and not backoff.should_upload(BUNDLE)
    backoff.forget(SHA_B)
    assert backoff.should_upload(SHA_B)
    assert not backoff.should_upload(SHA_A)


def test_forget_after_failure_and_after_send_events() -> None:
    clock = Clock()
    backoff = UploadBackoff(clock=clock)
    # A plain upload failed: the entry goes, so the next execution's immediate upload is tried again.
    assert backoff.should_upload(SHA_A)
    backoff.forget(SHA_A)
    assert backoff.should_upload(SHA_A)
    # SendEvents: the bundle-hash entry is removed so the BUNDLE_BINARY batch (same key) passes once.
    assert backoff.should_upload(BUNDLE)
    backoff.forget(BUNDLE)
    assert backoff.should_upload(BUNDLE)
    assert not backoff.should_upload(BUNDLE)
    backoff.forget("never seen")  # harmless


def test_capacity_evicts_the_oldest_entry() -> None:
    clock = Clock()
    backoff = UploadBackoff(capacity=3, clock=clock)
    for i, key in enumerate("wxyz"):
        clock.now = 1000.0 + i
        assert backoff.should_upload(key)
    assert len(backoff) == 3
    assert backoff.should_upload("w")  # evicted: an early upload, never a suppressed one
    assert not backoff.should_upload("y") and not backoff.should_upload("z")
    assert "x" not in backoff  # "x" was the oldest when "w" came back
    assert len(backoff) == 3


def test_expired_entries_are_dropped() -> None:
    clock = Clock()
    backoff = UploadBackoff(capacity=10, clock=clock)
    for key in "abcde":
        backoff.should_upload(key)
    clock.now += 700
    backoff.should_upload("f")
    assert len(backoff) == 1


def test_clock_going_backwards_lets_uploads_through() -> None:
    clock = Clock(5000.0)
    backoff = UploadBackoff(clock=clock)
    assert backoff.should_upload(SHA_A)
    clock.now = 4000.0
    assert backoff.should_upload(SHA_A)
    assert not backoff.should_upload(SHA_A)


def test_zero_window_disables_dedup_and_bad_arguments() -> None:
    backoff = UploadBackoff(window=0, clock=Clock())
    assert all(backoff.should_upload(SHA_A) for _ in range(3))
    with pytest.raises(ValueError):
        UploadBackoff(capacity=0)
    with pytest.raises(ValueError):
        UploadBackoff(window=-1)
    with pytest.raises(ValueError):
        UploadBackoff().should_upload("")


def test_threads_pass_a_key_once() -> None:
    backoff = UploadBackoff(clock=Clock())
    passed: list[bool] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        passed.append(backoff.should_upload(SHA_A))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert passed.count(True) == 1
