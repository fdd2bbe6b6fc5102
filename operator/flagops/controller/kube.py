"""Thin, typed access to the Kubernetes API for what kopf does not do for us.

The kubernetes client is synchronous; every call here runs in a worker thread so
handlers stay responsive. Nothing here decides anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from flagops.api.common import format_timestamp
from flagops.api.resources import GROUP, VERSION

logger = logging.getLogger(__name__)

COMPONENT = "flagops"
# Seconds a ConfigMap write may take before it counts as failed (and is retried).
WRITE_TIMEOUT = 30.0
T = TypeVar("T")


# Connections to the apiserver, and the worker threads that use them (operator.py).
CONNECTION_POOL = 32


def load_config() -> client.ApiClient:
    """In-cluster credentials when running in a Pod, else the kubeconfig (KUBECONFIG)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    configuration = client.Configuration.get_default_copy()
    # Publishing 1,000 flag statuses at once wants more than urllib3's default 4 connections.
    configuration.connection_pool_maxsize = CONNECTION_POOL
    return client.ApiClient(configuration)


class Kube:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.batch = client.BatchV1Api(api_client)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(partial(fn, *args, **kwargs))

    async def _send(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        """A call whose reply is not needed. A write's reply echoes the whole object:
        decoding it was the largest cost of a status write at 10,000 Rollouts. The reply
        is read and dropped, so its connection goes back to the pool (an unread one would
        not, and the next call would open a new connection)."""

        def send() -> None:
            response = fn(*args, _preload_content=False, **kwargs)
            response.drain_conn()
            response.release_conn()

        await asyncio.to_thread(send)

    async def read_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            result = await self._call(self.core.read_namespaced_config_map, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data: dict[str, Any] = self.api_client.sanitize_for_serialization(result)  # type: ignore[no-untyped-call]
        return data

    async def write_configmap(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
    ) -> None:
        """Create the ConfigMap, or make an existing one hold exactly `data`."""
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(labels),
                "annotations": dict(annotations),
            },
            "data": dict(data),
        }
        # The reply echoes the whole ConfigMap (up to 1 MiB): not decoding it saves a
        # noticeable part of a publish. Bounded so a hung call is retried, not waited on.
        try:
            await self._send(
                self.core.patch_namespaced_config_map,
                name,
                namespace,
                body,
                _request_timeout=WRITE_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            await self._send(
                self.core.create_namespaced_config_map,
                namespace,
                body,
                _request_timeout=WRITE_TIMEOUT,
            )

    async def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = await self._call(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            job = await self._call(self.batch.read_namespaced_job, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data: dict[str, Any] = self.api_client.sanitize_for_serialization(job)  # type: ignore[no-untyped-call]
        return data

    async def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        pods = await self._call(
            self.core.list_namespaced_pod, namespace, label_selector=f"job-name={job_name}"
        )
        data: dict[str, Any] = self.api_client.sanitize_for_serialization(pods)  # type: ignore[no-untyped-call]
        items: list[dict[str, Any]] = data.get("items") or []
        return items

    async def create_job(self, namespace: str, body: Mapping[str, Any]) -> bool:
        """Create a Job; False when one of that name exists already (a restart's retry)."""
        try:
            await self._call(self.batch.create_namespaced_job, namespace, dict(body))
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        await self._send(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"status": dict(status)},
        )

    async def post_event(
        self,
        involved: Mapping[str, Any],
        type_: str,
        reason: str,
        message: str,
    ) -> None:
        """A core/v1 Event on `involved` (apiVersion, kind, metadata); failures only log."""
        meta = involved["metadata"]
        body = _event_body(involved, type_, reason, message, datetime.now(UTC))
        body["metadata"]["generateName"] = f"{meta['name']}."
        try:
            await self._send(self.core.create_namespaced_event, meta["namespace"], body)
        except ApiException as exc:
            # An Event is best effort: losing one must never stop a reconcile.
            logger.warning("could not post event %s on %s: %s", reason, meta["name"], exc.reason)

    async def post_event_once(
        self,
        involved: Mapping[str, Any],
        name: str,
        type_: str,
        reason: str,
        message: str,
        at: datetime,
    ) -> bool:
        """The Event `name` on `involved`, created unless it exists; True when it exists now.

        A fixed name makes posting idempotent: an operator restarted after the post but
        before it could note so gets 409 and knows the Event is there.
        """
        meta = involved["metadata"]
        body = _event_body(involved, type_, reason, message, at)
        body["metadata"]["name"] = name
        try:
            await self._send(self.core.create_namespaced_event, meta["namespace"], body)
        except ApiException as exc:
            if exc.status == 409:
                return True
            logger.warning("could not post event %s on %s: %s", reason, meta["name"], exc.reason)
            return False
        except Exception as exc:  # the apiserver may be gone; the Event stays pending
            logger.warning("could not post event %s on %s: %s", reason, meta["name"], exc)
            return False
        return True


def _event_body(
    involved: Mapping[str, Any], type_: str, reason: str, message: str, at: datetime
) -> dict[str, Any]:
    meta = involved["metadata"]
    now = format_timestamp(at)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
