"""One analysis: two PromQL queries and the newest probe, judged.

`analyse()` never raises: whatever goes wrong talking to Prometheus becomes
an Error verdict with a message that says what (and never the address's
credentials). It is blocking (requests); async callers run it in a thread.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests

from flagops.api.durations import format_promql_duration
from flagops.api.rollout import RolloutSpec, Verdict
from flagops.api.stages import Stage
from flagops.rollouts.decide import ProbeOutcome
from flagops.rollouts.prometheus import PrometheusQueryClient, sample_value
from flagops.rollouts.prometheus import QueryFailed as QueryFailed

# DESIGN's error-rate query, with `or vector(0)` on the numerator: a healthy app that has
# never failed exports no outcome="error" series, and without it the ratio would have no
# data forever (Inconclusive: the Rollout would never advance).
DEFAULT_ERROR_RATE_QUERY = (
    '(sum(increase(flagops_integration_operations_total{integration="{{integration}}",'
    'outcome="error"}[{{window}}])) or vector(0))'
    ' / sum(increase(flagops_integration_operations_total{integration="{{integration}}"}'
    "[{{window}}]))"
)
DEFAULT_SAMPLE_COUNT_QUERY = (
    'sum(increase(flagops_integration_operations_total{integration="{{integration}}"}[{{window}}]))'
)
# Prometheus queries one analysis costs (for capacity planning and the benchmark).
QUERIES_PER_ANALYSIS = 2
MIN_WINDOW = timedelta(minutes=1)
DEFAULT_TIMEOUT_SECONDS = 5.0

PLACEHOLDERS = ("integration", "flag", "namespace", "stage", "window")
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Substituted values end up inside PromQL label matchers "..." and range
# selectors [...]: nothing that could close them may get in.
_SAFE_VALUE_RE = re.compile(r"^[A-Za-z0-9_.:/-]*$")


class QueryClient(Protocol):
    """`custom_query` as prometheus_api_client spells it (rollouts/prometheus.py)."""

    def custom_query(
        self, query: str, params: dict[str, Any] | None = None, timeout: Any = None
    ) -> Any: ...


class TemplateError(ValueError):
    """A query template that cannot be rendered."""


@dataclass(frozen=True)
class AnalysisConfig:
    """What to ask and how to judge, with templates not yet rendered."""

    error_rate_query: str
    sample_count_query: str
    error_threshold: float
    min_sample_size: int
    integration: str
    flag: str
    namespace: str


@dataclass(frozen=True)
class AnalysisResult:
    verdict: Verdict
    error_rate: float | None
    samples: float | None
    message: str
    queries: int = 0  # Prometheus requests actually sent


def config_for(
    spec: RolloutSpec, *, flag: str, integration: str | None, namespace: str
) -> AnalysisConfig:
    """The analysis a Rollout asks for; TemplateError when the defaults cannot apply."""
    prom = spec.analysis.prometheus
    if integration is None and (prom.error_rate_query is None or prom.sample_count_query is None):
        raise TemplateError(
            "the flag names no spec.integration, so the default queries do not apply:"
            " set analysis.prometheus.errorRateQuery and sampleCountQuery"
        )
    config = AnalysisConfig(
        error_rate_query=prom.error_rate_query or DEFAULT_ERROR_RATE_QUERY,
        sample_count_query=prom.sample_count_query or DEFAULT_SAMPLE_COUNT_QUERY,
        error_threshold=spec.analysis.error_threshold,
        min_sample_size=spec.analysis.min_sample_size,
        integration=integration or "",
        flag=flag,
        namespace=namespace,
    )
    for template in (config.error_rate_query, config.sample_count_query):
        check_template(template)
    return config


def promql_window(time_in_stage: timedelta) -> str:
    """Time in the stage as a PromQL range, whole seconds, at least 1m ("5m30s")."""
    seconds = max(MIN_WINDOW, time_in_stage) // timedelta(seconds=1)
    return format_promql_duration(timedelta(seconds=seconds))


def check_template(template: str) -> None:
    """TemplateError naming any placeholder outside DESIGN's five."""
    unknown = sorted({m for m in _PLACEHOLDER_RE.findall(template) if m not in PLACEHOLDERS})
    if unknown:
        known = ", ".join("{{" + p + "}}" for p in PLACEHOLDERS)
        raise TemplateError(
            f"unknown placeholder(s) {', '.join('{{' + u + '}}' for u in unknown)}; known: {known}"
        )


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute `{{name}}` placeholders; TemplateError on unknown names or unsafe values."""
    check_template(template)
    for name, value in values.items():
        if not _SAFE_VALUE_RE.fullmatch(value):
            raise TemplateError(f"{{{{{name}}}}} value {value!r} is not safe inside PromQL")

    def substitute(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _PLACEHOLDER_RE.sub(substitute, template)


def template_values(
    config: AnalysisConfig, stage: Stage, time_in_stage: timedelta
) -> dict[str, str]:
    return {
        "integration": config.integration,
        "flag": config.flag,
        "namespace": config.namespace,
        "stage": stage.value,
        "window": promql_window(time_in_stage),
    }


def redact_address(address: str) -> str:
    """The address without user:password@, for messages."""
    parts = urlsplit(address)
    if "@" not in parts.netloc:
        return address
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


@functools.lru_cache(maxsize=64)
def prometheus_client(address: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> QueryClient:
    """One client (and HTTP connection pool) per address and timeout, shared by every Rollout."""
    return PrometheusQueryClient(address, timeout)


def run_query(
    client: QueryClient, query: str, at: datetime, timeout: float, address: str = ""
) -> float | None:
    """The single value of an instant query at `at` (NaN stays NaN); None for no data."""
    where = f"Prometheus {redact_address(address)}" if address else "Prometheus"
    try:
        result = client.custom_query(
            query,
            params={"time": f"{at.timestamp():.3f}", "timeout": f"{timeout:g}"},
            timeout=timeout,
        )
        return _single_value(result)
    except requests.Timeout:
        raise QueryFailed(f"{where} did not answer within {timeout:g}s") from None
    except requests.ConnectionError as exc:
        reason = type(exc).__name__
        raise QueryFailed(f"{where} unreachable ({reason})") from None
    except QueryFailed as exc:
        raise QueryFailed(f"{where} {exc}") from None
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise QueryFailed(f"{where} gave a bad answer ({type(exc).__name__})") from None


def _single_value(result: Any) -> float | None:
    if not isinstance(result, Sequence) or isinstance(result, str | bytes):
        raise QueryFailed(f"answered an unexpected result type {type(result).__name__}")
    if not result:
        return None
    if len(result) > 1:
        raise QueryFailed(
            f"query returned {len(result)} series, expected one (aggregate it, e.g. with sum())"
        )
    if not isinstance(result[0], Mapping):
        raise QueryFailed("answered a sample without a value")
    return sample_value(dict(result[0]))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def analyse(
    client: QueryClient,
    config: AnalysisConfig,
    *,
    stage: Stage,
    time_in_stage: timedelta,
    now: datetime,
    probe: ProbeOutcome | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    address: str = "",
) -> AnalysisResult:
    """Judge the stage: Pass, Fail, Inconclusive or Error. Never raises.

    `probe` is the newest probe's outcome, or None when the Rollout has no probe.
    """
    queries = 0
    samples: float | None = None
    error_rate: float | None = None
    failure: str | None = None
    try:
        values = template_values(config, stage, time_in_stage)
        count_query = render(config.sample_count_query, values)
        rate_query = render(config.error_rate_query, values)
        queries += 1
        samples = run_query(client, count_query, now, timeout, address)
        queries += 1
        error_rate = run_query(client, rate_query, now, timeout, address)
    except (QueryFailed, TemplateError) as exc:
        failure = str(exc)
    except Exception as exc:  # a handler must never crash on an analysis
        failure = f"analysis failed unexpectedly ({type(exc).__name__})"

    def result(verdict: Verdict, message: str) -> AnalysisResult:
        # NaN has no JSON spelling: status records it as "no value", the message says NaN.
        return AnalysisResult(verdict, _finite(error_rate), _finite(samples), message, queries)

    if probe is ProbeOutcome.FAILED:
        return result(Verdict.FAIL, "newest health probe failed")
    if failure is not None:
        return result(Verdict.ERROR, failure)
    threshold = _percent(config.error_threshold)
    if samples is not None and math.isnan(samples):
        return result(
            Verdict.INCONCLUSIVE,
            f"sample-count query returned NaN, counted as 0 of {config.min_sample_size} samples",
        )
    if samples is None or samples < config.min_sample_size:
        have = 0 if samples is None else int(samples)
        return result(
            Verdict.INCONCLUSIVE, f"waiting for samples: {have} of {config.min_sample_size}"
        )
    if error_rate is None:
        return result(Verdict.INCONCLUSIVE, "error-rate query returned no data")
    if math.isnan(error_rate):
        return result(Verdict.INCONCLUSIVE, "error-rate query returned NaN (nothing to divide by?)")
    summary = f"error rate {_percent(error_rate)} over {int(samples)} operations"
    if error_rate > config.error_threshold:
        return result(Verdict.FAIL, f"{summary} > threshold {threshold}")
    if probe is not None and probe is not ProbeOutcome.PASSED:
        return result(
            Verdict.INCONCLUSIVE, f"{summary}; waiting for a health probe result ({probe.value})"
        )
    return result(Verdict.PASS, f"{summary} <= threshold {threshold}")


@dataclass(frozen=True)
class QueryCheck:
    ok: bool
    message: str
    parses: bool  # False only when Prometheus said the query is not valid PromQL


def validate_query(
    client: QueryClient,
    template: str,
    values: Mapping[str, str],
    now: datetime,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    address: str = "",
) -> QueryCheck:
    """Ask Prometheus whether a query parses and answers.

    A syntax check needs a PromQL parser, and the only faithful one is
    Prometheus itself: an instant query at `now` answers 400 `bad_data` when
    the query does not parse. No data is fine (the stage may have no traffic
    yet); an unreachable Prometheus is `ok=False, parses=True` (unknown).
    """
    try:
        query = render(template, values)
    except TemplateError as exc:
        return QueryCheck(ok=False, message=str(exc), parses=False)
    try:
        run_query(client, query, now, timeout, address)
    except QueryFailed as exc:
        text = str(exc)
        parses = "bad_data" not in text
        return QueryCheck(ok=False, message=text, parses=parses)
    return QueryCheck(ok=True, message="query parses and answers", parses=True)
