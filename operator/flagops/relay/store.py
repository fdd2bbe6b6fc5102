"""The relay's memory: each namespace's last good document, and who waits for changes.

Documents are parsed and compiled off the event loop (in the watch thread); the
store only swaps them in and wakes the streams of that namespace. Everything
here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from flagops.flags.document import read_document
from flagops.relay.evaluation import RevisionView

# Revisions remembered per namespace, so a refetch naming a recent one is not kept waiting.
_HISTORY = 32


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One good revision of one namespace's flag document."""

    namespace: str
    revision: str
    text: bytes  # the published `flags.json`, byte for byte
    view: RevisionView


def build_snapshot(namespace: str, text: str | bytes) -> Snapshot:
    """Parse and compile a published document. Raises ValueError (never echoing the text)."""
    raw = text.encode() if isinstance(text, str) else text
    revision, flags = read_document(raw)
    return Snapshot(namespace, revision, raw, RevisionView(revision, flags))


class Wake(Enum):
    CHANGE = "change"
    KEEPALIVE = "keepalive"
    DISCONNECT = "disconnect"
    SHUTDOWN = "shutdown"


class Subscriber:
    """One open event stream: the stream's coroutine awaits `wait()`, others wake it."""

    __slots__ = ("_waker", "namespace", "pending")

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._waker: asyncio.Future[Wake] | None = None
        # Wakes that came while the stream was busy sending; the strongest is kept.
        self.pending: Wake | None = None

    def wake(self, why: Wake) -> None:
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_result(why)
        elif self.pending is None or _STRENGTH[why] > _STRENGTH[self.pending]:
            self.pending = why

    async def wait(self) -> Wake:
        if self.pending is not None:
            why, self.pending = self.pending, None
            return why
        self._waker = asyncio.get_running_loop().create_future()
        try:
            return await self._waker
        finally:
            self._waker = None


_STRENGTH = {Wake.KEEPALIVE: 0, Wake.CHANGE: 1, Wake.DISCONNECT: 2, Wake.SHUTDOWN: 3}


@dataclass
class _Namespace:
    snapshot: Snapshot | None = None
    history: deque[str] = field(default_factory=lambda: deque(maxlen=_HISTORY))
    subscribers: set[Subscriber] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    forget_handle: asyncio.TimerHandle | None = None


class Store:
    def __init__(
        self,
        on_revision: Callable[[str, str | None, str | None], None] = lambda *_: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._namespaces: dict[str, _Namespace] = {}
        self._on_revision = on_revision
        self._clock = clock
        # Readiness (docs/relay.md): `synced` once the first list is in; `watch_up` while
        # the watch is connected; `down_since` is when it last dropped.
        self.synced = False
        self.watch_up = False
        self.down_since: float | None = None
        self.closing = False

    # -- reads (hot path) ----------------------------------------------------------------

    def get(self, namespace: str) -> Snapshot | None:
        state = self._namespaces.get(namespace)
        return state.snapshot if state is not None else None

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def knows(self, namespace: str, revision: str) -> bool:
        state = self._namespaces.get(namespace)
        return state is not None and revision in state.history

    def namespaces(self) -> list[str]:
        """Namespaces with their own document (shared copies, keyed `holder/owner`, aside)."""
        return sorted(
            ns for ns, s in self._namespaces.items() if s.snapshot is not None and "/" not in ns
        )

    # -- writes (from the watch) ---------------------------------------------------------

    def apply(self, snapshot: Snapshot) -> None:
        state = self._state(snapshot.namespace)
        if state.forget_handle is not None:
            state.forget_handle.cancel()
            state.forget_handle = None
        old = state.snapshot
        if old is not None and old.revision == snapshot.revision:
            return
        state.snapshot = snapshot
        state.history.append(snapshot.revision)
        self._on_revision(snapshot.namespace, old.revision if old else None, snapshot.revision)
        self._notify(state)

    def deleted(self, namespace: str, grace_seconds: float) -> None:
        """The ConfigMap is gone: keep serving it for `grace_seconds`, then forget it."""
        state = self._namespaces.get(namespace)
        if state is None or state.snapshot is None:
            return
        if grace_seconds <= 0:
            if state.forget_handle is not None:
                state.forget_handle.cancel()
            self._forget(namespace)
            return
        if state.forget_handle is not None:
            return
        loop = asyncio.get_running_loop()
        state.forget_handle = loop.call_later(grace_seconds, self._forget, namespace)

    def _forget(self, namespace: str) -> None:
        state = self._namespaces.get(namespace)
        if state is None or state.snapshot is None:
            return
        old = state.snapshot.revision
        state.snapshot = None
        state.forget_handle = None
        self._on_revision(namespace, old, None)
        self._notify(state)

    def set_watch_up(self, up: bool) -> None:
        if up:
            self.down_since = None
        elif self.watch_up or self.down_since is None:
            self.down_since = self._clock()
        self.watch_up = up

    def disconnected_seconds(self) -> float:
        return 0.0 if self.down_since is None else self._clock() - self.down_since

    def _state(self, namespace: str) -> _Namespace:
        state = self._namespaces.get(namespace)
        if state is None:
            state = self._namespaces[namespace] = _Namespace()
        return state

    def _notify(self, state: _Namespace) -> None:
        state.changed.set()
        state.changed = asyncio.Event()
        for subscriber in state.subscribers:
            subscriber.wake(Wake.CHANGE)

    # -- waiting -------------------------------------------------------------------------

    async def wait_for_revision(self, namespace: str, revision: str, seconds: float) -> None:
        """Until `namespace` holds `revision` or a revision after it, at most `seconds`.

        A refetch triggered by another replica's event may reach this one first.
        """
        deadline = self._clock() + seconds
        while not self.knows(namespace, revision):
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._state(namespace).changed.wait(), remaining)
            except TimeoutError:
                return

    def subscribe(self, namespace: str) -> Subscriber:
        subscriber = Subscriber(namespace)
        self._state(namespace).subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        state = self._namespaces.get(subscriber.namespace)
        if state is not None:
            state.subscribers.discard(subscriber)

    def subscribers(self) -> list[Subscriber]:
        return [sub for state in self._namespaces.values() for sub in state.subscribers]

    def wake_all(self, why: Wake) -> None:
        for state in self._namespaces.values():
            for subscriber in state.subscribers:
                subscriber.wake(why)

    def shutdown(self) -> None:
        self.closing = True
        self.wake_all(Wake.SHUTDOWN)
