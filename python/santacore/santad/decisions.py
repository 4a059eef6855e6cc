"""Santa's decision vocabulary (spec §4.2, §8.5): decision strings, SNTEventState bits and client modes.

The `decision` strings events carry, the internal SNTEventState bits santad stores, and the client
modes. Shared by the event model, the rule engine and the sync client, so each name is spelled once."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ClientMode(IntEnum):
    """Config `ClientMode` integers; `.wire` is the sync protocol's string."""

    MONITOR = 1
    LOCKDOWN = 2
    STANDALONE = 3

    @property
    def wire(self) -> str:
        return self.name


class Decision(StrEnum):
    """The `decision` string of an uploaded event."""

    UNKNOWN = "UNKNOWN"
    ALLOW_UNKNOWN = "ALLOW_UNKNOWN"
    ALLOW_BINARY = "ALLOW_BINARY"
    ALLOW_CERTIFICATE = "ALLOW_CERTIFICATE"
    ALLOW_SCOPE = "ALLOW_SCOPE"
    ALLOW_TEAMID = "ALLOW_TEAMID"
    ALLOW_SIGNINGID = "ALLOW_SIGNINGID"
    ALLOW_CDHASH = "ALLOW_CDHASH"
    BLOCK_UNKNOWN = "BLOCK_UNKNOWN"
    BLOCK_BINARY = "BLOCK_BINARY"
    BLOCK_CERTIFICATE = "BLOCK_CERTIFICATE"
    BLOCK_SCOPE = "BLOCK_SCOPE"
    BLOCK_TEAMID = "BLOCK_TEAMID"
    BLOCK_SIGNINGID = "BLOCK_SIGNINGID"
    BLOCK_CDHASH = "BLOCK_CDHASH"
    BUNDLE_BINARY = "BUNDLE_BINARY"

    @property
    def proto_number(self) -> int:
        """The enum number in syncv1.proto (0 for UNKNOWN, which protobuf-JSON omits)."""
        return _PROTO_NUMBERS[self]

    @property
    def event_state(self) -> int:
        """santad's SNTEventState bits, as events.db stores the decision."""
        return _EVENT_STATES[self]

    @property
    def is_allow(self) -> bool:
        return bool(self.event_state & ALLOW_MASK)

    @property
    def is_block(self) -> bool:
        return bool(self.event_state & BLOCK_MASK)

    @classmethod
    def from_event_state(cls, state: int) -> Decision:
        """The decision for a stored SNTEventState; states with no wire name are UNKNOWN."""
        return _BY_EVENT_STATE.get(state, cls.UNKNOWN)


# Any state with a bit in these ranges is an allow / a block (SNTCommonEnums.h).
ALLOW_MASK = 0xFFFFFF << 40
BLOCK_MASK = 0xFFFFFF << 16

_PROTO_NUMBERS = {d: i for i, d in enumerate(Decision)}
_EVENT_STATES = {
    Decision.UNKNOWN: 0,
    Decision.ALLOW_UNKNOWN: 1 << 40,
    Decision.ALLOW_BINARY: 1 << 41,
    Decision.ALLOW_CERTIFICATE: 1 << 42,
    Decision.ALLOW_SCOPE: 1 << 43,
    Decision.ALLOW_TEAMID: 1 << 47,
    Decision.ALLOW_SIGNINGID: 1 << 48,
    Decision.ALLOW_CDHASH: 1 << 49,
    Decision.BLOCK_UNKNOWN: 1 << 16,
    Decision.BLOCK_BINARY: 1 << 17,
    Decision.BLOCK_CERTIFICATE: 1 << 18,
    Decision.BLOCK_SCOPE: 1 << 19,
    Decision.BLOCK_TEAMID: 1 << 20,
    Decision.BLOCK_SIGNINGID: 1 << 22,
    Decision.BLOCK_CDHASH: 1 << 23,
    Decision.BUNDLE_BINARY: 1,
}
_BY_EVENT_STATE = {state: d for d, state in _EVENT_STATES.items()}
