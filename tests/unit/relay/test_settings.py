"""`flagops relay` settings: flags, environment fallbacks, and refusals that say why."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from flagops.cli.main import main
from flagops.relay import settings


def parse(argv: list[str]) -> settings.RelaySettings:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    return settings.from_args(parser.parse_args(argv))


def test_flags_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLAGOPS_NAMESPACES", "shop, billing")
    monkeypatch.setenv("FLAGOPS_RELAY_RATE_LIMIT", "50")
    monkeypatch.setenv("FLAGOPS_RELAY_ROOT_PATH", "/flags/")
    tokens = tmp_path / "tokens.yaml"
    result = parse(["--tokens-file", str(tokens), "--max-streams", "7"])
    assert result.namespaces == ("shop", "billing")
    assert result.rate_limit == 50 and result.max_streams == 7
    assert result.tokens_file == tokens
    assert result.root_path == "/flags"
    assert result.dev_namespace is None
    only = parse(["--tokens-file", str(tokens), "--namespace", "a"])
    assert only.namespaces == ("a",)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ([], "--tokens-file"),
        (["--tokens-file", "t", "--rate-limit", "0"], "--rate-limit"),
        (["--tokens-file", "t", "--max-body-bytes", "10"], "--max-body-bytes"),
        (["--dev-serve-namespace-without-tokens", "x", "--namespace", "y"], "watched namespace"),
    ],
)
def test_refusals_say_why(argv: list[str], words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLAGOPS_NAMESPACES", raising=False)
    monkeypatch.delenv("FLAGOPS_RELAY_TOKENS_FILE", raising=False)
    with pytest.raises(ValueError, match=words):
        parse(argv)


def test_the_command_refuses_to_start_without_tokens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FLAGOPS_RELAY_TOKENS_FILE", raising=False)
    monkeypatch.delenv("FLAGOPS_RELAY_DEV_NAMESPACE", raising=False)
    assert main(["relay"]) == 2
    assert "--tokens-file" in capsys.readouterr().err
