"""The relay's HTTP surface in-process: OFREP answers, errors, CORS, limits, documents."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from relay_asgi import (
    BOTH_TOKEN,
    ORIGIN,
    SHOP_TOKEN,
    SLOW_TOKEN,
    bearer,
    call,
    make_relay,
)

from flagops.flags.document import build_document
from flagops.relay.store import build_snapshot

BULK = "/ofrep/v1/evaluate/flags"
CONTEXT = json.dumps({"context": {"targetingKey": "user-1", "cohort": "beta"}}).encode()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _bulk_then_304() -> None:
    relay = make_relay()
    first = await call(relay, "POST", BULK, bearer(SHOP_TOKEN), CONTEXT)
    assert first.status == 200
    assert first.headers["content-type"] == "application/json"
    body = first.json()
    answers = {f["key"]: (f["value"], f["reason"]) for f in body["flags"]}
    assert answers == {
        "calendar_sync": (True, "TARGETING_MATCH"),
        "dark_mode": (True, "STATIC"),
        "kill_switch": (False, "DISABLED"),
    }
    assert body["metadata"]["namespace"] == "shop"
    stream = body["eventStreams"][0]
    assert stream["type"] == "sse"
    assert stream["endpoint"]["requestUri"].startswith("/namespaces/shop/ofrep/v1/events?ticket=")
    etag = first.headers["etag"]
    again = await call(relay, "POST", BULK, {**bearer(SHOP_TOKEN), "If-None-Match": etag}, CONTEXT)
    assert (again.status, again.body, again.headers["etag"]) == (304, b"", etag)
    weak = await call(
        relay, "POST", BULK, {**bearer(SHOP_TOKEN), "If-None-Match": f'"x", W/{etag}'}, CONTEXT
    )
    assert weak.status == 304
    # Another user, or a new revision, is another ETag.
    other = await call(
        relay,
        "POST",
        BULK,
        {**bearer(SHOP_TOKEN), "If-None-Match": etag},
        b'{"context":{"targetingKey":"user-2"}}',
    )
    assert other.status == 200 and other.headers["etag"] != etag
    text, _ = build_document({"dark_mode": {"enabled": False, "rolloutPercent": 0}})
    relay.store.apply(build_snapshot("shop", text))
    changed = await call(
        relay, "POST", BULK, {**bearer(SHOP_TOKEN), "If-None-Match": etag}, CONTEXT
    )
    assert changed.status == 200
    assert [f["key"] for f in changed.json()["flags"]] == ["dark_mode"]


def test_bulk_etag_and_304() -> None:
    run(_bulk_then_304())


async def _errors() -> None:
    relay = make_relay()
    cases = [
        (await call(relay, "POST", BULK, {}, CONTEXT), 401, None),
        (await call(relay, "POST", BULK, bearer("wrong-token-0123456789abc"), CONTEXT), 401, None),
        (await call(relay, "POST", BULK, {"X-API-Key": "wrong"}, CONTEXT), 401, None),
        (
            await call(relay, "POST", "/namespaces/billing" + BULK, bearer(SHOP_TOKEN), CONTEXT),
            403,
            None,
        ),
        (
            await call(relay, "POST", "/namespaces/nowhere" + BULK, bearer(SHOP_TOKEN), CONTEXT),
            403,
            None,
        ),
        (await call(relay, "POST", BULK, bearer(BOTH_TOKEN), CONTEXT), 400, "GENERAL"),
        (await call(relay, "POST", BULK, bearer(SHOP_TOKEN), b"{not json"), 400, "PARSE_ERROR"),
        (await call(relay, "POST", BULK, bearer(SHOP_TOKEN), b"[1]"), 400, "PARSE_ERROR"),
        (
            await call(relay, "POST", BULK, bearer(SHOP_TOKEN), b'{"context": 3}'),
            400,
            "INVALID_CONTEXT",
        ),
        (
            await call(
                relay, "POST", BULK, bearer(SHOP_TOKEN), b'{"context": {"targetingKey": 7}}'
            ),
            400,
            "INVALID_CONTEXT",
        ),
        (
            await call(
                relay,
                "POST",
                BULK,
                bearer(SHOP_TOKEN),
                json.dumps({"context": {"cohort": "x" * 2000}}).encode(),
            ),
            413,
            None,
        ),
        (
            await call(
                relay,
                "POST",
                BULK,
                bearer(SHOP_TOKEN),
                json.dumps({"context": {f"a{i}": 1 for i in range(101)}}).encode(),
            ),
            400,
            "INVALID_CONTEXT",
        ),
        (
            await call(relay, "POST", BULK + "/nope", bearer(SHOP_TOKEN), CONTEXT),
            404,
            "FLAG_NOT_FOUND",
        ),
        (await call(relay, "GET", BULK, bearer(SHOP_TOKEN)), 405, None),
        (await call(relay, "GET", "/elsewhere", bearer(SHOP_TOKEN)), 404, None),
    ]
    for reply, status, code in cases:
        assert reply.status == status, reply
        if code is not None:
            assert reply.json()["errorCode"] == code
    assert cases[0][0].headers["www-authenticate"].startswith("Bearer")
    missing = cases[12][0].json()
    assert missing["key"] == "nope"
    # The same words for a namespace that exists and one that does not.
    assert cases[3][0].body == cases[4][0].body
    both = await call(relay, "POST", "/namespaces/shop" + BULK, bearer(BOTH_TOKEN), CONTEXT)
    assert both.status == 200
    assert "/namespaces/" in cases[5][0].json()["errorDetails"]
    counted = relay.metrics.registry.get_sample_value
    assert counted("flagops_relay_requests_total", {"route": "ofrep_bulk", "code": "401"}) == 3
    assert counted("flagops_relay_requests_total", {"route": "ofrep_flag", "code": "404"}) == 1
    assert counted("flagops_relay_requests_total", {"route": "unknown", "code": "404"}) == 1


def test_every_error_has_the_spec_code() -> None:
    run(_errors())


async def _single() -> None:
    relay = make_relay()
    reply = await call(relay, "POST", BULK + "/dark_mode", {"X-API-Key": SHOP_TOKEN}, b"{}")
    assert reply.status == 200
    assert reply.json() == {
        "key": "dark_mode",
        "value": True,
        "reason": "STATIC",
        "variant": "on",
        "metadata": {"revision": relay.store.get("shop").revision, "stage": "FULL"},  # type: ignore[union-attr]
    }
    anonymous = await call(
        relay, "POST", BULK + "/calendar_sync", bearer(SHOP_TOKEN), b'{"context": {}}'
    )
    assert (anonymous.json()["value"], anonymous.json()["reason"]) == (False, "DEFAULT")


def test_single_flag() -> None:
    run(_single())


async def _cors() -> None:
    relay = make_relay()
    preflight = await call(
        relay, "OPTIONS", BULK, {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    refused = await call(relay, "OPTIONS", BULK, {"Origin": "https://evil.example.com"})
    assert refused.status == 403
    assert "access-control-allow-origin" not in refused.headers
    ok = await call(relay, "POST", BULK, {**bearer(SHOP_TOKEN), "Origin": ORIGIN}, CONTEXT)
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "ETag" in ok.headers["access-control-expose-headers"]
    # BOTH_TOKEN allows no browser origin at all.
    other = await call(
        relay, "POST", "/namespaces/shop" + BULK, {**bearer(BOTH_TOKEN), "Origin": ORIGIN}, CONTEXT
    )
    assert other.status == 403
    unauthenticated = await call(relay, "POST", BULK, {"Origin": ORIGIN}, CONTEXT)
    assert unauthenticated.status == 401
    assert unauthenticated.headers["access-control-allow-origin"] == ORIGIN


def test_cors_for_allowed_origins_only() -> None:
    run(_cors())


async def _limits() -> None:
    relay = make_relay()
    statuses = [
        (await call(relay, "POST", BULK, bearer(SLOW_TOKEN), CONTEXT)).status for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    limited = await call(relay, "POST", BULK, bearer(SLOW_TOKEN), CONTEXT)
    assert int(limited.headers["retry-after"]) >= 1
    # Another token is not slowed down by this one.
    assert (await call(relay, "POST", BULK, bearer(SHOP_TOKEN), CONTEXT)).status == 200


def test_rate_limit_per_token() -> None:
    run(_limits())


async def _not_ready() -> None:
    relay = make_relay()
    relay.store.synced = False
    reply = await call(relay, "POST", BULK, bearer(SHOP_TOKEN), CONTEXT)
    assert reply.status == 503 and reply.headers["retry-after"] == "1"
    health = await call(relay, "GET", "/readyz")
    assert health.status == 503


def test_not_ready_before_the_first_list() -> None:
    run(_not_ready())


async def _documents() -> None:
    relay = make_relay()
    snapshot = relay.store.get("shop")
    assert snapshot is not None
    reply = await call(relay, "GET", "/v1/flags.json", bearer(SHOP_TOKEN))
    assert reply.status == 200 and reply.body == snapshot.text
    assert reply.headers["etag"] == f'"{snapshot.revision}"'
    again = await call(
        relay,
        "GET",
        "/namespaces/shop/v1/flags.json",
        {**bearer(SHOP_TOKEN), "If-None-Match": reply.headers["etag"]},
    )
    assert again.status == 304
    empty = await call(relay, "GET", "/namespaces/billing/v1/flags.json", bearer(BOTH_TOKEN))
    assert empty.status == 404


def test_document_etag_and_304() -> None:
    run(_documents())


async def _dev_mode() -> None:
    relay = make_relay(dev_namespace="shop")
    assert relay.metrics.registry.get_sample_value("flagops_relay_dev_mode") == 1
    reply = await call(relay, "POST", BULK, {}, CONTEXT)
    assert reply.status == 200
    other = await call(relay, "POST", "/namespaces/billing" + BULK, {}, CONTEXT)
    assert other.status == 403
    # A wrong token is still refused: dev mode only serves requests without one.
    wrong = await call(relay, "POST", BULK, bearer("wrong-token-0123456789abc"), CONTEXT)
    assert wrong.status == 401


def test_dev_mode_serves_one_namespace_without_tokens() -> None:
    run(_dev_mode())


def test_no_token_in_bodies_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    planted = "planted-secret-token-zyxwvut"

    async def go() -> list[bytes]:
        relay = make_relay()
        bodies = []
        for headers in (
            bearer(planted),
            {"X-API-Key": planted},
            {"Authorization": f"Basic {planted}"},
            {**bearer(SHOP_TOKEN), "Origin": planted},
        ):
            for path in (
                BULK,
                BULK + "/x",
                "/namespaces/" + "nope" + BULK,
                "/v1/flags.json",
                "/v1/flags/stream",
            ):
                reply = await call(
                    relay,
                    "POST" if "ofrep" in path else "GET",
                    path,
                    headers,
                    b"{" + planted.encode(),
                )
                bodies.append(reply.body + json.dumps(reply.headers).encode())
        return bodies

    with caplog.at_level(logging.DEBUG):
        bodies = run(go())
    assert isinstance(bodies, list)
    for body in bodies:
        assert planted.encode() not in body
        assert SHOP_TOKEN.encode() not in body
    assert planted not in caplog.text
    assert SHOP_TOKEN not in caplog.text
