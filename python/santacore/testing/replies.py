"""Replies of the testing sync server in each profile's style (§9.2, §9.4): errors, 404/405, rendering."""

from __future__ import annotations

from santacore.testing.records import Reply
from santacore.testing.wire import encode_json

__all__ = ["error_reply", "method_not_allowed", "not_found", "render"]

_DJANGO_TITLES = {400: "Bad Request (400)", 403: "403 Forbidden", 404: "Not Found", 413: "Request Entity Too Large"}


def render(reply: Reply, style: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of `reply`: its verbatim body, else its JSON value encoded in `style`."""
    headers = dict(reply.headers)
    if reply.body is not None:
        if reply.content_type:
            headers["Content-Type"] = reply.content_type
        return reply.body, headers
    body, content_type = encode_json(reply.obj if reply.obj is not None else {}, style)
    headers["Content-Type"] = reply.content_type or content_type
    return body, headers


def error_reply(style: str, status: int, message: str) -> Reply:
    """An error answer as the profile's server writes it."""
    if style == "go":  # go-kit errorEncoder; decode errors carry Go's sniffed text/plain type (§9.2)
        body, _ = encode_json({"error": message}, "go")
        return Reply(status, body=body, content_type="text/plain; charset=utf-8", error=message)
    if style == "django":  # §9.4: HTML error pages, except 401
        if status == 401:
            return Reply(401, {"detail": "Unauthorized"}, error=message)
        heading = _DJANGO_TITLES.get(status, f"Server Error ({status})")
        html = f'<!doctype html>\n<html lang="en">\n<head>\n  <title>{heading}</title>\n</head>\n<body>\n'
        html += f"  <h1>{heading}</h1><p>{message}</p>\n</body>\n</html>\n"
        return Reply(status, body=html.encode(), content_type="text/html; charset=utf-8", error=message)
    return Reply(status, {"error": message}, error=message)


def not_found(style: str) -> Reply:
    if style == "go":  # gorilla/mux → http.NotFound
        return Reply(404, body=b"404 page not found\n", content_type="text/plain; charset=utf-8")
    return error_reply(style, 404, "not found")


def method_not_allowed(style: str) -> Reply:
    reply = Reply(405, body=b"") if style == "go" else error_reply(style, 405, "use POST")
    reply.headers["Allow"] = "POST"
    return reply
