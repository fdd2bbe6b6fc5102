"""Measuring: the Prometheus I/O of one analysis, and nothing else.

`measure()` renders and runs the two queries and returns a `Measurement` (the
values, or what went wrong); judging it is `judge.py`'s job. It never raises,
and its messages never carry the address's credentials. It is blocking
(requests); async callers run it in a thread.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests

from flagops.api.stages import Stage
from flagops.rollouts.judge import Measurement
from flagops.rollouts.prometheus import PrometheusQueryClient, QueryFailed, sample_value
from flagops.rollouts.queries import (
    DEFAULT_TIMEOUT_SECONDS,
    AnalysisConfig,
    TemplateError,
    render,
    template_values,
)
from flagops.rollouts.totals import Counts, counts_by_integration, grouped_query


class QueryClient(Protocol):
    """`custom_query` as prometheus_api_client spells it (rollouts/prometheus.py)."""

    def custom_query(
        self, query: str, params: dict[str, Any] | None = None, timeout: Any = None
    ) -> Any: ...


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


def _where(address: str) -> str:
    """Who answered, for messages: never the address's credentials."""
    return f"Prometheus {redact_address(address)}" if address else "Prometheus"


def ask(client: QueryClient, query: str, at: datetime, timeout: float, address: str = "") -> Any:
    """The answer of an instant query at `at`; QueryFailed (a safe message) otherwise."""
    where = _where(address)
    try:
        return client.custom_query(
            query,
            params={"time": f"{at.timestamp():.3f}", "timeout": f"{timeout:g}"},
            timeout=timeout,
        )
    except requests.Timeout:
        raise QueryFailed(f"{where} did not answer within {timeout:g}s") from None
    except requests.ConnectionError as exc:
        reason = type(exc).__name__
        raise QueryFailed(f"{where} unreachable ({reason})") from None
    except QueryFailed as exc:
        raise QueryFailed(f"{where} {exc}") from None
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise QueryFailed(f"{where} gave a bad answer ({type(exc).__name__})") from None


def run_query(
    client: QueryClient, query: str, at: datetime, timeout: float, address: str = ""
) -> float | None:
    """The single value of an instant query at `at` (NaN stays NaN); None for no data."""
    result = ask(client, query, at, timeout, address)
    try:
        return _single_value(_samples(result))
    except QueryFailed as exc:
        raise QueryFailed(f"{_where(address)} {exc}") from None


def measure_counts(
    client: QueryClient, window: timedelta, at: datetime, timeout: float, address: str = ""
) -> dict[str, Counts]:
    """Every integration's operations and errors in (at - window, at]: the grouped query.
    QueryFailed (a safe message) when there is no usable answer."""
    result = ask(client, grouped_query(window), at, timeout, address)
    try:
        return counts_by_integration(_samples(result))
    except QueryFailed as exc:
        raise QueryFailed(f"{_where(address)} {exc}") from None


def _samples(result: Any) -> Sequence[Any]:
    if not isinstance(result, Sequence) or isinstance(result, str | bytes):
        raise QueryFailed(f"answered an unexpected result type {type(result).__name__}")
    return result


def _single_value(result: Sequence[Any]) -> float | None:
    if not result:
        return None
    if len(result) > 1:
        raise QueryFailed(
            f"query returned {len(result)} series, expected one (aggregate it, e.g. with sum())"
        )
    if not isinstance(result[0], Mapping):
        raise QueryFailed("answered a sample without a value")
    return sample_value(dict(result[0]))


def measure(
    client: QueryClient,
    config: AnalysisConfig,
    *,
    stage: Stage,
    time_in_stage: timedelta,
    now: datetime,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    address: str = "",
) -> Measurement:
    """Ask the sample-count query, then the error-rate query. Never raises."""
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
    except Exception as exc:  # a round must never crash on an analysis
        failure = f"analysis failed unexpectedly ({type(exc).__name__})"
    return Measurement(samples, error_rate, failure, queries)


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
