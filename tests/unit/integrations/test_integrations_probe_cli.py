"""`flagops probe` helpers: finding the mounted credentials and building the config."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from flagops.cli import probe


def test_find_credentials_in_a_secret_mount(tmp_path: Path) -> None:
    mount = tmp_path / "secret"
    mount.mkdir()
    (mount / "..data").symlink_to(mount)
    (mount / "sa.json").write_text("{}")
    env = {probe.CREDENTIALS_ENV: str(mount)}
    assert probe.find_credentials(env) == mount / "sa.json"
    (mount / "other.json").write_text("{}")
    assert probe.find_credentials(env) is None  # ambiguous
    (mount / "credentials.json").write_text("{}")
    assert probe.find_credentials(env) == mount / "credentials.json"
    assert (
        probe.find_credentials({probe.CREDENTIALS_ENV: str(mount / "sa.json")}) == mount / "sa.json"
    )


def test_probe_config_precedence(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text("{}")
    env = {
        probe.CONFIG_ENV: json.dumps(
            {"calendar_id": "from-config", "credentials_file": "x", "n": 1}
        ),
        probe.CREDENTIALS_ENV: str(key),
        "FLAGOPS_CALENDAR_ID": "team@example.com",
        "FLAGOPS_PROBE_MOCK_MODE": "True",
    }
    assert probe.probe_config(env) == {
        "calendar_id": "team@example.com",
        "credentials_file": str(key),
        "n": 1,
        "mock_mode": True,
    }


def test_mock_probe_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLAGOPS_PROBE_MOCK_MODE", "true")
    monkeypatch.setenv(probe.CREDENTIALS_ENV, str(tmp_path / "none"))
    log = tmp_path / "termination-log"
    parser = argparse.ArgumentParser()
    probe.add_arguments(parser)
    code = probe.run(parser.parse_args(["calendar_sync", "--termination-log", str(log)]))
    line = capsys.readouterr().out.strip()
    assert code == 0
    assert json.loads(line)["healthy"] is True
    assert log.read_text().strip() == line
