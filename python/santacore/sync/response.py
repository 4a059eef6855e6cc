"""Reading a stage response (spec §2.2–2.4): streamed under the deadline and size limit, encodings undone.

The body is refused past `max_response_bytes`, on the wire and decoded, so a hostile server cannot exhaust memory;
gzip and deflate (zlib-wrapped or raw) are undone as the bytes arrive."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from santacore.sync.failures import HTTPX_ERRORS, AttemptFailed, describe

__all__ = ["Reply", "read_body"]


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, reason phrase, headers and (for a 200 that was read) the decoded body."""

    status: int
    reason: str
    headers: httpx.Headers
    body: bytes
    wire_size: int | None = None  # the body's size as received (before decoding), when known


class _Oversize(Exception):
    pass


class _Inflater:
    """One Content-Encoding layer, decoded incrementally with bounded output."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._pending = b""  # deflate: bytes held until the zlib-vs-raw question is settled
        self._fed = False
        self._z: zlib._Decompress | None = (
            zlib.decompressobj(16 + zlib.MAX_WBITS) if coding in ("gzip", "x-gzip") else None
        )

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decode `data`; more than `limit` bytes of output raises the oversize error."""
        self._fed = self._fed or bool(data)
        if self._z is None:  # deflate: zlib-wrapped (RFC 1950, what Santa sends) or raw (RFC 1951)
            self._pending += data
            if len(self._pending) < 2:
                return b""
            head = self._pending[0] << 8 | self._pending[1]
            zlib_wrapped = self._pending[0] & 0x0F == 8 and head % 31 == 0
            self._z = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
            data, self._pending = self._pending, b""
        if self._z.eof:
            return b""  # trailing bytes after the stream are ignored, as httpx and browsers do
        out = self._z.decompress(data, limit + 1)
        if len(out) > limit:
            raise _Oversize
        return out

    def finish(self) -> None:
        """Raise zlib.error when the compressed stream did not end (a cut-short response)."""
        started = self._pending or (self._z is not None and self._fed)
        if started and (self._z is None or not self._z.eof):  # an empty body is fine, as in httpx
            raise zlib.error(f"incomplete {self.coding} stream")


def _decoders(content_encoding: str) -> list[_Inflater]:
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    layers: list[_Inflater] = []
    for coding in reversed(codings):  # the last coding applied is the first to undo
        if coding == "identity":
            continue
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise AttemptFailed(
                f"the server sent Content-Encoding {content_encoding!r}, which cannot be decoded", final=True
            )
        layers.append(_Inflater(coding))
    return layers


def _size(n: int) -> str:
    mib = 1024 * 1024
    return f"{n // mib} MiB" if n and n % mib == 0 else f"{n} bytes"


def read_body(response: httpx.Response, host: str, timeout: float, deadline: float, limit: int) -> tuple[bytes, int]:
    """The decoded body of a streamed `response` and its size on the wire; AttemptFailed when it is cut short,
    undecodable, late (past `deadline`, a `time.monotonic()` value) or larger than `limit` bytes (final: never
    retried)."""
    too_big = AttemptFailed(f"the response from {host} is larger than {_size(limit)} (max_response_bytes)", final=True)
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big  # refused before reading a byte
    layers = _decoders(response.headers.get("Content-Encoding", ""))
    parts: list[bytes] = []
    raw_total = total = 0
    chunks: Iterator[bytes] = response.iter_raw()  # as received: the deadline is checked per read
    try:
        for chunk in chunks:
            raw_total += len(chunk)
            if raw_total > limit:
                raise too_big
            for layer in layers:
                chunk = layer.feed(chunk, limit - total)
            total += len(chunk)
            if total > limit:
                raise too_big
            parts.append(chunk)
            if time.monotonic() > deadline:
                raise AttemptFailed(f"timed out after {timeout:g} s reading the response from {host}")
        for layer in layers:
            layer.finish()
    except _Oversize:
        raise too_big from None
    except zlib.error as exc:
        raise AttemptFailed(
            f"cannot decode the {'/'.join(layer.coding for layer in layers)} response from {host}: {exc}"
        ) from None
    except HTTPX_ERRORS as exc:
        raise describe(exc, host, timeout, reading_body=True) from None
    return b"".join(parts), raw_total
