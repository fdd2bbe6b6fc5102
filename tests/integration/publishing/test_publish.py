"""The operator publishes FeatureFlags into the namespace's ConfigMap (real apiserver)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from flagops.api.resources import FEATUREFLAGS, GROUP, VERSION
from flagops.flags.document import parse_document
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
PLURAL = FEATUREFLAGS.plural
CM = "feature-flags"


def feature_flag(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FeatureFlag",
        "metadata": {"name": name},
        "spec": spec,
    }


def create(custom: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def patch_spec(custom: client.CustomObjectsApi, namespace: str, name: str, **spec: Any) -> None:
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": spec})


def configmap_text(core: client.CoreV1Api, namespace: str) -> str:
    return (core.read_namespaced_config_map(CM, namespace).data or {})["flags.json"]


def configmap_version(core: client.CoreV1Api, namespace: str) -> str | None:
    meta = core.read_namespaced_config_map(CM, namespace).metadata
    return None if meta is None else meta.resource_version


def get_flag(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    obj = cast(
        "dict[str, Any]",
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name),
    )
    return obj


def published(core: client.CoreV1Api, namespace: str) -> dict[str, dict[str, Any]] | None:
    """The flags in the namespace's ConfigMap (validated like the SDK does), or None."""
    try:
        cm = core.read_namespaced_config_map(CM, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return parse_document((cm.data or {})["flags.json"])


def wait_published(
    core: client.CoreV1Api, namespace: str, check: Any, timeout: float = 30
) -> dict[str, dict[str, Any]]:
    def ready() -> dict[str, dict[str, Any]] | None:
        flags = published(core, namespace)
        return flags if flags is not None and check(flags) else None

    result: dict[str, dict[str, Any]] = wait_for(
        ready, timeout=timeout, message=f"ConfigMap {namespace}/{CM} never matched"
    )
    return result


def configmap_writes(operator: OperatorProcess, namespace: str) -> float:
    for family in text_string_to_metric_families(operator.metrics()):
        if family.name == "flagops_configmap_writes":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("namespace") == namespace:
                    return float(sample.value)
    return 0.0


def writes_counted(operator: OperatorProcess, namespace: str, at_least: float) -> float:
    """The write count once it reaches ``at_least``.

    The operator counts a write after the apiserver has answered it, so a test that
    has just seen the new ConfigMap may read the counter a moment before it moves.
    """
    return wait_for(
        lambda: (count := configmap_writes(operator, namespace)) >= at_least and count,
        timeout=10,
        message=f"{at_least:g} ConfigMap writes counted in {namespace}",
    )


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next(
        (c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None
    )


def the_condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    """The condition, which the caller knows is there (a failed assertion otherwise)."""
    found = condition(obj, type_)
    assert found is not None, f"no {type_} condition in {obj.get('status')}"
    return found


def test_create_update_delete(
    operator: OperatorProcess,
    namespace: str,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
) -> None:
    create(
        custom,
        namespace,
        feature_flag(
            "export-pdf", key="export_pdf", enabled=True, rolloutPercent=100, allowedCohorts=["all"]
        ),
    )
    create(
        custom,
        namespace,
        feature_flag(
            "beta-thing",
            enabled=True,
            rolloutPercent=25,
            allowedCohorts=["beta"],
            startDate="2026-01-01T00:00:00Z",
            metadata={"owner": "growth"},
        ),
    )
    flags = wait_published(core, namespace, lambda f: {"export_pdf", "beta-thing"} <= set(f))
    assert flags["export_pdf"] == {
        "enabled": True,
        "rolloutPercent": 100,
        "allowedCohorts": ["all"],
        "startDate": None,
        "endDate": None,
        "stage": None,
        "metadata": {},
    }
    assert flags["beta-thing"]["startDate"] == "2026-01-01T00:00:00Z"
    assert flags["beta-thing"]["metadata"] == {"owner": "growth"}

    cm = core.read_namespaced_config_map(CM, namespace)
    assert cm.metadata is not None and cm.metadata.labels is not None
    assert cm.metadata.labels["app.kubernetes.io/managed-by"] == "flagops"
    text = (cm.data or {})["flags.json"]
    doc = json.loads(text)
    assert text == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def status_published(name: str) -> dict[str, Any] | None:
        obj = get_flag(custom, namespace, name)
        cond = condition(obj, "Published")
        return (
            obj
            if cond and cond["status"] == "True" and obj["status"].get("publishedRevision")
            else None
        )

    pdf = wait_for(lambda: status_published("export-pdf"), timeout=30)
    assert pdf["status"]["effective"]["source"] == "spec"
    assert pdf["status"]["effective"]["rolloutPercent"] == 100
    assert pdf["status"]["observedGeneration"] == pdf["metadata"]["generation"]
    pdf_revision = pdf["status"]["publishedRevision"]

    patch_spec(custom, namespace, "beta-thing", rolloutPercent=50)
    flags = wait_published(core, namespace, lambda f: f["beta-thing"]["rolloutPercent"] == 50)
    beta = wait_for(
        lambda: (
            (o := get_flag(custom, namespace, "beta-thing"))["status"]["observedGeneration"] == 2
            and o
        ),
        timeout=30,
    )
    assert beta["status"]["effective"]["rolloutPercent"] == 50
    assert (
        beta["status"]["publishedRevision"]
        == json.loads(configmap_text(core, namespace))["revision"]
    )
    # A flag whose own state did not change keeps the revision that published it.
    assert get_flag(custom, namespace, "export-pdf")["status"]["publishedRevision"] == pdf_revision

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "beta-thing")
    flags = wait_published(core, namespace, lambda f: "beta-thing" not in f)
    assert set(flags) == {"export_pdf"}


def test_two_hundred_flags_at_once_coalesce(
    operator: OperatorProcess, namespace: str, control_plane: ControlPlane, core: client.CoreV1Api
) -> None:
    docs = [
        {
            **feature_flag(f"flag-{i:03d}", enabled=i % 2 == 0, rolloutPercent=i % 101),
            "metadata": {"name": f"flag-{i:03d}", "namespace": namespace},
        }
        for i in range(200)
    ]
    control_plane.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    )
    flags = wait_published(core, namespace, lambda f: len(f) == 200, timeout=60)
    assert flags["flag-007"]["rolloutPercent"] == 7 and flags["flag-007"]["enabled"] is False
    writes = writes_counted(operator, namespace, at_least=1)
    print(f"200 flags applied with kubectl: {writes:.0f} ConfigMap writes")
    assert 1 <= writes <= 10


