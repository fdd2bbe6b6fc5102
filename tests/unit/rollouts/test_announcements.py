"""Announcements across a crash at each point between the status write and the Event post."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flagops.api.rollout import RolloutStatus
from flagops.controller.announcements import Announcer
from flagops.rollouts.model import Event, EventType
from flagops.rollouts.state import record_events

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
OBJ = {
    "apiVersion": "flagops.dev/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "calendar-sync", "namespace": "shop", "uid": "0123abcd-0000"},
}


class FakeEventApi:
    """Events by name, as the apiserver keeps them: a second create of a name is a 409."""

    def __init__(self) -> None:
        self.events: dict[str, str] = {}
        self.creates = 0
        self.refuse = False

    async def post_event_once(
        self,
        involved: Mapping[str, Any],
        name: str,
        type_: str,
        reason: str,
        message: str,
        at: datetime,
    ) -> bool:
        self.creates += 1
        if self.refuse:
            return False
        self.events.setdefault(name, f"{reason}: {message}")
        return True


def advanced(status: RolloutStatus, message: str) -> RolloutStatus:
    return record_events(status, [Event(EventType.NORMAL, "StageAdvanced", message)], NOW)


def test_kill_after_the_status_write_before_the_post_loses_nothing() -> None:
    api = FakeEventApi()
    written = advanced(RolloutStatus(), "BETA -> EARLY_ACCESS")
    # Killed here: the status is written, nothing posted. A new process reads it.
    restarted = Announcer(api)  # type: ignore[arg-type]
    asyncio.run(restarted.post(OBJ, written))
    assert list(api.events.values()) == ["StageAdvanced: BETA -> EARLY_ACCESS"]
    assert restarted.settle("0123abcd-0000", written).pending_events == []


def test_kill_after_the_post_before_it_is_noted_posts_nothing_twice() -> None:
    api = FakeEventApi()
    written = advanced(RolloutStatus(), "BETA -> EARLY_ACCESS")
    asyncio.run(Announcer(api).post(OBJ, written))  # type: ignore[arg-type]
    # Killed before the next status write dropped it: the restarted one posts it again.
    restarted = Announcer(api)  # type: ignore[arg-type]
    asyncio.run(restarted.post(OBJ, written))
    assert api.creates == 2
    assert list(api.events) == ["calendar-sync.0123abcd.1"]


def test_refused_events_stay_pending_in_order() -> None:
    api = FakeEventApi()
    announcer = Announcer(api)  # type: ignore[arg-type]
    api.refuse = True
    written = advanced(advanced(RolloutStatus(), "INTERNAL -> BETA"), "BETA -> EARLY_ACCESS")
    asyncio.run(announcer.post(OBJ, written))
    assert api.creates == 1  # the second waits for the first
    settled = announcer.settle("0123abcd-0000", written)
    assert [e.sequence for e in settled.pending_events] == [1, 2]
    api.refuse = False
    asyncio.run(announcer.post(OBJ, settled))
    assert list(api.events) == ["calendar-sync.0123abcd.1", "calendar-sync.0123abcd.2"]
    assert announcer.settle("0123abcd-0000", settled).pending_events == []
