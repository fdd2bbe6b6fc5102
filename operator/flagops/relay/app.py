"""The relay's API as one ASGI application: routes, access, limits, metrics.

Routes (each also under `/namespaces/<namespace>`):

    POST /ofrep/v1/evaluate/flags          OFREP bulk evaluation (ETag, 304)
    POST /ofrep/v1/evaluate/flags/<key>    OFREP single-flag evaluation
    GET  /ofrep/v1/events                  OFREP change notices (SSE)
    GET  /v1/flags.json                    the document (ETag = revision, 304)
    GET  /v1/flags/stream                  the document on connect and on change (SSE)
    GET  /healthz, /readyz                 no token (also on the metrics port)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from flagops.relay import ofrep, streams
from flagops.relay.access import Access, Principal, query_value
from flagops.relay.health import health_reply
from flagops.relay.http import (
    Headers,
    HttpError,
    Receive,
    Request,
    Scope,
    Send,
    etag_matches,
    read_body,
    respond,
)
from flagops.relay.limits import RateLimiter, StreamCounter, retry_after_header
from flagops.relay.metrics import RelayMetrics
from flagops.relay.settings import RelaySettings
from flagops.relay.sharing import Target, shared_target
from flagops.relay.store import Store

logger = logging.getLogger(__name__)

BULK = "/ofrep/v1/evaluate/flags"
SINGLE_PREFIX = "/ofrep/v1/evaluate/flags/"
OFREP_EVENTS = "/ofrep/v1/events"
DOCUMENT = "/v1/flags.json"
DOCUMENT_STREAM = "/v1/flags/stream"
NAMESPACE_PREFIX = "/namespaces/"

# route name (the metrics label) -> allowed method
_ROUTES: dict[str, tuple[str, str]] = {
    BULK: ("ofrep_bulk", "POST"),
    OFREP_EVENTS: ("ofrep_events", "GET"),
    DOCUMENT: ("document", "GET"),
    DOCUMENT_STREAM: ("document_stream", "GET"),
}
NOT_READY = "the relay is starting: flags are not loaded yet"

Handler = Callable[[Request, Receive, Send, Principal, Target, Headers], Awaitable[int]]


class RelayApp:
    def __init__(
        self, settings: RelaySettings, store: Store, access: Access, metrics: RelayMetrics
    ) -> None:
        self.settings = settings
        self.store = store
        self.access = access
        self.metrics = metrics
        self.rates = RateLimiter()
        self.streams = StreamCounter()
        self._stream_entries: dict[tuple[str, str], bytes] = {}
        self._handlers: dict[str, Handler] = {
            "ofrep_bulk": self._bulk,
            "ofrep_flag": self._single,
            "ofrep_events": self._ofrep_events,
            "document": self._document,
            "document_stream": self._document_stream,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websockets: nothing to do
        request = Request(scope, self.settings.root_path)
        started = request.started
        route, code = "unknown", 500
        try:
            route, code = await self._dispatch(request, receive, send)
        except HttpError as exc:
            code = exc.status
            await respond(send, exc.status, exc.body(), exc.headers + self._error_cors(request))
        except Exception:
            # The type only: a message could hold anything the request carried.
            logger.exception("unexpected error answering %s", route)
            error = HttpError(500, "internal error", "GENERAL")
            await respond(send, 500, error.body())
        if code:  # 0: an event stream that recorded itself when it opened
            self.metrics.observe(route, code, time.perf_counter() - started)

    def _error_cors(self, request: Request) -> Headers:
        try:
            return self.access.cors(request, None)
        except HttpError:
            return []

    async def _dispatch(self, request: Request, receive: Receive, send: Send) -> tuple[str, int]:
        path = request.path
        path_namespace: str | None = None
        if path.startswith(NAMESPACE_PREFIX):
            path_namespace, _, rest = path[len(NAMESPACE_PREFIX) :].partition("/")
            path = "/" + rest
            if not path_namespace:
                raise HttpError(404, "not found")
        elif path in ("/healthz", "/readyz"):
            status, body = health_reply(path, self.store, detailed=False)
            await respond(send, status, body)
            return "health", status
        found = _ROUTES.get(path)
        if found is not None:
            route, method = found
        elif path.startswith(SINGLE_PREFIX) and len(path) > len(SINGLE_PREFIX):
            route, method = "ofrep_flag", "POST"
        else:
            raise HttpError(404, "not found")
        if request.method == "OPTIONS":
            status, headers = self.access.preflight(request)
            await respond(send, status, b"", headers)
            return "preflight", status
        # Before the token is known, an origin some token allows may read why it failed.
        cors = self._error_cors(request)
        try:
            if request.method != method and not (route == "document" and request.method == "HEAD"):
                raise HttpError(405, f"use {method}", headers=[(b"allow", method.encode())])
            principal = self.access.authenticate(
                request, path_namespace, ticket_ok=route == "ofrep_events"
            )
            # From here on replies carry this token's CORS headers, so the page can read them.
            cors = self.access.cors(request, principal)
            wait = self.rates.acquire(principal.kid, principal.rate, principal.burst)
            if wait:
                raise HttpError(
                    429,
                    "rate limit exceeded for this token",
                    "GENERAL",
                    [(b"retry-after", retry_after_header(wait))],
                )
            target = self._target(principal, path_namespace)
            if not self.store.synced:
                raise HttpError(503, NOT_READY, "GENERAL", [(b"retry-after", b"1")])
            handler = self._handlers[route]
            code = await handler(request, receive, send, principal, target, cors)
        except HttpError as exc:
            await respond(send, exc.status, exc.body(), exc.headers + cors)
            return route, exc.status
        return route, code

    def _target(self, principal: Principal, path_namespace: str | None) -> Target:
        """The token's own namespace, else a copy another namespace shared with its scope
        (docs/sharing.md); 403 exactly as for any namespace outside the scope otherwise."""
        try:
            return Target.own(self.access.namespace_for(principal, path_namespace))
        except HttpError as exc:
            if exc.status != 403 or path_namespace is None:
                raise
            if not self.store.synced:
                raise HttpError(503, NOT_READY, "GENERAL", [(b"retry-after", b"1")]) from None
            found = shared_target(self.store, principal.namespaces, path_namespace)
            if found is None:
                raise
            return found

    # -- OFREP ---------------------------------------------------------------------------

    def stream_entry(self, principal: Principal, namespace: str) -> bytes:
        key = (principal.kid, namespace)
        entry = self._stream_entries.get(key)
        if entry is None:
            uri = f"{self.settings.root_path}{NAMESPACE_PREFIX}{quote(namespace)}{OFREP_EVENTS}"
            if principal.entry is not None:
                uri += f"?ticket={principal.entry.ticket(namespace)}"
            if len(self._stream_entries) > 10_000:
                self._stream_entries.clear()
            entry = self._stream_entries[key] = ofrep.stream_entry(uri)
        return entry

    async def _bulk(
        self,
        request: Request,
        receive: Receive,
        send: Send,
        principal: Principal,
        target: Target,
        cors: Headers,
    ) -> int:
        body = await read_body(receive, request, self.settings.max_body_bytes)
        context = ofrep.parse_context(body, self.settings)
        wanted = query_value(request.query, "flagConfigEtag") if request.query else None
        if wanted and not self.store.knows(target.key, wanted):
            await self.store.wait_for_revision(
                target.key, wanted, self.settings.refetch_wait_seconds
            )
        snapshot = self.store.get(target.key)
        entry = self.stream_entry(principal, target.namespace)
        answer = ofrep.BulkAnswer(snapshot, context, entry, target.key)
        headers = [(b"etag", answer.etag), (b"cache-control", b"no-cache"), *cors]
        if etag_matches(request.headers.get(b"if-none-match"), answer.etag):
            await respond(send, 304, b"", headers)
            return 304
        body = answer.body(entry, ofrep.bulk_metadata(target.namespace, snapshot))
        await respond(send, 200, body, headers)
        return 200

    async def _single(
        self,
        request: Request,
        receive: Receive,
        send: Send,
        principal: Principal,
        target: Target,
        cors: Headers,
    ) -> int:
        key = request.path.rpartition(SINGLE_PREFIX)[2]
        body = await read_body(receive, request, self.settings.max_body_bytes)
        context = ofrep.parse_context(body, self.settings, key)
        await respond(send, 200, ofrep.single(self.store.get(target.key), key, context), cors)
        return 200

    async def _ofrep_events(
        self,
        request: Request,
        receive: Receive,
        send: Send,
        principal: Principal,
        target: Target,
        cors: Headers,
    ) -> int:
        return await self._stream(
            "ofrep", streams.ofrep_render, request, receive, send, principal, target, cors
        )

    # -- documents -----------------------------------------------------------------------

    async def _document(
        self,
        request: Request,
        receive: Receive,
        send: Send,
        principal: Principal,
        target: Target,
        cors: Headers,
    ) -> int:
        snapshot = self.store.get(target.key)
        if snapshot is None:
            raise HttpError(404, "no flags are published in this namespace yet", "GENERAL")
        etag = b'"' + snapshot.revision.encode() + b'"'
        headers = [(b"etag", etag), (b"cache-control", b"no-cache"), *cors]
        if etag_matches(request.headers.get(b"if-none-match"), etag):
            await respond(send, 304, b"", headers)
            return 304
        body = b"" if request.method == "HEAD" else snapshot.text
        await respond(send, 200, body, headers)
        return 200

    async def _document_stream(
        self,
        request: Request,
        receive: Receive,
        send: Send,
        principal: Principal,
        target: Target,
        cors: Headers,
    ) -> int:
        return await self._stream(
            "document", streams.document_render, request, receive, send, principal, target, cors
        )

    # -- event streams -------------------------------------------------------------------

    async def _stream(
        self,
        kind: str,
        render: streams.Render,
        request: Request,
        receive: Receive,
        send: Send,
        principal: Principal,
        target: Target,
        cors: Headers,
    ) -> int:
        if not self.streams.try_open(principal.kid, principal.max_streams):
            raise HttpError(
                429,
                f"this token has {principal.max_streams} event streams open already",
                "GENERAL",
                [(b"retry-after", b"5")],
            )
        gauge = self.metrics.stream_clients.labels(kind=kind)
        events = self.metrics.stream_events.labels(kind=kind)
        gauge.inc()
        route = "ofrep_events" if kind == "ofrep" else "document_stream"
        self.metrics.observe(route, 200, time.perf_counter() - request.started)
        try:
            await streams.run_stream(
                send,
                receive,
                self.store,
                target.key,
                request.header(b"last-event-id"),
                render,
                cors,
                self.settings.retry_ms,
                events.inc,
            )
        finally:
            gauge.dec()
            self.streams.close(principal.kid)
        return 0
