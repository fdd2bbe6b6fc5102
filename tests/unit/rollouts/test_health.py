"""/healthz's view of the apiserver: ok, degraded while unreachable, failing when hopeless."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from flagops.controller.health import ApiserverHealth


class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status = status

    def read(self) -> bytes:
        return b"ok"


class FakeApiClient:
    """Answers /readyz with `status`, or raises `error` as a refused connection would."""

    def __init__(self) -> None:
        self.status = 200
        self.error: Exception | None = None

    def param_serialize(self, **kwargs: Any) -> tuple[Any, ...]:
        assert kwargs["resource_path"] == "/readyz"
        return ("GET", "https://apiserver/readyz", {}, None, [])

    def call_api(self, *args: Any, **kwargs: Any) -> FakeResponse:
        if self.error is not None:
            raise self.error
        return FakeResponse(self.status)


class FakeKube:
    def __init__(self) -> None:
        self.api_client = FakeApiClient()


def test_ok_then_degraded_then_failing_then_ok() -> None:
    now = [100.0]
    kube = FakeKube()
    health = ApiserverHealth(kube, unhealthy_after=60, clock=lambda: now[0])  # type: ignore[arg-type]
    assert health.interval == 5.0
    asyncio.run(health.check_once())
    assert health.report() == {"status": "ok"}

    kube.api_client.error = ConnectionRefusedError("refused")
    now[0] += 12
    asyncio.run(health.check_once())
    report = health.report()
    assert report["status"] == "degraded"
    assert "last reached 12s ago (ConnectionRefusedError)" in report["message"]

    now[0] += 50
    with pytest.raises(kopf.PermanentError, match="last reached 62s ago"):
        health.report()

    kube.api_client.error = None
    kube.api_client.status = 500  # back, but without its etcd
    asyncio.run(health.check_once())
    with pytest.raises(kopf.PermanentError, match="/readyz answered 500"):
        health.report()

    kube.api_client.status = 200
    asyncio.run(health.check_once())
    assert health.report() == {"status": "ok"}


def test_short_thresholds_check_more_often() -> None:
    health = ApiserverHealth(FakeKube(), unhealthy_after=20)  # type: ignore[arg-type]
    assert health.interval == 2.0
