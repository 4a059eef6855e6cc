"""`ServerSettings`: everything a `SyncServer` is started with, in one frozen object.

Address, profile and quirks, what preflight hands out, the initial rules, XSRF and enrollment, the state database,
limits."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from santacore.testing.profiles import DEFAULT_MAX_BODY, PROFILES, PreflightSettings, Profile, Quirks

__all__ = ["ServerSettings"]

_PREFLIGHT_FIELDS = frozenset(f.name for f in fields(PreflightSettings))


@dataclass(frozen=True)
class ServerSettings:
    """How a `SyncServer` behaves. `quirks`: the profile's (None), some of them overridden (a mapping of `Quirks`
    field names), or a whole `Quirks`. `preflight`: the initial `PreflightSettings` (the server keeps its own
    copy, changeable while it runs). `rules`: wire-format rules served to every machine. `new_cursor`: names the
    ruledownload cursors (default: random tokens). `request_log` is called with one line per request answered
    (stage, machine ID, status, what was received or served). `with_overrides` changes a few fields by name."""

    host: str = "127.0.0.1"
    port: int = 0
    profile: Profile = "google"
    quirks: Quirks | Mapping[str, Any] | None = None
    preflight: PreflightSettings = field(default_factory=PreflightSettings)
    rules: Sequence[Mapping[str, Any]] = ()
    require_xsrf: bool = False
    xsrf_header: str | None = None
    enrollment_secret: str | None = None
    state_db: str | os.PathLike[str] | None = None
    max_body_size: int = DEFAULT_MAX_BODY
    new_cursor: Callable[[], str] | None = None
    request_log: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r} (one of {', '.join(PROFILES)})")
        if isinstance(self.quirks, Mapping):
            unknown = set(self.quirks) - {f.name for f in fields(Quirks)}
            if unknown:
                raise ValueError(f"unknown quirks: {', '.join(sorted(unknown))}")

    def with_overrides(self, **overrides: Any) -> ServerSettings:
        """A copy with `overrides` applied; a `PreflightSettings` field name (``batch_size=2``) sets that field of
        `preflight`. TypeError for a name that is neither."""
        inner = {name: overrides.pop(name) for name in list(overrides) if name in _PREFLIGHT_FIELDS}
        changed = replace(self, **overrides)
        return replace(changed, preflight=replace(changed.preflight, **inner)) if inner else changed

    def make_quirks(self) -> Quirks:
        """A fresh `Quirks` for the server: the profile's with the overrides, or the given one."""
        if isinstance(self.quirks, Quirks):
            return self.quirks
        return replace(Quirks.for_profile(self.profile), **(self.quirks or {}))

    def make_preflight(self) -> PreflightSettings:
        """A fresh copy of `preflight` for the server to change while it runs."""
        return replace(self.preflight, preflight_extra=dict(self.preflight.preflight_extra))
