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


class SyncError(SantacoreError):
    """A sync stage failed; `stage` names it (preflight, eventupload, ruledownload, postflight, xsrf)."""

    def __init__(self, message: str, *, stage: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage


class SyncHTTPError(SyncError):
    """The server answered a stage request with something other than HTTP 200, after retries."""

    def __init__(self, message: str, *, stage: str | None = None, status: int | None = None) -> None:
        super().__init__(message, stage=stage)
        self.status = status
