"""The committed CRDs are exactly what the generator prints (DESIGN.md: never hand-edited)."""

from __future__ import annotations

from pathlib import Path

from flagops.api import crdgen

ROOT = Path(__file__).resolve().parents[3]


def test_committed_crds_match_the_generator() -> None:
    diff = crdgen.check(ROOT)
    assert diff == "", f"run `python -m flagops.api.crdgen --write`:\n{diff}"


def test_both_folders_hold_the_same_files() -> None:
    crds = {p.name for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name for p in (ROOT / "charts/flagops/crds").glob("*.yaml")}
    assert chart == set(crdgen.render())
    # Helm installs every file in the chart's crds/; only kustomize needs the list.
    assert crds == chart | {"kustomization.yaml"}


def test_check_reports_a_hand_edit(tmp_path: Path) -> None:
    crdgen.write(tmp_path)
    target = tmp_path / "crds" / "flagops.dev_rollouts.yaml"
    target.write_text(target.read_text().replace("default: 10m", "default: 1m"))
    diff = crdgen.check(tmp_path)
    assert "flagops.dev_rollouts.yaml (committed)" in diff
    assert "-                default: 1m" in diff
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 1
    assert crdgen.main(["--write", "--root", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 0
