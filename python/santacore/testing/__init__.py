"""Testing aids: a conformant sync server on loopback. Nothing at run time imports this."""

from santacore.testing.server import Fault, FaultList, Quirks, RecordedRequest, Settings, SyncServer, serve

__all__ = ["Fault", "FaultList", "Quirks", "RecordedRequest", "Settings", "SyncServer", "serve"]