def test_unchanged_state_writes_nothing(
    operator: OperatorProcess,
    namespace: str,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
) -> None:
    create(custom, namespace, feature_flag("quiet", enabled=True))
    wait_published(core, namespace, lambda f: "quiet" in f)
    wait_for(lambda: condition(get_flag(custom, namespace, "quiet"), "Published"), timeout=30)
    before = configmap_writes(operator, namespace)
    rv_before = configmap_version(core, namespace)
    # A label change is an event for the operator but changes nothing it publishes.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "quiet", {"metadata": {"labels": {"touched": "yes"}}}
    )
    # A later real change proves the operator processed the label event before it.
    create(custom, namespace, feature_flag("marker", enabled=False))
    wait_published(core, namespace, lambda f: "marker" in f)
    assert writes_counted(operator, namespace, at_least=before + 1) == before + 1
    assert configmap_version(core, namespace) != rv_before


def test_deleted_and_hand_edited_configmap_is_restored(
    operator: OperatorProcess,
    namespace: str,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
) -> None:
    create(custom, namespace, feature_flag("keep-me", enabled=True, rolloutPercent=30))
    wait_published(core, namespace, lambda f: "keep-me" in f)
    original = configmap_text(core, namespace)

    core.patch_namespaced_config_map(CM, namespace, {"data": {"flags.json": '{"hand": "edit"}'}})
    wait_for(
        lambda: configmap_text(core, namespace) == original,
        timeout=30,
        message="hand-edited ConfigMap not restored",
    )

    core.delete_namespaced_config_map(CM, namespace)
    wait_for(
        lambda: (published(core, namespace) or {}).get("keep-me", {}).get("rolloutPercent") == 30,
        timeout=30,
        message="deleted ConfigMap not restored",
    )
    assert configmap_text(core, namespace) == original


