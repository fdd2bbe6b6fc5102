"""What the reconciler keeps of each Rollout between rounds, when it asks for a round,
and what it does as a standby (peering)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes.client.exceptions import ApiException

from flagops.api.rollout import Rollout, RolloutStatus
from flagops.controller.essence import lean_body
from flagops.controller.kube import Kube
from flagops.controller.rollout_memory import RolloutMemory
from flagops.controller.rollouts import RolloutReconciler
from flagops.controller.scheduler import RETRY_AFTER
from flagops.controller.settings import Settings


@dataclass
class FakeScheduler:
    """Records what the reconciler asks of the scheduler (a fake: nothing runs)."""

    scheduled: list[str] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    paused: bool = False
    pauses: int = 0

    def schedule(self, key: str, delay: float = 0.0) -> None:
        if not self.paused:  # as the real one: nothing while paused
            self.scheduled.append(key)
            self.delays[key] = delay

    def remove(self, key: str) -> None:
        self.removed.append(key)

    def pause(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume(self) -> None:
        self.paused = False


def rollout(generation: int = 1, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flagops.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "r",
            "namespace": "ns",
            "uid": "u1",
            "generation": generation,
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            **meta,
        },
        "spec": {"flagRef": {"name": "f"}},
        "status": {"stage": "BETA"},
    }


def progressing() -> RolloutStatus:
    settled = {"stage": "BETA", "phase": "Progressing", "observedGeneration": 1}
    return Rollout.from_object({**rollout(), "status": settled}).status


def reconciler() -> tuple[RolloutReconciler, FakeScheduler]:
    made = RolloutReconciler(cast(Kube, object()), Settings())
    fake = FakeScheduler()
    made._scheduler = fake  # type: ignore[assignment]
    return made, fake


def test_a_round_is_asked_for_a_new_rollout_a_spec_change_or_an_action_only() -> None:
    made, fake = reconciler()
    made.track(rollout())
    made.track(rollout())  # our own status write coming back
    assert fake.scheduled == ["u1"]
    made.track(rollout(generation=2))
    made.track(rollout(generation=2, annotations={"flagops.dev/action": "check@a1"}))
    assert fake.scheduled == ["u1"] * 3
    made.wake("u1")  # a probe Job finished
    made.wake("unknown")
    assert fake.scheduled == ["u1"] * 4


def test_what_is_kept_has_no_managed_fields_and_no_status_once_memory_has_one() -> None:
    body = rollout()
    kept = lean_body(body, keep_status=True)
    assert "managedFields" not in kept["metadata"] and kept["status"] == {"stage": "BETA"}
    assert kept["spec"] is body["spec"]  # shallow: nothing copied
    assert "managedFields" in body["metadata"]  # the event is left as it came
    assert "status" not in lean_body(body, keep_status=False)


def test_a_rollout_being_deleted_gets_no_more_rounds() -> None:
    made, fake = reconciler()
    made.track(rollout())
    made.track(rollout(deletionTimestamp="2026-12-01T00:00:00Z"))
    assert fake.removed == ["u1"]
    made.wake("u1")
    assert fake.scheduled == ["u1"]


def test_a_standby_keeps_following_runs_nothing_and_resuming_runs_every_rollout() -> None:
    made, fake = reconciler()
    made.track(rollout())
    made._memory.remember("u1", progressing())
    made.pause()
    assert made.paused and fake.pauses == 1
    made.track(rollout(uid="u2"))  # created while another replica is active
    made.track(rollout(uid="u3"))
    made.track(rollout(uid="u3", deletionTimestamp="2026-12-01T00:00:00Z"))
    made.wake("u2")  # a probe Job of the active replica's
    assert fake.scheduled == ["u1"]
    made.resume()
    # Every Rollout has a round: at once with work that cannot wait (u2 was never
    # handled), else at its next analysis slot, as the replica that was active would.
    assert sorted(fake.scheduled) == ["u1", "u1", "u2"]
    assert fake.delays["u2"] == 0.0 and 0.5 <= fake.delays["u1"] <= 60.0
    assert fake.removed == ["u3"]


def test_demoting_gives_each_body_back_the_status_memory_held() -> None:
    memory = RolloutMemory()
    memory.keep_body("u1", rollout())
    memory.remember("u1", progressing())
    memory.wrote("u1", b"seen", datetime.now(UTC))
    memory.see("u1", (1, None))
    memory.demote()
    # What this replica last knew is what its rounds start from when it resumes...
    assert (memory.body("u1") or {})["status"]["phase"] == "Progressing"
    assert memory.status("u1") is None and not memory.knows_written("u1")
    assert memory.see("u1", (1, None))  # ...and nothing counts as acted on
    # While standing by, the watch's copy (another replica's writes) is the newest.
    memory.keep_body("u1", rollout())
    assert (memory.body("u1") or {})["status"] == {"stage": "BETA"}


def test_memory_keeps_compact_copies_that_read_back_the_same() -> None:
    memory = RolloutMemory()
    memory.keep_body("u1", rollout())
    assert memory.body("u1") == lean_body(rollout(), keep_status=True)
    status = Rollout.from_object(
        {**rollout(), "status": {"stage": "BETA", "phase": "Progressing", "consecutiveErrors": 2}}
    ).status
    memory.remember("u1", status)
    assert memory.status("u1") == status
    # The status in memory is the newer one: the watch's copy goes, and stays gone.
    assert "status" not in (memory.body("u1") or {})
    memory.keep_body("u1", rollout())
    assert "status" not in (memory.body("u1") or {})
    assert memory.see("u1", (1, None)) and not memory.see("u1", (1, None))
    memory.drop("u1")
    assert memory.body("u1") is None and memory.status("u1") is None
    assert memory.see("u1", (1, None))  # after forgetting, new again


def test_a_rollout_whose_write_finds_it_gone_is_forgotten_and_other_failures_retried() -> None:
    made, fake = reconciler()
    made.track(rollout())
    failure = ApiException(status=404, reason="Not Found")

    async def reconcile(namespace: str, name: str, body: Any = None) -> float:
        raise failure

    made.reconcile = reconcile  # type: ignore[method-assign]
    failure.status = 409
    assert asyncio.run(made._round("u1")) == RETRY_AFTER and "u1" in made._memory
    # Deleted while its DELETED event could not reach us (a watch that re-listed).
    failure.status = 404
    assert asyncio.run(made._round("u1")) is None
    assert fake.removed == ["u1"] and "u1" not in made._memory
