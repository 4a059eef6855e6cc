"""The exception hierarchy (Santa's SNTError). Filesystem failures stay OSError."""

from __future__ import annotations


class SantacoreError(Exception):
    """Base class of every santacore error."""


class BundleError(SantacoreError):
    """A path could not be treated as a bundle."""


class NotABundleError(BundleError):
    """The path is inside no bundle Santa would hash (santactl prints "Not a bundle")."""

    def __init__(self, path: str) -> None:
        super().__init__(f"Not a bundle: {path}")
        self.path = path


class MachOError(SantacoreError, ValueError):
    """A file's Mach-O structure cannot be read (truncated or contradictory load commands)."""


class SignatureError(SantacoreError, ValueError):
    """A code signature (SuperBlob, CodeDirectory or CMS) is malformed."""


class StoreError(SantacoreError):
    """events.db or rules.db cannot be used: not SQLite, a foreign schema, a newer version,
    corrupt, or locked. The file is left exactly as it was."""
