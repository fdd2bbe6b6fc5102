"""Templating and verdicts of one analysis, against a fake Prometheus client."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from flagops.api.rollout import PrometheusSpec, RolloutSpec, Verdict
from flagops.api.stages import Stage
from flagops.rollouts.analysis import analyse
from flagops.rollouts.measure import prometheus_client, redact_address, validate_query
from flagops.rollouts.model import ProbeOutcome
from flagops.rollouts.prometheus import QueryFailed
from flagops.rollouts.queries import (
    DEFAULT_ERROR_RATE_QUERY,
    DEFAULT_SAMPLE_COUNT_QUERY,
    QUERIES_PER_ANALYSIS,
    AnalysisConfig,
    TemplateError,
    config_for,
    promql_window,
    render,
    rendered_or_template,
)

NOW = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def vector(value: str) -> list[dict[str, Any]]:
    return [{"metric": {}, "value": [NOW.timestamp(), value]}]


class FakeQueryClient:
    """Answers by query text: the sample-count query and the error-rate query."""

    def __init__(self, samples: Any = None, error_rate: Any = None) -> None:
        self.answers: dict[str, Any] = {"count": samples, "rate": error_rate}
        self.calls: list[tuple[str, dict[str, Any] | None, Any]] = []

    def custom_query(
        self, query: str, params: dict[str, Any] | None = None, timeout: Any = None
    ) -> Any:
        self.calls.append((query, params, timeout))
        answer = self.answers["rate" if " / " in query else "count"]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer()
        return answer


def config(**kw: Any) -> AnalysisConfig:
    base: dict[str, Any] = {
        "error_rate_query": DEFAULT_ERROR_RATE_QUERY,
        "sample_count_query": DEFAULT_SAMPLE_COUNT_QUERY,
        "error_threshold": 0.05,
        "min_sample_size": 100,
        "integration": "calendar_sync",
        "flag": "calendar_sync",
        "namespace": "portal",
    }
    return AnalysisConfig(**{**base, **kw})


def run(client: FakeQueryClient, probe: ProbeOutcome | None = None, **kw: Any) -> Any:
    return analyse(
        client,
        config(**kw),
        stage=Stage.BETA,
        time_in_stage=timedelta(minutes=5, seconds=30),
        now=NOW,
        probe=probe,
        timeout=2.0,
        address="http://user:hunter2@prom.example:9090",
    )


@pytest.mark.parametrize(
    ("delta", "window"),
    [
        (timedelta(0), "1m"),
        (timedelta(seconds=59), "1m"),
        (timedelta(seconds=330), "5m30s"),
        (timedelta(seconds=330, microseconds=900_000), "5m30s"),
        (timedelta(hours=2, seconds=1), "2h1s"),
        (timedelta(days=3), "72h"),
    ],
)
def test_window_is_time_in_stage_at_least_one_minute(delta: timedelta, window: str) -> None:
    assert promql_window(delta) == window


def test_default_queries_render_as_design_says() -> None:
    values = {
        "integration": "calendar_sync",
        "flag": "f",
        "namespace": "n",
        "stage": "BETA",
        "window": "5m",
    }
    assert render(DEFAULT_SAMPLE_COUNT_QUERY, values) == (
        'sum(increase(flagops_integration_operations_total{integration="calendar_sync"}[5m]))'
    )
    assert render(DEFAULT_ERROR_RATE_QUERY, values) == (
        '(sum(increase(flagops_integration_operations_total{integration="calendar_sync",'
        'outcome="error"}[5m])) or vector(0)) / sum(increase(flagops_integration_operations_total'
        '{integration="calendar_sync"}[5m]))'
    )


def test_every_placeholder_renders_with_spaces_allowed() -> None:
    template = 'x{a="{{flag}}",b="{{ namespace }}",c="{{stage}}",d="{{integration}}"}[{{window}}]'
    values = {"integration": "i", "flag": "f.k", "namespace": "ns", "stage": "FULL", "window": "1m"}
    assert render(template, values) == 'x{a="f.k",b="ns",c="FULL",d="i"}[1m]'


def test_unknown_placeholder_is_named() -> None:
    with pytest.raises(TemplateError, match=r"\{\{service\}\}"):
        render("up{job='{{service}}'}", {})


def test_unsafe_value_cannot_break_out_of_a_label_matcher() -> None:
    with pytest.raises(TemplateError, match="not safe"):
        render('x{a="{{flag}}"}', {"flag": 'a"} or vector(1) #'})


def test_flags_of_one_integration_validate_one_rendered_query() -> None:
    def values(flag: str) -> dict[str, str]:
        return {"integration": "i", "flag": flag, "namespace": "n", "stage": "BETA", "window": "1m"}

    one = rendered_or_template(DEFAULT_ERROR_RATE_QUERY, values("a"))
    assert one == rendered_or_template(DEFAULT_ERROR_RATE_QUERY, values("b"))
    assert rendered_or_template('x{f="{{flag}}"}', values("a")) != rendered_or_template(
        'x{f="{{flag}}"}', values("b")
    )
    # A template that does not render names itself; validating it reports why.
    assert rendered_or_template("up{job='{{service}}'}", values("a")) == "up{job='{{service}}'}"


def test_config_for_uses_defaults_and_spec_queries() -> None:
    spec = RolloutSpec.model_validate({"flagRef": {"name": "calendar-sync"}})
    cfg = config_for(spec, flag="calendar_sync", integration="calendar_sync", namespace="p")
    assert cfg.error_rate_query == DEFAULT_ERROR_RATE_QUERY
    assert cfg.min_sample_size == 100
    assert cfg.error_threshold == 0.05
    custom = spec.model_copy(
        update={
            "analysis": spec.analysis.model_copy(
                update={
                    "prometheus": PrometheusSpec(
                        error_rate_query="a{f='{{flag}}'}", sample_count_query="b"
                    )
                }
            )
        }
    )
    cfg = config_for(custom, flag="calendar_sync", integration=None, namespace="p")
    assert cfg.error_rate_query == "a{f='{{flag}}'}"


def test_config_for_without_integration_or_queries_says_what_to_set() -> None:
    spec = RolloutSpec.model_validate({"flagRef": {"name": "x"}})
    with pytest.raises(TemplateError, match="errorRateQuery"):
        config_for(spec, flag="x", integration=None, namespace="p")


def test_pass() -> None:
    client = FakeQueryClient(vector("1000"), vector("0.01"))
    result = run(client)
    assert result.verdict is Verdict.PASS
    assert result.samples == 1000
    assert result.error_rate == pytest.approx(0.01)
    assert result.queries == QUERIES_PER_ANALYSIS == len(client.calls)
    assert "error rate 1.00% over 1000 operations" in result.message


def test_queries_run_at_now_with_timeout_and_window() -> None:
    client = FakeQueryClient(vector("1000"), vector("0"))
    run(client)
    query, params, timeout = client.calls[0]
    assert "[5m30s]" in query
    assert params == {"time": f"{NOW.timestamp():.3f}", "timeout": "2"}
    assert timeout == 2.0


def test_error_rate_exactly_at_threshold_passes() -> None:
    assert run(FakeQueryClient(vector("200"), vector("0.05"))).verdict is Verdict.PASS


def test_fail_above_threshold() -> None:
    result = run(FakeQueryClient(vector("200"), vector("0.0501")))
    assert result.verdict is Verdict.FAIL
    assert "> threshold 5.00%" in result.message


def test_failed_probe_fails_even_when_metrics_pass() -> None:
    result = run(FakeQueryClient(vector("1000"), vector("0")), probe=ProbeOutcome.FAILED)
    assert result.verdict is Verdict.FAIL
    assert "probe failed" in result.message


def test_failed_probe_fails_even_when_prometheus_is_down() -> None:
    client = FakeQueryClient(requests.ConnectionError("refused"), None)
    assert run(client, probe=ProbeOutcome.FAILED).verdict is Verdict.FAIL


@pytest.mark.parametrize("probe", [ProbeOutcome.NONE, ProbeOutcome.RUNNING])
def test_pass_needs_a_passing_probe_when_configured(probe: ProbeOutcome) -> None:
    result = run(FakeQueryClient(vector("1000"), vector("0")), probe=probe)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "waiting for a health probe result" in result.message
    assert run(FakeQueryClient(vector("1000"), vector("0")), probe=ProbeOutcome.PASSED).verdict is (
        Verdict.PASS
    )


@pytest.mark.parametrize(
    ("samples", "rate", "message"),
    [
        ([], [], "waiting for samples: 0 of 100"),
        (
            vector("NaN"),
            vector("NaN"),
            "sample-count query returned NaN, counted as 0 of 100 samples",
        ),
        (vector("99.9"), vector("0.9"), "waiting for samples: 99 of 100"),
        (vector("150"), [], "error-rate query returned no data"),
        (vector("150"), vector("NaN"), "error-rate query returned NaN (nothing to divide by?)"),
    ],
)
def test_inconclusive(samples: Any, rate: Any, message: str) -> None:
    result = run(FakeQueryClient(samples, rate))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.message == message


def test_many_errors_in_few_samples_is_still_inconclusive() -> None:
    assert run(FakeQueryClient(vector("10"), vector("1"))).verdict is Verdict.INCONCLUSIVE


def _boom(exc: BaseException) -> Callable[[], Any]:
    def raise_it() -> Any:
        raise exc

    return raise_it


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (requests.ConnectionError("refused"), "unreachable (ConnectionError)"),
        (requests.ConnectTimeout("slow"), "did not answer within 2s"),
        (requests.ReadTimeout("slow"), "did not answer within 2s"),
        (
            QueryFailed('refused the query: HTTP 400 bad_data: 1:5: parse error: unexpected "}"'),
            'refused the query: HTTP 400 bad_data: 1:5: parse error: unexpected "}"',
        ),
        (vector("+Inf"), "answered the sample value +Inf, not a finite number"),
        (vector("-Inf"), "answered the sample value -Inf, not a finite number"),
        (ValueError("not json"), "bad answer (ValueError)"),
        ({"weird": 1}, "unexpected result type dict"),
        ([{"metric": {}, "value": [1, ["x"]]}], "sample value of type list, not a number"),
        ([{"metric": {}, "value": [1, "many"]}], "the sample value 'many', not a number"),
        ([{"metric": {}}], "a sample without a value"),
        (vector("1") + vector("2"), "returned 2 series"),
        (RuntimeError("bug"), "unexpectedly (RuntimeError)"),
    ],
)
def test_error_never_raises(answer: Any, message: str) -> None:
    client = FakeQueryClient(answer, vector("0"))
    result = run(client)
    assert result.verdict is Verdict.ERROR
    assert message in result.message
    assert "hunter2" not in result.message
    assert result.queries == 1


def test_error_on_second_query() -> None:
    client = FakeQueryClient(vector("500"), requests.ConnectionError("x"))
    result = run(client)
    assert result.verdict is Verdict.ERROR
    assert result.queries == 2
    assert result.samples == 500


def test_bad_template_is_an_error_without_any_query() -> None:
    client = FakeQueryClient(vector("1"), vector("0"))
    result = run(client, error_rate_query="x[{{nope}}]")
    assert result.verdict is Verdict.ERROR
    assert "{{nope}}" in result.message
    assert client.calls == []


def test_validate_query() -> None:
    values = {"integration": "i", "flag": "f", "namespace": "n", "stage": "BETA", "window": "1m"}
    ok = validate_query(FakeQueryClient([], []), DEFAULT_SAMPLE_COUNT_QUERY, values, NOW)
    assert ok.ok
    assert ok.parses
    bad = validate_query(
        FakeQueryClient(QueryFailed("refused the query: HTTP 400 bad_data: parse error")),
        "sum(",
        values,
        NOW,
    )
    assert not bad.ok
    assert not bad.parses
    assert "parse error" in bad.message
    down = validate_query(FakeQueryClient(requests.ConnectionError()), "up", values, NOW)
    assert not down.ok
    assert down.parses
    unknown = validate_query(FakeQueryClient([]), "x[{{w}}]", values, NOW)
    assert not unknown.parses


def test_client_is_cached_per_address() -> None:
    a = prometheus_client("http://127.0.0.1:1")
    assert prometheus_client("http://127.0.0.1:1") is a
    assert prometheus_client("http://127.0.0.1:2") is not a


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("http://u:p@h:9090/prom", "http://h:9090/prom"),
        ("http://h:9090", "http://h:9090"),
        ("https://token@h", "https://h"),
    ],
)
def test_redact_address(address: str, shown: str) -> None:
    assert redact_address(address) == shown
