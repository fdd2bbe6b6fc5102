"""List-watches the flag ConfigMaps the operator publishes and feeds the store.

The kubernetes client is synchronous, so each watch runs on a thread of its own:
documents are parsed and compiled there, off the event loop, and only the
finished snapshot crosses over (`loop.call_soon_threadsafe`). While the API
server is unreachable the store keeps what it has; the watch retries with
back-off and relists when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from flagops.relay.metrics import RelayMetrics
from flagops.relay.settings import RelaySettings
from flagops.relay.sharing import document_key, is_copy_key
from flagops.relay.store import Snapshot, Store, build_snapshot

logger = logging.getLogger(__name__)

MANAGED_BY = "app.kubernetes.io/managed-by=flagops"
FLAGS_KEY = "flags.json"
# The API server ends each watch after this long; a silent connection is noticed by then.
_WATCH_SECONDS = 60
_READ_TIMEOUT = _WATCH_SECONDS + 15
_CONNECT_TIMEOUT = 5


def load_api_client() -> Any:
    """In-cluster credentials when running in a Pod, else the kubeconfig (KUBECONFIG)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient(client.Configuration.get_default_copy())


class WatchSink(Protocol):
    """Where a watch thread hands its findings; `deliver` runs a call on the event loop."""

    def deliver(self, call: Callable[[], None]) -> None: ...

    def apply(self, snapshot: Snapshot) -> None: ...

    def deleted(self, namespace: str) -> None: ...

    def watch_up(self, scope: ConfigMapWatch, up: bool) -> None: ...


class _Relist(Exception):
    """The watch's resourceVersion expired (410 Gone): list again."""


