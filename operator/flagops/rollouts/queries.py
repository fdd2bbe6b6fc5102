"""What one analysis asks Prometheus: the query templates, rendered safely.

Pure: a Rollout's spec and its flag become an `AnalysisConfig`; templates become
PromQL with DESIGN's five placeholders. Asking is `measure.py`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from flagops.api.durations import format_promql_duration
from flagops.api.rollout import RolloutSpec
from flagops.api.stages import Stage

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


def rendered_or_template(template: str, values: Mapping[str, str]) -> str:
    """The query as Prometheus would get it, or the template where it does not render:
    what names one query to validate, whichever Rollout asks (the default templates
    render alike for every flag of an integration)."""
    try:
        return render(template, values)
    except TemplateError:
        return template
