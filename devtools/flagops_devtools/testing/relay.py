"""Runs `flagops relay` as a real child process (tests, demo, bench), and reads its streams."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flagops_devtools.testing.process import ManagedProcess, Service, free_port
from flagops_devtools.testing.wait import wait_for


class RelayProcess(Service):
    def __init__(
        self,
        kubeconfig: Path,
        namespaces: Sequence[str] = (),
        *,
        tokens: Sequence[Mapping[str, Any]] | None = None,
        extra_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        name: str = "flagops-relay",
        port: int | None = None,
        taskset_cpu: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.metrics_port = free_port()
        self.dir = log_dir or Path(tempfile.mkdtemp(prefix="flagops-relay-"))
        self.tokens_file = self.dir / "tokens.yaml"
        argv = [
            sys.executable,
            "-m",
            "flagops.cli.main",
            "relay",
            "--port",
            str(self.port),
            "--metrics-port",
            str(self.metrics_port),
            "--bind-address",
            "127.0.0.1",
            "--log-format",
            "text",
        ]
        if tokens is not None:
            self.write_tokens(tokens)
            argv += ["--tokens-file", str(self.tokens_file)]
        for namespace in namespaces:
            argv += ["--namespace", namespace]
        argv += list(extra_args)
        if taskset_cpu is not None:
            argv = ["taskset", "-c", str(taskset_cpu), *argv]
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), **(extra_env or {})}
        self.process = ManagedProcess(name, argv, self.dir / f"{name}.log", env=env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def write_tokens(self, tokens: Sequence[Mapping[str, Any]]) -> None:
        # Written aside and renamed, as kubelet swaps a mounted Secret: never half a file.
        staging = self.tokens_file.with_suffix(".tmp")
        staging.write_text(json.dumps({"tokens": list(tokens)}))
        staging.replace(self.tokens_file)

    def start(self, timeout: float = 60, ready: bool = True) -> RelayProcess:
        self.process.start()
        wait_for(
            self._ready if ready else self._alive,
            timeout=timeout,
            message=f"relay not ready: {self.process.describe_failure()}",
        )
        return self

    def _alive(self) -> bool:
        return self.health("/healthz")[0] == 200

    def _ready(self) -> bool:
        return self.health("/readyz")[0] == 200

    def health(self, path: str = "/readyz") -> tuple[int, dict[str, Any]]:
        if not self.process.running():
            raise RuntimeError(self.process.describe_failure())
        try:
            with urllib.request.urlopen(self.metrics_url + path, timeout=2) as response:  # noqa: S310
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url + "/metrics", timeout=5) as response:  # noqa: S310
            text: str = response.read().decode()
            return text

    def stop(self) -> None:
        self.process.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class SseEvent:
    """One server-sent event as a client received it, with its arrival time."""

    id: str | None
    data: str
    at: float  # time.perf_counter() on arrival

    def json(self) -> Any:
        return json.loads(self.data)


class SseReader:
    """Reads one event stream on a thread, keeping every event and comment it sees.

    A real client in the SSE sense: HTTP/1.1 over a socket, the event format parsed as
    the WHATWG spec says (fields, multi-line data, ids without data).
    """

    def __init__(
        self, url: str, headers: Mapping[str, str] | None = None, timeout: float = 30
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._target = parts.path + (f"?{parts.query}" if parts.query else "")
        self._headers = {"Accept": "text/event-stream", **(headers or {})}
        self._timeout = timeout
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}
        self.events: list[SseEvent] = []
        self.comments: list[str] = []
        self.retry_ms: int | None = None
        self.last_event_id: str | None = None
        self.closed = threading.Event()
        self.opened = threading.Event()
        self._cond = threading.Condition()
        self._connection: http.client.HTTPConnection | None = None
        self._thread = threading.Thread(target=self._run, name="sse-reader", daemon=True)

    def start(self) -> SseReader:
        self._thread.start()
        if not self.opened.wait(self._timeout):
            raise TimeoutError("event stream did not open")
        return self

    def close(self) -> None:
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(OSError):
                if connection.sock is not None:
                    connection.sock.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._thread.join(timeout=5)

    def mark(self) -> int:
        """An index into `events`: what arrives from now on has an index at least this."""
        with self._cond:
            return len(self.events)

    def wait_event(
        self,
        predicate: Callable[[SseEvent], bool] = lambda _: True,
        timeout: float = 10,
        since: int = 0,
    ) -> SseEvent:
        """The first event at or after index `since` (seen or to come) satisfying `predicate`."""
        deadline = time.monotonic() + timeout
        checked = since
        with self._cond:
            while True:
                for event in self.events[checked:]:
                    if predicate(event):
                        return event
                checked = max(checked, len(self.events))
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed.is_set():
                    raise TimeoutError(
                        f"no matching event within {timeout:g}s; got {len(self.events)} events"
                    )
                self._cond.wait(remaining)

    def _run(self) -> None:
        try:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=None)
            self._connection = connection
            connection.request("GET", self._target, headers=self._headers)
            response = connection.getresponse()
            self.status = response.status
            self.response_headers = {k.lower(): v for k, v in response.getheaders()}
            self.opened.set()
            if response.status != 200:
                response.read()
                return
            fields: dict[str, list[str]] = {}
            buffer = b""
            while True:
                chunk = response.read1(65536)
                if not chunk:
                    return
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    self._line(raw.rstrip(b"\r").decode(), fields)
        except Exception:  # closing from another thread ends the read in more ways than one
            return
        finally:
            self.opened.set()
            with self._cond:
                self.closed.set()
                self._cond.notify_all()

    def _line(self, line: str, fields: dict[str, list[str]]) -> None:
        if line == "":
            self._dispatch(fields)
            fields.clear()
            return
        if line.startswith(":"):
            with self._cond:
                self.comments.append(line[1:].strip())
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        fields.setdefault(name, []).append(value)

    def _dispatch(self, fields: dict[str, list[str]]) -> None:
        if "data" not in fields:
            return  # an id-only event: the browser records the id and dispatches nothing
        event = SseEvent(
            id=fields["id"][-1] if "id" in fields else self.last_event_id,
            data="\n".join(fields["data"]),
            at=time.perf_counter(),
        )
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()
