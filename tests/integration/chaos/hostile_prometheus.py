"""HostilePrometheus: a TEST DOUBLE for hostile input, not a stand-in for Prometheus.

It impersonates Prometheus's instant-query API (`GET /api/v1/query`) only to
answer what a real Prometheus never would on purpose: NaN, +Inf, a string, an
HTML page with status 200, a matrix, an empty result, a 30 s stall, a huge
body. Everywhere else the tests use the real Prometheus (testing/prometheus.py).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote_plus

STALL_SECONDS = 30.0
HUGE_MEBIBYTES = 20
_MIB = b" " * (1024 * 1024)


def _answer(kind: str, result: Any) -> bytes:
    return json.dumps(
        {"status": "success", "data": {"resultType": kind, "result": result}}
    ).encode()


def _vector(value: str, labels: dict[str, str] | None = None) -> bytes:
    return _answer("vector", [{"metric": labels or {}, "value": [1700000000.0, value]}])


# What a grouped analysis query's series carry (one integration, the successes).
GROUPED_LABELS = {"integration": "calendar_sync", "outcome": "success"}


class HostilePrometheus:
    """Answers every query according to `mode`; counts what it served per mode."""

    MODES = ("good", "empty", "nan", "inf", "string", "html", "matrix", "stall", "huge")

    def __init__(self) -> None:
        self.mode = "empty"
        self.served: Counter[str] = Counter()
        self._release = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HostilePrometheus:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def count(self, mode: str) -> int:
        with self._lock:
            return self.served[mode]

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        mode = self.mode
        with self._lock:
            self.served[mode] += 1
        rate_query = " / " in handler.path or "%2F" in handler.path
        # A grouped analysis query sums by integration: its samples must say which.
        grouped = "outcome" in unquote_plus(handler.path) and "sum by" in unquote_plus(handler.path)
        labels = GROUPED_LABELS if grouped else None
        try:
            if mode == "stall":
                self._release.wait(STALL_SECONDS)
                self._send(handler, 200, "application/json", _vector("0"))
            elif mode == "huge":
                self._send_huge(handler)
            elif mode == "html":
                page = b"<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>"
                self._send(handler, 200, "text/html; charset=utf-8", page)
            else:
                self._send(handler, 200, "application/json", self._body(mode, rate_query, labels))
        except (BrokenPipeError, ConnectionResetError):
            # The operator gave up on us, as it should on a stall or a huge body.
            return

    @staticmethod
    def _body(mode: str, rate_query: bool, labels: dict[str, str] | None = None) -> bytes:
        if mode == "good":
            return _vector("0" if rate_query else "1000", labels)
        if mode == "nan":
            return _vector("NaN", labels)
        if mode == "inf":
            return _vector("+Inf", labels)
        if mode == "string":
            return _answer("string", [1700000000.0, "hello"])
        if mode == "matrix":
            return _answer("matrix", [{"metric": {}, "values": [[1700000000.0, "1"]]}])
        return _answer("vector", [])

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, code: int, content_type: str, body: bytes) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    @staticmethod
    def _send_huge(handler: BaseHTTPRequestHandler) -> None:
        # No Content-Length (HTTP/1.0, body until close): only a bounded read saves the reader.
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":["')
        for _ in range(HUGE_MEBIBYTES):
            handler.wfile.write(_MIB)
        handler.wfile.write(b'"]}}')
