"""What the reconciler keeps of each Rollout between rounds, when it asks for a round,
and how it pauses with kopf (peering)."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

from kopf._cogs.aiokits import aiotoggles
from kopf._core.engines import daemons
from kopf._core.reactor import running

from flagops.api.rollout import Rollout
from flagops.controller.essence import lean_body
from flagops.controller.kopf_pause import unwatch_kopf_pause, watch_kopf_pause
from flagops.controller.kube import Kube
from flagops.controller.rollout_memory import RolloutMemory
from flagops.controller.rollouts import RolloutReconciler
from flagops.controller.settings import Settings

DEADLINE = 5.0


@dataclass
class FakeScheduler:
    """Records what the reconciler asks of the scheduler (a fake: nothing runs)."""

    scheduled: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    paused: bool = False
    pauses: int = 0

    def schedule(self, key: str, delay: float = 0.0) -> None:
        self.scheduled.append(key)

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


def reconciler() -> tuple[RolloutReconciler, FakeScheduler]:
    made = RolloutReconciler(cast(Kube, object()), Settings())
    fake = FakeScheduler()
    made._scheduler = fake  # type: ignore[assignment]
    return made, fake


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


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


def test_paused_with_kopf_it_forgets_every_rollout_and_tracks_again_after_resuming() -> None:
    async def scenario() -> None:
        made, fake = reconciler()
        paused = aiotoggles.ToggleSet(any)
        peer = await paused.make_toggle(False, name="a peer is active")
        made.follow(paused)
        made.track(rollout())
        assert fake.scheduled == ["u1"]

        await peer.turn_to(True)
        async with asyncio.timeout(DEADLINE):
            while not fake.paused:
                await asyncio.sleep(0.005)
        made.track(rollout())  # an event that slipped in while pausing
        made.wake("u1")
        assert fake.scheduled == ["u1"]

        await peer.turn_to(False)
        async with asyncio.timeout(DEADLINE):
            while fake.paused:
                await asyncio.sleep(0.005)
        made.track(rollout())  # the relisting after resuming: new again
        assert fake.scheduled == ["u1", "u1"]
        await made.close()

    run(scenario)


def test_the_pause_is_seen_in_the_call_that_starts_kopfs_daemon_killer() -> None:
    seen: list[aiotoggles.ToggleSet] = []
    copy = types.SimpleNamespace(daemon_killer=daemons.daemon_killer)
    assert watch_kopf_pause(seen.append, copy)
    paused = aiotoggles.ToggleSet(any)

    async def scenario() -> None:
        killer = copy.daemon_killer(settings=None, memories=None, operator_paused=paused)
        killer.close()  # kopf's own coroutine, handed back as it is: not run here

    run(scenario)
    assert seen == [paused]
    unwatch_kopf_pause(seen.append, copy)
    # kopf starts it through the module attribute, with the toggle set by keyword.
    source = running.spawn_tasks.__code__.co_names
    assert "daemon_killer" in source and "daemons" in source


def test_a_kopf_that_no_longer_passes_the_pause_is_refused() -> None:
    async def daemon_killer(*, settings: Any, memories: Any) -> None:
        pass

    assert not watch_kopf_pause(lambda _: None, types.SimpleNamespace(daemon_killer=daemon_killer))


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
