"""`DaemonTransport`: the sync daemon's view of its Transport (see `santacore.sync.scheduler`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from santacore.errors import SyncError
from santacore.sync import protocol
from santacore.sync.transport import Transport

if TYPE_CHECKING:
    from santacore.sync.scheduler import SyncDaemon

__all__ = ["DaemonTransport"]


class DaemonTransport(Transport):
    """The daemon's view of the factory's Transport: refuses every request once the daemon is stopping (so a
    sync ends at once, as on a network failure) and notes the preflight's `batch_size`, which Santa keeps in
    memory for the SendEvents batches of §4.5. Everything else is the wrapped transport's. Stands in for a
    Transport in `SyncContext`; it is never initialised as one."""

    def __init__(self, inner: Transport, daemon: SyncDaemon) -> None:  # no super().__init__(): a pure proxy
        self._inner = inner
        self._daemon = daemon

    def __getattr__(self, name: str) -> Any:
        if name in ("_inner", "_daemon"):  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._inner, name)

    def post(self, stage: str, body: bytes, *, deadline: float | None = None, **kw: Any) -> bytes:
        if self._daemon.stopping:
            raise SyncError("not sent: the sync daemon is stopping", stage=stage)
        if deadline is not None:
            kw["deadline"] = deadline
        reply = self._inner.post(stage, body, **kw)
        if stage == protocol.PREFLIGHT:
            self._daemon.note_preflight(reply, binary=kw.get("content_type") == "application/x-protobuf")
        return reply

    def close(self) -> None:
        self._inner.close()
