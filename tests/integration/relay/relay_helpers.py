"""Helpers of the relay tests: HTTP calls, contexts, documents published as the operator would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from flagops.flags.document import build_document

CONFIGMAP = "feature-flags"
MANAGED_BY = {"app.kubernetes.io/managed-by": "flagops"}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    url: str,
    token: str | None = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
) -> Reply:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if body is not None:
        sent.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=body, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def context(user: str | None = None, cohort: str | None = None) -> bytes:
    ctx: dict[str, str] = {}
    if user is not None:
        ctx["targetingKey"] = user
    if cohort is not None:
        ctx["cohort"] = cohort
    return json.dumps({"context": ctx}).encode()


def write_configmap(core: Any, namespace: str, text: str) -> None:
    """Publish `text` as the operator would (a test stands in for it where it is not run)."""
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=CONFIGMAP, labels=MANAGED_BY),
        data={"flags.json": text},
    )
    try:
        core.replace_namespaced_config_map(CONFIGMAP, namespace, body)
    except ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespaced_config_map(namespace, body)


def publish(core: Any, namespace: str, flags: Mapping[str, Mapping[str, Any]]) -> str:
    text, revision = build_document(flags)
    write_configmap(core, namespace, text)
    return revision


def token_entry(token: str, namespaces: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": f"test-{namespaces[0]}", "token": token, "namespaces": namespaces, **extra}
