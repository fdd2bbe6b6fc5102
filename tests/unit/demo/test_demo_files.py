"""What the demo reads besides Python: the default flags (package data), the built web page
(--web-dir, else the checkout's), and how it finds a checkout at all."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from flagops_devtools.demo.web import STATIC, WebAppNotBuilt, check_built
from flagops_devtools.testing.binaries import KUBE_BINARIES_SCRIPT, find_checkout

REPO = Path(__file__).resolve().parents[3]


def _built_page(folder: Path) -> Path:
    for name, _ in STATIC.values():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"/* {name} */")
    return folder


def test_the_default_flags_are_package_data_equal_to_manifests_flags() -> None:
    packaged = resources.files("flagops_devtools.demo") / "flags"
    with resources.as_file(packaged) as folder:
        shipped = {p.name: p.read_bytes() for p in Path(folder).iterdir()}
    manifests = {p.name: p.read_bytes() for p in (REPO / "manifests" / "flags").iterdir()}
    assert shipped == manifests
    assert "kustomization.yaml" in shipped


def test_a_built_web_dir_is_used_as_given(tmp_path: Path) -> None:
    page = _built_page(tmp_path / "page")
    assert check_built(page) == page


def test_an_unbuilt_web_dir_names_what_is_missing_and_how_to_build_it(tmp_path: Path) -> None:
    page = tmp_path / "page"
    page.mkdir()
    (page / "index.html").write_text("<html></html>")
    with pytest.raises(WebAppNotBuilt) as caught:
        check_built(page)
    message = str(caught.value)
    assert "dist/app.js" in message and "style.css" in message
    assert "make web" in message and "--web-dir" in message
    assert "index.html" not in message.split("lacks", 1)[1]


def test_a_checkout_is_the_first_folder_above_with_the_kube_binaries_script(
    tmp_path: Path,
) -> None:
    script = tmp_path / KUBE_BINARIES_SCRIPT
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    deep = tmp_path / "devtools" / "flagops_devtools" / "demo"
    deep.mkdir(parents=True)
    assert find_checkout(deep / "web.py") == tmp_path
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    assert find_checkout(elsewhere) is None
    # This editable install finds its own checkout from the code's location.
    assert find_checkout() == REPO


def test_the_demo_stops_before_starting_anything_without_a_built_page(tmp_path: Path) -> None:
    empty = tmp_path / "page"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "flagops_devtools.demo", "--fast", "--web-dir", str(empty)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "demo FAILED" in result.stdout and "make web" in result.stdout, result.stdout
    assert "starting the local control plane" not in result.stdout
