"""A stand-in app's traffic: `flagops_integration_operations_total` at a rate and error share the
caller controls, exported over HTTP for a real Prometheus to scrape (tests, demo, benchmarks)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, start_http_server

from flagops_devtools.testing.process import free_port


class TrafficGenerator:
    def __init__(self, integration: str, flag: str, *, rate: float = 50.0) -> None:
        self.integration = integration
        self.flag = flag
        self.registry, self.operations = self._fresh_counters()
        self.rate = rate  # operations per second
        self.error_share = 0.0
        self.port = free_port()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._errors_owed = 0.0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _fresh_counters(self) -> tuple[CollectorRegistry, Counter]:
        registry = CollectorRegistry()
        operations = Counter(
            "flagops_integration_operations",
            "Integration operations by outcome",
            ["integration", "flag", "outcome"],
            registry=registry,
        )
        # Export every outcome from the start, as a real app's counters would after init.
        for outcome in ("success", "error", "rate_limited"):
            operations.labels(self.integration, self.flag, outcome)
        return registry, operations

    def _serve(self) -> None:
        server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self._server = server

    def _stop_serving(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def start(self) -> TrafficGenerator:
        self._serve()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        tick = 0.1
        while not self._stop.wait(tick):
            total = self.rate * tick
            errors = total * self.error_share + self._errors_owed
            whole_errors = int(errors)
            self._errors_owed = errors - whole_errors
            ok = max(0.0, total - whole_errors)
            labels = (self.integration, self.flag)
            self.operations.labels(*labels, "success").inc(ok)
            if whole_errors:
                self.operations.labels(*labels, "error").inc(whole_errors)

    def set(self, *, rate: float | None = None, error_share: float | None = None) -> None:
        if rate is not None:
            self.rate = rate
        if error_share is not None:
            self.error_share = error_share

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._stop_serving()

    def restart(self) -> None:
        """The app restarts: its endpoint goes away and comes back on the same port with
        every counter at zero (a counter reset, as Prometheus sees one), traffic unchanged."""
        self._stop_serving()
        self.registry, self.operations = self._fresh_counters()
        self._serve()


@contextmanager
def traffic(integration: str, flag: str, rate: float = 50.0) -> Iterator[TrafficGenerator]:
    generator = TrafficGenerator(integration, flag, rate=rate).start()
    try:
        yield generator
    finally:
        generator.stop()
