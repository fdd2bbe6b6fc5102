"""analyse() against Debian's real Prometheus scraping an in-process exporter.

The exporter serves flagops_integration_operations_total (the integrations'
own counter) with traffic each test controls; Prometheus scrapes it every
second. increase() needs at least two scrapes of a series inside the
window, so each test's series exist at zero and are stored before it adds
traffic (conftest.py), and the test waits for the verdict to settle.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from flagops.api.rollout import Verdict
from flagops.api.stages import Stage
from flagops.integrations.metrics import IntegrationMetrics, Outcome
from flagops.rollouts.analysis import analyse
from flagops.rollouts.judge import AnalysisResult
from flagops.rollouts.measure import prometheus_client, validate_query
from flagops.rollouts.queries import (
    DEFAULT_ERROR_RATE_QUERY,
    DEFAULT_SAMPLE_COUNT_QUERY,
    QUERIES_PER_ANALYSIS,
    AnalysisConfig,
    template_values,
)
from flagops_devtools.testing.process import free_port
from flagops_devtools.testing.prometheus import PrometheusServer
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

WINDOW = timedelta(minutes=1)


@dataclass
class Exporter:
    metrics: IntegrationMetrics
    target: str  # host:port for Prometheus


@dataclass
class Traffic:
    """One integration's operations, as the SDK counts them."""

    metrics: IntegrationMetrics
    integration: str
    flag: str = "calendar_sync"

    @property
    def series(self) -> str:
        return f'flagops_integration_operations_total{{integration="{self.integration}"}}'

    def add(self, success: int = 0, error: int = 0) -> None:
        labels = {"integration": self.integration, "flag": self.flag}
        self.metrics.operations.labels(**labels, outcome=str(Outcome.SUCCESS)).inc(success)
        self.metrics.operations.labels(**labels, outcome=str(Outcome.ERROR)).inc(error)


