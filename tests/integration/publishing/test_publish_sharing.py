"""Sharing flags across namespaces (spec.sharedWith), on the real operator, apiserver and relay.

Namespace A owns `calendar_sync` and shares it with B, not with C: B gets a copy
(ConfigMap `feature-flags-from-A`) that apps mount and the relay serves to B's
tokens; C gets nothing, and its tokens get the same 403 as for any namespace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_publish import feature_flag

from flagops.flags.client import FeatureFlags
from flagops.flags.document import parse_document
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.relay import RelayProcess, SseReader
from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration

GROUP, VERSION, PLURAL = "flagops.dev", "v1alpha1", "featureflags"
COPY_PREFIX = "feature-flags-from-"
TOKEN_B = "sharing-test-token-for-b-0001"
TOKEN_C = "sharing-test-token-for-c-0001"
DEADLINE = 15.0


@pytest.fixture
def spaces(control_plane: ControlPlane) -> Iterator[tuple[str, str, str]]:
    names = tuple(control_plane.create_namespace() for _ in range(3))
    yield names  # type: ignore[misc]
    for name in names:
        control_plane.delete_namespace(name)


def read_copy(core: Any, namespace: str, owner: str) -> Any:
    try:
        return core.read_namespaced_config_map(COPY_PREFIX + owner, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def wait_copy(core: Any, namespace: str, owner: str, check: Any) -> Any:
    def ready() -> Any:
        cm = read_copy(core, namespace, owner)
        return cm if cm is not None and check(parse_document(cm.data["flags.json"])) else None

    return wait_for(ready, timeout=DEADLINE, message=f"copy of {owner} in {namespace}")


def shared_condition(custom: Any, namespace: str, name: str) -> Any:
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Shared"), None)


def bulk(relay: RelayProcess, namespace: str, token: str) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{relay.url}/namespaces/{namespace}/ofrep/v1/evaluate/flags",
        data=json.dumps({"context": {"targetingKey": "user-1"}}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_a_flag_shared_with_b_reaches_b_and_never_c(
    spaces: tuple[str, str, str],
    operator_factory: Any,
    relay_factory: Any,
    core: Any,
    custom: Any,
    tmp_path: Path,
) -> None:
    a, b, c = spaces
    operator_factory([a, b, c])
    relay = relay_factory(
        [a, b, c],
        tokens=[
            {"token": TOKEN_B, "namespaces": [b]},
            {"token": TOKEN_C, "namespaces": [c]},
        ],
    )
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        a,
        PLURAL,
        feature_flag(
            "calendar-sync", key="calendar_sync", enabled=True, rolloutPercent=10, sharedWith=[b]
        ),
    )
    custom.create_namespaced_custom_object(
        GROUP, VERSION, a, PLURAL, feature_flag("export-pdf", key="export_pdf", enabled=True)
    )

    # The copy appears in B, holding only the shared flag, in a document apps can mount.
    cm = wait_copy(core, b, a, lambda f: f.get("calendar_sync", {}).get("rolloutPercent") == 10)
    assert cm.metadata.labels["app.kubernetes.io/managed-by"] == "flagops"
    assert cm.metadata.labels["flagops.dev/shared-from"] == a
    assert set(parse_document(cm.data["flags.json"])) == {"calendar_sync"}
    (tmp_path / "flags.json").write_text(cm.data["flags.json"])
    mounted = FeatureFlags(tmp_path)
    try:
        assert mounted.keys() == ["calendar_sync"]
        assert mounted.revision == json.loads(cm.data["flags.json"])["revision"]
    finally:
        mounted.close()
    condition = wait_for(
        lambda: (s := shared_condition(custom, a, "calendar-sync")) and s["status"] == "True" and s,
        timeout=DEADLINE,
        message="Shared condition",
    )
    assert b in condition["message"]

    # A browser with B's token follows A's shared flags: bulk, then the event stream the
    # reply names (a ticket in the URL, as EventSource cannot send the token).
    first = wait_for(
        lambda: (r := bulk(relay, a, TOKEN_B))[0] == 200 and r[1],
        timeout=DEADLINE,
        message="relay serves the shared copy to B",
    )
    stream = SseReader(relay.url + first["eventStreams"][0]["endpoint"]["requestUri"]).start()
    try:
        assert stream.status == 200
        mark = stream.mark()
        # An edit reaches the copy, and the stream tells the browser to refetch.
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, a, PLURAL, "calendar-sync", {"spec": {"rolloutPercent": 100}}
        )
        cm = wait_copy(core, b, a, lambda f: f["calendar_sync"]["rolloutPercent"] == 100)
        revision = json.loads(cm.data["flags.json"])["revision"]
        notice = stream.wait_event(
            lambda e: e.data != "" and e.json().get("etag") == revision,
            timeout=DEADLINE,
            since=mark,
        )
        assert notice.json()["type"] == "refetchEvaluation"
    finally:
        stream.close()
    # C was never let in.
    assert read_copy(core, c, a) is None
    assert not [
        m.metadata.name
        for m in core.list_namespaced_config_map(c).items
        if m.metadata.name.startswith(COPY_PREFIX)
    ]

    # The relay: B's token reads A's shared flags only; C's token gets the plain 403.
    def b_reads() -> Any:
        status, body = bulk(relay, a, TOKEN_B)
        flags = {f["key"]: f for f in body["flags"]} if status == 200 else {}
        return body if flags.get("calendar_sync", {}).get("value") is True else None

    body = wait_for(b_reads, timeout=DEADLINE, message="relay serves the shared copy to B")
    assert [f["key"] for f in body["flags"]] == ["calendar_sync"]
    assert body["metadata"]["namespace"] == a
    status_c, body_c = bulk(relay, a, TOKEN_C)
    status_none, body_none = bulk(relay, "no-such-namespace", TOKEN_C)
    assert status_c == 403
    assert (status_c, body_c) == (status_none, body_none)  # nothing said about A
    assert a not in json.dumps(body_c)

    # A copy deleted by hand is restored.
    core.delete_namespaced_config_map(COPY_PREFIX + a, b)
    wait_copy(core, b, a, lambda f: f["calendar_sync"]["rolloutPercent"] == 100)

    # Unsharing removes the copy, and the relay stops serving it.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, a, PLURAL, "calendar-sync", {"spec": {"sharedWith": []}}
    )
    wait_for(lambda: read_copy(core, b, a) is None, timeout=DEADLINE, message="copy removed")
    wait_for(
        lambda: bulk(relay, a, TOKEN_B)[0] == 403,
        timeout=DEADLINE,
        message="relay forgets the unshared copy",
    )
    wait_for(
        lambda: (s := shared_condition(custom, a, "calendar-sync")) and s["status"] == "False",
        timeout=DEADLINE,
        message="Shared condition turns False",
    )


def test_a_configmap_flagops_did_not_write_is_never_overwritten(
    spaces: tuple[str, str, str],
    operator_factory: Any,
    core: Any,
    custom: Any,
) -> None:
    a, b, c = spaces
    foreign = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=COPY_PREFIX + a), data={"flags.json": "mine"}
    )
    core.create_namespaced_config_map(b, foreign)
    operator_factory([a, b, c])
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        a,
        PLURAL,
        feature_flag("calendar-sync", key="calendar_sync", enabled=True, sharedWith=[b, c]),
    )
    # C, which is free, gets its copy: one blocked namespace does not stop the others.
    wait_copy(core, c, a, lambda f: "calendar_sync" in f)
    condition = wait_for(
        lambda: (s := shared_condition(custom, a, "calendar-sync")) and s,
        timeout=DEADLINE,
        message="Shared condition",
    )
    assert condition["status"] == "False"
    assert condition["reason"] == "ConfigMapNotManaged"
    assert f"not shared with {b}" in condition["message"]
    assert f"shared with {c}" in condition["message"]
    kept = core.read_namespaced_config_map(COPY_PREFIX + a, b)
    assert kept.data == {"flags.json": "mine"}
    assert not (kept.metadata.labels or {})

    def warned() -> bool:
        events = core.list_namespaced_event(a).items
        return any(
            e.reason == "ShareBlocked" and e.involved_object.name == "calendar-sync" for e in events
        )

    wait_for(warned, timeout=DEADLINE, message="ShareBlocked Event")
    # Unsharing leaves the foreign ConfigMap alone as well.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, a, PLURAL, "calendar-sync", {"spec": {"sharedWith": []}}
    )
    wait_for(lambda: read_copy(core, c, a) is None, timeout=DEADLINE, message="C copy removed")
    assert core.read_namespaced_config_map(COPY_PREFIX + a, b).data == {"flags.json": "mine"}


def test_a_namespace_created_later_gets_its_copy(
    control_plane: ControlPlane,
    spaces: tuple[str, str, str],
    operator_factory: Any,
    core: Any,
    custom: Any,
) -> None:
    a, _, _ = spaces
    later = f"{a}-later"
    operator_factory([])  # cluster-wide: it notices namespaces appearing
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        a,
        PLURAL,
        feature_flag("calendar-sync", key="calendar_sync", enabled=True, sharedWith=[later]),
    )
    condition = wait_for(
        lambda: (s := shared_condition(custom, a, "calendar-sync")) and s,
        timeout=DEADLINE,
        message="Shared condition",
    )
    assert condition["reason"] == "NamespaceNotFound"
    control_plane.create_namespace(later)
    try:
        wait_copy(core, later, a, lambda f: "calendar_sync" in f)
        wait_for(
            lambda: (s := shared_condition(custom, a, "calendar-sync")) and s["status"] == "True",
            timeout=DEADLINE,
            message="Shared condition turns True",
        )
    finally:
        control_plane.delete_namespace(later)
