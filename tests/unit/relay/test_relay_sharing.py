"""The relay serves a namespace's shared copy to tokens scoped to a namespace it shares with."""

from __future__ import annotations

import asyncio
from typing import Any

from relay_asgi import BOTH_TOKEN, SHOP_TOKEN, bearer, call, make_relay

from flagops.flags.document import build_document
from flagops.relay.server import Relay
from flagops.relay.sharing import Target, copy_key, document_key, is_copy_key, shared_target
from flagops.relay.store import Store, build_snapshot

BULK = "/ofrep/v1/evaluate/flags"
CONTEXT = b'{"context": {"targetingKey": "user-1"}}'
CM = "feature-flags"


def configmap(namespace: str, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "labels": labels or {}}}


def test_document_keys() -> None:
    assert document_key(CM, configmap("shop", CM)) == "shop"
    shared = configmap("shop", "feature-flags-from-catalog", {"flagops.dev/shared-from": "catalog"})
    assert document_key(CM, shared) == copy_key("shop", "catalog") == "shop/catalog"
    assert is_copy_key("shop/catalog") and not is_copy_key("shop")
    # A name and label that disagree, no label, or an unrelated ConfigMap: not a document.
    assert document_key(CM, configmap("shop", "feature-flags-from-catalog")) is None
    wrong = configmap("shop", "feature-flags-from-catalog", {"flagops.dev/shared-from": "x"})
    assert document_key(CM, wrong) is None
    assert document_key(CM, configmap("shop", "settings")) is None
    own = configmap("shop", "feature-flags-from-shop", {"flagops.dev/shared-from": "shop"})
    assert document_key(CM, own) is None


async def _lookup() -> None:
    store = Store()
    text, _ = build_document({"f": {"enabled": True, "rolloutPercent": 100}})
    store.apply(build_snapshot("b/a", text))
    store.apply(build_snapshot("d/a", text))
    assert shared_target(store, {"b", "d"}, "a") == Target("a", "b/a")
    assert shared_target(store, {"d", "x"}, "a") == Target("a", "d/a")
    assert shared_target(store, {"c"}, "a") is None
    assert shared_target(store, {"b"}, "z") is None
    assert Target("a", "b/a").shared and not Target.own("a").shared
    # Copies are not namespaces of their own.
    assert store.namespaces() == []


def test_store_lookup() -> None:
    asyncio.run(_lookup())


def with_copy(relay: Relay, holder: str, owner: str, flags: dict[str, Any]) -> None:
    text, _ = build_document(flags)
    relay.store.apply(build_snapshot(copy_key(holder, owner), text))


async def _served() -> None:
    relay = make_relay()
    with_copy(relay, "shop", "catalog", {"shared_one": {"enabled": True, "rolloutPercent": 100}})
    reply = await call(relay, "POST", "/namespaces/catalog" + BULK, bearer(SHOP_TOKEN), CONTEXT)
    assert reply.status == 200
    body = reply.json()
    assert [f["key"] for f in body["flags"]] == ["shared_one"]
    assert body["metadata"]["namespace"] == "catalog"
    stream = body["eventStreams"][0]["endpoint"]["requestUri"]
    assert stream.startswith("/namespaces/catalog/ofrep/v1/events?ticket=")
    single = await call(
        relay, "POST", "/namespaces/catalog" + BULK + "/shared_one", bearer(SHOP_TOKEN), CONTEXT
    )
    assert single.status == 200 and single.json()["value"] is True
    # The document endpoint serves the copy byte for byte.
    doc = await call(relay, "GET", "/namespaces/catalog/v1/flags.json", bearer(SHOP_TOKEN))
    assert doc.status == 200
    assert doc.body == relay.store.get("shop/catalog").text  # type: ignore[union-attr]
    # The own namespace is untouched by the copy.
    own = await call(relay, "POST", BULK, bearer(SHOP_TOKEN), CONTEXT)
    assert "shared_one" not in {f["key"] for f in own.json()["flags"]}


def test_a_token_reads_the_copy_shared_with_its_namespace() -> None:
    asyncio.run(_served())


async def _refused() -> None:
    relay = make_relay()
    # catalog shares with billing, which the shop token may not read.
    with_copy(relay, "billing", "catalog", {"x": {"enabled": True, "rolloutPercent": 100}})
    refused = await call(relay, "POST", "/namespaces/catalog" + BULK, bearer(SHOP_TOKEN), CONTEXT)
    unknown = await call(relay, "POST", "/namespaces/nowhere" + BULK, bearer(SHOP_TOKEN), CONTEXT)
    assert refused.status == unknown.status == 403
    assert refused.body == unknown.body
    assert b"catalog" not in refused.body
    # A token with billing in scope reads it.
    allowed = await call(relay, "POST", "/namespaces/catalog" + BULK, bearer(BOTH_TOKEN), CONTEXT)
    assert allowed.status == 200
    # Consent withdrawn: the copy is forgotten at once, and the token is refused again.
    relay.store.deleted(copy_key("billing", "catalog"), 0.0)
    again = await call(relay, "POST", "/namespaces/catalog" + BULK, bearer(BOTH_TOKEN), CONTEXT)
    assert again.status == 403


def test_a_token_without_consent_gets_the_plain_403() -> None:
    asyncio.run(_refused())
