"""Alerts and dashboard: promtool checks and unit tests, PromQL validity, metric names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from delivery_tools import CHART, run
from prometheus_client.metrics import MetricWrapperBase

from flagops.controller import metrics as operator_metrics
from flagops.integrations.metrics import OPERATIONS_METRIC
from flagops.relay.metrics import RelayMetrics

ALERTS = CHART / "files" / "alerts.yaml"
DASHBOARD = CHART / "files" / "dashboard.json"
ALERTS_TEST = Path(__file__).with_name("alerts_test.yaml")
RELAY_ALERTS = CHART / "files" / "relay-alerts.yaml"
RELAY_ALERTS_TEST = Path(__file__).with_name("relay_alerts_test.yaml")
REQUIRED_RELAY_ALERTS = {
    "FlagopsRelayWatchDown",
    "FlagopsRelayNotReady",
    "FlagopsRelayErrors",
    "FlagopsRelayDocumentRejected",
}
REQUIRED_ALERTS = {
    "FlagopsOperatorDown",
    "FlagopsShardDown",
    "FlagopsRolloutPausedTooLong",
    "FlagopsRolloutRolledBack",
    "FlagopsPrometheusUnavailable",
    "FlagopsProbeFailing",
}
METRIC_NAME = re.compile(r"\b(flagops_[a-z_]+)\b")


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _series(metrics: Any) -> set[str]:
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            names |= {value._name + suffix for suffix in _SUFFIXES[str(value._type)]}
    return names


def known_metrics() -> set[str]:
    """Series names the operator exports (labelled metrics without children have no samples)."""
    return {OPERATIONS_METRIC} | _series(operator_metrics)


def known_relay_metrics() -> set[str]:
    """Series names the relay exports."""
    return _series(RelayMetrics())


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def alert_expressions(path: Path = ALERTS) -> list[str]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [r["expr"] for g in groups for r in g["rules"]]


def test_promtool_check_rules(promtool: Path) -> None:
    result = run(promtool, "check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_promtool_unit_tests(promtool: Path) -> None:
    result = run(promtool, "test", "rules", ALERTS_TEST)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_cover_the_issue() -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["alert"] for r in rules} == REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
    tested = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tested
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == REQUIRED_ALERTS, "every alert has a promtool test where it fires"


@pytest.mark.parametrize("expr", alert_expressions() + dashboard_expressions())
def test_queries_use_real_metrics(expr: str) -> None:
    known = known_metrics()
    for name in METRIC_NAME.findall(expr):
        assert name in known, name


def test_dashboard_queries_are_valid_promql(promtool: Path, tmp_path: Path) -> None:
    # promtool parses rule expressions: wrap each panel query in a recording rule.
    substitutions = {
        "$__rate_interval": "5m",
        "$threshold": "0.05",
        "$namespace": ".*",
        "$rollout": ".*",
        "$integration": ".*",
    }
    rules = []
    for index, expr in enumerate(dashboard_expressions()):
        for variable, value in substitutions.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"flagops:dashboard_query_{index}", "expr": expr})
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_importable() -> None:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    assert "id" not in dashboard or dashboard["id"] is None
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "rollout", "threshold"} <= variables
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    expressions = " ".join(dashboard_expressions())
    for metric in (
        "flagops_rollout_percent",
        "flagops_rollout_info",
        "flagops_analysis_error_rate",
        OPERATIONS_METRIC,
        "flagops_probe_total",
        "flagops_configmap_writes_total",
        "flagops_reconcile_seconds_bucket",
    ):
        assert metric in expressions, metric
    assert "histogram_quantile(0.5," in expressions
    assert "histogram_quantile(0.99," in expressions
    assert "vector($threshold)" in expressions
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]


def test_promtool_checks_the_relay_alerts(promtool: Path) -> None:
    result = run(promtool, "check", "rules", RELAY_ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(REQUIRED_RELAY_ALERTS)} rules found" in result.stdout
    tested = run(promtool, "test", "rules", RELAY_ALERTS_TEST)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_relay_alerts_are_all_tested() -> None:
    rules = [r for g in yaml.safe_load(RELAY_ALERTS.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == REQUIRED_RELAY_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
    tested = yaml.safe_load(RELAY_ALERTS_TEST.read_text())["tests"]
    fired = {c["alertname"] for t in tested for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert fired == REQUIRED_RELAY_ALERTS, "every relay alert has a promtool test where it fires"


@pytest.mark.parametrize("expr", alert_expressions(RELAY_ALERTS))
def test_relay_alerts_use_metrics_the_relay_exports(expr: str) -> None:
    names = METRIC_NAME.findall(expr)
    assert names
    for name in names:
        assert name in known_relay_metrics(), name
