"""What the operator keeps of each Rollout between its rounds, kept small.

At 10,000 Rollouts this is most of the operator's memory, so each part is kept in its
most compact form and rebuilt when a round needs it (tens of microseconds, against a
round's millisecond):

- the Rollout as its last watch event showed it, without `managedFields` and, once a
  round's own status is remembered, without its status: JSON bytes (600 bytes where
  the parsed dict took 3.7 KiB);
- the status as of the last round, written or not: JSON bytes (about 2 KB where the
  pydantic model took about 10 KiB in Python objects);
- what a user saw of the last status written (`rollouts.visibility.visible`, a digest)
  and when, for deciding whether the next one is worth a write;
- the (generation, action) last acted on, so only a new one asks for a round at once.

A standby (controller/standby.py) keeps the bodies only, with their statuses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flagops.api.rollout import RolloutStatus
from flagops.controller.essence import lean_body

Seen = tuple[int, str | None]


class RolloutMemory:
    def __init__(self) -> None:
        self._bodies: dict[str, bytes] = {}
        self._statuses: dict[str, str] = {}
        self._written: dict[str, tuple[bytes, datetime]] = {}
        self._seen: dict[str, Seen] = {}

    def __contains__(self, uid: str) -> bool:
        return uid in self._bodies

    def uids(self) -> list[str]:
        return [*self._bodies.keys() | self._statuses.keys() | self._seen.keys()]

    # --- the object ---------------------------------------------------------------------

    def keep_body(self, uid: str, body: Mapping[str, Any]) -> None:
        self._bodies[uid] = _encode(lean_body(body, keep_status=uid not in self._statuses))

    def body(self, uid: str) -> dict[str, Any] | None:
        kept = self._bodies.get(uid)
        if kept is None:
            return None
        body: dict[str, Any] = json.loads(kept)
        return body

    def see(self, uid: str, seen: Seen) -> bool:
        """Remember `seen`; True when it differs from what was last seen."""
        if self._seen.get(uid) == seen:
            return False
        self._seen[uid] = seen
        return True

    # --- the status ---------------------------------------------------------------------

    def remember(self, uid: str, status: RolloutStatus) -> None:
        self._statuses[uid] = status.model_dump_json(by_alias=True)
        body = self._bodies.get(uid)
        if body is not None and b'"status":' in body:
            # From now on the status in memory is the newer one: drop the watch's copy.
            parsed = json.loads(body)
            parsed.pop("status", None)
            self._bodies[uid] = _encode(parsed)

    def status(self, uid: str) -> RolloutStatus | None:
        kept = self._statuses.get(uid)
        return None if kept is None else RolloutStatus.model_validate_json(kept)

    def written(self, uid: str) -> tuple[bytes | None, datetime | None]:
        return self._written.get(uid, (None, None))

    def wrote(self, uid: str, visible: bytes, at: datetime) -> None:
        self._written[uid] = (visible, at)

    def knows_written(self, uid: str) -> bool:
        return uid in self._written

    # --- forgetting ---------------------------------------------------------------------

    def demote(self) -> None:
        """Keep only the Rollouts as stored, for a standby: each body gets back the status
        memory held instead (what this replica last knew, the same as stored in all a
        user sees), and what rounds kept of their own is dropped."""
        for uid, status in self._statuses.items():
            body = self._bodies.get(uid)
            if body is not None:
                parsed = json.loads(body)
                parsed["status"] = json.loads(status)
                self._bodies[uid] = _encode(parsed)
        self._statuses.clear()
        self._written.clear()
        self._seen.clear()

    def drop(self, uid: str) -> None:
        for kept in (self._bodies, self._statuses, self._written, self._seen):
            kept.pop(uid, None)


def _encode(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
