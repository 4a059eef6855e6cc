"""The testing server's protobuf side: request validation against santacore's generated `santa.sync.v1` classes
(protobuf-JSON via `json_format`, `ignore_unknown_fields`), binary bodies (`SyncEnableProtoTransfer`, addendum §3)
and replies serialised as the stage's response message.

protobuf is imported when a request is first checked, not when the server module loads."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["PROTOBUF_TYPE", "binary_reply", "binary_request", "is_protobuf", "json_request_error"]

PROTOBUF_TYPE: Final = "application/x-protobuf"
_MESSAGES: Final = {
    "preflight": ("PreflightRequest", "PreflightResponse"),
    "eventupload": ("EventUploadRequest", "EventUploadResponse"),
    "ruledownload": ("RuleDownloadRequest", "RuleDownloadResponse"),
    "postflight": ("PostflightRequest", "PostflightResponse"),
}


def _pb() -> Any:
    from santacore.syncv1 import santa_sync_v1_pb2

    return santa_sync_v1_pb2


def is_protobuf(content_type: str | None) -> bool:
    """Whether a Content-Type names a binary protobuf body."""
    return (content_type or "").split(";")[0].strip().lower() in (PROTOBUF_TYPE, "application/protobuf")


def _enum_bools(data: Any, descriptor: Any, where: str) -> str | None:
    """Python's parser reads `true` as enum 1; protobuf's C++ parser (Santa's, and a Go or C++ server's) refuses
    a bool there. The one rule added to `json_format`'s."""
    if not isinstance(data, dict):
        return None
    for key, value in data.items():
        f = descriptor.fields_by_name.get(key) or next((f for f in descriptor.fields if f.json_name == key), None)
        if f is None:
            continue
        items = value if f.is_repeated and isinstance(value, list) else [value]
        for item in items:
            if f.enum_type is not None and isinstance(item, bool):
                return f"{where}{key}: invalid enum value {str(item).lower()}"
            if f.message_type is not None and (problem := _enum_bools(item, f.message_type, f"{where}{key}.")):
                return problem
    return None


def json_request_error(stage: str, data: Any) -> str | None:
    """Why protobuf's JSON parser (ignore_unknown_fields) refuses `data` as the stage's request, or None."""
    from google.protobuf import json_format

    message = getattr(_pb(), _MESSAGES[stage][0])()
    if not isinstance(data, dict):
        return f"body: expected a JSON object, got {type(data).__name__}"
    if problem := _enum_bools(data, message.DESCRIPTOR, ""):
        return problem
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError) as exc:
        return str(exc).splitlines()[0]
    return None


def binary_request(stage: str, body: bytes) -> dict[str, Any]:
    """A binary request body as the JSON value a protobuf-JSON client sends for the same message (json names,
    enum names, defaults left out), so the stages read both formats alike; ValueError when it is no such message."""
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError

    message = getattr(_pb(), _MESSAGES[stage][0])()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise ValueError(f"the body is not a serialized santa.sync.v1.{_MESSAGES[stage][0]}: {exc}") from None
    result: dict[str, Any] = json_format.MessageToDict(message)
    return result


def binary_reply(stage: str, obj: Any) -> bytes:
    """The stage's response message, serialised, from the JSON value the stage answered (keys it does not have,
    such as Moroz's `NoOp`, are left out)."""
    from google.protobuf import json_format

    message = getattr(_pb(), _MESSAGES[stage][1])()
    json_format.ParseDict(obj if isinstance(obj, dict) else {}, message, ignore_unknown_fields=True)
    data: bytes = message.SerializeToString()
    return data
