"""Assembles and runs the relay: logging, tokens, watch, the API and metrics servers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import resource
import signal
import sys
from collections.abc import Callable, Generator
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flagops.relay.access import Access
from flagops.relay.app import RelayApp
from flagops.relay.health import health_reply
from flagops.relay.http import Receive, Scope, Send, respond
from flagops.relay.kubewatch import RelayWatcher, load_api_client
from flagops.relay.metrics import RelayMetrics
from flagops.relay.settings import RelaySettings
from flagops.relay.store import Store, Wake

logger = logging.getLogger("flagops.relay")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type and where it was raised; its text could hold request data.
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry)


def configure_logging(log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # uvicorn's access log would print URLs, and an OFREP stream URL holds a ticket.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)


class MetricsApp:
    """The metrics port: /metrics, /healthz, /readyz, no token (keep it off the Service)."""

    def __init__(self, store: Store, metrics: RelayMetrics) -> None:
        self._store = store
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/metrics":
            self._metrics.watch_up.set(1 if self._store.watch_up else 0)
            body = generate_latest(self._metrics.registry)
            await respond(send, 200, body, content_type=CONTENT_TYPE_LATEST.encode())
        elif path in ("/healthz", "/readyz"):
            status, body = health_reply(path, self._store)
            await respond(send, status, body)
        else:
            await respond(send, 404, b'{"errorDetails":"not found"}')


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the relay and ends streams on shutdown."""

    def __init__(self, config: uvicorn.Config, before_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._before_shutdown = before_shutdown

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def shutdown(self, sockets: Any = None) -> None:
        self._before_shutdown()
        await super().shutdown(sockets)


class Relay:
    """The whole relay on the running loop; `serve()` returns when it is stopped."""

    def __init__(
        self,
        settings: RelaySettings,
        api_client_factory: Callable[[], Any] = load_api_client,
    ) -> None:
        self.settings = settings
        self.metrics = RelayMetrics()
        self.store = Store(on_revision=self.metrics.revision_changed)
        self.access = Access(settings, self.metrics)
        self.app = RelayApp(settings, self.store, self.access, self.metrics)
        self._api_client_factory = api_client_factory
        self.api_server: _Server | None = None
        self.metrics_server: _Server | None = None
        self.watcher: RelayWatcher | None = None

    def _config(self, app: Any, port: int) -> uvicorn.Config:
        return uvicorn.Config(
            app,
            host=self.settings.bind_address,
            port=port,
            loop="none",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_graceful_shutdown=5,
            # Idle keep-alive connections: browsers and providers reuse them between polls.
            timeout_keep_alive=30,
            backlog=4096,
        )

    def stop(self) -> None:
        for server in (self.api_server, self.metrics_server):
            if server is not None:
                server.should_exit = True

    async def serve(self) -> None:
        settings = self.settings
        self.access.load()
        if settings.dev_namespace is not None:
            logger.warning(
                "DEVELOPMENT MODE: namespace %s is served to ANYONE without a token. "
                "Never run this in a cluster (--dev-serve-namespace-without-tokens).",
                settings.dev_namespace,
            )
        loop = asyncio.get_running_loop()
        self.watcher = RelayWatcher(
            self.store, settings, self.metrics, loop, self._api_client_factory
        )
        self.watcher.start()
        self.api_server = _Server(self._config(self.app, settings.port), self.store.shutdown)
        self.metrics_server = _Server(
            self._config(MetricsApp(self.store, self.metrics), settings.metrics_port), lambda: None
        )
        tasks = [asyncio.create_task(self._keepalive(), name="relay-keepalive")]
        if settings.tokens_file is not None:
            tasks.append(
                asyncio.create_task(
                    self.access.follow(settings.tokens_reload_seconds),
                    name="relay-tokens",
                )
            )
        logger.info(
            "relay serving %s on %s:%d (metrics on port %d)",
            ", ".join(settings.namespaces) or "all namespaces",
            settings.bind_address,
            settings.port,
            settings.metrics_port,
        )
        try:
            await asyncio.gather(self.api_server.serve(), self.metrics_server.serve())
        finally:
            for task in tasks:
                task.cancel()
            self.watcher.stop()

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.settings.keepalive_seconds)
            self.store.wake_all(Wake.KEEPALIVE)
            self.app.rates.forget_except(self.access.token_kids())


def _raise_open_files_limit() -> None:
    """Every open event stream is a socket: take the hard limit, not the (often 1024) soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(settings: RelaySettings) -> int:
    configure_logging(settings.log_format)
    try:
        import uvloop

        runner: Callable[..., Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with the [relay] extra
        runner = asyncio.run
    _raise_open_files_limit()
    relay = Relay(settings)
    # Each request allocates a few hundred short-lived objects; the default gen-0 threshold
    # (700) runs the collector every few requests, and full collections over the modules
    # imported at start-up showed as 20-30 ms tail latencies. Measured in docs/relay.md.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, relay.stop)
        await relay.serve()

    runner(main())
    logger.info("stopped")
    return 0
