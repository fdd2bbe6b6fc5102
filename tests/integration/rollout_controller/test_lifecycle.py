"""A Rollout's life around its flag: Degraded specs, adoption, and handing the flag back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import watch
from rollout_controller_env import EnvFactory, RolloutEnv

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in status.get("conditions") or [] if c["type"] == kind]
    assert found, f"no {kind} condition in {status}"
    first: dict[str, Any] = found[0]
    return first


def assert_degraded(env: RolloutEnv, name: str, words: str) -> dict[str, Any]:
    status = env.wait_status(lambda s: s.get("phase") == "Degraded", name=name, timeout=30)
    assert words in status["message"], status["message"]
    validated = condition(status, "Validated")
    assert validated["status"] == "False"
    assert words in validated["message"]
    warnings = env.wait_events("Degraded", name=name)
    assert warnings[0].type == "Warning"
    assert words in warnings[0].message
    return status


def test_degraded_specs_and_recovery(make_env: EnvFactory) -> None:
    env = make_env()
    # A Rollout for a flag that does not exist (yet).
    env.create_rollout("early", flag="calendar-sync", stageDuration="10m")
    assert_degraded(env, "early", "not found")
    env.record("Degraded", "early")
    env.delete_rollout("early")
    # The same with a health probe that leaves its integration to the (missing) flag.
    env.create_rollout("early-probe", flag="ghost", healthProbe={"timeout": "5s", "every": "5s"})
    assert_degraded(env, "early-probe", "not found")
    assert env.jobs() == []

    env.create_flag(enabled=False)
    env.create_rollout(stageDuration="10m")
    env.wait_status(lambda s: s.get("stage") == "INTERNAL", timeout=30)

    # A second Rollout for the same flag is Degraded; the first keeps going.
    env.create_rollout("second", flag="calendar-sync", stageDuration="1s")
    status = assert_degraded(env, "second", "already rolled out by Rollout 'calendar-sync'")
    assert status.get("stage") is None
    env.wait_analyses(2)
    first = env.status()
    assert (first["stage"], first["phase"]) == ("INTERNAL", "Progressing")
    assert "Degraded" not in env.reasons()
    published = env.published()
    assert published is not None and published["stage"] == "INTERNAL"
    advance = env.act_and_wait("advance", "second", force=True)
    assert advance["lastAction"]["result"] == "Rejected"
    assert "Degraded" in advance["lastAction"]["message"]

    # A query Prometheus cannot parse.
    env.create_flag("other", enabled=False)
    env.create_rollout(
        "bad-query",
        flag="other",
        analysis={"prometheus": {"errorRateQuery": "sum(rate(x[1m]) /"}},
    )
    status = assert_degraded(env, "bad-query", "errorRateQuery does not parse")
    assert status.get("stage") is None

    # Fixing the query (a new generation) recovers it.
    env.patch_spec("bad-query", analysis={"prometheus": {"errorRateQuery": None}})
    env.wait_status(lambda s: s.get("stage") == "INTERNAL", name="bad-query", timeout=30)
    assert env.wait_events("Recovered", "bad-query")
    assert condition(env.status("bad-query"), "Validated")["status"] == "True"


def test_pending_until_prometheus_validates_the_queries(make_env: EnvFactory) -> None:
    env = make_env()
    env.create_flag(enabled=False)
    env.create_rollout(analysis={"prometheus": {"address": "http://127.0.0.1:9"}})
    status = env.wait_status(
        lambda s: s.get("phase") == "Pending" and s.get("conditions"), timeout=30
    )
    assert status.get("stage") is None
    assert condition(status, "Validated")["status"] == "False"
    assert "waiting for validation" in status["message"]
    env.record("Pending")
    # Nothing was adopted, so nothing is published for the Rollout.
    published = env.wait_published(lambda p: True)
    assert (published["enabled"], published.get("stage")) == (False, None)

    env.patch_spec(analysis={"prometheus": {"address": None}})
    status = env.wait_status(lambda s: s.get("stage") == "INTERNAL", timeout=30)
    assert condition(status, "Validated")["status"] == "True"


def test_pending_says_why(make_env: EnvFactory) -> None:
    env = make_env()
    env.create_flag(enabled=False)
    env.create_rollout(analysis={"prometheus": {"address": "http://127.0.0.1:9"}})
    status = env.wait_status(
        lambda s: s.get("phase") == "Pending" and s.get("conditions"), timeout=30
    )
    assert "unreachable" in condition(status, "Validated")["message"] + status["message"]


def configmap_versions(env: RolloutEnv, since: str) -> list[dict[str, Any]]:
    """Every version of the flag ConfigMap written after resourceVersion `since`."""
    versions = []
    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
        env.core.list_namespaced_config_map,
        env.namespace,
        field_selector="metadata.name=feature-flags",
        resource_version=since,
        timeout_seconds=2,
    )
    for event in stream:
        data = event["object"].data or {}
        versions.append(json.loads(data["flags.json"])["flags"])
    return versions


def test_adoption_never_widens_and_delete_hands_back(make_env: EnvFactory) -> None:
    env = make_env()
    env.create_flag(enabled=True, rolloutPercent=30, allowedCohorts=["beta", "internal"])
    env.create_flag("steady", enabled=True, rolloutPercent=25, allowedCohorts=["internal"])
    env.wait_published(lambda p: p["rolloutPercent"] == 30)
    env.wait_published(lambda p: p["rolloutPercent"] == 25, key="steady")
    before = env.core.read_namespaced_config_map("feature-flags", env.namespace)
    since = str(before.metadata.resource_version)  # type: ignore[union-attr]
    env.create_rollout(stageDuration="10m")
    env.create_rollout("steady", flag="steady", stageDuration="10m")

    status = env.wait_status(lambda s: s.get("stage") is not None, timeout=30)
    assert status["stage"] == "EARLY_ACCESS"
    assert status["currentPercent"] == 25
    assert "Adopted" in env.wait_events("Adopted")[0].reason
    env.wait_status(lambda s: s.get("stage") == "EARLY_ACCESS", name="steady")
    published = env.wait_published(lambda p: p["stage"] == "EARLY_ACCESS")
    assert (published["enabled"], published["rolloutPercent"]) == (True, 25)
    assert sorted(published["allowedCohorts"]) == ["beta", "internal"]
    versions = configmap_versions(env, since)
    assert versions
    assert versions[-1]["calendar_sync"]["rolloutPercent"] == 25
    for version in versions:
        flag = version["calendar_sync"]
        assert flag["enabled"] is True
        assert flag["rolloutPercent"] <= 30, version
    flag_status = env.flag()["status"]
    assert flag_status["effective"]["source"] == "rollout/calendar-sync"

    # A Rollout that changes nothing when it goes says nothing.
    env.delete_rollout("steady")
    env.wait_published(lambda p: p.get("stage") is None, key="steady")
    # Handing back 25% -> the spec's 30% changes exposure: a Warning on the flag.
    env.delete_rollout()
    warning = env.wait_events("RolloutDeleted", "calendar-sync", kind="FeatureFlag")[0]
    assert warning.type == "Warning"
    assert "rolloutPercent=30" in warning.message
    assert "rolloutPercent=25" in warning.message
    published = env.wait_published(lambda p: p["rolloutPercent"] == 30)
    assert published["stage"] is None
    assert "RolloutDeleted" not in env.reasons("steady", kind="FeatureFlag")
