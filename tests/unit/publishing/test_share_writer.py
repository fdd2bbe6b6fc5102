"""ShareWriter's choices against a fake API: where it writes, what it never touches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes.client.exceptions import ApiException

from flagops.controller.kube import Kube
from flagops.controller.settings import Settings
from flagops.controller.sharing import CopyRecord, ShareWriter, copy_record, with_share_condition
from flagops.publishing.resolve import FlagInput, resolve
from flagops.publishing.sharing import ShareReport

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class FakeCore:
    """ConfigMaps by (namespace, name); namespaces in `existing` only."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []

    def create_namespaced_config_map(self, namespace: str, body: dict[str, Any], **_: Any) -> None:
        name = body["metadata"]["name"]
        self.calls.append(("create", namespace, name))
        if namespace not in self.existing:
            raise ApiException(status=404, reason="NotFound")
        if (namespace, name) in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        meta = {**body["metadata"], "uid": f"uid-{namespace}", "resourceVersion": "1"}
        self.objects[(namespace, name)] = {**body, "metadata": meta}

    def patch_namespaced_config_map(
        self, name: str, namespace: str, body: dict[str, Any], **_: Any
    ) -> None:
        self.calls.append(("patch", namespace, name))
        self.objects[(namespace, name)]["data"] = body["data"]

    def delete_namespaced_config_map(self, name: str, namespace: str, body: Any, **_: Any) -> None:
        self.calls.append(("delete", namespace, name))
        self.objects.pop((namespace, name))


class FakeKube:
    def __init__(self, core: FakeCore) -> None:
        self.core = core
        self.events: list[tuple[str, str]] = []

    async def read_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.core.objects.get((namespace, name))

    async def post_event(self, involved: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((reason, message))


def _missing_namespace(core: FakeCore) -> None:
    original = core.create_namespaced_config_map

    def create(namespace: str, body: dict[str, Any], **_: Any) -> None:
        if namespace not in core.existing:
            exc = ApiException(status=404, reason="NotFound")
            exc.body = '{"details": {"kind": "namespaces"}}'
            raise exc
        original(namespace, body)

    core.create_namespaced_config_map = create  # type: ignore[method-assign]


def writer(existing: set[str], **settings: Any) -> tuple[ShareWriter, FakeKube, list[str]]:
    core = FakeCore(existing)
    _missing_namespace(core)
    kube = FakeKube(core)
    requested: list[str] = []
    share = ShareWriter(cast(Kube, kube), Settings(**settings), requested.append)
    return share, kube, requested


def index(kube: FakeKube) -> dict[str, list[CopyRecord]]:
    found: dict[str, list[CopyRecord]] = {}
    for body in kube.core.objects.values():
        record = copy_record("feature-flags", body)
        if record is not None:
            found.setdefault(record[0], []).append(record[1])
    return found


async def _scenario() -> None:
    share, kube, requested = writer({"a", "b", "c"})
    flags = [
        FlagInput.from_spec(
            "f", "2026-01-01T00:00:00Z", {"enabled": True, "sharedWith": ["b", "gone"]}
        )
    ]
    changed, reports = await share.publish("a", flags, resolve(flags, []), {"f": "uid-f"})
    assert changed
    assert ("b", "feature-flags-from-a") in kube.core.objects
    assert reports["f"].reason == "NamespaceNotFound"
    # The namespace appears: the owner is asked for a flush.
    share.namespace_appeared("gone")
    assert requested == ["a"]
    # A ConfigMap someone else made blocks one target, once warned, never written.
    kube.core.objects[("c", "feature-flags-from-a")] = {
        "metadata": {"name": "feature-flags-from-a", "namespace": "c", "labels": {}},
        "data": {"flags.json": "theirs"},
    }
    share.bind(index(kube))
    flags = [
        FlagInput.from_spec(
            "f", "2026-01-01T00:00:00Z", {"enabled": True, "sharedWith": ["b", "c"]}
        )
    ]
    for _ in range(2):
        _, reports = await share.publish("a", flags, resolve(flags, []), {"f": "uid-f"})
        assert reports["f"].reason == "ConfigMapNotManaged"
    assert kube.core.objects[("c", "feature-flags-from-a")]["data"] == {"flags.json": "theirs"}
    assert [r for r, _ in kube.events] == ["ShareBlocked"]
    # Unshared: our copy goes, theirs stays.
    share.bind(index(kube))
    flags = [FlagInput.from_spec("f", "2026-01-01T00:00:00Z", {"enabled": True})]
    changed, reports = await share.publish("a", flags, resolve(flags, []), {"f": "uid-f"})
    assert changed and reports == {}
    assert ("b", "feature-flags-from-a") not in kube.core.objects
    assert ("c", "feature-flags-from-a") in kube.core.objects


def test_writes_reports_and_leaves_foreign_configmaps_alone() -> None:
    asyncio.run(_scenario())


async def _namespaced() -> None:
    share, kube, _ = writer({"a", "b", "x"}, namespaces=("a", "b"))
    flags = [FlagInput.from_spec("f", "2026-01-01T00:00:00Z", {"sharedWith": ["b", "x"]})]
    _, reports = await share.publish("a", flags, resolve(flags, []), {})
    assert reports["f"].reason == "NamespaceNotWatched"
    assert ("x", "feature-flags-from-a") not in kube.core.objects
    assert not [c for c in kube.core.calls if c[1] == "x"]


def test_namespaced_mode_shares_only_among_watched_namespaces() -> None:
    asyncio.run(_namespaced())


def test_shared_condition_appears_only_for_flags_that_share() -> None:
    assert with_share_condition({"conditions": []}, None, 1, NOW) == {"conditions": []}
    shared = with_share_condition({}, ShareReport(True, "Shared", "shared with b"), 3, NOW)
    [condition] = shared["conditions"]
    assert (condition["type"], condition["status"], condition["observedGeneration"]) == (
        "Shared",
        "True",
        3,
    )
    unshared = with_share_condition(shared, None, 4, NOW)
    [condition] = unshared["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "NotShared")


async def _unanswered() -> None:
    from urllib3.exceptions import ReadTimeoutError

    share, kube, _ = writer({"a", "b", "c"})

    def hang(namespace: str, body: dict[str, Any], **_: Any) -> None:
        if namespace == "b":
            raise ReadTimeoutError(None, "/", "read timed out")  # type: ignore[arg-type]
        FakeCore.create_namespaced_config_map(kube.core, namespace, body)

    kube.core.create_namespaced_config_map = hang  # type: ignore[method-assign]
    flags = [
        FlagInput.from_spec(
            "f", "2026-01-01T00:00:00Z", {"enabled": True, "sharedWith": ["b", "c"]}
        )
    ]
    _, reports = await share.publish("a", flags, resolve(flags, []), {})
    # A namespace whose write gets no answer fails alone; the other gets its copy.
    assert reports["f"].reason == "WriteFailed"
    assert ("c", "feature-flags-from-a") in kube.core.objects


def test_an_unanswered_write_fails_one_target_not_the_flush() -> None:
    asyncio.run(_unanswered())
