"""One API call with clear errors, and the namespaced base of FlagAdmin and RolloutManager."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from flagops.api.resources import Resource
from flagops.clients.errors import (
    ClusterUnreachable,
    FlagopsError,
    Forbidden,
    NotFound,
    ResourceNotInstalled,
)
from flagops.clients.kubeconfig import load_api_client

__all__ = ["NamespacedClient", "call", "status_body", "translate_api_error"]


def status_body(exc: ApiException) -> dict[str, Any]:
    """The Status object an API error carries, or {} when it carries none."""
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def translate_api_error(
    exc: ApiException,
    *,
    verb: str,
    resource: Resource,
    namespace: str | None,
    name: str | None = None,
) -> FlagopsError | ApiException:
    """A typed, one-line error for the usual failures; other errors come back unchanged.

    A 404 means either that the object is missing or that the server does not
    serve the resource at all (CRDs not installed): the Status body's `details`
    names the object only in the first case.
    """
    if exc.status == 403:
        return Forbidden(verb, resource.crd_name, namespace)
    if exc.status == 404:
        details = status_body(exc).get("details") or {}
        if name is not None and details.get("name") == name:
            return NotFound(resource, name, namespace or "")
        return ResourceNotInstalled(resource)
    return exc


def call(
    fn: Callable[..., Any],
    *args: Any,
    verb: str,
    resource: Resource,
    namespace: str | None,
    name: str | None = None,
    **kwargs: Any,
) -> Any:
    """Run one API call; expected failures become FlagopsError subclasses."""
    import urllib3

    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        translated = translate_api_error(
            exc, verb=verb, resource=resource, namespace=namespace, name=name
        )
        if translated is exc:
            raise
        raise translated from None
    except (urllib3.exceptions.MaxRetryError, urllib3.exceptions.NewConnectionError) as exc:
        host = getattr(getattr(exc, "pool", None), "host", None) or "the apiserver"
        raise ClusterUnreachable(f"cannot reach {host}: is the cluster up?") from None


class NamespacedClient:
    """Custom objects in one namespace, with kubectl's credentials and clear errors.

    The base of both user-side clients, FlagAdmin and RolloutManager.
    """

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        namespace: str = "default",
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
    ) -> None:
        self.api_client = api_client or load_api_client(kubeconfig, context)
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(self.api_client)

    def _list(self, resource: Resource) -> dict[str, Any]:
        """The list response as is (items and the list's resourceVersion)."""
        result: dict[str, Any] = call(
            self.custom.list_namespaced_custom_object,
            resource.group, resource.version, self.namespace, resource.plural,
            verb="list", resource=resource, namespace=self.namespace,
        )  # fmt: skip
        return result

    def _get(self, resource: Resource, name: str) -> dict[str, Any]:
        result: dict[str, Any] = call(
            self.custom.get_namespaced_custom_object,
            resource.group, resource.version, self.namespace, resource.plural, name,
            verb="get", resource=resource, namespace=self.namespace, name=name,
        )  # fmt: skip
        return result
