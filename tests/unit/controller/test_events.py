"""What each watch event does: which are filtered out, and what a deletion announces."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flagops.api.stages import Stage
from flagops.controller.events import (
    CLAIM_INDEX,
    CONFIGMAP_INDEX,
    FLAG_BY_NAME_INDEX,
    FLAG_INDEX,
    ROLLOUT_INDEX,
    FlagRecords,
    OperatorEvents,
    flag_record,
    handback_warning,
)
from flagops.controller.sharing_events import COPY_INDEX
from flagops.publishing.record import FlagRecord
from flagops.publishing.resolve import RolloutControl

CREATED = "2026-01-01T00:00:00Z"


@dataclass
class FakeSharing:
    bound: list[Any] = field(default_factory=list)

    def bind(self, copies: Any) -> None:
        self.bound.append(copies)


@dataclass
class FakePublisher:
    sharing: FakeSharing = field(default_factory=FakeSharing)
    requested: list[str] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)
    bound: int = 0
    closed: bool = False

    def bind(self, flags: Any, rollouts: Any, configmaps: Any) -> None:
        self.bound += 1

    def request(self, namespace: str) -> None:
        self.requested.append(namespace)

    def wrote(self, namespace: str, text: str | None) -> bool:
        return text is not None and self.written.get(namespace) == text

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeReconciler:
    tracked: list[str] = field(default_factory=list)
    woken: list[str] = field(default_factory=list)
    forgotten: list[tuple[str, str, str]] = field(default_factory=list)
    paused: bool = False

    def bind(self, flags: Any, claims: Any) -> None:
        pass

    def track(self, body: Mapping[str, Any]) -> None:
        self.tracked.append(body["metadata"]["uid"])

    def wake(self, uid: str) -> None:
        self.woken.append(uid)

    def forget(self, uid: str, namespace: str, name: str) -> None:
        self.forgotten.append((uid, namespace, name))

    async def close(self) -> None:
        pass


@dataclass
class FakeKube:
    events: list[tuple[str, str, str]] = field(default_factory=list)

    async def post_event(
        self, involved: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None:
        self.events.append((type_, reason, message))


def flag(name: str, **spec: Any) -> FlagRecord:
    meta = {"name": name, "uid": f"uid-{name}", "creationTimestamp": CREATED, "generation": 1}
    return flag_record({"metadata": meta, "spec": spec})


def rollout(name: str, flag_name: str, stage: str | None, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": CREATED,
            "generation": 1,
            **meta,
        },
        "spec": {"flagRef": {"name": flag_name}},
        "status": {"stage": stage} if stage else {},
    }


def setup(
    flags: list[FlagRecord] | None = None,
) -> tuple[OperatorEvents, FakePublisher, FakeReconciler, FakeKube, dict[str, Any]]:
    publisher, reconciler, kube = FakePublisher(), FakeReconciler(), FakeKube()
    events = OperatorEvents(kube, publisher, reconciler, "flagops-flags")
    indexes: dict[str, Any] = {
        FLAG_INDEX: {"ns": flags or []},
        FLAG_BY_NAME_INDEX: {("ns", f.name): [f] for f in flags or []},
        ROLLOUT_INDEX: {},
        CLAIM_INDEX: {},
        CONFIGMAP_INDEX: {},
        COPY_INDEX: {},
    }
    return events, publisher, reconciler, kube, indexes


def test_a_flag_publishes_on_a_new_generation_or_deletion_not_on_its_status_echo() -> None:
    events, publisher, _, _, indexes = setup()
    events.flag_changed(None, "ns", "u1", 1, indexes)  # first sight
    events.flag_changed("MODIFIED", "ns", "u1", 1, indexes)  # our own status patch
    assert publisher.requested == ["ns"]
    events.flag_changed("MODIFIED", "ns", "u1", 2, indexes)  # a spec change
    events.flag_changed("DELETED", "ns", "u1", 2, indexes)
    assert publisher.requested == ["ns", "ns", "ns"]
    # A flag re-created under the same uid after deletion counts as new.
    assert events.flag_needs_publish("ADDED", "u1", 2)


def test_a_rollout_publishes_only_when_its_hold_changes_and_is_always_tracked() -> None:
    events, publisher, reconciler, _, indexes = setup()
    body = rollout("r", "f", "BETA", annotations={"flagops.dev/action": "check@a1"})
    asyncio.run(events.rollout_changed(None, "ns", body, indexes))
    asyncio.run(events.rollout_changed("MODIFIED", "ns", body, indexes))  # analysis write
    assert publisher.requested == ["ns"]
    assert reconciler.tracked == ["uid-r"] * 2
    asyncio.run(events.rollout_changed("MODIFIED", "ns", rollout("r", "f", "LIMITED"), indexes))
    assert publisher.requested == ["ns", "ns"]


def test_a_deleted_rollout_is_forgotten_and_its_handback_announced() -> None:
    events, publisher, reconciler, kube, indexes = setup([flag("f", enabled=False)])
    body = rollout("r", "f", "BETA")
    asyncio.run(events.rollout_changed(None, "ns", body, indexes))
    asyncio.run(events.rollout_changed("DELETED", "ns", body, indexes))
    assert publisher.requested == ["ns", "ns"]
    assert reconciler.forgotten == [("uid-r", "ns", "r")]
    assert len(kube.events) == 1
    type_, reason, message = kube.events[0]
    assert (type_, reason) == ("Warning", "RolloutDeleted")
    assert "Rollout r was deleted at stage BETA" in message
    assert "enabled=False, rolloutPercent=0" in message


def test_a_standby_forgets_a_deleted_rollout_and_leaves_the_handback_to_the_active() -> None:
    events, _, reconciler, kube, indexes = setup([flag("f", enabled=False)])
    reconciler.paused = True
    body = rollout("r", "f", "BETA")
    asyncio.run(events.rollout_changed(None, "ns", body, indexes))
    asyncio.run(events.rollout_changed("DELETED", "ns", body, indexes))
    assert reconciler.forgotten == [("uid-r", "ns", "r")]
    assert kube.events == []


def test_no_handback_event_without_a_hold_or_a_flag() -> None:
    events, _, _, kube, indexes = setup([flag("f")])
    asyncio.run(events.rollout_changed("DELETED", "ns", rollout("r", "f", None), indexes))
    asyncio.run(events.rollout_changed("DELETED", "ns", rollout("r2", "gone", "BETA"), indexes))
    assert kube.events == []


def test_handback_warning_is_silent_when_exposure_does_not_change() -> None:
    full = RolloutControl("r", "f", Stage.FULL, ("internal",), CREATED)
    everyone = flag("f", enabled=True, rolloutPercent=100, allowedCohorts=["all"])
    assert handback_warning(full, everyone) is None
    message = handback_warning(full, flag("f", enabled=True, rolloutPercent=10))
    assert message is not None and "rolloutPercent=10 (was enabled=True, rolloutPercent=100)" in (
        message
    )
    # A flag whose spec does not parse publishes nothing either way.
    assert handback_warning(full, flag("f", rolloutPercent=101)) is None


def test_the_flags_configmap_republishes_unless_it_is_our_own_write() -> None:
    events, publisher, _, _, indexes = setup()
    publisher.written["ns"] = '{"flags":{}}'
    ours = {"data": {"flags.json": '{"flags":{}}'}}
    edited = {"data": {"flags.json": "{}"}}
    events.configmap_changed("MODIFIED", "ns", ours, indexes)
    assert publisher.requested == []
    events.configmap_changed("MODIFIED", "ns", edited, indexes)
    events.configmap_changed("DELETED", "ns", ours, indexes)
    events.configmap_changed("MODIFIED", None, edited, indexes)
    assert publisher.requested == ["ns", "ns"]
    assert events.is_flags_configmap("flagops-flags") and not events.is_flags_configmap("x")
    assert events.configmap_text({"data": {"flags.json": 5}}) is None


def test_a_probe_job_wakes_only_its_rollout_owner() -> None:
    events, _, reconciler, _, _ = setup()
    events.probe_job_changed(
        {"ownerReferences": [{"kind": "Deployment", "uid": "d"}, {"kind": "Rollout", "uid": "r"}]}
    )
    events.probe_job_changed({})
    assert reconciler.woken == ["r"]


def test_close_closes_the_publisher() -> None:
    events, publisher, _, _, _ = setup()
    asyncio.run(events.close())
    assert publisher.closed


def test_both_flag_indexes_share_one_record_per_version() -> None:
    records = FlagRecords()
    body = {
        "metadata": {"name": "f", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
        "spec": {"key": "f"},
    }
    first = records.of(body)
    assert records.of(body) is first
    newer = {**body, "metadata": {**body["metadata"], "resourceVersion": "8"}}
    assert records.of(newer) is not first
    assert records.of(newer).name == "f"
