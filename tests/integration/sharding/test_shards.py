"""`flagops run --shard i/n` on a real apiserver: each shard serves exactly its namespaces,
its standby takes over only its shard, and changing n acts on no Rollout twice."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from shards_env import PEERING_LIFETIME, ShardWorld, metric_sum, namespaces_for, served_namespaces

from flagops.controller.shard import BASE_FINALIZER, Shard, shard_of
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

TAKEOVER_DEADLINE = 10.0
STAGES = 6  # StageAdvanced Events of a whole rollout: DISABLED -> ... -> FULL


def test_each_shard_serves_exactly_its_namespaces(world: ShardWorld) -> None:
    shards = [Shard(0, 2), Shard(1, 2)]
    namespaces = namespaces_for(2, 2, "team")
    operators = world.start_shards(shards)
    world.hold_at_internal(namespaces)
    wait_for(lambda: all(world.published(ns) for ns in namespaces), timeout=30)

    for ns in namespaces:
        owner = shards[shard_of(ns, 2)]
        manager = owner.manager
        # The ConfigMap and the Rollout's status were written by the owner alone...
        assert world.configmap_writers(ns) == {manager}, ns
        assert world.writers(world.rollout(ns), "status") == {manager}, ns
        # No shard holds a Rollout back from deletion: rounds need no finalizer.
        assert not world.rollout(ns)["metadata"].get("finalizers"), ns
    for shard, operator in zip(shards, operators, strict=True):
        mine = {ns for ns in namespaces if shard_of(ns, 2) == shard.index}

        # flagops_rollout_info follows each round's write and Events: a moment after both.
        def reports(operator: OperatorProcess = operator, mine: set[str] = mine) -> bool:
            return served_namespaces(operator) == mine

        wait_for(reports, timeout=10, message=f"shard {shard.index} reports its namespaces")
        assert metric_sum(operator, "flagops_shards", shard=str(shard.index)) == 2
        for ns in set(namespaces) - mine:
            assert metric_sum(operator, "flagops_configmap_writes_total", namespace=ns) == 0


def test_a_killed_shard_fails_over_to_its_own_standby_only(world: ShardWorld) -> None:
    shards = [Shard(0, 2), Shard(1, 2)]
    namespaces = namespaces_for(2, 2, "app")
    for shard in shards:
        world.create_peering(shard)
    active = {s.index: world.operator(s, priority=200, name=f"active-{s.index}") for s in shards}
    standby = {s.index: world.operator(s, priority=100, name=f"standby-{s.index}") for s in shards}

    def both_in_peering() -> bool:
        return all(
            sorted(p["priority"] for p in world.peers(s).values()) == [100, 200] for s in shards
        )

    wait_for(both_in_peering, timeout=30, message="both replicas of each shard in its peering")
    for ns in namespaces:
        world.create_namespace(ns)
        world.create_flag(ns, enabled=False, rolloutPercent=0)
    wait_for(lambda: all(world.published(ns) for ns in namespaces), timeout=30)
    doomed = [ns for ns in namespaces if shard_of(ns, 2) == 1]
    steady = [ns for ns in namespaces if shard_of(ns, 2) == 0]
    peers_of_0 = set(world.peers(shards[0]))

    active[1].kill()
    killed_at = time.monotonic()
    # A change in every namespace right after the kill: the steady shard publishes its
    # at once; the killed shard's wait for its standby.
    for percent, ns in enumerate(namespaces, start=1):
        world.patch_flag(ns, rolloutPercent=percent)

    def published_percent(ns: str) -> bool:
        flag = world.published(ns)
        return flag is not None and flag["rolloutPercent"] == namespaces.index(ns) + 1

    def left() -> float:
        return max(0.0, killed_at + TAKEOVER_DEADLINE - time.monotonic())

    wait_for(lambda: all(published_percent(ns) for ns in steady), timeout=left(), interval=0.1)
    steady_after = time.monotonic() - killed_at
    # The bound: the standby serves the killed shard's namespaces within 10 s.
    wait_for(
        lambda: all(published_percent(ns) for ns in doomed),
        timeout=left(),
        interval=0.1,
        message=f"shard 1's standby publishing within {TAKEOVER_DEADLINE}s of the SIGKILL",
    )
    took_over = time.monotonic() - killed_at
    print(
        f"\nshard 1/2 standby published {len(doomed)} namespaces {took_over:.1f}s after SIGKILL"
        f" (peering lifetime {PEERING_LIFETIME}s); shard 0/2 published in {steady_after:.1f}s"
    )
    assert "Resuming operations" in standby[1].log()
    # The write is counted once the apiserver has answered it: a moment after it shows.
    wait_for(
        lambda: all(
            metric_sum(standby[1], "flagops_configmap_writes_total", namespace=ns) > 0
            for ns in doomed
        ),
        timeout=10,
        message="shard 1's standby counted its writes",
    )
    # Shard 0 noticed nothing: its active replica served throughout, its standby stayed
    # paused, and its peering still has both of its replicas.
    assert all(
        metric_sum(active[0], "flagops_configmap_writes_total", namespace=ns) >= 2 for ns in steady
    )
    assert metric_sum(standby[0], "flagops_configmap_writes_total") == 0
    assert "Resuming operations" not in standby[0].log()
    assert "Pausing operations" not in active[0].log()
    assert set(world.peers(shards[0])) == peers_of_0
    assert active[0].process.running() and standby[0].process.running()


def test_changing_the_shard_count_acts_on_no_rollout_twice(world: ShardWorld) -> None:
    namespaces = namespaces_for(2, 2, "svc")
    world.create_peering(Shard())
    single = world.operator(None, priority=100, name="single")
    for ns in namespaces:
        world.create_namespace(ns)
        world.create_flag(ns, enabled=False)
        world.create_rollout(ns, stage_duration="4s")
    # Mid-rollout: every Rollout has advanced at least once and none has finished.
    world.wait_all(namespaces, lambda s: s.get("stage") not in (None, "DISABLED"), timeout=90)
    assert not any(world.status(ns).get("phase") == "Completed" for ns in namespaces)
    world.terminate(single)

    shards = [Shard(0, 2), Shard(1, 2)]
    world.create_peering(shards[1])  # shard 0 keeps the one-shard peering
    for shard in shards:
        world.operator(shard, priority=100, name=f"shard-{shard.index}")
    world.wait_all(namespaces, lambda s: s.get("phase") == "Completed", timeout=180)

    for ns in namespaces:
        steps = world.stage_steps(ns)
        # Every stage once, in order: no transition repeated across the change of n.
        assert len(steps) == len(set(steps)) == STAGES, (ns, steps)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(steps)), steps
        owner = Shard(shard_of(ns, 2), 2)
        assert world.writers(world.rollout(ns), "status") >= {owner.manager}


def test_finalizers_of_earlier_versions_and_of_shards_gone_are_released(
    world: ShardWorld,
) -> None:
    # Versions that ran a kopf daemon per Rollout put a finalizer on each: the one-shard
    # one, or their shard's, including shards that no longer run after n shrank.
    namespaces = namespaces_for(2, 2, "web")
    held = [BASE_FINALIZER, Shard(1, 2).finalizer, Shard(5, 8).finalizer]
    for ns in namespaces:
        world.create_namespace(ns)
        world.create_flag(ns, enabled=False)
        world.create_rollout(ns, stage_duration="1h")
        world.custom.patch_namespaced_custom_object(
            "flagops.dev",
            "v1alpha1",
            ns,
            "rollouts",
            "calendar-sync",
            {"metadata": {"finalizers": held}},
        )
    world.start_shards([Shard(0, 2), Shard(1, 2)])

    def released() -> bool:
        return not any(world.rollout(ns)["metadata"].get("finalizers") for ns in namespaces)

    wait_for(released, timeout=30, message="no finalizer left on any Rollout")
    world.wait_all(namespaces, lambda s: s.get("stage") == "INTERNAL", timeout=60)
    # Deleting a Rollout completes: nothing waits for an operator.
    for ns in namespaces:
        world.custom.delete_namespaced_custom_object(
            "flagops.dev", "v1alpha1", ns, "rollouts", "calendar-sync"
        )

    def gone(ns: str) -> bool:
        try:
            world.rollout(ns)
        except Exception as exc:
            return getattr(exc, "status", None) == 404
        return False

    wait_for(lambda: all(gone(ns) for ns in namespaces), timeout=30, message="Rollouts deleted")


def test_a_shared_copy_goes_with_its_owners_shard(world: ShardWorld) -> None:
    shards = [Shard(0, 2), Shard(1, 2)]
    owner, target = namespaces_for(2, 1, "share")
    if shard_of(owner, 2) == shard_of(target, 2):
        raise AssertionError("namespaces_for gives one namespace per shard")
    world.start_shards(shards)
    for ns in (owner, target):
        world.create_namespace(ns)
    world.create_flag(target, enabled=False)
    world.create_flag(owner, enabled=True, rolloutPercent=30, sharedWith=[target])
    copy = f"feature-flags-from-{owner}"

    def read_copy() -> Any:
        return world.core.read_namespaced_config_map(copy, target)

    wait_for(read_copy, timeout=30, message=f"{copy} in {target}")
    owner_manager = Shard(shard_of(owner, 2), 2).manager
    body = world.core.api_client.sanitize_for_serialization(read_copy())
    # Written by the owner's shard, left alone by the target's.
    assert world.writers(body) == {owner_manager}
    wait_for(lambda: world.published(target), timeout=30, message=f"{target}'s own flags")
    assert world.configmap_writers(target) == {Shard(shard_of(target, 2), 2).manager}
    # A deleted copy is restored: the owner's shard hears of it in the other shard's
    # namespace.
    world.core.delete_namespaced_config_map(copy, target)
    wait_for(read_copy, timeout=30, message=f"{copy} restored")
    assert world.writers(world.core.api_client.sanitize_for_serialization(read_copy())) == {
        owner_manager
    }
