"""Locate kube-apiserver, etcd and kube-controller-manager for the local control plane."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REQUIRED = ("etcd", "kube-apiserver")
KUBE_BINARIES_SCRIPT = Path("hack") / "kube-binaries.sh"


class BinariesNotFound(RuntimeError):
    pass


def find_checkout(start: Path | None = None) -> Path | None:
    """The flagops repository this code runs from, or None (an installed wheel).

    The first folder above `start` (default: this file, then the working directory)
    that holds hack/kube-binaries.sh: an editable install finds its checkout, a wheel
    installed elsewhere finds one only when run from inside a checkout.
    """
    starts = [start] if start is not None else [Path(__file__), Path.cwd()]
    for origin in starts:
        resolved = origin.resolve()
        for folder in [resolved, *resolved.parents]:
            if (folder / KUBE_BINARIES_SCRIPT).is_file():
                return folder
    return None


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
    checkout = find_checkout()
    if checkout is None:
        raise BinariesNotFound(
            "no FLAGOPS_KUBE_BIN or KUBEBUILDER_ASSETS set and no flagops checkout (with"
            f" {KUBE_BINARIES_SCRIPT}) to build them: set FLAGOPS_KUBE_BIN to a folder with"
            " etcd, kube-apiserver, kube-controller-manager and kubectl"
        )
    script = checkout / KUBE_BINARIES_SCRIPT
    result = subprocess.run(
        [str(script)], capture_output=True, text=True, timeout=build_timeout, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise BinariesNotFound(
            f"{script} failed with exit code {result.returncode}:\n{result.stderr[-3000:]}"
        )
    return _check(Path(lines[-1]), str(script), required)
