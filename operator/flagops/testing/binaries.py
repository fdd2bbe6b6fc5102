"""Locate kube-apiserver, etcd and kube-controller-manager for the local control plane."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REQUIRED = ("etcd", "kube-apiserver")


class BinariesNotFound(RuntimeError):
    pass


def repo_root() -> Path:
    # operator/flagops/testing/binaries.py -> repo root is three levels above the package.
    return Path(__file__).resolve().parents[3]


def _check(bin_dir: Path, source: str, names: tuple[str, ...]) -> Path:
    missing = [n for n in names if not os.access(bin_dir / n, os.X_OK)]
    if missing:
        raise BinariesNotFound(
            f"{source} points at {bin_dir}, which lacks {', '.join(missing)}; "
            "run hack/kube-binaries.sh or set FLAGOPS_KUBE_BIN / KUBEBUILDER_ASSETS"
        )
    return bin_dir


def find_bin_dir(required: tuple[str, ...] = REQUIRED, build_timeout: float = 3600) -> Path:
    """FLAGOPS_KUBE_BIN, else KUBEBUILDER_ASSETS, else what hack/kube-binaries.sh prints.

    The script builds the binaries once into a cache folder and afterwards only
    prints that folder, so calling it is cheap once the cache is warm.
    """
    for var in ("FLAGOPS_KUBE_BIN", "KUBEBUILDER_ASSETS"):
        value = os.environ.get(var)
        if value:
            return _check(Path(value), f"${var}", required)
    script = repo_root() / "hack" / "kube-binaries.sh"
    if not script.exists():
        raise BinariesNotFound(
            f"no FLAGOPS_KUBE_BIN or KUBEBUILDER_ASSETS set and {script} does not exist"
        )
    result = subprocess.run(
        [str(script)], capture_output=True, text=True, timeout=build_timeout, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise BinariesNotFound(
            f"{script} failed with exit code {result.returncode}:\n{result.stderr[-3000:]}"
        )
    return _check(Path(lines[-1]), str(script), required)