class ConfigMapWatch:
    """One list-watch scope: every namespace, or one namespace."""

    def __init__(
        self,
        namespace: str | None,
        settings: RelaySettings,
        sink: WatchSink,
        metrics: RelayMetrics,
        api_client_factory: Callable[[], Any] = load_api_client,
    ) -> None:
        self.namespace = namespace
        self._settings = settings
        self._sink = sink
        self._metrics = metrics
        self._api_client_factory = api_client_factory
        self._stop = threading.Event()
        self._watch: Any = None
        self._api_client: Any = None
        self.listed = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"relay-watch-{namespace or 'all'}", daemon=True
        )
        # namespace -> revision last delivered (only touched on the watch thread).
        self._known: dict[str, str] = {}

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        watch = self._watch
        if watch is not None:
            watch.stop()
            # Closing the open response ends a blocking read at once.
            response = getattr(watch, "_resp", None)
            if response is not None:
                with contextlib.suppress(Exception):
                    response.close()

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        from kubernetes import client

        delay = self._settings.watch_backoff_initial
        while not self._stop.is_set():
            try:
                if self._api_client is None:
                    self._api_client = self._api_client_factory()
                core = client.CoreV1Api(self._api_client)
                for _ in self._list_then_watch(core):
                    delay = self._settings.watch_backoff_initial
            except _Relist:
                continue
            except Exception as exc:
                if self._stop.is_set():
                    break
                self._set_up(False)
                logger.warning(
                    "flag ConfigMap watch (%s) lost the API server, retrying in %.1fs: %s",
                    self.namespace or "all namespaces",
                    delay,
                    _describe(exc),
                )
                self._stop.wait(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
                delay = min(delay * 2, self._settings.watch_backoff_max)

    def _list_then_watch(self, core: Any) -> Iterator[None]:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        listing = self._list(core)
        resource_version = listing["metadata"]["resourceVersion"]
        present: set[str] = set()
        for item in listing.get("items") or []:
            namespace = self._accept(item)
            if namespace is not None:
                present.add(namespace)
        for namespace in [ns for ns in self._known if ns not in present]:
            self._gone(namespace)
        self.listed.set()
        self._set_up(True)
        yield
        while not self._stop.is_set():
            self._watch = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in self._watch.stream(
                    *self._list_call(core),
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=_WATCH_SECONDS,
                    _request_timeout=(_CONNECT_TIMEOUT, _READ_TIMEOUT),
                    **self._selectors(),
                ):
                    obj: Mapping[str, Any] = event["raw_object"]
                    resource_version = obj["metadata"].get("resourceVersion", resource_version)
                    kind = event["type"]
                    if kind in ("ADDED", "MODIFIED"):
                        self._accept(obj)
                    elif kind == "DELETED":
                        key = document_key(self._settings.configmap_name, obj)
                        if key is not None:
                            self._gone(key)
                    yield
            except ApiException as exc:
                if exc.status == 410:
                    raise _Relist from None
                raise
            finally:
                self._watch = None

    def _list_call(self, core: Any) -> tuple[Any, ...]:
        if self.namespace is None:
            return (core.list_config_map_for_all_namespaces,)
        return (core.list_namespaced_config_map, self.namespace)

    def _selectors(self) -> dict[str, str]:
        # No name selector: the copies shared from other namespaces (`<name>-from-<owner>`,
        # docs/sharing.md) are watched too; `document_key` sorts out the rest.
        return {"label_selector": MANAGED_BY}

    def _list(self, core: Any) -> dict[str, Any]:
        fn, *args = self._list_call(core)
        response = fn(
            *args,
            _preload_content=False,
            _request_timeout=(_CONNECT_TIMEOUT, _READ_TIMEOUT),
            **self._selectors(),
        )
        try:
            listing: dict[str, Any] = json.loads(response.data)
        finally:
            response.release_conn()
        return listing

    def _accept(self, obj: Mapping[str, Any]) -> str | None:
        """Take in a flag ConfigMap or a shared copy; its store key, None for others."""
        namespace = document_key(self._settings.configmap_name, obj)
        if namespace is None:
            return None
        text = (obj.get("data") or {}).get(FLAGS_KEY)
        if not isinstance(text, str):
            self._reject(namespace, f"ConfigMap has no {FLAGS_KEY!r} key")
            return namespace
        try:
            snapshot = build_snapshot(namespace, text)
        except ValueError as exc:
            self._reject(namespace, str(exc))
            return namespace
        except Exception as exc:
            # Whatever one namespace's document does, the watch (and every other
            # namespace it carries) goes on.
            self._reject(namespace, f"unreadable document ({type(exc).__name__})")
            return namespace
        if self._known.get(namespace) != snapshot.revision:
            self._known[namespace] = snapshot.revision
            self._sink.deliver(functools.partial(self._sink.apply, snapshot))
        return namespace

    def _reject(self, namespace: str, reason: str) -> None:
        self._metrics.document_errors.labels(namespace=namespace).inc()
        logger.warning(
            "namespace %s: malformed flag document, still serving the last good one: %s",
            namespace,
            reason,
        )

    def _gone(self, namespace: str) -> None:
        self._known.pop(namespace, None)
        self._sink.deliver(functools.partial(self._sink.deleted, namespace))

    def _set_up(self, up: bool) -> None:
        self._sink.deliver(functools.partial(self._sink.watch_up, self, up))


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    return type(exc).__name__


class RelayWatcher:
    """All the watch scopes the settings ask for, bound to one store on one loop."""

    def __init__(
        self,
        store: Store,
        settings: RelaySettings,
        metrics: RelayMetrics,
        loop: asyncio.AbstractEventLoop,
        api_client_factory: Callable[[], Any] = load_api_client,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._loop = loop
        scopes: list[str | None] = list(settings.namespaces) or [None]
        self.watches = [
            ConfigMapWatch(ns, settings, self, metrics, api_client_factory) for ns in scopes
        ]
        self._up = dict.fromkeys(self.watches, False)

    def start(self) -> None:
        for scope in self.watches:
            scope.start()

    def stop(self) -> None:
        for scope in self.watches:
            scope.stop()

    # -- WatchSink: `deliver` on the watch threads, the rest on the event loop ---------------

    def deliver(self, call: Callable[[], None]) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(call)

    def apply(self, snapshot: Snapshot) -> None:
        self._store.apply(snapshot)
        self._metrics.namespaces.set(len(self._store.namespaces()))
        self._metrics.last_change.set_to_current_time()

    def deleted(self, namespace: str) -> None:
        # A copy is gone because its owner stopped sharing: consent ends at once.
        grace = 0.0 if is_copy_key(namespace) else self._settings.deleted_grace_seconds
        self._store.deleted(namespace, grace)

    def watch_up(self, scope: ConfigMapWatch, up: bool) -> None:
        was_up = self._store.watch_up
        self._up[scope] = up
        all_up = all(self._up.values())
        if was_up and not all_up:
            self._metrics.watch_disconnects.inc()
        self._store.set_watch_up(all_up)
        self._metrics.watch_up.set(1 if all_up else 0)
        if all(scope.listed.is_set() for scope in self.watches) and not self._store.synced:
            self._store.synced = True
            self._metrics.synced.set(1)
            logger.info(
                "first list done: %d namespace(s) with flags", len(self._store.namespaces())
            )
