"""The relay source: the relay's document stream, `GET <url>/v1/flags/stream` (SSE).

The relay sends the whole `flags.json` document as one event on connect and on
every change, so a reconnect is also a full catch-up. Standard library HTTP on
one daemon thread: the core install stays light. The token goes into one
request header and nowhere else (no log line, no exception, no repr).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from flagops.flags.backoff import Backoff
from flagops.flags.metrics import SdkMetrics
from flagops.flags.snapshot import Sink
from flagops.flags.sse import SseParser

__all__ = ["STREAM_PATH", "RelayEndpoint", "RelaySource"]

log = logging.getLogger("flagops.flags")

STREAM_PATH = "/v1/flags/stream"
_READ_SIZE = 64 * 1024
_MAX_RETRY_AFTER = 300.0
_TOKEN = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class RelayEndpoint:
    """Where the relay is: `http(s)://host[:port][/prefix]`, e.g. `http://relay/namespaces/shop`."""

    https: bool
    host: str
    port: int | None
    prefix: str

    @classmethod
    def parse(cls, url: str) -> RelayEndpoint:
        # The messages never repeat the URL: a mistyped one may hold a credential.
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError("relay URL is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("relay URL must be http(s)://host[:port][/prefix]")
        if parts.username is not None or parts.password is not None:
            raise ValueError("relay URL must not carry credentials: pass token= instead")
        if parts.query or parts.fragment:
            raise ValueError("relay URL must not have a query or fragment")
        return cls(parts.scheme == "https", parts.hostname, port, parts.path.rstrip("/"))

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port is None else f":{self.port}"
        return f"{'https' if self.https else 'http'}://{host}{port}{self.prefix}"

    def connect(
        self, timeout: float, ssl_context: ssl.SSLContext | None
    ) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=ssl_context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


TokenProvider = Callable[[], str | None]


class RelaySource:
    """Follows the relay's document stream on a daemon thread and feeds each event to `sink`.

    Reconnects after any failure or drop, waiting `backoff.next()` (reset once a
    stream delivers data; at least the server's `Retry-After`, and starting from
    its SSE `retry:`). `on_live(True)` when a stream opens, `on_live(False)` when
    it ends. `sleep(seconds)` waits between attempts (default: an interruptible
    wait that `close()` ends at once).
    """

    def __init__(
        self,
        endpoint: RelayEndpoint,
        sink: Sink,
        metrics: SdkMetrics,
        metrics_label: str,
        *,
        token: TokenProvider,
        backoff: Backoff,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], object] | None = None,
        on_live: Callable[[bool], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.label = endpoint.label
        self._sink = sink
        self._metrics = metrics
        self._metrics_label = metrics_label
        self._token = token
        self._backoff = backoff
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ssl_context = ssl_context
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._on_live = on_live
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._problem: str | None = None
        self.connected = False  # the stream is open
        # Set once the first attempt has an outcome: a first event, or a failure.
        self.first_attempt = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"flagops-flags-relay[{self.label}]", daemon=True
        )

    def start(self) -> None:
        self._metrics.relay_connected.labels(self._metrics_label).set(0)
        self._thread.start()

    def close(self) -> None:
        """Stop following the stream; returns once the thread has ended."""
        self._stop.set()
        while self._thread.is_alive() and self._thread is not threading.current_thread():
            # Shut the socket down (again: a connection may have opened since) to wake a
            # blocking read at once; the thread then sees the stop flag.
            with self._lock:
                conn = self._conn
            sock = conn.sock if conn is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._thread.join(0.1)

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                retry_after = self._attempt()
            except Exception as exc:  # a surprise must not end the thread (and with it updates)
                self._report(f"unexpected {type(exc).__name__}")  # never str(exc): may quote
                retry_after = 0.0
            self.first_attempt.set()
            if self._stop.is_set():
                break
            delay = max(self._backoff.next(), retry_after)
            log.debug("relay %s: next attempt in %.2f s", self.label, delay)
            self._sleep(delay)
            if not self._stop.is_set():
                self._metrics.relay_reconnects.labels(self._metrics_label).inc()

    def _attempt(self) -> float:
        """One connection, streamed until it ends. Returns the server's Retry-After (or 0)."""
        try:
            headers = self._headers()
        except OSError as exc:
            self._report(f"token file unreadable ({type(exc).__name__})")
            return 0.0
        except ValueError as exc:
            self._report(str(exc))
            return 0.0
        conn = self.endpoint.connect(self._connect_timeout, self._ssl_context)
        with self._lock:
            if self._stop.is_set():
                return 0.0
            self._conn = conn
        live = False
        try:
            conn.request("GET", self.endpoint.prefix + STREAM_PATH, headers=headers)
            response = conn.getresponse()
            content_type = response.getheader("Content-Type", "")
            if response.status != 200 or not content_type.startswith("text/event-stream"):
                return self._refused(response, content_type)
            if conn.sock is not None:
                # A silent dead peer (no FIN) is noticed when nothing arrives this long.
                conn.sock.settimeout(self._read_timeout)
            live = True
            self._opened()
            self._stream(response)
        except (OSError, http.client.HTTPException) as exc:
            if not self._stop.is_set():
                self._report(_describe(exc, self._read_timeout if live else None))
        finally:
            with self._lock:
                self._conn = None
            conn.close()
            if live:
                self.connected = False
                self._metrics.relay_connected.labels(self._metrics_label).set(0)
                if self._on_live is not None:
                    self._on_live(False)
        return 0.0

    def _stream(self, response: http.client.HTTPResponse) -> None:
        parser = SseParser()
        received = False
        while not self._stop.is_set():
            chunk = response.read1(_READ_SIZE)
            if not chunk:
                if not self._stop.is_set():
                    self._report("the relay closed the stream")
                return
            if not received:
                received = True
                self._backoff.reset()
            for event in parser.feed(chunk):
                self._sink.accept(event.data, self.label)
                self.first_attempt.set()
            if parser.retry_ms is not None:
                self._backoff.set_initial(parser.retry_ms / 1000)
                parser.retry_ms = None

    # -- helpers -----------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        token = self._token()
        if token:
            check_token(token)
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _opened(self) -> None:
        self.connected = True
        self._metrics.relay_connected.labels(self._metrics_label).set(1)
        if self._problem is not None:
            log.info("relay %s: stream open again (was: %s)", self.label, self._problem)
        else:
            log.info("relay %s: stream open", self.label)
        self._problem = None
        if self._on_live is not None:
            self._on_live(True)

    def _refused(self, response: http.client.HTTPResponse, content_type: str) -> float:
        status = response.status
        # The body is drained unread: it is the server's to word, not ours to log.
        response.read(_READ_SIZE)
        if status == 200:
            self._report(f"the relay answered {content_type or 'no content type'}, not a stream")
        elif status in (401, 403):
            self._report(f"the relay refused the token ({status} {response.reason})")
        else:
            self._report(f"the relay answered {status} {response.reason}")
        return _retry_after(response.getheader("Retry-After"))

    def _report(self, problem: str) -> None:
        # Said once per distinct problem: a relay down for an hour is one warning, not 500.
        kept = "keeping the flags in use"
        if problem != self._problem:
            log.warning("relay %s: %s; %s, reconnecting", self.label, problem, kept)
        else:
            log.debug("relay %s: %s; %s, reconnecting", self.label, problem, kept)
        self._problem = problem


def check_token(token: str) -> None:
    """A token must be header-safe text; http.client would quote a bad one in its error."""
    if not _TOKEN.fullmatch(token):
        raise ValueError("the token must be printable ASCII without spaces")


def _retry_after(value: str | None) -> float:
    # Only the delta-seconds form: an HTTP-date needs a clock agreeing with the server's.
    if value is None or not value.strip().isdigit():
        return 0.0
    return min(float(value.strip()), _MAX_RETRY_AFTER)


def _describe(exc: BaseException, read_timeout: float | None) -> str:
    if isinstance(exc, TimeoutError) and read_timeout is not None:
        return f"no data for {read_timeout:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__
