"""The snapshot holder: where a flag document from any source becomes the state apps read.

Sources (a mounted file, the relay's stream) hand it raw documents through
`accept`, or report why they have none through `reject`. It validates, compiles,
keeps the last good state, lays local overrides over it, counts and logs. It
never raises into a source: a bad document is a warning, a metric and no change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry

from flagops.flags.document import read_document
from flagops.flags.evaluate import CompiledFlag, compile_flag, forced_flag
from flagops.flags.metrics import metrics_for

__all__ = ["Change", "Sink", "Snapshot", "SnapshotHolder", "compile_document"]

log = logging.getLogger("flagops.flags")


@dataclass(frozen=True, slots=True)
class Snapshot:
    # Plain dicts, never mutated once published: readers need no lock, and
    # dict.get is measurably faster than a MappingProxyType on the hot path.
    flags: dict[str, CompiledFlag]
    revision: str | None


EMPTY = Snapshot(flags={}, revision=None)


def compile_document(data: str | bytes) -> Snapshot:
    """Validate a `flags.json` text and compile every flag. ValueError names the problem."""
    revision, flags = read_document(data)
    return Snapshot({key: compile_flag(key, state) for key, state in flags.items()}, revision)


@dataclass(frozen=True)
class Change:
    """What a listener hears: the revision now in use and the flags whose answer may differ."""

    revision: str | None
    previous: str | None
    keys: frozenset[str]


Listener = Callable[[Change], None]


class Sink(Protocol):
    """What a source feeds: the snapshot holder."""

    def accept(self, data: str | bytes, origin: str) -> bool: ...

    def reject(self, origin: str, reason: str) -> None: ...


class SnapshotHolder:
    """The document in use, the overrides laid over it, and the metrics that describe it.

    `label` names the holder in metrics (`path`); `origin`, passed by each source,
    names where a document came from in log lines.
    """

    def __init__(self, label: str, registry: CollectorRegistry | None = None) -> None:
        self._label = label
        self._metrics = metrics_for(registry if registry is not None else REGISTRY)
        self._write_lock = threading.Lock()
        self._snapshot = EMPTY
        self._overrides: dict[str, bool] = {}
        # What evaluation reads: the document's flags with overrides laid over them,
        # rebuilt on every change so the hot path has a single dict lookup.
        self._effective: dict[str, CompiledFlag] = {}
        self._listeners: tuple[Listener, ...] = ()

    # -- what sources call -------------------------------------------------------------

    def accept(self, data: str | bytes, origin: str) -> bool:
        """Take a new document. True when it is now in use (False: same revision, or bad)."""
        try:
            snapshot = compile_document(data)
        except ValueError as exc:
            self.reject(origin, str(exc))
            return False
        except Exception as exc:  # any surprise here must not reach a source or the app
            self.reject(origin, f"unexpected {type(exc).__name__}")
            return False
        revision = snapshot.revision
        assert revision is not None
        self._metrics.reloads.labels(self._label).inc()
        with self._write_lock:
            previous = self._snapshot
            if previous.revision == revision:
                return False
            self._publish(snapshot)
        if previous.revision is not None:
            self._metrics.revision_info.remove(self._label, previous.revision)
        self._metrics.revision_info.labels(self._label, revision).set(1)
        count = len(snapshot.flags)
        log.info("flags loaded from %s: revision %s, %d flags", origin, revision, count)
        if self._listeners:
            self._notify(Change(revision, previous.revision, _changed(previous, snapshot)))
        return True

    def reject(self, origin: str, reason: str) -> None:
        """A source has no good document: count it, say so, keep the last good state."""
        self._metrics.reload_errors.labels(self._label).inc()
        kept = self._snapshot.revision or "none (all flags default)"
        log.warning("flags from %s not loaded: %s; keeping revision %s", origin, reason, kept)

    # -- overrides and reading ---------------------------------------------------------

    def set_override(self, key: str, value: bool) -> None:
        """Force `key` to `value` locally, above everything the document says."""
        with self._write_lock:
            self._overrides = {**self._overrides, key: bool(value)}
            self._publish(self._snapshot)
        self._notify_override(key)

    def clear_override(self, key: str) -> None:
        with self._write_lock:
            if key not in self._overrides:
                return
            self._overrides = {k: v for k, v in self._overrides.items() if k != key}
            self._publish(self._snapshot)
        self._notify_override(key)

    def overridden(self, key: str) -> bool:
        return key in self._overrides

    @property
    def revision(self) -> str | None:
        """Revision of the document in use; None until one loaded."""
        return self._snapshot.revision

    def keys(self) -> list[str]:
        return sorted(self._snapshot.flags)

    def get(self, key: str) -> dict[str, Any] | None:
        """A copy of the flag's `flags.json` entry, or None for an unknown key."""
        flag = self._snapshot.flags.get(key)
        return None if flag is None else dict(flag.state)

    # -- listeners ---------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(change)` after each new document or override, on the thread that
        made it. It must be quick; an exception from it is logged and ignored."""
        with self._write_lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._write_lock:
            # ==, not `is`: each `obj.method` access makes a new bound method object.
            self._listeners = tuple(x for x in self._listeners if x != listener)

    # -- internals ---------------------------------------------------------------------

    def _publish(self, snapshot: Snapshot) -> None:
        # Callers hold _write_lock; readers see either the old or the new dict, never a mix.
        effective = dict(snapshot.flags)
        for key, value in self._overrides.items():
            effective[key] = forced_flag(key, value)
        self._snapshot = snapshot
        self._effective = effective

    def _notify_override(self, key: str) -> None:
        if self._listeners:
            revision = self._snapshot.revision
            self._notify(Change(revision, revision, frozenset({key})))

    def _notify(self, change: Change) -> None:
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                log.exception("flags listener %r failed", listener)


def _changed(old: Snapshot, new: Snapshot) -> frozenset[str]:
    keys = old.flags.keys() ^ new.flags.keys()
    both = old.flags.keys() & new.flags.keys()
    return frozenset(keys | {k for k in both if old.flags[k].state != new.flags[k].state})
