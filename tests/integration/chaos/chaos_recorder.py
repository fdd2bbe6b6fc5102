"""Records every version of a namespace's Rollouts, FeatureFlags, ConfigMaps, Jobs and Events.

One watch per kind, started before the scenario, resumed from the last
resourceVersion whenever it ends (the apiserver closing it, or being down).
The resourceVersions of one etcd are its global revision, so versions of
different kinds are ordered against each other by `rv`. A watch that has to
start over from a fresh list (410 Gone) may have missed versions: that is
recorded in `gaps`, so a test can tell a complete record from a partial one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from flagops.api.resources import GROUP, VERSION
from flagops.api.stages import PERCENT, Stage
from flagops.flags.document import parse_document

KINDS = ("rollouts", "featureflags", "configmaps", "jobs", "events")


@dataclass(frozen=True)
class Version:
    kind: str
    type: str  # ADDED, MODIFIED, DELETED, or LISTED (from a fresh list)
    rv: int
    at: float  # time.monotonic() when the test saw it
    obj: dict[str, Any]

    @property
    def name(self) -> str:
        name: str = self.obj["metadata"]["name"]
        return name

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.obj.get("status") or {}
        return status


@dataclass
class ClusterRecorder:
    api_client: Any
    namespace: str
    versions: list[Version] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _listed: dict[str, threading.Event] = field(default_factory=dict)

    # --- running ----------------------------------------------------------------------

    def start(self, timeout: float = 30) -> ClusterRecorder:
        for kind in KINDS:
            self._listed[kind] = threading.Event()
            thread = threading.Thread(target=self._follow, args=(kind,), daemon=True)
            thread.start()
            self._threads.append(thread)
        for kind, listed in self._listed.items():
            if not listed.wait(timeout):
                raise TimeoutError(f"watch of {kind} did not start: {self.errors[-3:]}")
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _list(self, kind: str) -> Callable[..., Any]:
        core = client.CoreV1Api(self.api_client)
        custom = client.CustomObjectsApi(self.api_client)
        if kind in ("rollouts", "featureflags"):

            def list_custom(**kw: Any) -> Any:
                return custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, kind, **kw
                )

            return list_custom
        if kind == "jobs":
            batch = client.BatchV1Api(self.api_client)
            return lambda **kw: batch.list_namespaced_job(self.namespace, **kw)
        if kind == "events":
            return lambda **kw: core.list_namespaced_event(self.namespace, **kw)
        return lambda **kw: core.list_namespaced_config_map(self.namespace, **kw)

    def _fresh_list(self, kind: str) -> str:
        response = self._list(kind)(_preload_content=False, _request_timeout=10)
        body = json.loads(response.data)
        now = time.monotonic()
        with self._lock:
            for item in body.get("items") or []:
                item_rv = int(item["metadata"]["resourceVersion"])
                self.versions.append(Version(kind, "LISTED", item_rv, now, item))
        rv: str = body["metadata"]["resourceVersion"]
        return rv

    def _follow(self, kind: str) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    if self._listed[kind].is_set():
                        self.gaps.append(f"{kind}: watch restarted from a fresh list")
                    rv = self._fresh_list(kind)
                    self._listed[kind].set()
                for event in self._stream(kind, rv):
                    if event["type"] == "ERROR":
                        status = event["raw_object"]
                        if status.get("code") == 410:
                            rv = None
                            break
                        raise RuntimeError(f"watch error: {status}")
                    obj = event["raw_object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] == "BOOKMARK":
                        continue
                    with self._lock:
                        self.versions.append(
                            Version(kind, event["type"], int(rv), time.monotonic(), obj)
                        )
            except ApiException as exc:
                if exc.status == 410:
                    rv = None
                else:
                    self.errors.append(f"{kind}: {exc.status} {exc.reason}")
                    self._stop.wait(0.5)
            except Exception as exc:
                # The apiserver may be down (an outage test): retry from the same version.
                self.errors.append(f"{kind}: {type(exc).__name__}: {str(exc)[:200]}")
                self._stop.wait(0.5)

    def _stream(self, kind: str, rv: str) -> Iterator[dict[str, Any]]:
        watcher = watch.Watch()  # type: ignore[no-untyped-call]
        try:
            yield from watcher.stream(  # type: ignore[no-untyped-call]
                self._list(kind),
                resource_version=rv,
                timeout_seconds=5,
                allow_watch_bookmarks=True,
                _request_timeout=15,
            )
        finally:
            watcher.stop()  # type: ignore[no-untyped-call]

    # --- reading ----------------------------------------------------------------------

    def of(self, kind: str, name: str | None = None) -> list[Version]:
        """Versions of `kind` (and `name`), oldest first, each resourceVersion once."""
        with self._lock:
            found = [v for v in self.versions if v.kind == kind]
        if name is not None:
            found = [v for v in found if v.name == name]
        unique: dict[tuple[str, int, str], Version] = {}
        for v in found:
            unique.setdefault((v.name, v.rv, v.type if v.type == "DELETED" else ""), v)
        return sorted(unique.values(), key=lambda v: (v.rv, v.at))

    def stages(self, rollout: str) -> list[tuple[Stage, Version]]:
        """Each stage the Rollout entered, with the first version that had it."""
        entered: list[tuple[Stage, Version]] = []
        for v in self.of("rollouts", rollout):
            stage = v.status.get("stage")
            if stage and (not entered or entered[-1][0].value != stage):
                entered.append((Stage(stage), v))
        return entered

    def rollout_events(self, rollout: str) -> list[dict[str, Any]]:
        """Every Event on the Rollout, each object once, oldest first."""
        seen: dict[str, dict[str, Any]] = {}
        for v in self.of("events"):
            involved = v.obj.get("involvedObject") or {}
            if involved.get("kind") == "Rollout" and involved.get("name") == rollout:
                seen.setdefault(v.name, v.obj)
        return list(seen.values())

    def first_published(self, key: str, stage: Stage) -> Version | None:
        """The first ConfigMap version whose document gives `key` the stage's exposure."""
        for v in self.of("configmaps"):
            if v.type == "DELETED":
                continue
            text = (v.obj.get("data") or {}).get("flags.json")
            if not text:
                continue
            entry = parse_document(text).get(key)
            if entry is not None and published_at_stage(entry, stage):
                return v
        return None


def as_dict(value: object) -> dict[str, Any]:
    """The client's untyped answer for a custom object, as what it is: JSON."""
    assert isinstance(value, dict)
    return value


def published_at_stage(entry: dict[str, Any], stage: Stage) -> bool:
    if stage is Stage.DISABLED:
        return not entry.get("enabled")
    return (
        bool(entry.get("enabled"))
        and entry.get("stage") == stage.value
        and entry.get("rolloutPercent") == PERCENT[stage]
    )


def step_of(event: dict[str, Any]) -> tuple[str, str]:
    """(from, to) of a StageAdvanced Event's message: "BETA -> EARLY_ACCESS: ..."."""
    head = str(event.get("message", "")).split(":")[0].split(" by ")[0]
    old, new = (part.strip() for part in head.split("->"))
    return old, new
