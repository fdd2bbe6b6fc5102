"""OFREP v1 (open-feature/protocol, service/openapi.yaml): bulk and single evaluation.

Body `{"context": {"targetingKey": "<user id>", "cohort": "<cohort>"}}`; other
context attributes are allowed and ignored. A body without `context` is an
empty context (the Python OFREP provider sends `{}` for one). Errors: 400
PARSE_ERROR (not a JSON object), 400 INVALID_CONTEXT (a context the relay
cannot use), 404 FLAG_NOT_FOUND; the caller adds 401, 403, 413, 429 and 503.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson

from flagops.relay.http import HttpError
from flagops.relay.settings import RelaySettings
from flagops.relay.store import Snapshot


@dataclass(frozen=True, slots=True)
class Context:
    user_id: str | None
    cohort: str | None


def parse_context(body: bytes, settings: RelaySettings, key: str | None = None) -> Context:
    try:
        request: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise HttpError(400, "request body is not valid JSON", "PARSE_ERROR", key=key) from None
    if not isinstance(request, dict):
        raise HttpError(
            400, "request body must be a JSON object with a 'context'", "PARSE_ERROR", key=key
        )
    context = request.get("context")
    if context is None:
        return Context(None, None)
    if not isinstance(context, dict):
        raise HttpError(400, "'context' must be a JSON object", "INVALID_CONTEXT", key=key)
    if len(context) > settings.max_context_attributes:
        raise HttpError(
            400,
            f"context has more than {settings.max_context_attributes} attributes",
            "INVALID_CONTEXT",
            key=key,
        )
    return Context(
        _text(context, "targetingKey", settings, key), _text(context, "cohort", settings, key)
    )


def _text(
    context: dict[str, Any], name: str, settings: RelaySettings, key: str | None
) -> str | None:
    value = context.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise HttpError(400, f"context '{name}' must be a string", "INVALID_CONTEXT", key=key)
    if len(value) > settings.max_context_value_chars:
        raise HttpError(
            400,
            f"context '{name}' is longer than {settings.max_context_value_chars} characters",
            "INVALID_CONTEXT",
            key=key,
        )
    return value


def now_us() -> int:
    return time.time_ns() // 1000


class BulkAnswer:
    """A bulk evaluation's ETag, computed before (and without) the evaluation itself.

    ETag = hash of what decides the reply: namespace, revision, the window segment
    the clock is in, the user's cohort class and id, and the event-stream entry.
    """

    __slots__ = ("cohort_class", "etag", "now", "segment", "snapshot", "user_id")

    def __init__(
        self, snapshot: Snapshot | None, context: Context, stream_entry: bytes, namespace: str
    ) -> None:
        self.snapshot = snapshot
        self.now = now_us()
        self.user_id = context.user_id
        if snapshot is None:
            self.segment = 0
            self.cohort_class = None
            revision = ""
        else:
            view = snapshot.view
            self.segment = view.segment(self.now)
            self.cohort_class = view.cohort_class(context.cohort)
            revision = snapshot.revision
        digest = hashlib.blake2b(
            orjson.dumps([namespace, revision, self.segment, self.cohort_class, self.user_id])
            + stream_entry,
            digest_size=16,
        ).hexdigest()
        self.etag = b'"' + digest.encode() + b'"'

    def body(self, stream_entry: bytes, metadata: bytes) -> bytes:
        head = b'{"flags":'
        tail = b',"eventStreams":[' + stream_entry + b'],"metadata":' + metadata + b"}"
        if self.snapshot is None:
            return head + b"[]" + tail
        return self.snapshot.view.evaluate_all(
            self.user_id, self.cohort_class, self.segment, self.now, head, tail
        )


def bulk_metadata(namespace: str, snapshot: Snapshot | None) -> bytes:
    metadata = {"namespace": namespace}
    if snapshot is not None:
        metadata["revision"] = snapshot.revision
    return orjson.dumps(metadata)


def stream_entry(request_uri: str) -> bytes:
    """The bulk reply's `eventStreams` item: a path on the provider's own base origin."""
    return orjson.dumps({"type": "sse", "endpoint": {"requestUri": request_uri}})


def single(snapshot: Snapshot | None, key: str, context: Context) -> bytes:
    fragment = None
    if snapshot is not None:
        fragment = snapshot.view.evaluate_one(key, context.user_id, context.cohort, now_us())
    if fragment is None:
        raise HttpError(404, f"flag {key!r} was not found", "FLAG_NOT_FOUND", key=key)
    return fragment
