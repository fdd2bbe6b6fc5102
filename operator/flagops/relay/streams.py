"""Server-sent event streams: one coroutine per client, woken by the store.

A stream costs one coroutine and one pending `receive()` (to notice the client
leaving); no timer of its own: one loop-wide keep-alive tick wakes every stream.
Event ids are revisions, so `Last-Event-ID` means the same thing on every
replica and after a restart: a client that names the revision being served has
missed nothing; any other id gets the current state at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from flagops.relay.http import Receive, Send
from flagops.relay.store import Snapshot, Store, Wake

KEEPALIVE = b": keep-alive\n\n"
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store"),
    # Proxies (nginx) must pass each event on at once.
    (b"x-accel-buffering", b"no"),
]


def event(event_id: str, data: bytes) -> bytes:
    """One SSE event; `data` split into lines as the format wants (JSON has none)."""
    if b"\n" in data or b"\r" in data:
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        body = b"".join(b"data: " + line + b"\n" for line in lines)
    else:
        body = b"data: " + data + b"\n"
    return b"id: " + event_id.encode() + b"\n" + body + b"\n"


def id_only(event_id: str) -> bytes:
    """An event with an id and no data: browsers record the id and dispatch nothing."""
    return b"id: " + event_id.encode() + b"\n\n"


# (snapshot now served or None, revision the client has or None) -> bytes to send
Render = Callable[[Snapshot | None, str | None], bytes]


async def run_stream(
    send: Send,
    receive: Receive,
    store: Store,
    namespace: str,
    last_event_id: str | None,
    render: Render,
    headers: list[tuple[bytes, bytes]],
    retry_ms: int,
    on_event: Callable[[], None],
) -> None:
    """Serve one stream until the client leaves or the relay shuts down.

    `render(snapshot, known)` gives what a client that has revision `known` needs
    (b"" when nothing); it is called on connect and after every change.
    """
    subscriber = store.subscribe(namespace)
    disconnect = asyncio.ensure_future(_until_disconnect(receive))
    disconnect.add_done_callback(lambda _: subscriber.wake(Wake.DISCONNECT))
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS + headers})
        snapshot = store.get(namespace)
        first = render(snapshot, last_event_id)
        # From here on `known` is a string: "" stands for "no document yet".
        known = snapshot.revision if snapshot is not None else (last_event_id or "")
        await send(
            {
                "type": "http.response.body",
                "body": b"retry: " + str(retry_ms).encode() + b"\n\n" + first,
                "more_body": True,
            }
        )
        if first:
            on_event()
        while True:
            why = await subscriber.wait()
            if why is Wake.DISCONNECT or why is Wake.SHUTDOWN:
                break
            if why is Wake.CHANGE:
                snapshot = store.get(namespace)
                current = snapshot.revision if snapshot is not None else ""
                if current == known:
                    continue
                body = render(snapshot, known)
                known = current
                if not body:
                    continue
                on_event()
            else:
                body = KEEPALIVE
            await send({"type": "http.response.body", "body": body, "more_body": True})
        if not disconnect.done():
            # Shutting down: end the response cleanly so the client reconnects elsewhere.
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        store.unsubscribe(subscriber)
        disconnect.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await disconnect


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def ofrep_render(snapshot: Snapshot | None, known: str | None) -> bytes:
    """OFREP change notices: `refetchEvaluation` with the revision as event id and etag."""
    revision = snapshot.revision if snapshot is not None else ""
    if known is None:
        # A fresh client: give it the id to resume from, nothing to refetch.
        return id_only(revision) if revision else b""
    if known == revision:
        return b""
    data = b'{"type":"refetchEvaluation","etag":"' + revision.encode() + b'"}'
    return event(revision or "0", data)


def document_render(snapshot: Snapshot | None, known: str | None) -> bytes:
    """Whole documents: on connect (unless the client has this revision) and on change."""
    if snapshot is None or snapshot.revision == known:
        return b""
    return event(snapshot.revision, snapshot.text)
