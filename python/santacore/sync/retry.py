"""Santa's retry schedule (spec §2.4): how many attempts, the sleeps between them, [N]'s stop on a 4xx."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["RetryPolicy", "santa_backoff"]

_NO_RETRY_4XX: Final = frozenset({408, 429})  # [N] keeps retrying these client errors


def santa_backoff(attempt: int) -> float:
    """Seconds Santa sleeps before `attempt` (2..5): 2 ** attempt = 4, 8, 16, 32."""
    return float(2**attempt)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a stage request is tried and how long to wait in between (§2.4).

    `delays(attempt)` is the sleep before `attempt` (2..`attempts`); `sleep` performs it (inject a
    recorder in tests). `stop_on_4xx` is [N]'s rule: give up on a 4xx other than 408/429 (after the
    XSRF handshake had its chance); the default is [G]'s: retry every failure.
    """

    attempts: int = 5
    sleep: Callable[[float], None] = time.sleep
    delays: Callable[[int], float] = santa_backoff
    stop_on_4xx: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")

    def gives_up_on(self, status: int) -> bool:
        """Whether [N]'s rule ends the retries after this status."""
        return self.stop_on_4xx and 400 <= status < 500 and status not in _NO_RETRY_4XX
