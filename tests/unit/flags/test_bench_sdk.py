"""The SDK benchmark still runs offline and agrees with Unleash (no timing asserted)."""

from __future__ import annotations

import pytest


def test_bench_sdk_small_run_agrees_with_unleash(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("UnleashClient")
    pytest.importorskip("openfeature.contrib.provider.flagd")
    from bench import bench_sdk

    assert bench_sdk.main(["--users", "300", "--calls", "3000"]) == 0
    out = capsys.readouterr().out
    assert "0 mismatches of 300 users" in out
    assert "network connection attempts during the run: 0" in out
    assert "PROBLEM" not in out
