"""Integrations behind feature flags: the service base class, the registry, calendar sync.

Third-party integrations register in the entry-point group `flagops.integrations`
(see docs/integrations.md); `flagops.integrations.calendar` is the built-in one.
"""

from flagops.integrations.errors import (
    IntegrationConfigError,
    IntegrationConnectionError,
    IntegrationDisabledError,
    IntegrationError,
    IntegrationNotConnectedError,
    IntegrationOperationError,
    IntegrationQuotaError,
    IntegrationRateLimitedError,
)
from flagops.integrations.flagsource import FlagSource
from flagops.integrations.metrics import DEFAULT_METRICS, IntegrationMetrics, Outcome
from flagops.integrations.redaction import REDACTED, Redactor, is_secret_name
from flagops.integrations.registry import (
    ENTRY_POINT_GROUP,
    IntegrationRegistry,
    create_integration,
    discover_integrations,
)
from flagops.integrations.service import IntegrationService
from flagops.integrations.status import HealthCheckResult, IntegrationStatus

__all__ = [
    "DEFAULT_METRICS",
    "ENTRY_POINT_GROUP",
    "REDACTED",
    "FlagSource",
    "HealthCheckResult",
    "IntegrationConfigError",
    "IntegrationConnectionError",
    "IntegrationDisabledError",
    "IntegrationError",
    "IntegrationMetrics",
    "IntegrationNotConnectedError",
    "IntegrationOperationError",
    "IntegrationQuotaError",
    "IntegrationRateLimitedError",
    "IntegrationRegistry",
    "IntegrationService",
    "IntegrationStatus",
    "Outcome",
    "Redactor",
    "create_integration",
    "discover_integrations",
    "is_secret_name",
]
