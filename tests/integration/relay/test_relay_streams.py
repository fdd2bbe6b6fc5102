"""Event streams of the real relay: edits reach clients, restarts resume, bad documents stay out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from relay_helpers import context, http, publish, token_entry, write_configmap

from flagops.api.resources import GROUP, VERSION
from flagops_devtools.testing.objects import create_flag
from flagops_devtools.testing.process import free_port
from flagops_devtools.testing.relay import SseReader
from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration

TOKEN = "stream-token-eeeeeeeeeeeeeeee"


def _bulk(relay: Any, token: str = TOKEN, query: str = "") -> Any:
    return http(relay.url + "/ofrep/v1/evaluate/flags" + query, token, context("user-1"))


def test_an_edit_reaches_both_kinds_of_stream(
    operator_factory: Any, relay_factory: Any, namespace: str, custom: Any
) -> None:
    operator_factory([namespace])
    create_flag(
        custom, namespace, "calendar-sync", key="calendar_sync", enabled=True, rolloutPercent=10
    )
    relay = relay_factory([namespace], tokens=[token_entry(TOKEN, [namespace])])
    first = wait_for(lambda: _bulk(relay).json()["flags"] or None, timeout=30)
    assert first[0]["key"] == "calendar_sync"
    # The browser's way: the URI the bulk reply names, with no header at all.
    uri = _bulk(relay).json()["eventStreams"][0]["endpoint"]["requestUri"]
    notices = SseReader(relay.url + uri).start()
    documents = SseReader(
        relay.url + "/v1/flags/stream", {"Authorization": f"Bearer {TOKEN}"}
    ).start()
    try:
        assert notices.status == 200 and documents.status == 200
        initial = documents.wait_event()
        assert initial.json()["flags"]["calendar_sync"]["rolloutPercent"] == 10
        assert notices.last_event_id == initial.id  # the id-only hello

        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "featureflags",
            "calendar-sync",
            {"spec": {"rolloutPercent": 40}},
        )
        changed = documents.wait_event(
            lambda e: e.json()["flags"]["calendar_sync"]["rolloutPercent"] == 40, timeout=15
        )
        notice = notices.wait_event(lambda e: e.id == changed.id, timeout=15)
        assert notice.json() == {"type": "refetchEvaluation", "etag": changed.id}
        assert notices.retry_ms == 2000
        # The provider's refetch names the revision it was told about.
        refetched = _bulk(relay, query=f"?flagConfigEtag={changed.id}").json()
        assert refetched["metadata"]["revision"] == changed.id
    finally:
        notices.close()
        documents.close()


def test_a_restart_resumes_from_last_event_id(
    relay_factory: Any, namespace: str, core: Any
) -> None:
    port = free_port()
    tokens = [token_entry(TOKEN, [namespace])]
    old = publish(core, namespace, {"a": {"enabled": True, "rolloutPercent": 10}})
    relay = relay_factory([namespace], tokens=tokens, port=port)
    stream = relay.url + "/ofrep/v1/events"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    reader = SseReader(stream, auth).start()
    wait_for(lambda: reader.last_event_id == old, timeout=10, message="hello id")
    relay.stop()
    reader.close()
    assert reader.closed.is_set()

    # A change while the relay is down.
    new = publish(core, namespace, {"a": {"enabled": True, "rolloutPercent": 20}})
    restarted = relay_factory([namespace], tokens=tokens, port=port)
    assert restarted.url == relay.url
    behind = SseReader(stream, {**auth, "Last-Event-ID": old}).start()
    current = SseReader(stream, {**auth, "Last-Event-ID": new}).start()
    documents = SseReader(
        restarted.url + "/v1/flags/stream", {**auth, "Last-Event-ID": old}
    ).start()
    try:
        missed = behind.wait_event(timeout=10)
        assert missed.id == new and missed.json()["type"] == "refetchEvaluation"
        assert documents.wait_event(timeout=10).json()["revision"] == new
        # The client that was up to date is told of the next change, not of the one it had.
        newer = publish(core, namespace, {"a": {"enabled": True, "rolloutPercent": 30}})
        assert current.wait_event(timeout=15).id == newer
    finally:
        for r in (behind, current, documents):
            r.close()


def test_a_malformed_document_keeps_the_last_good_one_and_spares_the_others(
    relay_factory: Any, namespace: str, other_namespace: str, core: Any
) -> None:
    good = publish(core, namespace, {"a": {"enabled": True, "rolloutPercent": 100}})
    publish(core, other_namespace, {"b": {"enabled": True, "rolloutPercent": 100}})
    token = token_entry(TOKEN, [namespace, other_namespace])
    relay = relay_factory([], tokens=[token])

    def revision(ns: str) -> str | None:
        reply = http(f"{relay.url}/namespaces/{ns}/v1/flags.json", TOKEN)
        return str(json.loads(reply.body)["revision"]) if reply.status == 200 else None

    wait_for(lambda: revision(namespace) == good, timeout=30)
    for bad in ('{"schema": 1, "flags": ', json.dumps({"schema": 1, "revision": "x", "flags": {}})):
        write_configmap(core, namespace, bad)
        changed = publish(
            core, other_namespace, {"b": {"enabled": False, "rolloutPercent": 0, "stage": bad[:5]}}
        )

        def other_moved_on(expected: str = changed) -> bool:
            return revision(other_namespace) == expected

        wait_for(other_moved_on, timeout=15, message="the other namespace's change served")
        assert revision(namespace) == good
    metrics = relay.metrics()
    assert f'flagops_relay_document_errors_total{{namespace="{namespace}"}} 2.0' in metrics
    assert relay.health()[1]["ready"] is True
    fixed = publish(core, namespace, {"a": {"enabled": False, "rolloutPercent": 0}})
    wait_for(lambda: revision(namespace) == fixed, timeout=15)


def test_streams_per_token_are_capped_and_kept_alive(
    relay_factory: Any, namespace: str, core: Any
) -> None:
    publish(core, namespace, {"a": {"enabled": True, "rolloutPercent": 100}})
    relay = relay_factory(
        [namespace],
        tokens=[token_entry(TOKEN, [namespace], maxStreams=1)],
        extra_args=["--keepalive-seconds", "0.2"],
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    first = SseReader(relay.url + "/v1/flags/stream", auth).start()
    try:
        wait_for(lambda: "keep-alive" in first.comments, timeout=10, message="a keep-alive")
        second = SseReader(relay.url + "/v1/flags/stream", auth).start()
        assert second.status == 429
        first.close()

        def reopened() -> bool:
            again = SseReader(relay.url + "/ofrep/v1/events", auth).start()
            again.close()
            return again.status == 200

        wait_for(reopened, timeout=10, message="a closed stream frees its place")
    finally:
        first.close()
