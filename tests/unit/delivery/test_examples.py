"""manifests/examples: the Rollout fits the API, the Secret is a template, the app reads flags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from delivery_tools import REPO, documents

from flagops.api.featureflag import FeatureFlag
from flagops.api.rollout import Rollout
from flagops.flags import build_document

EXAMPLES = REPO / "manifests" / "examples"


def load(name: str) -> list[dict[str, Any]]:
    return documents((EXAMPLES / name).read_text())


def test_rollout_matches_the_api_and_its_flag() -> None:
    (obj,) = load("calendar-sync-rollout.yaml")
    rollout = Rollout.model_validate(obj)
    assert rollout.spec.flag_ref.name == "calendar-sync"
    probe = rollout.spec.health_probe
    assert probe is not None and probe.secret_ref is not None
    assert probe.integration == "calendar_sync"
    assert probe.secret_ref.name == "calendar-probe-credentials"
    flag = FeatureFlag.model_validate(
        yaml.safe_load((REPO / "manifests" / "flags" / "calendar-sync.yaml").read_text())
    )
    assert flag.metadata["name"] == rollout.spec.flag_ref.name
    assert flag.spec.integration == probe.integration


def test_secret_is_a_template_with_placeholders_only() -> None:
    (secret,) = load("calendar-probe-credentials.yaml")
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["name"] == "calendar-probe-credentials"
    assert "TEMPLATE" in (EXAMPLES / "calendar-probe-credentials.yaml").read_text()
    key = yaml.safe_load(secret["stringData"]["credentials.json"])
    for field in ("project_id", "private_key_id", "private_key", "client_id"):
        assert key[field] == "REPLACE-ME", field
    assert "BEGIN PRIVATE KEY" not in secret["stringData"]["credentials.json"]


def test_kustomization_leaves_the_secret_template_out() -> None:
    kustomization = yaml.safe_load((EXAMPLES / "kustomization.yaml").read_text())
    assert "calendar-probe-credentials.yaml" not in kustomization["resources"]


def sample_app() -> tuple[dict[str, Any], dict[str, Any]]:
    docs = load("sample-app.yaml")
    code = next(d for d in docs if d["kind"] == "ConfigMap")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    return code, deployment


def test_sample_app_mounts_the_flag_configmap() -> None:
    _, deployment = sample_app()
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (app,) = pod["containers"]
    mounts = {m["name"]: m for m in app["volumeMounts"]}
    assert volumes["feature-flags"]["configMap"]["name"] == "feature-flags"
    assert mounts["feature-flags"]["mountPath"] == "/etc/flagops"
    assert "subPath" not in mounts["feature-flags"], "subPath mounts never see updates"
    env = {e["name"]: e["value"] for e in app["env"]}
    assert env["FLAGOPS_FLAGS_PATH"] == "/etc/flagops/flags.json"
    assert app["securityContext"]["readOnlyRootFilesystem"] is True


def test_sample_app_reads_flags_with_the_sdk(tmp_path: Path) -> None:
    code, _ = sample_app()
    (tmp_path / "app.py").write_text(code["data"]["app.py"])
    flags_dir = tmp_path / "flagops"
    flags_dir.mkdir()
    text, _ = build_document(
        {
            "calendar_sync": {
                "enabled": True,
                "rolloutPercent": 0,
                "allowedCohorts": ["internal"],
                "stage": "INTERNAL",
            }
        }
    )
    (flags_dir / "flags.json").write_text(text)
    result = subprocess.run(
        [sys.executable, str(tmp_path / "app.py")],
        env={
            **os.environ,
            "FLAGOPS_FLAGS_PATH": str(flags_dir / "flags.json"),
            "SAMPLE_APP_ITERATIONS": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "user=user-1 cohort=internal enabled=True" in result.stderr
    assert "user=user-2 cohort=beta enabled=False" in result.stderr
    assert "user=user-3 cohort=None enabled=False" in result.stderr
