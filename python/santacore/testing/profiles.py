"""Profiles and wire constants of the testing sync server: the per-profile `Quirks` and the `PreflightSettings`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

Profile = Literal["google", "northpolesec", "moroz", "zentral"]

STAGES: Final = ("preflight", "eventupload", "ruledownload", "postflight")
XSRF_STAGE: Final = "xsrf"
PROFILES: Final[tuple[str, ...]] = get_args(Profile)

XSSI_PREFIX: Final = ")]}'\n"  # §2.3: the 5-byte prefix; the 3-byte alternative is "])}"
XSSI_SHORT_PREFIX: Final = "])}"
XSRF_TOKEN_HEADER: Final = "X-XSRF-TOKEN"  # §2.5
XSRF_NAME_HEADER: Final = "X-XSRF-TOKEN-HEADER"
CLEAN_TYPES: Final = frozenset({"CLEAN", "CLEAN_ALL"})
MOROZ_POLICIES: Final = frozenset({"ALLOWLIST", "ALLOWLIST_COMPILER", "BLOCKLIST", "REMOVE"})  # §9.2
ZENTRAL_EMPTY_REGEX: Final = "(?!)"  # §9.4: an empty path regex is sent as a regex matching nothing
DEFAULT_MAX_BODY: Final = 8 * 1024 * 1024


@dataclass
class Quirks:
    """Every server behaviour the profiles differ in; `Quirks.for_profile` gives a profile's set."""

    path_prefix: str = ""  # Moroz routes live under /v1/santa (§9.2)
    # "http": decode per Content-Encoding (deflate = zlib stream, gzip, none; §2.2). "zlib": always zlib,
    # whatever the headers say (Moroz). "zentral": zlib if labelled deflate/zlib, else raw JSON (§9.4).
    request_decoding: Literal["http", "zlib", "zentral"] = "http"
    read_ruledownload_body: bool = True  # Moroz never reads it (§9.2)
    # "proto": protobuf-JSON parse rules (§2.3) → 400; "go": Go encoding/json into Moroz's structs → 500.
    validation: Literal["proto", "go", "none"] = "proto"
    response_style: Literal["proto", "go", "django"] = "proto"  # compact / Go pretty+newline / Django
    preflight_style: Literal["proto", "moroz", "zentral"] = "proto"
    paginate: bool = True  # Moroz: one page, no cursor (§9.2)
    trailing_empty_page: bool = False  # Zentral: a cursor after every non-empty page, so one empty last page
    null_empty_rules: bool = False  # Moroz: a Go nil slice, `{"rules": null}`
    rule_delta: bool = False  # Zentral: a normal sync sends only changes (new, changed, REMOVE) (§9.4)
    allowed_policies: frozenset[str] | None = None  # Moroz knows 4 policies (§9.2)
    xsrf_route: bool = True  # Moroz and Zentral have no /xsrf/ route
    enrollment: bool = False  # Zentral: stages other than preflight get 403 until preflight enrolled (§9.4)
    enrollment_header: str = "Zentral-Authorization"  # carries "Bearer <secret>" (§9.4)
    uuid_machine_ids: bool = False  # Zentral: the machine ID must be a UUID, any case/format (§9.4)
    clean_on_enrollment: bool = False  # Zentral: a newly enrolled machine gets a clean sync
    honour_clean_request: bool = True  # answer `request_clean_sync: true` with CLEAN (Moroz ignores it)
    default_clean_sync: bool = False  # Moroz's sample config sets clean_sync = true (§9.2)
    sync_type_min_version: tuple[int, int] | None = None  # Zentral: older santa_version gets clean_sync
    # Keys a postflight must carry (with CLEAN/CLEAN_ALL) to confirm a clean sync; () = any postflight does.
    postflight_sync_type_keys: tuple[str, ...] = ()
    bundle_requests: Literal["never", "enabled", "always"] = "enabled"  # ask for bundle binaries when...
    zentral_checks: bool = False
    # Binary protobuf bodies (SyncEnableProtoTransfer, addendum §3) accepted and answered in kind; Moroz (Go
    # encoding/json) and Zentral (Django JSON views) read JSON only and get a 415 for them.
    proto_transfer: bool = True  # Zentral's 500s: no santa_version, non-numeric os_version, ... (§9.4)

    @classmethod
    def for_profile(cls, profile: str) -> Quirks:
        if profile == "google":
            return cls()
        if profile == "northpolesec":
            return cls(postflight_sync_type_keys=("syncType", "sync_type"))  # §3.4: [N] reports syncType
        if profile == "moroz":
            return cls(
                path_prefix="/v1/santa",
                request_decoding="zlib",
                read_ruledownload_body=False,
                validation="go",
                response_style="go",
                preflight_style="moroz",
                paginate=False,
                null_empty_rules=True,
                allowed_policies=MOROZ_POLICIES,
                xsrf_route=False,
                honour_clean_request=False,
                default_clean_sync=True,
                bundle_requests="never",
                proto_transfer=False,
            )
        if profile == "zentral":
            return cls(
                request_decoding="zentral",
                validation="none",
                response_style="django",
                preflight_style="zentral",
                trailing_empty_page=True,
                rule_delta=True,
                xsrf_route=False,
                enrollment=True,
                uuid_machine_ids=True,
                clean_on_enrollment=True,
                sync_type_min_version=(2024, 1),
                postflight_sync_type_keys=("syncType",),
                bundle_requests="always",
                zentral_checks=True,
                proto_transfer=False,
            )
        raise ValueError(f"unknown profile {profile!r} (one of {', '.join(PROFILES)})")


@dataclass
class PreflightSettings:
    """What preflight hands out (§3.1) and how rules are paged; mutable while the server runs."""

    client_mode: str | None = "MONITOR"
    batch_size: int = 50
    full_sync_interval: int = 600
    enable_bundles: bool = False
    enable_transitive_rules: bool = False
    enable_all_event_upload: bool = False
    disable_unknown_event_upload: bool = False
    allowed_path_regex: str | None = None
    blocked_path_regex: str | None = None
    sync_type: str | None = None  # sent at every preflight; per-machine ones: `set_sync_type(..., machine_id=)`
    page_size: int | None = None  # rules per ruledownload page; None = batch_size
    preflight_extra: dict[str, Any] = field(default_factory=dict)  # merged last into every preflight answer
    push: Any = None  # a `santacore.testing.push.PushSide`: its push fields go into every preflight answer
