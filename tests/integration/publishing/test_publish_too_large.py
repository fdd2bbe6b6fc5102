"""Issue 11: a namespace whose flags outgrow one ConfigMap never freezes publishing
(real kube-apiserver, its real 1 MiB ConfigMap limit)."""

from __future__ import annotations

import json
import time
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families
from test_publish import (
    CM,
    PLURAL,
    condition,
    configmap_text,
    create,
    feature_flag,
    get_flag,
    patch_spec,
    published,
    the_condition,
)

from flagops.api.resources import GROUP, VERSION
from flagops.publishing.fit import DEFAULT_MAX_DOCUMENT_BYTES
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration

# The largest metadata the CRD accepts: 4 values of 1,000 characters plus their keys.
BIG_METADATA = {f"note{i}": chr(ord("a") + i) * 1000 for i in range(4)}
BIG_FLAGS = 260  # about 4.1 kB each in the document: together over 1 MiB


def metric(operator: OperatorProcess, name: str, namespace: str) -> float | None:
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("namespace") == namespace:
                return float(sample.value)
    return None


QUIET = 2.5  # seconds: above the operator's default publish_max_interval (2 s)


def wait_until_publisher_quiet(core: client.CoreV1Api, namespace: str) -> None:
    """Until the flag ConfigMap has not changed for QUIET seconds."""
    last: dict[str, Any] = {"version": None, "since": time.monotonic()}

    def quiet() -> bool:
        meta = core.read_namespaced_config_map(CM, namespace).metadata
        version = meta.resource_version if meta else None
        if version != last["version"]:
            last.update(version=version, since=time.monotonic())
        return bool(time.monotonic() - last["since"] >= QUIET)

    wait_for(quiet, timeout=60, interval=0.1, message="the flag ConfigMap never stopped changing")


def test_thirty_kilobyte_metadata_is_rejected_by_the_crd(
    operator: OperatorProcess, namespace: str, custom: client.CustomObjectsApi
) -> None:
    with pytest.raises(ApiException) as rejected:
        create(custom, namespace, feature_flag("huge", metadata={"notes": "x" * 30_000}))
    assert rejected.value.status == 422
    assert "spec.metadata.notes" in json.loads(rejected.value.body or "{}")["message"]


def test_a_namespace_over_one_mebibyte_keeps_publishing(
    operator: OperatorProcess,
    namespace: str,
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
) -> None:
    create(custom, namespace, feature_flag("kill-switch", enabled=False))
    wait_for(lambda: "kill-switch" in (published(core, namespace) or {}), timeout=30)
    docs = [
        {
            **feature_flag(f"big-{i:03d}", enabled=True, metadata=BIG_METADATA),
            "metadata": {"name": f"big-{i:03d}", "namespace": namespace},
        }
        for i in range(BIG_FLAGS)
    ]
    control_plane.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    )
    names = ["kill-switch", *(d["metadata"]["name"] for d in docs)]

    def settled() -> dict[str, dict[str, Any]] | None:
        flags = {
            o["metadata"]["name"]: o
            for o in cast(
                "dict[str, Any]",
                custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL),
            )["items"]
        }
        done = all(
            (c := condition(flags.get(n, {}), "Published")) is not None
            and c["observedGeneration"] == flags[n]["metadata"]["generation"]
            for n in names
        )
        return flags if done else None

    flags = wait_for(settled, timeout=120, message="not every flag says whether it is published")
    text = configmap_text(core, namespace)
    live = published(core, namespace) or {}
    omitted = [
        n for n in names if the_condition(flags[n], "Published")["reason"] == "DocumentTooLarge"
    ]
    kept = [n for n in names if the_condition(flags[n], "Published")["status"] == "True"]
    # Every flag is published or says why; together they would not fit in one ConfigMap.
    assert sorted(kept + omitted) == sorted(names)
    assert omitted and kept
    assert set(kept) == set(live)
    assert len(text.encode()) <= DEFAULT_MAX_DOCUMENT_BYTES
    # Newest first: what is left out is a suffix of the creation order (names break ties).
    order = sorted(names, key=lambda n: (flags[n]["metadata"]["creationTimestamp"], n))
    assert order[len(kept) :] == sorted(omitted, key=order.index)
    assert "kill-switch" in kept
    print(
        f"{len(names)} flags, {len(kept)} published in {len(text.encode())} bytes,"
        f" {len(omitted)} left out"
    )

    omitted_metric = wait_for(
        lambda: metric(operator, "flagops_publish_flags_omitted", namespace),
        timeout=10,
    )
    assert omitted_metric == len(omitted)
    events = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={omitted[0]},reason=DocumentTooLarge"
    ).items
    assert events and events[0].type == "Warning"

    # The scenario's kill switch comes long after the bulk apply: wait until the
    # publisher's burst pacing is over (no ConfigMap write for longer than its
    # ceiling), so the second below measures a lone change, not the pacing.
    wait_until_publisher_quiet(core, namespace)
    # The kill switch still reaches apps, within a second.
    started = time.monotonic()
    patch_spec(custom, namespace, "kill-switch", enabled=True)
    wait_for(
        lambda: json.loads(configmap_text(core, namespace))["flags"]["kill-switch"]["enabled"],
        timeout=1.0,
        interval=0.02,
        message="kill switch not published",
    )
    print(f"kill switch published {time.monotonic() - started:.3f}s after the change")
    ks = wait_for(
        lambda: (
            (o := get_flag(custom, namespace, "kill-switch"))["status"]["observedGeneration"] == 2
            and o
        ),
        timeout=30,
    )
    assert the_condition(ks, "Published")["status"] == "True"

    # Deleting old flags makes room: the left-out flags come back, oldest first.
    for name in kept[-10:]:
        if name != "kill-switch":
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    wait_for(
        lambda: omitted[0] in (published(core, namespace) or {}),
        timeout=30,
        message="room made, but the oldest left-out flag was not published",
    )
    log = operator.log()
    assert "Traceback" not in log
    assert "Too long" not in log
