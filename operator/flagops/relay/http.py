"""Plain ASGI plumbing: the request as the relay reads it, replies, errors.

The relay speaks ASGI directly (under uvicorn) rather than through a framework:
on one core Starlette's request and routing layers cost about 60% of the 304
path's throughput (docs/relay.md, "Why plain ASGI").
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"


class HttpError(Exception):
    """A reply that ends the request: status, OFREP-style body, extra headers.

    The details are fixed text written in this package: never a header, token or body.
    """

    def __init__(
        self,
        status: int,
        details: str,
        code: str | None = None,
        headers: Sequence[tuple[bytes, bytes]] = (),
        key: str | None = None,
    ) -> None:
        super().__init__(details)
        self.status = status
        self.details = details
        self.code = code
        self.headers = list(headers)
        self.key = key

    def body(self) -> bytes:
        obj: dict[str, str] = {}
        if self.key is not None:
            obj["key"] = self.key
        if self.code is not None:
            obj["errorCode"] = self.code
        obj["errorDetails"] = self.details
        return orjson.dumps(obj)


class Request:
    """What the relay reads of an HTTP request; headers lower-cased, first value wins."""

    __slots__ = ("headers", "method", "path", "query", "scope", "started")

    def __init__(self, scope: Scope, root_path: str) -> None:
        self.started = time.perf_counter()
        self.scope = scope
        self.method: str = scope["method"]
        path: str = scope["path"]
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :] or "/"
        self.path = path
        self.query: bytes = scope.get("query_string", b"")
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value)
        self.headers = headers

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")


async def read_body(receive: Receive, request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to pass `limit` bytes."""
    declared = request.headers.get(b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large(limit)
        except ValueError:
            raise HttpError(400, "Content-Length is not a number", "PARSE_ERROR") from None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def too_large(limit: int) -> HttpError:
    return HttpError(413, f"request body is larger than {limit} bytes", "PARSE_ERROR")


async def respond(
    send: Send,
    status: int,
    body: bytes = b"",
    headers: Headers | None = None,
    content_type: bytes | None = JSON,
) -> None:
    out: Headers = [(b"content-length", str(len(body)).encode())]
    if content_type is not None and body:
        out.append((b"content-type", content_type))
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


def etag_matches(if_none_match: bytes | None, etag: bytes) -> bool:
    """RFC 9110 If-None-Match with weak comparison: `*` or any listed tag equal to `etag`."""
    if if_none_match is None:
        return False
    if if_none_match == etag:
        return True
    for candidate in if_none_match.split(b","):
        tag = candidate.strip()
        if tag == b"*":
            return True
        if tag.startswith(b"W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False
