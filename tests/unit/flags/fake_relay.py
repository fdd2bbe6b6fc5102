"""FakeRelay: a stand-in for the relay's document stream, for unit tests of `from_relay` only.

A real HTTP/1.1 server on loopback speaking DESIGN's contract for
`GET <prefix>/v1/flags/stream`: `Authorization: Bearer <token>` or 401, then
`text/event-stream` in chunked encoding with the whole document as one event
(`id` = revision) on connect and on every `publish`. Tests can also push raw
bytes, drop every open stream, answer with an error status, go silent, or stop
and start again on the same port. The integration suite uses the real relay.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STREAM_PATH = "/v1/flags/stream"


@dataclass
class Refusal:
    status: int
    retry_after: str | None = None


@dataclass
class _Stream:
    outbox: queue.Queue[bytes | None] = field(default_factory=queue.Queue)
    sock: socket.socket | None = None


class FakeRelay:
    def __init__(
        self,
        token: str | None,
        prefix: str = "",
        *,
        document: str | None = None,
        port: int = 0,
        retry_ms: int | None = None,
        split_lines: bool = False,
    ) -> None:
        self.token = token
        self.prefix = prefix
        self.document = document
        self.retry_ms = retry_ms
        self.split_lines = split_lines  # send the document as several `data:` lines
        self.silent = False  # open streams but never write to them
        self.refusals: list[Refusal] = []  # answered, in order, before any stream opens
        self.requests: list[dict[str, str]] = []  # headers of every request, token masked
        self.connections = 0
        self._lock = threading.Lock()
        self._streams: list[_Stream] = []
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeRelay:
        relay = self

        class Handler(_Handler):
            fake = relay

        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every stream: the relay is down."""
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
            self._server = None
        self.drop()

    def __enter__(self) -> FakeRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}{self.prefix}"

    # -- what tests do -----------------------------------------------------------------

    def publish(self, document: str) -> None:
        """A new revision: every open stream gets it, later streams start with it."""
        with self._lock:
            self.document = document
            streams = list(self._streams)
        for stream in streams:
            stream.outbox.put(self.event(document))

    def send_raw(self, data: bytes) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.outbox.put(data)

    def drop(self) -> None:
        """End every open stream abruptly (a relay pod going away)."""
        with self._lock:
            streams, self._streams = self._streams, []
        for stream in streams:
            stream.outbox.put(None)
            if stream.sock is not None:
                with contextlib.suppress(OSError):
                    stream.sock.shutdown(socket.SHUT_RDWR)

    def open_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def event(self, document: str) -> bytes:
        from flagops.flags import read_document

        revision, _ = read_document(document)
        # A line break after each comma changes nothing JSON cares about (no key or
        # value in these documents holds a comma).
        lines = document.replace(",", ",\n").split("\n") if self.split_lines else [document]
        data = "".join(f"data: {line}\n" for line in lines)
        return f"id: {revision}\n{data}\n".encode()

    # -- the server side ---------------------------------------------------------------

    def _register(self, stream: _Stream) -> None:
        with self._lock:
            self._streams.append(stream)
            self.connections += 1

    def _unregister(self, stream: _Stream) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._streams.remove(stream)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeRelay
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the test's own output is what matters

    def do_GET(self) -> None:
        fake = self.fake
        headers = {k: v for k, v in self.headers.items()}
        if "Authorization" in headers:
            headers["Authorization"] = "<present>"
        fake.requests.append(headers)
        if self.path != fake.prefix + STREAM_PATH:
            self._reply(404, b'{"errorCode":"NOT_FOUND"}')
            return
        if fake.token is not None and self.headers.get("Authorization") != f"Bearer {fake.token}":
            self._reply(401, b'{"errorCode":"UNAUTHORIZED"}')
            return
        if fake.refusals:
            refusal = fake.refusals.pop(0)
            extra = {"Retry-After": refusal.retry_after} if refusal.retry_after else {}
            self._reply(refusal.status, b'{"errorCode":"GENERAL"}', extra)
            return
        self._stream()

    def _reply(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        fake = self.fake
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        stream = _Stream(sock=self.connection)
        fake._register(stream)
        self.close_connection = True
        try:
            if not fake.silent:
                first = b": hello\n\n"
                if fake.retry_ms is not None:
                    first += f"retry: {fake.retry_ms}\n\n".encode()
                if fake.document is not None:
                    first += fake.event(fake.document)
                self._chunk(first)
            while True:
                data = stream.outbox.get()
                if data is None:
                    return
                if not fake.silent:
                    self._chunk(data)
        except OSError:
            return
        finally:
            fake._unregister(stream)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
