"""Exceptions raised by integrations.

Every message is built from redacted text: these exceptions are what callers
log, so they must never carry a token, key or password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class IntegrationError(Exception):
    """Base class; `integration` names the service that raised it."""

    def __init__(self, message: str, *, integration: str = "") -> None:
        super().__init__(message)
        self.integration = integration


class IntegrationDisabledError(IntegrationError):
    """The integration's feature flag is off."""


class IntegrationNotConnectedError(IntegrationError):
    """An operation was attempted before `connect()` succeeded."""


class IntegrationConnectionError(IntegrationError):
    """`connect()` failed; the service is in ERROR."""


class IntegrationConfigError(IntegrationError):
    """`init(config)` got an option it cannot use."""


class IntegrationOperationError(IntegrationError):
    """An operation failed; `status_code`/`reason` describe the remote reply, if any."""

    def __init__(
        self,
        message: str,
        *,
        integration: str = "",
        status_code: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, integration=integration)
        self.status_code = status_code
        self.reason = reason


class IntegrationQuotaError(IntegrationOperationError):
    """The remote quota is spent; retrying soon cannot help, so nothing retries."""


class IntegrationRateLimitedError(IntegrationOperationError):
    """The remote side asked us to slow down; no call is made before `retry_at`."""

    def __init__(
        self,
        message: str,
        *,
        retry_at: datetime,
        integration: str = "",
        status_code: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, integration=integration, status_code=status_code, reason=reason)
        self.retry_at = retry_at


class ErrorKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    QUOTA = "quota"
    ERROR = "error"


@dataclass(frozen=True)
class ClassifiedError:
    """How `execute` should treat an exception raised by an operation."""

    kind: ErrorKind
    status_code: int | None = None
    reason: str | None = None
    retry_after: float | None = None
