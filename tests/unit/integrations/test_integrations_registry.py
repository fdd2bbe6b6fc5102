"""IntegrationRegistry, flag-driven connect/disconnect, and entry-point discovery."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from integrations_fakes import FakeFlags, FakeRemoteError, FakeRemoteIntegration
from prometheus_client import REGISTRY

from flagops.flags import FeatureFlags, build_document
from flagops.integrations import (
    IntegrationMetrics,
    IntegrationRegistry,
    IntegrationService,
    IntegrationStatus,
    create_integration,
    discover_integrations,
)
from flagops.integrations.calendar import CalendarSyncIntegration


def registry_of(*services: IntegrationService) -> IntegrationRegistry:
    registry = IntegrationRegistry()
    for service in services:
        registry.register(service)
    return registry


def test_register_get_and_duplicates(metrics: IntegrationMetrics) -> None:
    flags = FakeFlags(a=True, b=False)
    a = FakeRemoteIntegration("a", "a", flags=flags, metrics=metrics)
    b = FakeRemoteIntegration("b", "b", flags=flags, metrics=metrics)
    registry = registry_of(a, b)
    assert registry.get("a") is a and registry.get("missing") is None
    assert registry.get_all() == [a, b]
    assert registry.get_enabled() == [a]
    registry.register(a)  # the same object again is fine
    with pytest.raises(ValueError, match="already registered"):
        registry.register(FakeRemoteIntegration("a", "a", flags=flags, metrics=metrics))


def test_connect_enabled_and_health_check_all(metrics: IntegrationMetrics) -> None:
    flags = FakeFlags(a=True, b=False, c=True)
    a, b, c = (FakeRemoteIntegration(n, n, flags=flags, metrics=metrics) for n in "abc")
    c.connect_error = FakeRemoteError(503)
    b.health_error = FakeRemoteError(500)
    registry = registry_of(a, b, c)

    async def scenario() -> Any:
        for s in (a, b, c):
            await s.init({})
        return await registry.connect_enabled(), await registry.health_check_all()

    connected, health = asyncio.run(scenario())
    assert connected == {"a": IntegrationStatus.CONNECTED, "c": IntegrationStatus.ERROR}
    assert b.status is IntegrationStatus.DISABLED
    assert {n: r.healthy for n, r in health.items()} == {"a": True, "b": False, "c": True}


def test_sync_with_flags_follows_flag_changes(metrics: IntegrationMetrics) -> None:
    flags = FakeFlags(a=True, b=False)
    a = FakeRemoteIntegration("a", "a", flags=flags, metrics=metrics)
    b = FakeRemoteIntegration("b", "b", flags=flags, metrics=metrics)
    registry = registry_of(a, b)

    async def scenario() -> Any:
        await a.init({})
        await b.init({})
        first = await registry.sync_with_flags()
        flags.states.update(a=False, b=True)
        second = await registry.sync_with_flags()
        return first, second

    first, second = asyncio.run(scenario())
    assert first == {"a": IntegrationStatus.CONNECTED, "b": IntegrationStatus.DISABLED}
    assert second == {"a": IntegrationStatus.DISABLED, "b": IntegrationStatus.CONNECTED}
    assert (a.disconnects, b.connects) == (1, 1)


def test_watch_disconnects_when_flag_turns_off(metrics: IntegrationMetrics) -> None:
    flags = FakeFlags(a=True)
    a = FakeRemoteIntegration("a", "a", flags=flags, metrics=metrics)
    registry = registry_of(a)

    async def scenario() -> IntegrationStatus:
        await a.init({})
        stop = asyncio.Event()
        task = asyncio.create_task(registry.watch(interval=0.01, stop=stop))
        async with asyncio.timeout(5):
            while a.status is not IntegrationStatus.CONNECTED:
                await asyncio.sleep(0.01)
            flags.states["a"] = False
            # The watch changes a.status under mypy's narrowing from the loop above.
            while a.status is not IntegrationStatus.DISABLED:  # type: ignore[comparison-overlap]
                await asyncio.sleep(0.01)
        stop.set()
        await task
        return a.status

    assert asyncio.run(scenario()) is IntegrationStatus.DISABLED


def write_flags(path: Path, **states: dict[str, Any]) -> None:
    text, _ = build_document(states)
    path.write_text(text)


def flag_state(enabled: bool, percent: int, cohorts: list[str]) -> dict[str, Any]:
    return {
        "enabled": enabled,
        "rolloutPercent": percent,
        "allowedCohorts": cohorts,
        "startDate": None,
        "endDate": None,
        "stage": "BETA",
        "metadata": {},
    }


def test_real_flags_partial_rollout_keeps_service_on(
    tmp_path: Path, metrics: IntegrationMetrics
) -> None:
    """At BETA (10% + beta cohort) a server-side service must be connected for those users."""
    flags_file = tmp_path / "flags.json"
    write_flags(flags_file, test_flag=flag_state(True, 10, ["beta"]))
    flags = FeatureFlags(flags_file, reload_interval=0)
    service = FakeRemoteIntegration(flags=flags, metrics=metrics)
    asyncio.run(service.init({}))
    assert asyncio.run(service.connect()) is IntegrationStatus.CONNECTED
    # flag_scope "user": the SDK's user context decides (no user -> off at 10%).
    per_user = FakeRemoteIntegration(flags=flags, metrics=metrics)
    asyncio.run(per_user.init({"flag_scope": "user"}))
    assert asyncio.run(per_user.connect()) is IntegrationStatus.DISABLED
    flags.set_user_context("someone", "beta")
    assert asyncio.run(per_user.connect()) is IntegrationStatus.CONNECTED
    # Rolled back: off for everyone, the registry disconnects it.
    write_flags(flags_file, test_flag=flag_state(False, 0, []))
    assert flags.reload()
    registry = registry_of(service)
    assert asyncio.run(registry.sync_with_flags()) == {"fake_remote": IntegrationStatus.DISABLED}


def test_flags_path_option_and_env_default(
    tmp_path: Path, metrics: IntegrationMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_file = tmp_path / "on.json"
    write_flags(on_file, test_flag=flag_state(True, 100, []))
    service = FakeRemoteIntegration(metrics=metrics)
    asyncio.run(service.init({"flags_path": str(on_file)}))
    assert service.status is IntegrationStatus.DISCONNECTED
    monkeypatch.setenv("FLAGOPS_FLAGS_PATH", str(tmp_path / "missing.json"))
    by_env = FakeRemoteIntegration(metrics=metrics)
    asyncio.run(by_env.init({}))
    assert by_env.status is IntegrationStatus.DISABLED  # no file: every flag is off


def test_builtin_calendar_entry_point() -> None:
    assert "calendar_sync" in discover_integrations()
    assert isinstance(create_integration("calendar_sync"), CalendarSyncIntegration)
    with pytest.raises(KeyError, match="no integration named 'nope'"):
        create_integration("nope")


def test_example_integration_through_entry_point(
    example_distribution: Path, tmp_path: Path
) -> None:
    """The example package is found, built and driven with no edit of flagops."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.headers.get("X-Api-Key") != "wk-PLANTED-0001":
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"state": "sunny-ops", "city": "Oslo"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        assert "example_weather" in discover_integrations()
        registry = IntegrationRegistry()
        added = registry.load_entry_points()
        assert {"calendar_sync", "example_weather"} <= set(added)
        weather: Any = registry.get("example_weather")  # the example's own methods
        assert type(weather).__module__ == "flagops_example_integration"
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        flags_file = tmp_path / "flags.json"
        write_flags(flags_file, weather_widget=flag_state(True, 100, []))
        before = REGISTRY.get_sample_value(
            "flagops_integration_operations_total",
            {"integration": "example_weather", "flag": "weather_widget", "outcome": "success"},
        )

        async def scenario() -> Any:
            await weather.init(
                {"base_url": url, "api_key": "wk-PLANTED-0001", "flags_path": str(flags_file)}
            )
            await weather.connect()
            return await weather.forecast("Oslo"), await weather.health_check()

        forecast, health = asyncio.run(scenario())
        assert forecast["state"] == "sunny-ops"
        assert health.healthy and health.message == "weather api sunny-ops"
        assert "wk-PLANTED-0001" not in repr(weather)
        after = REGISTRY.get_sample_value(
            "flagops_integration_operations_total",
            {"integration": "example_weather", "flag": "weather_widget", "outcome": "success"},
        )
        assert after == (before or 0) + 1
    finally:
        httpd.shutdown()
        httpd.server_close()
