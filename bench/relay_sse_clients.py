"""Many idle event-stream clients in one process, for the relay benchmark.

    python -m bench.relay_sse_clients --url http://127.0.0.1:PORT/ofrep/v1/events \
        --token T --clients 10000

Opens the streams (a few hundred at a time), prints `{"connected": N}` once each has
its hello, then counts, per client, the first `refetchEvaluation` event after that
and prints one JSON summary: how many got one and when (CLOCK_MONOTONIC, the same
clock as the benchmark's `time.monotonic()`). Exits when every client has one, or
after --timeout seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

_BATCH = 250


class _Tally:
    """When each client got its notice; `complete` once all have."""

    def __init__(self, clients: int) -> None:
        self.at = [0.0] * clients
        self.count = 0
        self.complete = asyncio.Event()

    def got(self, index: int) -> None:
        if not self.at[index]:
            self.at[index] = time.monotonic()
            self.count += 1
            if self.count == len(self.at):
                self.complete.set()


async def _client(
    host: str, port: int, request: bytes, hello: asyncio.Event, tally: _Tally, index: int
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    buffer = b""
    greeted = False
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            buffer += chunk
            if not greeted and b"\r\n\r\n" in buffer and b"\n\n" in buffer.split(b"\r\n\r\n", 1)[1]:
                greeted = True
                hello.set()
            if greeted and b"refetchEvaluation" in buffer:
                tally.got(index)
                buffer = b""
    finally:
        writer.close()


async def _main(url: str, token: str, clients: int, wait_seconds: float) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    tally = _Tally(clients)
    hellos = [asyncio.Event() for _ in range(clients)]
    tasks = []
    started = time.monotonic()
    for first in range(0, clients, _BATCH):
        batch = range(first, min(first + _BATCH, clients))
        for i in batch:
            tasks.append(asyncio.create_task(_client(host, port, request, hellos[i], tally, i)))
        await asyncio.gather(*(hellos[i].wait() for i in batch))
    print(json.dumps({"connected": clients, "seconds": time.monotonic() - started}), flush=True)
    # Past the deadline the summary says how many got it.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.complete.wait(), wait_seconds)
    received = [t for t in tally.at if t]
    for task in tasks:
        task.cancel()
    return {
        "clients": clients,
        "received": len(received),
        "first": min(received) if received else None,
        "last": max(received) if received else None,
        "disconnected": sum(1 for t in tasks if t.done() and not t.cancelled()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay_sse_clients")
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        summary = uvloop.run(_main(args.url, args.token, args.clients, args.timeout))
    except ImportError:
        summary = asyncio.run(_main(args.url, args.token, args.clients, args.timeout))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
