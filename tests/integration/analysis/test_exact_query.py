"""The tests' yardstick: a Rollout's own exact query, asked of a real Prometheus at a given time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from flagops_devtools.testing.process import free_port
from flagops_devtools.testing.prometheus import PrometheusServer
from flagops_devtools.testing.stage_totals import Counts, StageTotals, exact_counts
from flagops_devtools.testing.traffic import TrafficGenerator
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

INTEGRATION = "exact_yardstick"
SERIES = f'flagops_integration_operations_total{{integration="{INTEGRATION}"}}'


@pytest.fixture
def counter() -> Iterator[tuple[str, Counter]]:
    registry = CollectorRegistry()
    operations = Counter(
        "flagops_integration_operations",
        "Integration operations by outcome",
        ["integration", "flag", "outcome"],
        registry=registry,
    )
    for outcome in ("success", "error"):
        operations.labels(INTEGRATION, INTEGRATION, outcome)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}", operations
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def scraped_value(prometheus: PrometheusServer, outcome: str) -> float | None:
    found = prometheus.query(f'{SERIES[:-1]},outcome="{outcome}"}}')
    return float(found[0]["value"][1]) if found else None


def test_exact_counts_over_a_window_and_before_it(
    counter: tuple[str, Counter], prometheus_server: Callable[..., PrometheusServer]
) -> None:
    target, operations = counter
    prometheus = prometheus_server([target], scrape_interval="1s")
    prometheus.wait_for_scrape(target)
    before = datetime.now(UTC)
    # Two scrapes of the series at zero first: increase() needs a sample before the traffic.
    wait_for(lambda: prometheus.query(f"count_over_time({SERIES}[1m]) >= 4"), timeout=30)
    operations.labels(INTEGRATION, INTEGRATION, "success").inc(900)
    operations.labels(INTEGRATION, INTEGRATION, "error").inc(100)
    wait_for(lambda: scraped_value(prometheus, "error") == 100, timeout=30)
    wait_for(lambda: scraped_value(prometheus, "success") == 900, timeout=30)
    now = datetime.now(UTC)

    counts = exact_counts(prometheus, INTEGRATION, 30, now)
    # increase() extrapolates to the window's ends: a little over what the app counted.
    assert 1000 <= counts.operations <= 1000 * 1.1
    assert counts.error_rate == pytest.approx(0.1, abs=1e-9)

    # Evaluated at a time before the traffic, the same query sees none of it.
    earlier = exact_counts(prometheus, INTEGRATION, 1, before - timedelta(seconds=1))
    assert earlier == Counts(0.0, 0.0)
    assert earlier.error_rate is None
    # An integration no app exports is no traffic, not an error.
    assert exact_counts(prometheus, "never_exported", 30, now) == Counts(0.0, 0.0)
    with pytest.raises(ValueError, match="no PromQL range"):
        exact_counts(prometheus, INTEGRATION, 0, now)


def test_a_restarted_app_is_a_counter_reset_the_exact_query_sees_through(
    prometheus_server: Callable[..., PrometheusServer],
) -> None:
    app = TrafficGenerator(INTEGRATION, INTEGRATION, rate=50).start()
    try:
        app.set(error_share=0.2)
        prometheus = prometheus_server([app.target], scrape_interval="1s")
        prometheus.wait_for_scrape(app.target)
        wait_for(lambda: (scraped_value(prometheus, "success") or 0) > 200, timeout=30)
        began = datetime.now(UTC) - timedelta(seconds=20)
        before_restart = exact_counts(prometheus, INTEGRATION, 20, began + timedelta(seconds=20))
        app.restart()
        # The counter starts again from zero on the same endpoint.
        wait_for(
            lambda: (value := scraped_value(prometheus, "success")) is not None and value < 100,
            timeout=30,
            message="prometheus did not see the counter reset",
        )
        wait_for(lambda: (after := scraped_value(prometheus, "success")) and after > 100)
        now = datetime.now(UTC)
        counts = exact_counts(prometheus, INTEGRATION, int((now - began).total_seconds()), now)
        # Both sides of the reset are counted (a drop read as a fall would lose one).
        assert counts.operations > before_restart.operations + 100
        assert counts.error_rate == pytest.approx(0.2, abs=0.01)
    finally:
        app.stop()


def test_stage_totals_read_from_status() -> None:
    status = {
        "stageTotals": {
            "stage": "BETA",
            "since": "2026-12-01T14:00:00.250000Z",
            "through": "2026-12-01T14:01:02Z",
            "operations": 400.0,
            "errors": 8.0,
        }
    }
    totals = StageTotals.from_status(status)
    assert totals is not None
    assert totals.stage == "BETA"
    assert totals.window_seconds == 61
    assert totals.through.tzinfo is not None
    assert totals.counts.error_rate == pytest.approx(0.02)
    assert StageTotals.from_status({}) is None
