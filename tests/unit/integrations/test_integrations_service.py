"""IntegrationService: lifecycle, flag gate, execute (metrics, audit, rate limits), health."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from integrations_fakes import FakeClock, FakeFlags, FakeRemoteError, FakeRemoteIntegration, sample

from flagops.integrations import (
    IntegrationConnectionError,
    IntegrationDisabledError,
    IntegrationMetrics,
    IntegrationNotConnectedError,
    IntegrationOperationError,
    IntegrationRateLimitedError,
    IntegrationStatus,
)
from flagops.integrations.errors import IntegrationQuotaError


def make(
    flags: FakeFlags, metrics: IntegrationMetrics, clock: FakeClock | None = None
) -> FakeRemoteIntegration:
    if clock is None:
        return FakeRemoteIntegration(flags=flags, metrics=metrics)
    return FakeRemoteIntegration(flags=flags, metrics=metrics, clock=clock)


def test_flag_off_connect_leaves_disabled(
    fake_flags: FakeFlags, metrics: IntegrationMetrics
) -> None:
    fake_flags.states["test_flag"] = False
    service = make(fake_flags, metrics)
    asyncio.run(service.init({}))
    assert service.status is IntegrationStatus.DISABLED
    assert asyncio.run(service.connect()) is IntegrationStatus.DISABLED
    assert service.connects == 0


def test_lifecycle_with_flag_on(fake_flags: FakeFlags, metrics: IntegrationMetrics) -> None:
    service = make(fake_flags, metrics)

    async def scenario() -> list[IntegrationStatus]:
        seen = []
        await service.init({})
        seen.append(service.status)
        seen.append(await service.connect())
        seen.append(await service.connect())  # idempotent: no second _connect
        seen.append(await service.disconnect())
        return seen

    assert asyncio.run(scenario()) == [
        IntegrationStatus.DISCONNECTED,
        IntegrationStatus.CONNECTED,
        IntegrationStatus.CONNECTED,
        IntegrationStatus.DISCONNECTED,
    ]
    assert (service.connects, service.disconnects) == (1, 1)


def test_disconnect_with_flag_off_ends_disabled(
    fake_flags: FakeFlags, metrics: IntegrationMetrics
) -> None:
    service = make(fake_flags, metrics)
    asyncio.run(service.init({}))
    asyncio.run(service.connect())
    fake_flags.states["test_flag"] = False
    assert asyncio.run(service.disconnect()) is IntegrationStatus.DISABLED


def test_connect_failure_is_error_and_redacted(
    fake_flags: FakeFlags,
    metrics: IntegrationMetrics,
    audit_records: Callable[[], list[dict[str, Any]]],
) -> None:
    service = make(fake_flags, metrics)
    asyncio.run(service.init({"api_token": "tok-PLANTED-123456"}))
    service.connect_error = RuntimeError("server said tok-PLANTED-123456 is bad")
    with pytest.raises(IntegrationConnectionError) as info:
        asyncio.run(service.connect())
    assert service.status is IntegrationStatus.ERROR
    assert "tok-PLANTED-123456" not in str(info.value)
    assert "RuntimeError" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert audit_records()[-1]["outcome"] == "error"


def test_flag_context_options_are_passed(
    fake_flags: FakeFlags, metrics: IntegrationMetrics
) -> None:
    service = make(fake_flags, metrics)
    asyncio.run(service.init({"flag_user_id": "u-1", "flag_cohort": "beta"}))
    assert fake_flags.calls[-1] == ("test_flag", "u-1", "beta")


def test_execute_counts_success_and_error(
    fake_flags: FakeFlags,
    metrics: IntegrationMetrics,
    audit_records: Callable[[], list[dict[str, Any]]],
) -> None:
    service = make(fake_flags, metrics)
    asyncio.run(service.init({}))
    asyncio.run(service.connect())

    async def ok() -> int:
        return 42

    async def boom() -> int:
        raise FakeRemoteError(500)

    assert asyncio.run(service.execute(ok, operation="read")) == 42
    with pytest.raises(IntegrationOperationError) as info:
        asyncio.run(service.execute(boom, operation="write"))
    assert info.value.status_code == 500
    assert service.status is IntegrationStatus.CONNECTED  # an error is not a disconnect
    assert sample(metrics, "fake_remote", "test_flag", "success") == 1
    assert sample(metrics, "fake_remote", "test_flag", "error") == 1
    records = [r for r in audit_records() if r["operation"] in ("read", "write")]
    assert [(r["operation"], r["outcome"]) for r in records] == [
        ("read", "success"),
        ("write", "error"),
    ]
    for record in records:
        assert {"integration", "flag", "operation", "outcome", "duration_ms"} <= record.keys()
        assert record["integration"] == "fake_remote" and record["flag"] == "test_flag"


def test_execute_refused_when_not_connected_or_flag_off(
    fake_flags: FakeFlags, metrics: IntegrationMetrics
) -> None:
    service = make(fake_flags, metrics)
    asyncio.run(service.init({}))

    async def ok() -> int:
        return 1

    with pytest.raises(IntegrationNotConnectedError):
        asyncio.run(service.execute(ok))
    asyncio.run(service.connect())
    fake_flags.states["test_flag"] = False  # the kill switch works between registry syncs
    with pytest.raises(IntegrationDisabledError):
        asyncio.run(service.execute(ok))
    assert service.status is IntegrationStatus.DISABLED
    assert service.disconnects == 1


def test_rate_limit_honours_backoff_then_recovers(
    fake_flags: FakeFlags,
    metrics: IntegrationMetrics,
    fake_clock: FakeClock,
    audit_records: Callable[[], list[dict[str, Any]]],
) -> None:
    service = make(fake_flags, metrics, fake_clock)
    asyncio.run(service.init({"rate_limit_backoff_seconds": 2}))
    asyncio.run(service.connect())
    calls = 0

    async def limited() -> str:
        nonlocal calls
        calls += 1
        raise FakeRemoteError(429, "slow down")

    async def ok() -> str:
        nonlocal calls
        calls += 1
        return "done"

    with pytest.raises(IntegrationRateLimitedError) as info:
        asyncio.run(service.execute(limited))
    assert service.status is IntegrationStatus.RATE_LIMITED
    assert info.value.retry_at == datetime.fromtimestamp(fake_clock.now + 2, UTC)
    assert service.retry_at == info.value.retry_at
    # Before the retry time nothing is called.
    fake_clock.advance(1.5)
    with pytest.raises(IntegrationRateLimitedError):
        asyncio.run(service.execute(ok))
    assert calls == 1
    # Second strike doubles the backoff.
    fake_clock.advance(0.5)
    with pytest.raises(IntegrationRateLimitedError) as info:
        asyncio.run(service.execute(limited))
    assert info.value.retry_at == datetime.fromtimestamp(fake_clock.now + 4, UTC)
    fake_clock.advance(4)
    assert asyncio.run(service.execute(ok)) == "done"
    # The status changed under mypy's narrowing from the assertion above.
    assert service.status is IntegrationStatus.CONNECTED  # type: ignore[comparison-overlap]
    assert service.retry_at is None
    assert sample(metrics, "fake_remote", "test_flag", "rate_limited") == 3
    assert sample(metrics, "fake_remote", "test_flag", "success") == 1
    assert any(r["outcome"] == "rate_limited" and "retry_at" in r for r in audit_records())


def test_retry_after_from_the_remote_wins(
    fake_flags: FakeFlags, metrics: IntegrationMetrics, fake_clock: FakeClock
) -> None:
    service = make(fake_flags, metrics, fake_clock)
    asyncio.run(service.init({}))
    asyncio.run(service.connect())

    async def limited() -> None:
        raise IntegrationRateLimitedError(
            "busy", retry_at=datetime.fromtimestamp(fake_clock.now + 30, UTC)
        )

    with pytest.raises(IntegrationRateLimitedError) as info:
        asyncio.run(service.execute(limited))
    assert info.value.retry_at == datetime.fromtimestamp(fake_clock.now + 30, UTC)


def test_quota_error_is_an_error_not_a_rate_limit(
    fake_flags: FakeFlags, metrics: IntegrationMetrics
) -> None:
    service = make(fake_flags, metrics)
    asyncio.run(service.init({}))
    asyncio.run(service.connect())

    async def quota() -> None:
        raise IntegrationQuotaError("daily quota", status_code=403, reason="quotaExceeded")

    with pytest.raises(IntegrationQuotaError):
        asyncio.run(service.execute(quota))
    assert service.status is IntegrationStatus.CONNECTED
    assert sample(metrics, "fake_remote", "test_flag", "error") == 1
    assert sample(metrics, "fake_remote", "test_flag", "rate_limited") == 0


def test_health_check_ignores_flag_and_reports(
    fake_flags: FakeFlags, metrics: IntegrationMetrics
) -> None:
    fake_flags.states["test_flag"] = False
    service = make(fake_flags, metrics)
    asyncio.run(service.init({}))
    result = asyncio.run(service.health_check())
    assert result.healthy and result.status is IntegrationStatus.CONNECTED
    assert result.message == "remote fine"
    assert service.status is IntegrationStatus.DISABLED  # an observation, not a transition
    service.health_error = FakeRemoteError(429)
    limited = asyncio.run(service.health_check())
    assert not limited.healthy and limited.status is IntegrationStatus.RATE_LIMITED
    service.health_error = FakeRemoteError(500, "down")
    failed = asyncio.run(service.health_check())
    assert not failed.healthy and failed.status is IntegrationStatus.ERROR
    assert "HTTP 500: down" in failed.message


def test_health_check_time_limit(fake_flags: FakeFlags, metrics: IntegrationMetrics) -> None:
    service = make(fake_flags, metrics)
    asyncio.run(service.init({}))
    service.health_delay = 5
    result = asyncio.run(service.health_check(time_limit=0.05))
    assert not result.healthy
    assert "timed out after 0.05s" in result.message
    assert result.latency_ms < 2000


def test_health_result_json_shape(fake_flags: FakeFlags, metrics: IntegrationMetrics) -> None:
    service = make(fake_flags, metrics)
    asyncio.run(service.init({}))
    data = asyncio.run(service.health_check()).to_json_dict()
    assert set(data) == {"integration", "healthy", "status", "message", "latencyMs", "checkedAt"}
    assert data["checkedAt"].endswith("Z")
    assert data["status"] == "CONNECTED"


def test_repr_and_config_are_redacted(fake_flags: FakeFlags, metrics: IntegrationMetrics) -> None:
    service = make(fake_flags, metrics)
    asyncio.run(
        service.init({"api_key": "k-PLANTED-987654", "password": "pw-PLANTED-1", "region": "eu"})
    )
    text = repr(service) + str(service.config)
    assert "PLANTED" not in text
    assert "'region': 'eu'" in text


def test_invalid_flag_scope_rejected(fake_flags: FakeFlags, metrics: IntegrationMetrics) -> None:
    from flagops.integrations import IntegrationConfigError

    service = make(fake_flags, metrics)
    with pytest.raises(IntegrationConfigError, match="flag_scope"):
        asyncio.run(service.init({"flag_scope": "everyone"}))


def test_broken_flag_source_fails_closed(metrics: IntegrationMetrics) -> None:
    class FakeBrokenFlags:
        def is_enabled(
            self,
            key: str,
            user_id: str | None = None,
            cohort: str | None = None,
            default: bool = False,
        ) -> bool:
            raise OSError("flags file unreadable")

    service = FakeRemoteIntegration(flags=FakeBrokenFlags(), metrics=metrics)
    asyncio.run(service.init({}))
    assert asyncio.run(service.connect()) is IntegrationStatus.DISABLED
