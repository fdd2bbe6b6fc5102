"""A standby replica: told when kopf's peering pauses and resumes it, watching all along
(kopf's hooks held to the installed kopf), and publishing nothing meanwhile."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

from kopf._cogs.aiokits import aiotoggles
from kopf._core.engines import daemons
from kopf._core.reactor import orchestration, queueing, running

from flagops.controller.kopf_pause import (
    keep_watching_while_paused,
    unwatch_kopf_pause,
    watch_kopf_pause,
)
from flagops.controller.kube import Kube
from flagops.controller.publisher import FlagPublisher
from flagops.controller.settings import Settings
from flagops.controller.standby import Standby

DEADLINE = 5.0


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(DEADLINE):
        while not condition():
            await asyncio.sleep(0.005)


@dataclass
class Part:
    calls: list[str] = field(default_factory=list)

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


# --- Standby ----------------------------------------------------------------------------


def test_every_part_is_told_once_when_the_replica_pauses_and_resumes() -> None:
    async def scenario() -> None:
        standby, rounds, publishing = Standby(), Part(), Part()
        standby.add(rounds)
        standby.add(publishing)
        toggles = aiotoggles.ToggleSet(any)
        peer = await toggles.make_toggle(False, name="a peer is active")
        other = await toggles.make_toggle(False, name="another peer")
        standby.follow(toggles)
        assert not standby.paused and rounds.calls == []

        await peer.turn_to(True)
        await until(lambda: standby.paused)
        await other.turn_to(True)  # paused already: nothing new to tell
        await peer.turn_to(False)
        await asyncio.sleep(0)
        assert standby.paused
        await other.turn_to(False)
        await until(lambda: not standby.paused)
        assert rounds.calls == publishing.calls == ["pause", "resume"]
        await standby.close()

    run(scenario)


def test_a_replica_that_starts_paused_acts_on_nothing_from_the_first_event() -> None:
    async def scenario() -> None:
        standby, part = Standby(), Part()
        standby.add(part)
        toggles = aiotoggles.ToggleSet(any)
        await toggles.make_toggle(True, name="peering not yet seen")
        standby.follow(toggles)
        # At once, not on the next turn of the loop: kopf's streams start right after.
        assert standby.paused and part.calls == ["pause"]
        await standby.close()

    run(scenario)


# --- kopf's hooks ---------------------------------------------------------------------


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


def test_watch_streams_are_started_without_the_pause() -> None:
    received: list[Any] = []

    async def watcher(*, resource: str, operator_paused: Any = None) -> None:
        received.append((resource, operator_paused))

    copy = types.SimpleNamespace(watcher=watcher)
    assert keep_watching_while_paused(copy)
    wrapped = copy.watcher
    assert keep_watching_while_paused(copy) and copy.watcher is wrapped  # once only
    paused = aiotoggles.ToggleSet(any)
    run(lambda: copy.watcher(resource="rollouts", operator_paused=paused))
    assert received == [("rollouts", None)]
    # The installed kopf: the stream takes the pause, and kopf's orchestrator starts it
    # through the module attribute.
    assert keep_watching_while_paused(types.SimpleNamespace(watcher=queueing.watcher))
    source = orchestration.spawn_missing_watchers.__code__.co_names
    assert "queueing" in source and "watcher" in source


def test_a_kopf_whose_streams_no_longer_take_the_pause_is_refused() -> None:
    async def watcher(*, resource: str) -> None:
        pass

    assert not keep_watching_while_paused(types.SimpleNamespace(watcher=watcher))


# --- publishing ------------------------------------------------------------------------


def test_a_paused_publisher_writes_nothing_and_publishes_every_namespace_on_resuming() -> None:
    async def scenario() -> None:
        publisher = FlagPublisher(cast(Kube, object()), Settings())
        flushed: list[str] = []

        async def flush(namespace: str) -> bool:
            flushed.append(namespace)
            return True

        publisher.pause()
        publisher.flush = flush  # type: ignore[method-assign]
        publisher.request("edited")  # a flag edit seen while standing by
        publisher.bind({"flags": []}, {"rollouts": []}, {"configmap": []})
        assert publisher._coalescers == {} and flushed == []  # nothing to flush them
        publisher.resume()
        await until(lambda: len(flushed) == 4)
        assert sorted(flushed) == ["configmap", "edited", "flags", "rollouts"]

    run(scenario)


def test_a_flush_under_way_when_the_replica_pauses_is_left_to_the_active_one() -> None:
    async def scenario() -> None:
        publisher = FlagPublisher(cast(Kube, object()), Settings())
        publisher.pause()
        # The Kube here is no client at all: writing anything would raise.
        assert await publisher.flush("ns") is False
        flushed: list[str] = []

        async def flush(namespace: str) -> bool:
            flushed.append(namespace)
            return True

        publisher.flush = flush  # type: ignore[method-assign]
        publisher.resume()
        await until(lambda: flushed == ["ns"])

    run(scenario)
