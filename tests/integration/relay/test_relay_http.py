"""The real relay process: ETag/304 as OFREP says, every error path, scopes, secrets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from relay_helpers import context, http, publish, token_entry

from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration

SHOP = "shop-token-aaaaaaaaaaaaaaaa"
BOTH = "both-token-bbbbbbbbbbbbbbbb"
SLOW = "slow-token-cccccccccccccccc"
PLANTED = "planted-token-never-to-be-seen-0001"
ORIGIN = "https://meal-plan.example.com"
FLAGS = {
    "calendar_sync": {"enabled": True, "rolloutPercent": 50, "stage": "LIMITED"},
    "dark_mode": {"enabled": True, "rolloutPercent": 100, "stage": "FULL"},
}


@pytest.fixture
def relay(relay_factory: Any, namespace: str, other_namespace: str, core: Any) -> Any:
    publish(core, namespace, FLAGS)
    publish(core, other_namespace, {"billing_v2": {"enabled": True, "rolloutPercent": 100}})
    started = relay_factory(
        [],
        tokens=[
            token_entry(SHOP, [namespace], origins=[ORIGIN]),
            token_entry(BOTH, [namespace, other_namespace]),
            token_entry(SLOW, [namespace], requestsPerSecond=0.01, burst=3),
        ],
        extra_args=["--max-body-bytes", "2048"],
    )
    bulk = started.url + "/ofrep/v1/evaluate/flags"
    wait_for(lambda: http(bulk, SHOP, context("u")).json()["flags"], timeout=30)
    return started


def test_bulk_etag_and_304_as_the_spec_says(relay: Any) -> None:
    url = relay.url + "/ofrep/v1/evaluate/flags"
    first = http(url, SHOP, context("user-7", "beta"))
    assert first.status == 200
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert first.json()["eventStreams"][0]["type"] == "sse"
    same = http(url, SHOP, context("user-7", "beta"), {"If-None-Match": etag})
    assert (same.status, same.body) == (304, b"")
    assert same.headers["etag"] == etag
    other_user = http(url, SHOP, context("user-8", "beta"), {"If-None-Match": etag})
    assert other_user.status == 200
    # Attributes the relay does not read do not change the reply.
    extra = json.dumps({"context": {"targetingKey": "user-7", "cohort": "beta", "plan": "x"}})
    assert http(url, SHOP, extra.encode(), {"If-None-Match": etag}).status == 304
    document = http(relay.url + "/v1/flags.json", SHOP)
    revision = json.loads(document.body)["revision"]
    assert document.headers["etag"] == f'"{revision}"'
    assert (
        http(relay.url + "/v1/flags.json", SHOP, headers={"If-None-Match": f'"{revision}"'}).status
        == 304
    )


def test_every_error_path_returns_the_spec_code(
    relay: Any, namespace: str, other_namespace: str
) -> None:
    bulk = relay.url + "/ofrep/v1/evaluate/flags"
    cases: list[tuple[str, Any, int, str | None]] = [
        ("no token", http(bulk, None, context("u")), 401, None),
        ("wrong token", http(bulk, "wrong-token-dddddddddddd", context("u")), 401, None),
        (
            "other namespace",
            http(
                f"{relay.url}/namespaces/{other_namespace}/ofrep/v1/evaluate/flags",
                SHOP,
                context("u"),
            ),
            403,
            None,
        ),
        (
            "unknown namespace",
            http(f"{relay.url}/namespaces/no-such-ns/ofrep/v1/evaluate/flags", SHOP, context("u")),
            403,
            None,
        ),
        ("unknown flag", http(bulk + "/no_such_flag", SHOP, context("u")), 404, "FLAG_NOT_FOUND"),
        ("malformed body", http(bulk, SHOP, b"{'context':"), 400, "PARSE_ERROR"),
        (
            "bad context",
            http(bulk, SHOP, b'{"context":{"targetingKey":{"id":1}}}'),
            400,
            "INVALID_CONTEXT",
        ),
        (
            "oversized body",
            http(bulk, SHOP, b'{"context":{"x":"' + b"y" * 4096 + b'"}}'),
            413,
            None,
        ),
        ("several namespaces, no prefix", http(bulk, BOTH, context("u")), 400, "GENERAL"),
    ]
    for name, reply, status, code in cases:
        assert reply.status == status, (name, reply)
        if code is not None:
            assert reply.json()["errorCode"] == code, name
    assert cases[2][1].body == cases[3][1].body, "403 reveals nothing about the namespace"
    assert cases[4][1].json()["key"] == "no_such_flag"
    # The same token with the prefix of either namespace it may read.
    for ns, key in ((namespace, "dark_mode"), (other_namespace, "billing_v2")):
        reply = http(
            f"{relay.url}/namespaces/{ns}/ofrep/v1/evaluate/flags/{key}", BOTH, context("u")
        )
        assert (reply.status, reply.json()["value"]) == (200, True)
    # Rate limit: a burst of 3, then 429 with a Retry-After in seconds.
    statuses = [http(bulk, SLOW, context("u")).status for _ in range(4)]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
    limited = http(bulk, SLOW, context("u"))
    assert limited.status == 429 and int(limited.headers["retry-after"]) >= 1


def test_cors_preflight_and_origins(relay: Any) -> None:
    bulk = relay.url + "/ofrep/v1/evaluate/flags"
    preflight = http(
        bulk,
        None,
        None,
        {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        method="OPTIONS",
    )
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    refused = http(bulk, None, None, {"Origin": "https://elsewhere.example.com"}, method="OPTIONS")
    assert refused.status == 403 and "access-control-allow-origin" not in refused.headers
    reply = http(bulk, SHOP, context("u"), {"Origin": ORIGIN})
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    assert "ETag" in reply.headers["access-control-expose-headers"]
    assert http(bulk, SHOP, context("u"), {"Origin": "https://elsewhere.example.com"}).status == 403


def test_no_token_in_logs_or_error_bodies(relay: Any, namespace: str) -> None:
    bulk = relay.url + "/ofrep/v1/evaluate/flags"
    bodies: list[bytes] = []
    attempts = [
        {"Authorization": f"Bearer {PLANTED}"},
        {"X-API-Key": PLANTED},
        {"Authorization": f"Basic {PLANTED}"},
        {"Authorization": f"Bearer {SHOP}", "Origin": f"https://{PLANTED}.example.com"},
    ]
    for headers in attempts:
        for url, body in (
            (bulk, context(PLANTED)),
            (bulk + "/missing", b"{" + PLANTED.encode()),
            (f"{relay.url}/namespaces/{PLANTED}/ofrep/v1/evaluate/flags", context("u")),
            (relay.url + "/v1/flags.json", None),
            (relay.url + "/ofrep/v1/events?ticket=" + PLANTED, None),
        ):
            reply = http(url, None, body, headers)
            bodies.append(reply.body + json.dumps(reply.headers).encode())
    reply = http(bulk, SHOP, context("u"), {"Last-Event-ID": PLANTED, "If-None-Match": PLANTED})
    bodies.append(reply.body + json.dumps(reply.headers).encode())
    for body in bodies:
        for secret in (PLANTED, SHOP, BOTH):
            assert secret.encode() not in body
    log = relay.log()
    for secret in (PLANTED, SHOP, BOTH, SLOW):
        assert secret not in log
    assert "relay serving" in log  # the log is the relay's, and it is being written


def test_a_rotated_token_file_is_followed(relay: Any, namespace: str) -> None:
    bulk = relay.url + "/ofrep/v1/evaluate/flags"
    rotated = "rotated-token-hhhhhhhhhhhhhhhh"
    relay.write_tokens([token_entry(rotated, [namespace])])
    wait_for(
        lambda: http(bulk, rotated, context("u")).status == 200,
        timeout=15,
        message="the new token works",
    )
    assert http(bulk, SHOP, context("u")).status == 401
    # A broken file: the tokens in force stay, and the metric says so.
    relay.tokens_file.write_text("tokens: [{token: x")
    wait_for(lambda: "flagops_relay_token_file_errors_total 1.0" in relay.metrics(), timeout=15)
    assert http(bulk, rotated, context("u")).status == 200
    assert rotated not in relay.log()