def test_duplicate_keys_conflict_and_others_stay_published(
    operator: OperatorProcess,
    namespace: str,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
) -> None:
    create(custom, namespace, feature_flag("first", key="shared", enabled=True, rolloutPercent=10))
    wait_published(core, namespace, lambda f: "shared" in f)
    create(custom, namespace, feature_flag("second", key="shared", enabled=True, rolloutPercent=90))
    create(custom, namespace, feature_flag("bystander", enabled=True))
    flags = wait_published(core, namespace, lambda f: "bystander" in f)

    second = wait_for(
        lambda: (
            (c := condition(get_flag(custom, namespace, "second"), "Conflict"))
            and c["status"] == "True"
            and c
        ),
        timeout=30,
    )
    assert "first" in second["message"]
    published_cond = condition(get_flag(custom, namespace, "second"), "Published")
    assert published_cond is not None and published_cond["status"] == "False"
    assert published_cond["reason"] == "KeyConflict"
    # The older flag learns of the conflict on the publisher's next status pass:
    # before that it may still say Conflict=False from its own first publication.
    first_conflict = wait_for(
        lambda: (
            (c := condition(get_flag(custom, namespace, "first"), "Conflict")) is not None
            and c["status"] == "True"
            and c
        ),
        timeout=30,
        message="the older flag never said Conflict=True",
    )
    assert first_conflict["reason"] == "DuplicateKey"
    # The older flag keeps the key; the rest of the namespace is unaffected.
    flags = published(core, namespace) or {}
    assert flags["shared"]["rolloutPercent"] == 10
    assert flags["bystander"]["enabled"] is True

    def conflict_event() -> Any:
        events = core.list_namespaced_event(
            namespace, field_selector="involvedObject.name=second"
        ).items
        return next((e for e in events if e.reason == "KeyConflict" and e.type == "Warning"), None)

    event = wait_for(conflict_event, timeout=30, message="no KeyConflict event")
    assert "shared" in event.message

    # Resolving the conflict clears it.
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "first")
    wait_published(core, namespace, lambda f: f.get("shared", {}).get("rolloutPercent") == 90)
    wait_for(
        lambda: (
            (c := condition(get_flag(custom, namespace, "second"), "Conflict"))
            and c["status"] == "False"
        ),
        timeout=30,
    )


def test_restart_with_changes_made_while_down(
    operator_factory: Any, namespace: str, core: client.CoreV1Api, custom: client.CustomObjectsApi
) -> None:
    operator = operator_factory([namespace])
    for name in ("stays", "changes", "goes"):
        create(custom, namespace, feature_flag(name, enabled=True, rolloutPercent=10))
    wait_published(core, namespace, lambda f: {"stays", "changes", "goes"} <= set(f))
    operator.kill()

    patch_spec(custom, namespace, "changes", rolloutPercent=60)
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "goes")
    create(custom, namespace, feature_flag("arrives", enabled=True, rolloutPercent=5))
    for i in range(30):
        create(custom, namespace, feature_flag(f"bulk-{i}", enabled=False))

    restarted = operator_factory([namespace])
    flags = wait_published(core, namespace, lambda f: "arrives" in f)
    assert set(flags) == {"stays", "changes", "arrives", *(f"bulk-{i}" for i in range(30))}
    assert flags["changes"]["rolloutPercent"] == 60
    # All of the namespace was listed before publishing: one write, never a partial document.
    assert writes_counted(restarted, namespace, at_least=1) == 1


def test_default_flags_manifests(
    operator: OperatorProcess, namespace: str, control_plane: ControlPlane, core: client.CoreV1Api
) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-k", str(REPO / "manifests" / "flags"))
    flags = wait_published(core, namespace, lambda f: len(f) == 6)
    assert flags["calendar_sync"]["enabled"] is False
    assert flags["calendar_sync"]["allowedCohorts"] == ["beta", "internal"]
    assert flags["export_pdf"]["enabled"] is True and flags["export_pdf"]["rolloutPercent"] == 100
    assert flags["advanced_analytics"]["rolloutPercent"] == 25
    assert flags["ai_coaching_v2"]["allowedCohorts"] == ["internal"]
