"""Calls the relay's ASGI app in-process, as uvicorn would, for unit tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from flagops.flags.document import build_document
from flagops.relay.server import Relay
from flagops.relay.settings import RelaySettings
from flagops.relay.store import build_snapshot
from flagops.relay.tokens import TokenTable

SHOP_TOKEN = "shop-token-0123456789abcdef"
BOTH_TOKEN = "both-token-0123456789abcdef"
SLOW_TOKEN = "slow-token-0123456789abcdef"
ORIGIN = "https://shop.example.com"

FLAGS: dict[str, dict[str, Any]] = {
    "calendar_sync": {
        "enabled": True,
        "rolloutPercent": 50,
        "allowedCohorts": ["beta"],
        "stage": "LIMITED",
    },
    "dark_mode": {"enabled": True, "rolloutPercent": 100, "stage": "FULL"},
    "kill_switch": {"enabled": False, "rolloutPercent": 0},
}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks: list[bytes] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


def tokens_table() -> TokenTable:
    return TokenTable.parse(
        json.dumps(
            {
                "tokens": [
                    {
                        "name": "shop",
                        "token": SHOP_TOKEN,
                        "namespaces": ["shop"],
                        "origins": [ORIGIN],
                    },
                    {"name": "both", "token": BOTH_TOKEN, "namespaces": ["shop", "billing"]},
                    {
                        "name": "slow",
                        "token": SLOW_TOKEN,
                        "namespaces": ["shop"],
                        "requestsPerSecond": 0.001,
                        "burst": 2,
                        "maxStreams": 1,
                    },
                ]
            }
        )
    )


def make_relay(flags: dict[str, dict[str, Any]] | None = None, **settings: Any) -> Relay:
    relay = Relay(RelaySettings(**{"tokens_file": None, "max_body_bytes": 1024, **settings}))
    relay.access.table = tokens_table()
    text, _ = build_document(FLAGS if flags is None else flags)
    relay.store.apply(build_snapshot("shop", text))
    relay.store.synced = True
    relay.store.set_watch_up(True)
    return relay


async def call(
    relay: Relay,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    query: bytes = b"",
    reply: Reply | None = None,
) -> Reply:
    """One request; pass `reply` to watch a stream's chunks arrive while it runs."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # a client that stays connected
        return {"type": "http.disconnect"}

    if reply is None:
        reply = Reply(0, {}, b"")

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            reply.status = message["status"]
            reply.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            reply.chunks.append(message.get("body", b""))
            reply.body += message.get("body", b"")

    await relay.app(scope, receive, send)
    return reply


async def open_stream(
    relay: Relay, path: str, headers: dict[str, str], query: bytes = b""
) -> tuple[asyncio.Task[Reply], Reply]:
    """A stream request left running; its reply fills as events are sent."""
    reply = Reply(0, {}, b"")
    before = len(relay.store.subscribers())
    task = asyncio.create_task(call(relay, "GET", path, headers, query=query, reply=reply))
    for _ in range(400):
        await asyncio.sleep(0.005)
        if len(relay.store.subscribers()) > before or task.done():
            break
    return task, reply


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
