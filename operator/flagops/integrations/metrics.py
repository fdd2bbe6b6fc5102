"""The integrations' Prometheus counter, defined in exactly one place."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import REGISTRY, CollectorRegistry, Counter

OPERATIONS_METRIC = "flagops_integration_operations_total"


class Outcome(StrEnum):
    SUCCESS = "success"
    ERROR = "error"
    RATE_LIMITED = "rate_limited"


class IntegrationMetrics:
    """Holds the counter; tests pass their own CollectorRegistry to read it in isolation."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.operations = Counter(
            OPERATIONS_METRIC.removesuffix("_total"),
            "Integration operations by outcome.",
            ["integration", "flag", "outcome"],
            registry=registry,
        )

    def count(self, integration: str, flag: str, outcome: Outcome) -> None:
        self.operations.labels(integration=integration, flag=flag, outcome=str(outcome)).inc()


# The process-wide instance every service uses unless given another.
DEFAULT_METRICS = IntegrationMetrics()
