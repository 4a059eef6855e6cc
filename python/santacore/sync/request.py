"""A stage request on the wire (spec §2.1–2.2): the verbatim URL, Santa's headers, the body's compression.

The request target is ``<SyncBaseURL>/<stage>/<machine_id>`` sent byte for byte (httpx would percent-encode it);
the extra headers are SyncExtraHeaders minus Santa's deny-list."""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

import httpx

from santacore.config.settings import PROTECTED_HEADERS

__all__ = [
    "BaseURL",
    "Header",
    "VerbatimURL",
    "check_header_value",
    "check_machine_id",
    "check_stage",
    "compress_body",
    "content_encoding",
    "filter_extra_headers",
    "is_header_name",
    "request_headers",
]

_log = logging.getLogger(__name__)

Header = tuple[bytes, bytes]
_ENCODINGS: Final = ("deflate", "gzip", "none")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP header name (RFC 9110 token)
_STAGE = re.compile(r"[A-Za-z0-9._~-]+")
_TARGET_UNSAFE = re.compile(r"[^\x21-\x7e]|[/?#]")  # what cannot go verbatim into a request-line path segment


# --- body ------------------------------------------------------------------------------------------


def compress_body(body: bytes, encoding: str) -> tuple[bytes, str | None]:
    """The bytes Santa sends for `body` and the Content-Encoding header value, if any (§2.2)."""
    coding = content_encoding(encoding)
    if not body or coding == "none":
        return body, None  # Santa never compresses an empty body, so it carries no Content-Encoding
    if coding == "deflate":
        # deflateInit2(Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY): RFC 1950, "78 9c ..."
        return zlib.compress(body), "deflate"
    gz = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 31, 8, zlib.Z_DEFAULT_STRATEGY)
    return gz.compress(body) + gz.flush(), "gzip"  # windowBits 31: RFC 1952, as Santa's gzipCompressed


def content_encoding(value: str) -> Literal["deflate", "gzip", "none"]:
    """SyncClientContentEncoding, case-insensitively; ValueError for anything else."""
    text = str(value).lower()
    if text == "deflate":
        return "deflate"
    if text == "gzip":
        return "gzip"
    if text == "none":
        return "none"
    raise ValueError(f"content_encoding must be one of {', '.join(_ENCODINGS)}, got {value!r}")


# --- URL -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseURL:
    """SyncBaseURL taken apart: `text` ends with "/", `origin` is httpx's (scheme, host, port), `path` ends
    with "/" and is sent verbatim in front of ``<stage>/<machine_id>``."""

    text: str
    origin: httpx.URL
    path: str

    @classmethod
    def parse(cls, base_url: str) -> BaseURL:
        """ValueError unless `base_url` is an http(s) URL with a host, an ASCII path, no query or fragment."""
        if not isinstance(base_url, str) or not base_url:
            raise ValueError("base_url must be a non-empty http(s) URL")
        base = base_url if base_url.endswith("/") else base_url + "/"
        try:
            parts = urlsplit(base)
            parts.port  # noqa: B018 -- validates the port
        except ValueError as exc:
            raise ValueError(f"not a valid base URL {base_url!r}: {exc}") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
        if parts.query or parts.fragment or "?" in base or "#" in base:
            raise ValueError(f"base_url must not have a query or fragment, got {base_url!r}")
        path = parts.path or "/"
        if re.search(r"[^\x21-\x7e]", path):
            raise ValueError(f"base_url path must be ASCII without spaces (percent-encode it), got {base_url!r}")
        try:
            origin = httpx.URL(f"{parts.scheme}://{parts.netloc}/")
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a valid base URL {base_url!r}: {exc}") from None
        return cls(base, origin, path)

    def target(self, url: str) -> VerbatimURL:
        """The request target for `url` (this base + ``<stage>/<machine_id>``), to be sent byte for byte."""
        raw_path = (self.path + url[len(self.text) :]).encode("ascii")
        return VerbatimURL(self.origin, raw_path, url)


class VerbatimURL(httpx.URL):
    """An httpx.URL whose request target is sent exactly as given (§2.1: no percent-encoding).

    httpx's transports send ``request.url.raw_path``; httpx itself would have percent-encoded
    ``"<>{}`` and backquotes and removed dot segments. Only the origin (scheme, host, port) is httpx's.
    """

    def __init__(self, origin: httpx.URL, raw_path: bytes, text: str) -> None:
        super().__init__(origin)
        self._verbatim_path = raw_path
        self._verbatim_text = text

    @property
    def raw_path(self) -> bytes:
        return self._verbatim_path

    def __str__(self) -> str:
        return self._verbatim_text


def check_machine_id(machine_id: str) -> None:
    """ValueError unless the machine ID can go verbatim into an HTTP/1.1 request line."""
    if not isinstance(machine_id, str) or not machine_id:
        raise ValueError("machine_id must be a non-empty string")
    if _TARGET_UNSAFE.search(machine_id) or machine_id in (".", ".."):
        raise ValueError(
            "machine_id must go verbatim into the URL: printable ASCII without '/', '?', '#' or spaces, "
            f"and not '.' or '..'; got {machine_id!r}"
        )


def check_stage(stage: str) -> None:
    if not _STAGE.fullmatch(stage):
        raise ValueError(f"not a stage name: {stage!r}")


# --- headers ---------------------------------------------------------------------------------------


def is_header_name(name: bytes) -> bool:
    return _TOKEN.fullmatch(name) is not None


def check_header_value(name: str, value: str) -> None:
    if not isinstance(value, str) or any(c in value for c in "\r\n\x00"):
        raise ValueError(f"header {name}: the value must be a string without CR, LF or NUL")


def filter_extra_headers(extra: Mapping[str, str]) -> tuple[Header, ...]:
    """SyncExtraHeaders minus Santa's deny-list (case-insensitive, as [N]), as (name, value) bytes."""
    kept: list[Header] = []
    for name, value in extra.items():
        if not isinstance(name, str) or not is_header_name(name.encode("utf-8", "replace")):
            raise ValueError(f"not a valid HTTP header name: {name!r}")
        check_header_value(name, value)
        if name.lower() in PROTECTED_HEADERS:
            _log.debug("SyncExtraHeaders: ignoring protected header %s", name)
            continue
        kept.append((name.encode("ascii"), value.encode("utf-8")))
    return tuple(kept)


def request_headers(
    user_agent: str,
    extra: tuple[Header, ...],
    *,
    content_type: bool | str,
    encoding: str | None,
    token: Header | None,
) -> list[Header]:
    """The headers of one request, in order; a later one replaces an earlier one of the same name."""
    headers: dict[bytes, Header] = {}  # lower-case name -> (name, value)

    def put(name: bytes, value: bytes) -> None:
        headers[name.lower()] = (name, value)

    put(b"User-Agent", user_agent.encode("utf-8"))
    for name, value in extra:
        put(name, value)
    put(b"Accept-Encoding", b"gzip, deflate")  # what santacore.sync.response decodes; not overridable
    if content_type:  # True: JSON; a string: that type (application/x-protobuf, addendum §3)
        put(b"Content-Type", (content_type if isinstance(content_type, str) else "application/json").encode("ascii"))
    if encoding:
        put(b"Content-Encoding", encoding.encode("ascii"))
    if token is not None:
        put(*token)
    return list(headers.values())
