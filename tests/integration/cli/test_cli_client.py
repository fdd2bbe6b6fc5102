"""kubectl-flagops and its Python APIs against the real apiserver, without the operator.

The operator's side of the action protocol is played by ActionResponderStandIn;
test_cli_operator.py runs the same commands against the real operator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import create_flag, create_rollout, get_object, run_plugin
from kubernetes import client

from flagops.api.actions import ACTION_ANNOTATION, ActionVerb, parse_action
from flagops.clients import (
    ActionOutcome,
    ActionTimeout,
    AmbiguousFlag,
    FlagAdmin,
    FlagNotFound,
    InvalidChange,
    RolloutManager,
)
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration


def spec_of(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = get_object(custom, namespace, "featureflags", name)["spec"]
    return spec


def test_flag_verbs_change_the_spec(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi
) -> None:
    create_flag(custom, namespace, "calendar-sync", key="calendar_sync", allowedCohorts=["beta"])
    base = ["--kubeconfig", kubeconfig, "-n", namespace, "flag"]

    result = run_plugin(*base, "enable", "calendar_sync", "--percent", "30")
    assert result.code == 0, result.err
    assert 'featureflag "calendar-sync" (key calendar_sync) updated' in result.out
    assert spec_of(custom, namespace, "calendar-sync")["enabled"] is True
    assert spec_of(custom, namespace, "calendar-sync")["rolloutPercent"] == 30

    assert run_plugin(*base, "rollback", "calendar_sync", "--by", "10").code == 0
    assert spec_of(custom, namespace, "calendar-sync")["rolloutPercent"] == 20
    assert run_plugin(*base, "rollback", "calendar-sync", "--by", "50").code == 0
    assert spec_of(custom, namespace, "calendar-sync")["rolloutPercent"] == 0  # floor 0

    assert run_plugin(*base, "set", "calendar_sync", "--cohorts", "internal,premium").code == 0
    assert spec_of(custom, namespace, "calendar-sync")["allowedCohorts"] == ["internal", "premium"]

    assert run_plugin(*base, "disable", "calendar_sync").code == 0
    final = spec_of(custom, namespace, "calendar-sync")
    assert (final["enabled"], final["rolloutPercent"], final["allowedCohorts"]) == (
        False, 0, ["internal", "premium"],
    )  # fmt: skip
    assert final["key"] == "calendar_sync"


def test_flag_api_update_validates_and_replaces_metadata(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi
) -> None:
    create_flag(
        custom, namespace, "export-pdf", key="export_pdf", metadata={"owner": "a", "x": "1"}
    )
    admin = FlagAdmin(namespace=namespace, kubeconfig=kubeconfig)
    change = admin.update_flag("export_pdf", metadata={"owner": "b"}, rollout_percent=40)
    assert change.changed
    spec = spec_of(custom, namespace, "export-pdf")
    assert spec["metadata"] == {"owner": "b"}
    assert spec["rolloutPercent"] == 40
    assert not admin.update_flag("export_pdf", rolloutPercent=40).changed
    with pytest.raises(InvalidChange, match="rolloutPercent"):
        admin.update_flag("export_pdf", rollout_percent=101)
    with pytest.raises(InvalidChange, match="no field 'colour'"):
        admin.update_flag("export_pdf", colour="red")
    with pytest.raises(FlagNotFound, match='no FeatureFlag with name or key "nothing"'):
        admin.enable_flag("nothing")


def test_a_key_shared_by_two_flags_is_ambiguous(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi
) -> None:
    create_flag(custom, namespace, "one", key="shared")
    create_flag(custom, namespace, "two", key="shared")
    admin = FlagAdmin(namespace=namespace, kubeconfig=kubeconfig)
    with pytest.raises(AmbiguousFlag, match=r"several FeatureFlags .*\(one, two\)"):
        admin.enable_flag("shared")
    admin.enable_flag("featureflag/two")
    assert spec_of(custom, namespace, "two")["enabled"] is True
    assert spec_of(custom, namespace, "one").get("enabled", False) is False
    result = run_plugin("--kubeconfig", kubeconfig, "-n", namespace, "flag", "disable", "shared")
    assert result.code == 4
    assert "featureflag/<name>" in result.err


def test_action_round_trip_via_the_stand_in(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi, responder_factory: Any
) -> None:
    create_flag(custom, namespace, "calendar-sync")
    created = create_rollout(custom, namespace, "cs", "calendar-sync", autoAdvance=False)
    standin = responder_factory(
        lambda a: ("Rejected", "no Pass yet") if not a.force else ("Succeeded", "forced")
    )
    base = ["--kubeconfig", kubeconfig, "-n", namespace]

    result = run_plugin(*base, "advance", "cs", "--reason", "looks fine")
    assert result.code == 1, result.err
    assert 'advance on rollout "cs": Rejected: no Pass yet' in result.out

    result = run_plugin(*base, "advance", "cs", "--force", "--reason", "hotfix: ok@2")
    assert result.code == 0, result.err
    assert "Succeeded: forced" in result.out

    obj = get_object(custom, namespace, "rollouts", "cs")
    action = parse_action(obj["metadata"]["annotations"][ACTION_ANNOTATION])
    assert (action.verb, action.force, action.reason) == (ActionVerb.ADVANCE, True, "hotfix: ok@2")
    assert obj["status"]["lastAction"]["id"] == action.id
    assert [a.force for a in standin.seen] == [False, True]
    # Actions are annotations: the spec (Git's) is never written.
    assert obj["metadata"]["generation"] == created["metadata"]["generation"]
    assert obj["spec"] == created["spec"]


def test_every_verb_through_the_python_api(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi, responder_factory: Any
) -> None:
    create_flag(custom, namespace, "f")
    create_rollout(custom, namespace, "r", "f")
    responder_factory()
    manager = RolloutManager(namespace=namespace, kubeconfig=kubeconfig)
    calls: dict[str, Callable[[], ActionOutcome]] = {
        "advance": lambda: manager.advance_rollout("r", force=True),
        "pause": lambda: manager.pause_rollout("r", reason="x"),
        "resume": lambda: manager.resume_rollout("r"),
        "rollback": lambda: manager.rollback("r", reason="bad"),
        "check": lambda: manager.run_health_check("r"),
        "retry": lambda: manager.retry("r"),
    }
    ids = set()
    for verb, call in calls.items():
        outcome = call()
        assert (outcome.verb, outcome.result, outcome.message) == (
            verb,
            "Succeeded",
            f"{verb} done",
        )
        assert outcome.status.last_action is not None
        assert outcome.status.last_action.id == outcome.id
        ids.add(outcome.id)
    assert len(ids) == len(calls)  # a fresh id per action


def test_timeout_when_nobody_answers(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi
) -> None:
    create_flag(custom, namespace, "f")
    create_rollout(custom, namespace, "quiet", "f")
    started = time.monotonic()
    result = run_plugin(
        "--kubeconfig", kubeconfig, "-n", namespace, "pause", "quiet", "--timeout", "1"
    )
    elapsed = time.monotonic() - started
    assert result.code == 3
    assert 'waiting for the operator to handle "pause"' in result.err
    assert 'on rollout "quiet"' in result.err
    assert "timed out after 1." in result.err
    assert elapsed < 10
    manager = RolloutManager(namespace=namespace, kubeconfig=kubeconfig)
    with pytest.raises(ActionTimeout) as exc:
        manager.pause_rollout("quiet", timeout=0.5)
    assert exc.value.waited >= 0.5
    assert exc.value.action_id in str(exc.value)
    # The annotation stays for the operator: status shows it as pending.
    assert manager.get_rollout_status("quiet").pending_action == f"pause@{exc.value.action_id}"


def test_unknown_rollout_and_flag(kubeconfig: str, namespace: str) -> None:
    base = ["--kubeconfig", kubeconfig, "-n", namespace]
    for argv in (
        ["advance", "nope"],
        ["status", "nope"],
        ["validate", "nope"],
        ["complete", "nope"],
    ):
        result = run_plugin(*base, *argv)
        assert result.code == 4, argv
        assert result.err == f'error: rollout "nope" not found in namespace "{namespace}"\n'
    result = run_plugin(*base, "flag", "enable", "nope")
    assert result.code == 4
    assert 'no FeatureFlag with name or key "nope"' in result.err


def test_forbidden_user_gets_the_permission_message(
    flagops_crds: ControlPlane, namespace: str, custom: client.CustomObjectsApi
) -> None:
    create_flag(custom, namespace, "f")
    create_rollout(custom, namespace, "r", "f")
    nobody = str(flagops_crds.make_user_kubeconfig("nobody", []))
    base = ["--kubeconfig", nobody, "-n", namespace]
    cases = {
        ("flags",): "list featureflags.flagops.dev",
        ("pause", "r"): "patch rollouts.flagops.dev",
        ("status", "r"): "get rollouts.flagops.dev",
        ("status",): "list rollouts.flagops.dev",
        ("flag", "enable", "f"): "list featureflags.flagops.dev",
    }
    for argv, what in cases.items():
        result = run_plugin(*base, *argv)
        assert result.code == 4, argv
        assert result.err.startswith(f"error: forbidden: you may not {what}"), result.err
        assert f'in namespace "{namespace}"' in result.err
        assert "Traceback" not in result.err


def test_namespace_context_and_kubeconfig_are_honoured(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi, tmp_path: Path
) -> None:
    create_flag(custom, namespace, "only-here", key="only_here")
    document = json.loads(Path(kubeconfig).read_text())
    current = next(c for c in document["contexts"] if c["name"] == document["current-context"])
    document["contexts"].append(
        {"name": "team", "context": {**current["context"], "namespace": namespace}}
    )
    multi = tmp_path / "kubeconfig"
    multi.write_text(json.dumps(document))

    # The context's namespace is the default, like kubectl.
    result = run_plugin("--kubeconfig", str(multi), "--context", "team", "flags")
    assert result.code == 0, result.err
    assert "only_here" in result.out
    # Without it, the current context (no namespace) means "default".
    result = run_plugin("--kubeconfig", str(multi), "flags")
    assert result.code == 0, result.err
    assert "only_here" not in result.out
    # -n wins over the context's namespace, before or after the command.
    result = run_plugin("flags", "--kubeconfig", str(multi), "--context", "team", "-n", "default")
    assert "only_here" not in result.out
    # An unknown context is a clear error.
    result = run_plugin("--kubeconfig", str(multi), "--context", "nope", "flags")
    assert result.code == 5
    assert 'context "nope" not found' in result.err


def test_complete_writes_the_stage_into_the_flag_and_deletes_the_rollout(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi
) -> None:
    create_flag(custom, namespace, "calendar-sync", key="calendar_sync", allowedCohorts=["beta"])
    create_rollout(custom, namespace, "cs", "calendar-sync", internalCohorts=["staff"])
    base = ["--kubeconfig", kubeconfig, "-n", namespace]
    result = run_plugin(*base, "complete", "cs")
    assert result.code == 1
    assert "holds no stage yet" in result.err
    # Stand-in for the controller having reached BETA.
    custom.patch_namespaced_custom_object_status(
        "flagops.dev", "v1alpha1", namespace, "rollouts", "cs",
        {"status": {"stage": "BETA", "phase": "Progressing", "currentPercent": 10}},
    )  # fmt: skip
    result = run_plugin(*base, "complete", "cs")
    assert result.code == 0, result.err
    assert 'rollout "cs" completed at stage BETA and deleted' in result.out
    spec = spec_of(custom, namespace, "calendar-sync")
    assert (spec["enabled"], spec["rolloutPercent"], spec["allowedCohorts"]) == (
        True, 10, ["beta", "staff"],
    )  # fmt: skip
    with pytest.raises(client.ApiException) as exc:
        get_object(custom, namespace, "rollouts", "cs")
    assert exc.value.status == 404


def test_start_rollout_and_status(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi
) -> None:
    create_flag(custom, namespace, "calendar-sync", key="calendar_sync")
    manager = RolloutManager(namespace=namespace, kubeconfig=kubeconfig)
    summary = manager.start_rollout(
        "calendar_sync", target_stage="LIMITED", stage_duration="5m", auto_advance=False
    )
    assert (summary.name, summary.flag, summary.target_stage.value) == (
        "calendar-sync", "calendar-sync", "LIMITED",
    )  # fmt: skip
    spec = get_object(custom, namespace, "rollouts", "calendar-sync")["spec"]
    assert spec["stageDuration"] == "5m"
    assert spec["autoAdvance"] is False
    result = run_plugin("--kubeconfig", kubeconfig, "-n", namespace, "status")
    assert result.code == 0
    assert result.out.splitlines()[1].split()[:2] == ["calendar-sync", "calendar-sync"]
    result = run_plugin("--kubeconfig", kubeconfig, "-n", namespace, "status", "calendar-sync")
    assert "Stage:       -, target LIMITED" in result.out
    assert "Phase:       - [manual advance]" in result.out


def test_flags_lists_effective_state_published_by_the_operator(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi, operator_factory: Any,
    core: client.CoreV1Api,
) -> None:  # fmt: skip
    create_flag(custom, namespace, "calendar-sync", key="calendar_sync", allowedCohorts=["beta"])
    operator_factory([namespace])
    base = ["--kubeconfig", kubeconfig, "-n", namespace]
    assert run_plugin(*base, "flag", "enable", "calendar_sync", "--percent", "25").code == 0

    def published() -> dict[str, Any] | None:
        data = core.read_namespaced_config_map("feature-flags", namespace).data or {}
        entry = json.loads(data["flags.json"])["flags"].get("calendar_sync")
        return entry if entry and entry["rolloutPercent"] == 25 else None

    entry = wait_for(published, timeout=30, message="ConfigMap did not follow the flag change")
    assert entry["enabled"] is True
    assert entry["allowedCohorts"] == ["beta"]

    def listed() -> str | None:
        # The status follows the ConfigMap write: until it is patched, the row shows the
        # flag's earlier publication (also from spec), so wait for this one's percent.
        out = run_plugin(*base, "flags").out
        lines = out.splitlines()
        return out if len(lines) > 1 and lines[1].split()[2:3] == ["25"] else None

    rows = wait_for(listed, timeout=30, message="flags never showed the published state")
    assert rows.splitlines()[1].split() == ["calendar_sync", "true", "25", "beta", "-", "spec"]


def test_a_user_who_may_not_watch_still_gets_the_answer_by_polling(
    flagops_crds: ControlPlane,
    namespace: str,
    custom: client.CustomObjectsApi,
    kube_api: Any,
    responder_factory: Any,
) -> None:
    create_flag(custom, namespace, "f")
    create_rollout(custom, namespace, "r", "f")
    rbac = client.RbacAuthorizationV1Api(kube_api)
    # Plain dicts, as kubectl would send them; the client's stubs want its models.
    role: Any = {
        "metadata": {"name": "oncall"},
        "rules": [
            {"apiGroups": ["flagops.dev"], "resources": ["rollouts"], "verbs": ["get", "patch"]}
        ],
    }
    binding: Any = {
        "metadata": {"name": "oncall"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "oncall"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "oncall"}],
    }
    rbac.create_namespaced_role(namespace, role)
    rbac.create_namespaced_role_binding(namespace, binding)
    oncall = str(flagops_crds.make_user_kubeconfig("oncall", []))
    responder_factory()
    result = run_plugin("--kubeconfig", oncall, "-n", namespace, "pause", "r", "--timeout", "20")
    assert result.code == 0, result.err
    assert 'pause on rollout "r": Succeeded' in result.out
