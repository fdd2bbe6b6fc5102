"""Argo CD health and actions, run in a Lua sandbox shaped like Argo CD's.

The sample objects come from the pydantic models, so they have the real schema;
objects the operator really wrote (tests/fixtures/argocd/*.json) run too.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from delivery_argocd import ACTIONS, ARGOCD_DIR, CONFIGMAP, ArgoLua, lua, render

from flagops.api.common import Condition, ConditionStatus
from flagops.api.featureflag import FeatureFlag, FeatureFlagSpec, FeatureFlagStatus
from flagops.api.rollout import FlagRef, Phase, Rollout, RolloutSpec, RolloutStatus
from flagops.api.stages import PERCENT, Stage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "argocd"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
VALID_HEALTH = {"Healthy", "Progressing", "Suspended", "Degraded"}
EXPECTED_HEALTH = {
    Phase.PENDING: "Progressing",
    Phase.PROGRESSING: "Progressing",
    Phase.PAUSED: "Suspended",
    Phase.COMPLETED: "Healthy",
    Phase.ROLLED_BACK: "Degraded",
    Phase.DEGRADED: "Degraded",
}
# The actions each phase offers; all others are disabled.
ENABLED_ACTIONS = {
    Phase.PENDING: set(),
    Phase.PROGRESSING: {"advance", "pause", "rollback"},
    Phase.PAUSED: {"resume", "rollback"},
    Phase.COMPLETED: {"rollback"},
    Phase.ROLLED_BACK: {"retry"},
    Phase.DEGRADED: set(),
}
ACTION_VALUE = re.compile(r"^(?P<verb>[a-z]+)@(?P<id>argocd-\d{14}-\S+)$")


@pytest.fixture(scope="module")
def argo() -> ArgoLua:
    return ArgoLua()


def metadata(name: str, generation: int = 2) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "health-portal",
        "generation": generation,
        "resourceVersion": "4711",
        "uid": "6f1e4a4e-1c1b-4a8e-9f0e-0c6a1d2b3c4d",
    }


def rollout(
    phase: Phase | None,
    stage: Stage = Stage.BETA,
    generation: int = 2,
    observed: int | None = 2,
    paused: bool = False,
    message: str | None = None,
) -> dict[str, Any]:
    status = RolloutStatus(
        phase=phase,
        stage=stage if phase is not None else None,
        current_percent=PERCENT[stage] if phase is not None else None,
        message=message,
        stage_started_at=NOW if phase is not None else None,
        observed_generation=observed,
    )
    obj = Rollout(
        metadata=metadata("calendar-sync", generation),
        spec=RolloutSpec(flag_ref=FlagRef(name="calendar-sync"), paused=paused),
        status=status,
    ).to_api()
    if phase is None and observed is None:
        del obj["status"]
    return obj


def feature_flag(
    conditions: dict[str, ConditionStatus], observed: int | None = 2
) -> dict[str, Any]:
    status = FeatureFlagStatus(
        observed_generation=observed,
        conditions=[
            Condition(
                type=kind,
                status=value,
                reason="Test",
                message=f"{kind} is {value}",
                last_transition_time=NOW,
            )
            for kind, value in conditions.items()
        ],
    )
    return FeatureFlag(
        metadata=metadata("calendar-sync"),
        spec=FeatureFlagSpec(key="calendar_sync"),
        status=status,
    ).to_api()


def health(argo: ArgoLua, script: str, obj: dict[str, Any]) -> dict[str, Any]:
    result = argo.run(lua(script), obj)
    assert isinstance(result, dict)
    assert result["status"] in VALID_HEALTH, result
    return result


def discover(argo: ArgoLua, obj: dict[str, Any]) -> set[str]:
    actions = argo.run(lua("actions-discovery.lua"), obj)
    assert set(actions) == set(ACTIONS)
    return {name for name, spec in actions.items() if not spec["disabled"]}


# --- the ConfigMap embeds exactly the Lua files ---------------------------


def test_configmap_embeds_the_lua_files() -> None:
    committed = CONFIGMAP.read_text()
    assert committed == render(), "run: python tests/unit/delivery/delivery_argocd.py --write"
    data = yaml.safe_load(committed)["data"]
    assert data["resource.customizations.health.flagops.dev_Rollout"] == lua("health-rollout.lua")
    assert data["resource.customizations.health.flagops.dev_FeatureFlag"] == lua(
        "health-featureflag.lua"
    )
    actions = yaml.safe_load(data["resource.customizations.actions.flagops.dev_Rollout"])
    assert actions["discovery.lua"] == lua("actions-discovery.lua")
    assert [d["name"] for d in actions["definitions"]] == list(ACTIONS)
    for definition in actions["definitions"]:
        assert definition["action.lua"] == lua(f"actions-{definition['name']}.lua")


def test_every_lua_file_is_in_the_configmap() -> None:
    files = {p.name for p in ARGOCD_DIR.glob("*.lua")}
    expected = {"health-rollout.lua", "health-featureflag.lua", "actions-discovery.lua"}
    expected |= {f"actions-{verb}.lua" for verb in ACTIONS}
    assert files == expected


def test_sandbox_has_no_string_library(argo: ArgoLua) -> None:
    # The scripts are only meaningful if the sandbox is as strict as Argo CD's.
    with pytest.raises(Exception, match="string"):
        argo.run('return string.format("%d", 1)', {})
    with pytest.raises(Exception, match="sub"):
        argo.run('return ("abc"):sub(1, 1)', {})


# --- Rollout health -------------------------------------------------------


@pytest.mark.parametrize("phase", list(Phase))
def test_rollout_health_for_every_phase(argo: ArgoLua, phase: Phase) -> None:
    result = health(argo, "health-rollout.lua", rollout(phase, message="waiting for samples"))
    assert result["status"] == EXPECTED_HEALTH[phase]
    assert phase.value in result["message"]
    assert "BETA (10%)" in result["message"]


def test_every_phase_has_an_expected_health() -> None:
    assert set(EXPECTED_HEALTH) == set(Phase)


@pytest.mark.parametrize(
    "obj",
    [
        rollout(None, observed=None),
        rollout(None, observed=2),
        rollout(Phase.COMPLETED, generation=3, observed=2),
        rollout(Phase.PAUSED, generation=3, observed=None),
    ],
    ids=["no-status", "no-phase", "generation-ahead", "never-observed"],
)
def test_rollout_not_yet_observed_is_progressing(argo: ArgoLua, obj: dict[str, Any]) -> None:
    assert health(argo, "health-rollout.lua", obj)["status"] == "Progressing"


def test_unknown_future_phase_is_not_unknown(argo: ArgoLua) -> None:
    obj = rollout(Phase.PROGRESSING)
    obj["status"]["phase"] = "Migrating"
    assert health(argo, "health-rollout.lua", obj)["status"] == "Progressing"


# --- FeatureFlag health ---------------------------------------------------

T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"Published": T}, "Healthy"),
        ({"Published": T, "Conflict": F}, "Healthy"),
        ({"Published": T, "Conflict": T}, "Degraded"),
        ({"Published": F, "Conflict": T}, "Degraded"),
        ({"Published": F}, "Degraded"),
        ({"Published": U}, "Progressing"),
        ({}, "Progressing"),
    ],
)
def test_featureflag_health(
    argo: ArgoLua, conditions: dict[str, ConditionStatus], expected: str
) -> None:
    result = health(argo, "health-featureflag.lua", feature_flag(conditions))
    assert result["status"] == expected
    assert result["message"]


def test_featureflag_conflict_explains_itself(argo: ArgoLua) -> None:
    result = health(argo, "health-featureflag.lua", feature_flag({"Published": T, "Conflict": T}))
    assert result["message"] == "Conflict is True"


@pytest.mark.parametrize("observed", [None, 1])
def test_featureflag_not_yet_observed_is_progressing(argo: ArgoLua, observed: int | None) -> None:
    obj = feature_flag({"Published": T}, observed=observed)
    assert health(argo, "health-featureflag.lua", obj)["status"] == "Progressing"


def test_featureflag_without_status_is_progressing(argo: ArgoLua) -> None:
    obj = feature_flag({})
    del obj["status"]
    assert health(argo, "health-featureflag.lua", obj)["status"] == "Progressing"


# --- Rollout actions ------------------------------------------------------


@pytest.mark.parametrize("phase", list(Phase))
def test_discovery_enables_actions_per_phase(argo: ArgoLua, phase: Phase) -> None:
    assert discover(argo, rollout(phase)) == ENABLED_ACTIONS[phase]


def test_discovery_without_status_disables_everything(argo: ArgoLua) -> None:
    assert discover(argo, rollout(None, observed=None)) == set()


def test_git_owned_pause_cannot_be_resumed_by_action(argo: ArgoLua) -> None:
    assert discover(argo, rollout(Phase.PAUSED, paused=True)) == {"rollback"}


@pytest.mark.parametrize("verb", ACTIONS)
def test_action_sets_only_the_annotation(argo: ArgoLua, verb: str) -> None:
    before = rollout(Phase.PROGRESSING)
    before["metadata"]["annotations"] = {"team": "meals"}
    after = argo.run(lua(f"actions-{verb}.lua"), copy.deepcopy(before))
    value = after["metadata"]["annotations"].pop("flagops.dev/action")
    match = ACTION_VALUE.match(value)
    assert match, value
    assert match["verb"] == verb
    assert match["id"].endswith("-4711")
    # Nothing else changes: the spec stays Git's.
    assert after["spec"] == before["spec"]
    assert after["metadata"] == before["metadata"]


def test_action_creates_annotations_and_ids_differ_per_version(argo: ArgoLua) -> None:
    first = rollout(Phase.PAUSED)
    second = rollout(Phase.PAUSED)
    second["metadata"]["resourceVersion"] = "4712"
    ids = {
        argo.run(lua("actions-resume.lua"), obj)["metadata"]["annotations"]["flagops.dev/action"]
        for obj in (first, second)
    }
    assert len(ids) == 2


# --- objects the operator really wrote ------------------------------------


def recorded_objects() -> list[Path]:
    return sorted(FIXTURES.glob("*.json")) if FIXTURES.is_dir() else []


@pytest.mark.parametrize("path", recorded_objects(), ids=lambda p: p.name)
def test_recorded_objects(argo: ArgoLua, path: Path) -> None:
    obj = json.loads(path.read_text())
    if obj["kind"] == "FeatureFlag":
        FeatureFlag.model_validate(obj)
        health(argo, "health-featureflag.lua", obj)
        return
    assert obj["kind"] == "Rollout"
    model = Rollout.model_validate(obj)
    result = health(argo, "health-rollout.lua", obj)
    phase = model.status.phase
    generation = obj["metadata"].get("generation")
    observed = model.status.observed_generation
    if phase is not None and not (generation and (observed is None or observed < generation)):
        assert result["status"] == EXPECTED_HEALTH[phase]
        enabled = discover(argo, obj)
        assert enabled <= ENABLED_ACTIONS[phase]
    for verb in ACTIONS:
        after = argo.run(lua(f"actions-{verb}.lua"), copy.deepcopy(obj))
        assert ACTION_VALUE.match(after["metadata"]["annotations"]["flagops.dev/action"])
