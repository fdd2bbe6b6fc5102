"""Helpers of the delivery integration tests."""

from __future__ import annotations

from flagops.testing.controlplane import ControlPlane


def dry_run(plane: ControlPlane, manifest: str) -> str:
    """kubectl apply --dry-run=server with strict field validation; the output on success."""
    result = plane.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=manifest, check=False
    )
    assert result.returncode == 0, f"server-side dry run rejected:\n{result.stderr}"
    return result.stdout
