"""What an app installs: the flagops wheel with its core dependencies, in a fresh venv.

The wheel is built from what the runtime image's build copies (pyproject.toml, README.md,
operator/), so the same check covers the image: the development tools (flagops_devtools:
harness, Calendar server, demo) are a separate distribution and ship in neither. pip's
cache makes the install take seconds after the first run. The flagops-devtools wheel, in
turn, carries the demo's default flags (package data linked to manifests/flags).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# What the Dockerfile's build stage copies (and .dockerignore lets through).
IMAGE_CONTEXT = ("pyproject.toml", "README.md", "operator")
DEVTOOLS = ("flagops/testing/", "flagops/demo/", "flagops_devtools/", "tests/")
PIP_TIMEOUT = 300

# Runs inside the fresh venv (python -I: neither the checkout nor the user site on sys.path).
SDK_CHECK = textwrap.dedent(
    """
    import importlib.util, json, pathlib, sys
    from flagops.flags import FeatureFlags, build_document

    text, revision = build_document({
        "calendar_sync": {"enabled": True, "rolloutPercent": 100, "allowedCohorts": [],
                          "startDate": None, "endDate": None, "stage": "FULL",
                          "metadata": {}},
        "export_pdf": {"enabled": False, "rolloutPercent": 0, "allowedCohorts": [],
                       "startDate": None, "endDate": None, "stage": "DISABLED",
                       "metadata": {}},
    })
    folder = pathlib.Path(sys.argv[1])
    (folder / "flags.json").write_text(text)
    with FeatureFlags(folder, reload_interval=0) as flags:
        answers = {
            "calendar_sync": flags.is_enabled("calendar_sync", user_id="ana"),
            "export_pdf": flags.is_enabled("export_pdf", user_id="ana"),
            "revision": flags.revision == revision,
        }
    absent = ["flagops.testing", "flagops.demo", "flagops_devtools", "kubernetes", "kopf"]
    found = {name: importlib.util.find_spec(name) is not None for name in absent}
    print(json.dumps({"answers": answers, "found": found}))
    """
)


def _run(argv: list[str], cwd: Path) -> str:
    result = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False
    )
    assert result.returncode == 0, f"{argv}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _build_wheel(tmp_path: Path) -> Path:
    context = tmp_path / "context"
    context.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in IMAGE_CONTEXT:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=ignore)
        else:
            shutil.copy2(source, context / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(context)], tmp_path)
    (wheel,) = wheels.glob("flagops-*.whl")
    return wheel


def test_the_core_wheel_carries_the_sdk_and_no_development_tools(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "flagops/flags/__init__.py" in names
    assert "flagops/py.typed" in names
    shipped = sorted(n for n in names if n.startswith(DEVTOOLS))
    assert shipped == [], shipped

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    # The outer pip installs into the fresh venv; no extras: the core dependencies only.
    _run(
        [
            *(sys.executable, "-m", "pip", "--disable-pip-version-check", "--python"),
            str(python),
            *("install", "--quiet", str(wheel)),
        ],
        tmp_path,
    )
    flags_dir = tmp_path / "mounted"
    flags_dir.mkdir()
    output = _run([str(python), "-I", "-c", SDK_CHECK, str(flags_dir)], tmp_path)
    report = output.strip().splitlines()[-1]
    assert report == (
        '{"answers": {"calendar_sync": true, "export_pdf": false, "revision": true},'
        ' "found": {"flagops.testing": false, "flagops.demo": false,'
        ' "flagops_devtools": false, "kubernetes": false, "kopf": false}}'
    ), output


def test_the_devtools_wheel_carries_the_default_flags_for_the_demo(tmp_path: Path) -> None:
    # copytree follows demo/flags (a link to manifests/flags) the way a build does.
    source = tmp_path / "devtools"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc", "build")
    shutil.copytree(REPO / "devtools", source, ignore=ignore)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(source)], tmp_path)
    (wheel,) = wheels.glob("flagops_devtools-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    flags = sorted(p.name for p in (REPO / "manifests" / "flags").iterdir())
    assert {f"flagops_devtools/demo/flags/{name}" for name in flags} <= names
    assert not any(name.startswith("flagops/") for name in names), sorted(names)
