"""Fakes for the integrations unit tests (never used by the integration suite)."""

from __future__ import annotations

import asyncio
from typing import Any

from flagops.integrations import IntegrationMetrics, IntegrationService


class FakeFlags:
    """Stands in for flagops.flags.FeatureFlags: same is_enabled signature, a dict of states."""

    def __init__(self, **states: bool) -> None:
        self.states = dict(states)
        self.calls: list[tuple[str, str | None, str | None]] = []

    def is_enabled(
        self, key: str, user_id: str | None = None, cohort: str | None = None, default: bool = False
    ) -> bool:
        self.calls.append((key, user_id, cohort))
        return self.states.get(key, default)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sample(metrics: IntegrationMetrics, integration: str, flag: str, outcome: str) -> float:
    value = metrics.operations.labels(
        integration=integration, flag=flag, outcome=outcome
    )._value.get()
    return float(value)


class FakeRemoteError(Exception):
    def __init__(self, status_code: int, message: str = "remote failed") -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code


class FakeRemoteIntegration(IntegrationService):
    """An integration whose remote side is a script of exceptions / results."""

    def __init__(self, name: str = "fake_remote", flag: str = "test_flag", **kwargs: Any) -> None:
        super().__init__(name, flag, **kwargs)
        self.connect_error: Exception | None = None
        self.health_error: Exception | None = None
        self.health_delay = 0.0
        self.connects = 0
        self.disconnects = 0

    async def _connect(self) -> None:
        self.connects += 1
        if self.connect_error is not None:
            raise self.connect_error

    async def _disconnect(self) -> None:
        self.disconnects += 1

    async def _health_check(self) -> str:
        if self.health_delay:
            await asyncio.sleep(self.health_delay)
        if self.health_error is not None:
            raise self.health_error
        return "remote fine"
