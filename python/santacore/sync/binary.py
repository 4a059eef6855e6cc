"""Binary protobuf bodies (`SyncEnableProtoTransfer = true`, addendum §3), with the generated santa.sync.v1 classes.

A request is built once, as the JSON value the protobuf-JSON mode sends (`santacore.sync.protocol`), and parsed into
the stage's request message (`json_format.ParseDict`, strict: an unknown key is a bug) before `SerializeToString`:
so the binary body holds exactly the fields the JSON mode would send. A response is `ParseFromString`; a body that
does not parse fails the stage (no fallback to JSON); a zero-length body is the empty message. For a [G] variant,
[N]-only response fields are dropped as unknown, as in the JSON reader."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from santacore.errors import SyncError
from santacore.santad.events import DEFAULT_VARIANT, Variant
from santacore.sync.pbjson import N_ONLY_FIELDS, message_fields

__all__ = ["JSON_TYPE", "PROTOBUF_TYPE", "decode_response", "encode_request", "request_message"]

PROTOBUF_TYPE: Final = "application/x-protobuf"
JSON_TYPE: Final = "application/json"
_REQUESTS: Final = {
    "preflight": "PreflightRequest",
    "eventupload": "EventUploadRequest",
    "ruledownload": "RuleDownloadRequest",
    "postflight": "PostflightRequest",
}


def request_message(stage: str, body: Mapping[str, Any]) -> Any:
    """The stage's request message holding `body` (the protobuf-JSON value of that request)."""
    from google.protobuf import json_format

    from santacore.syncv1 import santa_sync_v1_pb2 as pb

    message = getattr(pb, _REQUESTS[stage])()
    json_format.ParseDict(dict(body), message)
    return message


def encode_request(stage: str, body: Mapping[str, Any]) -> bytes:
    """`SerializeToString` of the stage's request message."""
    data: bytes = request_message(stage, body).SerializeToString()
    return data


def decode_response(
    body: bytes, stage: str, message_class: type[Any], variant: Variant = DEFAULT_VARIANT
) -> dict[str, Any]:
    """The set fields of a binary response (as `pbjson.protobuf_document` gives them); SyncError(stage=...) when the
    body is not a serialized `message_class`."""
    from google.protobuf.message import DecodeError

    message = message_class()
    try:
        message.ParseFromString(bytes(body))
    except DecodeError as e:
        raise SyncError(f"Failed to parse {stage} response protobuf: {e}", stage=stage) from None
    fields = message_fields(message)
    if variant is not Variant.NORTHPOLESEC:
        _drop_n_only(fields, message.DESCRIPTOR.name)
    return fields


def _drop_n_only(fields: dict[str, Any], message: str) -> None:
    for name in N_ONLY_FIELDS.get(message, ()):
        fields.pop(name, None)
    for rule in fields.get("rules", ()) if message == "RuleDownloadResponse" else ():
        _drop_n_only(rule, "Rule")
