"""Integration lifecycle states and the health-check result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class IntegrationStatus(StrEnum):
    DISABLED = "DISABLED"
    DISCONNECTED = "DISCONNECTED"
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    ERROR = "ERROR"
    RATE_LIMITED = "RATE_LIMITED"


@dataclass(frozen=True)
class HealthCheckResult:
    """What one health check saw; `status` is CONNECTED, RATE_LIMITED or ERROR."""

    integration: str
    healthy: bool
    status: IntegrationStatus
    message: str
    latency_ms: float
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json_dict(self) -> dict[str, Any]:
        """The probe's wire format (camelCase, RFC 3339 time)."""
        return {
            "integration": self.integration,
            "healthy": self.healthy,
            "status": str(self.status),
            "message": self.message,
            "latencyMs": round(self.latency_ms, 3),
            "checkedAt": self.checked_at.isoformat().replace("+00:00", "Z"),
        }
