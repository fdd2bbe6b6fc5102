"""manifests/flags holds the six default flags of DESIGN.md, valid for the models."""

from __future__ import annotations

from pathlib import Path

import yaml

from flagops.api.featureflag import FeatureFlag

# DESIGN.md's table of the seed's default flags: key -> (enabled, percent, cohorts).
DEFAULT_FLAGS: dict[str, tuple[bool, int, list[str]]] = {
    "calendar_sync": (False, 0, ["beta", "internal"]),
    "push_notifications": (False, 0, ["beta"]),
    "export_pdf": (True, 100, ["all"]),
    "advanced_analytics": (True, 25, ["beta", "premium"]),
    "shopping_list_sync": (False, 0, ["beta"]),
    "ai_coaching_v2": (True, 10, ["internal"]),
}

FLAGS_DIR = Path(__file__).resolve().parents[3] / "manifests" / "flags"


def _flags() -> list[FeatureFlag]:
    kustomization = yaml.safe_load((FLAGS_DIR / "kustomization.yaml").read_text())
    assert "namespace" not in kustomization  # the user picks the namespace
    return [
        FeatureFlag.model_validate(yaml.safe_load((FLAGS_DIR / name).read_text()))
        for name in kustomization["resources"]
    ]


def test_kustomization_lists_every_file() -> None:
    listed = set(yaml.safe_load((FLAGS_DIR / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in FLAGS_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_default_flags_match_design() -> None:
    flags = _flags()
    found = {f.key: (f.spec.enabled, f.spec.rollout_percent, f.spec.allowed_cohorts) for f in flags}
    assert found == DEFAULT_FLAGS
    for flag in flags:
        assert flag.name == flag.key.replace("_", "-")
        assert {"description", "category", "owner"} <= flag.spec.metadata.keys()
        assert flag.api_version == "flagops.dev/v1alpha1"
