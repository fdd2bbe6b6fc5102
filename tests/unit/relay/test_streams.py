"""Event streams in-process: ids, Last-Event-ID, change events, keep-alives, caps, tickets."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import orjson
from relay_asgi import SHOP_TOKEN, SLOW_TOKEN, Reply, bearer, call, make_relay, open_stream

from flagops.flags.document import build_document
from flagops.relay.server import Relay
from flagops.relay.store import Wake, build_snapshot

EVENTS = "/ofrep/v1/events"
DOC_STREAM = "/v1/flags/stream"


def new_revision(relay: Relay, percent: int) -> str:
    text, revision = build_document({"dark_mode": {"enabled": True, "rolloutPercent": percent}})
    relay.store.apply(build_snapshot("shop", text))
    return revision


async def settle(reply: Reply, count: int) -> None:
    for _ in range(200):
        if len(reply.chunks) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"only {len(reply.chunks)} chunks: {reply.chunks}")


def parse(chunk: bytes) -> list[dict[str, str]]:
    events = []
    for block in chunk.split(b"\n\n"):
        fields: dict[str, str] = {}
        for line in block.decode().splitlines():
            name, _, value = line.partition(": ")
            fields[name] = fields.get(name, "") + value
        if fields:
            events.append(fields)
    return events


async def _ofrep_stream() -> None:
    relay = make_relay()
    first_revision = relay.store.get("shop").revision  # type: ignore[union-attr]
    task, reply = await open_stream(relay, EVENTS, bearer(SHOP_TOKEN))
    await settle(reply, 1)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    hello = parse(reply.chunks[0])
    assert hello[0] == {"retry": "2000"}
    assert hello[1] == {"id": first_revision}  # no data: browsers record the id only
    revision = new_revision(relay, 40)
    await settle(reply, 2)
    (event,) = parse(reply.chunks[1])
    assert event["id"] == revision
    assert orjson.loads(event["data"]) == {"type": "refetchEvaluation", "etag": revision}
    relay.store.wake_all(Wake.KEEPALIVE)
    await settle(reply, 3)
    assert reply.chunks[2] == b": keep-alive\n\n"
    relay.store.shutdown()
    final = await asyncio.wait_for(task, 5)
    assert final.chunks[-1] == b""
    assert relay.app.streams.open_count(relay.access.table.lookup(SHOP_TOKEN).kid) == 0  # type: ignore[union-attr]


def test_ofrep_stream_ids_events_keepalive_shutdown() -> None:
    asyncio.run(_ofrep_stream())


async def _resume() -> None:
    relay = make_relay()
    old = relay.store.get("shop").revision  # type: ignore[union-attr]
    current = new_revision(relay, 30)
    # A client that saw `old` missed a change: it is told at once.
    task, reply = await open_stream(relay, EVENTS, {**bearer(SHOP_TOKEN), "Last-Event-ID": old})
    await settle(reply, 1)
    events = parse(reply.chunks[0])
    assert events[1]["id"] == current and "refetchEvaluation" in events[1]["data"]
    # One that has the current revision gets nothing but the retry hint.
    task2, reply2 = await open_stream(
        relay, DOC_STREAM, {**bearer(SHOP_TOKEN), "Last-Event-ID": current}
    )
    await settle(reply2, 1)
    assert parse(reply2.chunks[0]) == [{"retry": "2000"}]
    relay.store.shutdown()
    await asyncio.gather(task, task2)


def test_last_event_id_resume() -> None:
    asyncio.run(_resume())


async def _document_stream() -> None:
    relay = make_relay()
    snapshot = relay.store.get("shop")
    assert snapshot is not None
    task, reply = await open_stream(relay, DOC_STREAM, bearer(SHOP_TOKEN))
    await settle(reply, 1)
    (_, first) = parse(reply.chunks[0])
    assert first["id"] == snapshot.revision
    assert first["data"].encode() == snapshot.text
    revision = new_revision(relay, 60)
    await settle(reply, 2)
    (second,) = parse(reply.chunks[1])
    assert second["id"] == revision
    assert orjson.loads(second["data"])["flags"]["dark_mode"]["rolloutPercent"] == 60
    relay.store.shutdown()
    await task


def test_document_stream_sends_whole_documents() -> None:
    asyncio.run(_document_stream())


async def _cap_and_ticket() -> None:
    relay = make_relay()
    task, reply = await open_stream(relay, EVENTS, bearer(SLOW_TOKEN))
    await settle(reply, 1)
    second = await call(relay, "GET", EVENTS, bearer(SLOW_TOKEN))
    assert second.status == 429 and second.headers["retry-after"]
    # The bulk reply's stream URI works without any header: the browser's EventSource way.
    bulk = await call(relay, "POST", "/ofrep/v1/evaluate/flags", bearer(SHOP_TOKEN), b"{}")
    uri = bulk.json()["eventStreams"][0]["endpoint"]["requestUri"]
    parts = urlsplit(uri)
    task2, reply2 = await open_stream(relay, parts.path, {}, parts.query.encode())
    await settle(reply2, 1)
    assert reply2.status == 200
    forged = await call(relay, "GET", parts.path, {}, query=parts.query.encode()[:-3] + b"abc")
    assert forged.status == 401
    elsewhere = await call(
        relay, "GET", "/namespaces/billing" + EVENTS, {}, query=parts.query.encode()
    )
    assert elsewhere.status == 401
    relay.store.shutdown()
    await asyncio.gather(task, task2)


def test_stream_cap_and_tickets() -> None:
    asyncio.run(_cap_and_ticket())
