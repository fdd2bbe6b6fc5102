"""Posts the Events a Rollout's status has recorded, each exactly once, crash or not.

A round writes its Events into `status.pendingEvents` together with the change
they announce (rollouts/state.py: record_events), then posts them here under
fixed names. A kill between the write and the post leaves them pending: the
next round, in this process or a restarted one, posts them; one already posted
answers 409 and counts as posted. The next status write drops what is posted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flagops.api.rollout import RolloutStatus
from flagops.controller.kube import Kube
from flagops.rollouts.state import event_name, without_posted


class Announcer:
    def __init__(self, kube: Kube) -> None:
        self._kube = kube
        # Rollout uid -> sequences known to be posted (by this process).
        self._posted: dict[str, set[int]] = {}

    def settle(self, uid: str, status: RolloutStatus) -> RolloutStatus:
        """`status` without the Events already posted, ready for the next write."""
        posted = self._posted.get(uid, set())
        pending = {e.sequence for e in status.pending_events}
        posted &= pending
        return without_posted(status, posted)

    async def post(self, obj: Mapping[str, Any], status: RolloutStatus) -> None:
        """Post every pending Event of the written `status` not known to be posted."""
        meta = obj["metadata"]
        uid = meta["uid"]
        posted = self._posted.setdefault(uid, set())
        for event in status.pending_events:
            if event.sequence in posted:
                continue
            name = event_name(meta["name"], uid, event.sequence)
            if not await self._kube.post_event_once(
                obj, name, event.type, event.reason, event.message, event.time
            ):
                # Keep the order: a later Event waits for an earlier one.
                return
            posted.add(event.sequence)

    def forget(self, uid: str) -> None:
        self._posted.pop(uid, None)