@pytest.fixture(scope="module")
def operations_exporter() -> Iterator[Exporter]:
    registry = CollectorRegistry()
    metrics = IntegrationMetrics(registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield Exporter(metrics=metrics, target=f"127.0.0.1:{port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def shared_prometheus(operations_exporter: Exporter) -> Iterator[PrometheusServer]:
    with PrometheusServer([operations_exporter.target], scrape_interval="1s") as server:
        server.wait_for_scrape(operations_exporter.target)
        yield server


@pytest.fixture
def traffic(
    request: pytest.FixtureRequest,
    operations_exporter: Exporter,
    shared_prometheus: PrometheusServer,
) -> Traffic:
    """This test's integration, with both outcome series stored at zero.

    increase() needs a sample before the traffic, so the series exist at zero
    and Prometheus has stored them before the test adds operations.
    """
    name = "it_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    traffic = Traffic(metrics=operations_exporter.metrics, integration=name)
    traffic.add(0, 0)
    wait_for(
        lambda: len(shared_prometheus.query(traffic.series)) == 2,
        timeout=30,
        interval=0.2,
        message=f"prometheus has not stored both outcome series of {name}",
    )
    return traffic


def config(traffic: Traffic | None = None, **kw: Any) -> AnalysisConfig:
    base: dict[str, Any] = {
        "error_rate_query": DEFAULT_ERROR_RATE_QUERY,
        "sample_count_query": DEFAULT_SAMPLE_COUNT_QUERY,
        "error_threshold": 0.05,
        "min_sample_size": 100,
        "integration": traffic.integration if traffic else "calendar_sync",
        "flag": "calendar_sync",
        "namespace": "portal",
    }
    return AnalysisConfig(**{**base, **kw})


def run(server: PrometheusServer, cfg: AnalysisConfig, timeout: float = 2.0) -> AnalysisResult:
    return analyse(
        prometheus_client(server.url, timeout),
        cfg,
        stage=Stage.BETA,
        time_in_stage=WINDOW,
        now=datetime.now(UTC),
        timeout=timeout,
        address=server.url,
    )


def first(
    server: PrometheusServer,
    cfg: AnalysisConfig,
    accept: Callable[[AnalysisResult], bool],
    message: str,
) -> AnalysisResult:
    """Analyse until a result is acceptable (Prometheus catches up within a few scrapes)."""

    def attempt() -> AnalysisResult | None:
        result = run(server, cfg)
        return result if accept(result) else None

    return wait_for(attempt, timeout=30, interval=0.5, message=message)


def settled(server: PrometheusServer, cfg: AnalysisConfig) -> AnalysisResult:
    """The first verdict with enough samples (increase() grows over a couple of scrapes)."""
    return first(
        server, cfg, lambda r: r.verdict is not Verdict.INCONCLUSIVE, "no conclusive verdict"
    )


def test_clean_traffic_passes(traffic: Traffic, shared_prometheus: PrometheusServer) -> None:
    traffic.add(success=990, error=10)
    result = settled(shared_prometheus, config(traffic))
    assert result.verdict is Verdict.PASS, result.message
    assert result.error_rate == pytest.approx(0.01, abs=0.002)
    assert result.samples is not None
    assert result.samples >= 100
    assert result.queries == QUERIES_PER_ANALYSIS
    assert "<= threshold 5.00%" in result.message


def test_app_that_never_failed_passes(
    operations_exporter: Exporter, shared_prometheus: PrometheusServer
) -> None:
    """No outcome="error" series exists at all: the default query still gives a rate of 0."""
    integration = "it_never_failed"
    labels = {"integration": integration, "flag": "f", "outcome": str(Outcome.SUCCESS)}
    counter = operations_exporter.metrics.operations.labels(**labels)
    series = f'flagops_integration_operations_total{{integration="{integration}"}}'
    wait_for(lambda: shared_prometheus.query(series), timeout=30, interval=0.2)
    counter.inc(500)
    result = settled(shared_prometheus, config(integration=integration))
    assert result.verdict is Verdict.PASS, result.message
    assert result.error_rate == 0.0


def test_error_spike_fails(traffic: Traffic, shared_prometheus: PrometheusServer) -> None:
    traffic.add(success=800, error=200)
    result = settled(shared_prometheus, config(traffic))
    assert result.verdict is Verdict.FAIL, result.message
    assert result.error_rate == pytest.approx(0.2, abs=0.02)
    assert "> threshold 5.00%" in result.message


def test_no_traffic_is_inconclusive(traffic: Traffic, shared_prometheus: PrometheusServer) -> None:
    # Two more scrapes of the idle series, so increase() is computed (and zero).
    wait_for(
        lambda: shared_prometheus.query(f"count_over_time({traffic.series}[1m]) >= 3"),
        timeout=30,
        message="prometheus has not scraped the idle series three times",
    )
    result = run(shared_prometheus, config(traffic))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.samples == 0
    assert result.message == "waiting for samples: 0 of 100"


def test_unknown_integration_has_no_data(shared_prometheus: PrometheusServer) -> None:
    result = run(shared_prometheus, config(integration="never_seen"))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.samples is None
    assert result.message == "waiting for samples: 0 of 100"


def test_too_few_samples_is_inconclusive_even_with_errors(
    traffic: Traffic, shared_prometheus: PrometheusServer
) -> None:
    traffic.add(success=5, error=20)
    result = first(
        shared_prometheus,
        config(traffic),
        lambda r: r.samples is not None and r.samples >= 20,
        "prometheus never counted the 25 operations",
    )
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.message.startswith("waiting for samples: ")


def test_prometheus_stopped_is_error_then_recovers(
    traffic: Traffic,
    operations_exporter: Exporter,
    prometheus_server: Callable[..., PrometheusServer],
) -> None:
    # Its own server: stopping the shared one would disturb the other tests.
    server = prometheus_server([operations_exporter.target], scrape_interval="1s")
    cfg = config(traffic)
    wait_for(
        lambda: len(server.query(traffic.series)) == 2,
        timeout=30,
        message="the second prometheus has not stored the series",
    )
    traffic.add(success=500)
    assert settled(server, cfg).verdict is Verdict.PASS
    server.stop()
    began = time.monotonic()
    result = run(server, cfg)
    elapsed = time.monotonic() - began
    assert result.verdict is Verdict.ERROR
    assert f"Prometheus {server.url} unreachable" in result.message
    assert result.queries == 1  # the second query is not sent to a server that is down
    assert elapsed < 5, f"an unreachable Prometheus held the analysis for {elapsed:.1f}s"
    server.start()
    recovered = first(
        server,
        cfg,
        lambda r: r.verdict is not Verdict.ERROR,
        "analysis did not recover after Prometheus restarted",
    )
    assert recovered.verdict in (Verdict.PASS, Verdict.INCONCLUSIVE)


def test_bad_query_is_error_with_prometheus_message(shared_prometheus: PrometheusServer) -> None:
    broken = "sum(rate(flagops_integration_operations_total[{{window}}])"
    result = run(shared_prometheus, config(error_rate_query=broken))
    assert result.verdict is Verdict.ERROR
    assert "refused the query: HTTP 400 bad_data" in result.message
    assert "parse error" in result.message
    client = prometheus_client(shared_prometheus.url, 2.0)
    values = template_values(config(), Stage.BETA, WINDOW)
    check = validate_query(client, broken, values, datetime.now(UTC))
    assert not check.ok
    assert not check.parses
    assert "parse error" in check.message
    good = validate_query(client, DEFAULT_ERROR_RATE_QUERY, values, datetime.now(UTC))
    assert good.ok, good.message


def test_series_without_aggregation_is_error(
    traffic: Traffic, shared_prometheus: PrometheusServer
) -> None:
    result = run(shared_prometheus, config(traffic, sample_count_query=traffic.series))
    assert result.verdict is Verdict.ERROR
    assert "returned 2 series" in result.message


def test_silent_server_times_out() -> None:
    """A peer that accepts connections but never answers (a hung Prometheus)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = f"http://127.0.0.1:{listener.getsockname()[1]}"
        began = time.monotonic()
        result = analyse(
            prometheus_client(address, 0.5),
            config(),
            stage=Stage.BETA,
            time_in_stage=WINDOW,
            now=datetime.now(UTC),
            timeout=0.5,
            address=address,
        )
        elapsed = time.monotonic() - began
    assert result.verdict is Verdict.ERROR
    assert "did not answer within 0.5s" in result.message
    assert result.queries == 1
    assert elapsed < 3
