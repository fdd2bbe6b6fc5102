"""The Dockerfile, checked without a Docker engine: its instructions and what they rely on."""

from __future__ import annotations

import json
import re
import shlex
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml
from delivery_tools import CHART, REPO

from flagops.cli.main import SUBCOMMANDS, main

Instruction = tuple[str, str]


def instructions(path: Path = REPO / "Dockerfile") -> list[Instruction]:
    """(KEYWORD, arguments) per instruction, with continuation lines joined."""
    result: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    assert not pending, "dangling line continuation"
    return result


def final_stage(parsed: list[Instruction]) -> list[Instruction]:
    last_from = max(i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM")
    return parsed[last_from:]


def test_base_image_is_python_311_slim() -> None:
    bases = [args.split()[0] for keyword, args in instructions() if keyword == "FROM"]
    assert bases
    assert all(base == "python:3.11-slim" for base in bases)


def test_runs_as_numeric_non_root_user_the_chart_expects() -> None:
    users = [args for keyword, args in final_stage(instructions()) if keyword == "USER"]
    assert users, "the final stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert f"runAsUser: {uid}" in deployment
    assert values["image"]["repository"]


def test_read_only_root_filesystem_friendly() -> None:
    final = final_stage(instructions())
    env = " ".join(args for keyword, args in final if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env
    assert "TMPDIR=/tmp" in env
    workdirs = [args for keyword, args in final if keyword == "WORKDIR"]
    assert workdirs[-1] == "/tmp"


def test_entrypoint_is_the_flagops_console_script(capsys: pytest.CaptureFixture[str]) -> None:
    final = dict(final_stage(instructions()))
    assert json.loads(final["ENTRYPOINT"]) == ["flagops"]
    command = json.loads(final["CMD"])
    assert command == ["run"]
    scripts = {
        ep.name: ep.value
        for ep in distribution("flagops").entry_points
        if ep.group == "console_scripts"
    }
    assert scripts["flagops"] == "flagops.cli.main:main"
    assert command[0] in SUBCOMMANDS
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "--prometheus-address" in capsys.readouterr().out


def test_installs_only_the_operator_relay_and_calendar_extras() -> None:
    extras_seen = []
    for keyword, args in instructions():
        if keyword != "RUN" or "pip" not in args:
            continue
        for word in shlex.split(args):
            match = re.fullmatch(r"(?:\.|flagops)\[(?P<extras>[^\]]*)\]", word)
            if match:
                extras_seen.append({e.strip() for e in match["extras"].split(",")})
    assert extras_seen, "pip installs the project with extras"
    assert all(extras == {"operator", "relay", "calendar"} for extras in extras_seen)
    declared = set(distribution("flagops").metadata.get_all("Provides-Extra") or [])
    assert {"operator", "relay", "calendar"} <= declared


def test_build_context_has_what_the_dockerfile_copies() -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for keyword, args in instructions():
        if keyword == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                assert (REPO / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"
