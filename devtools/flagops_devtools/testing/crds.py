"""The committed CRDs (crds/: flagops's and kopf's peering CRDs) on a control plane."""

from __future__ import annotations

from pathlib import Path

from flagops_devtools.testing.controlplane import ControlPlane

CRDS = (
    "crd/featureflags.flagops.dev",
    "crd/rollouts.flagops.dev",
    "crd/kopfpeerings.kopf.dev",
    "crd/clusterkopfpeerings.kopf.dev",
)


def apply_crds(plane: ControlPlane, crds_dir: Path) -> ControlPlane:
    """Apply `crds_dir` as a user would (kubectl -k, server-side) and wait until Established."""
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(crds_dir))
    plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", *CRDS)
    return plane
