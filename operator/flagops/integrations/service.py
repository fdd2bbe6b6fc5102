"""IntegrationService: the lifecycle, flag gate, metrics, audit and rate limiting every
integration shares. Subclasses implement only the hooks `_init`, `_connect`,
`_disconnect`, `_health_check` (and optionally `_classify_error`)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from flagops.integrations.audit import write_audit
from flagops.integrations.errors import (
    ClassifiedError,
    ErrorKind,
    IntegrationConfigError,
    IntegrationConnectionError,
    IntegrationDisabledError,
    IntegrationError,
    IntegrationNotConnectedError,
    IntegrationOperationError,
    IntegrationQuotaError,
    IntegrationRateLimitedError,
)
from flagops.integrations.flagsource import FlagSource, load_flags, on_for_anyone
from flagops.integrations.metrics import DEFAULT_METRICS, IntegrationMetrics, Outcome
from flagops.integrations.redaction import Redactor
from flagops.integrations.status import HealthCheckResult, IntegrationStatus

T = TypeVar("T")

DEFAULT_BACKOFF_SECONDS = 1.0
DEFAULT_MAX_BACKOFF_SECONDS = 300.0

# States in which operations may run (RATE_LIMITED only once its retry time has passed).
_ACTIVE = frozenset({IntegrationStatus.CONNECTED, IntegrationStatus.RATE_LIMITED})


class IntegrationService:
    """Base class of every integration.

    Options every service understands in `init(config)`:
    `flags_path` (where flags.json is mounted), `flag_scope` (`any`, the
    default: the service is on while the flag lets anyone in, and the app
    gates each user; `user`: the SDK's user context decides), `flag_user_id` /
    `flag_cohort` (an explicit context for the service-level check), `actor`
    (who is recorded in audit records, default `$FLAGOPS_APP_NAME`),
    `rate_limit_backoff_seconds` and `rate_limit_max_backoff_seconds` (backoff
    when the remote side gives no Retry-After).
    """

    def __init__(
        self,
        name: str,
        flag_name: str,
        *,
        flags: FlagSource | None = None,
        metrics: IntegrationMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.flag_name = flag_name
        self.redactor = Redactor()
        self.logger = logging.getLogger(f"flagops.integrations.{name}")
        self.last_error: str | None = None
        self._flags = flags
        self._metrics = metrics or DEFAULT_METRICS
        self._clock = clock
        self._status = IntegrationStatus.DISCONNECTED
        self._config: dict[str, Any] = {}
        self._flag_user_id: str | None = None
        self._flag_cohort: str | None = None
        self._flag_scope = "any"
        self._actor = os.environ.get("FLAGOPS_APP_NAME", "")
        self._backoff = DEFAULT_BACKOFF_SECONDS
        self._max_backoff = DEFAULT_MAX_BACKOFF_SECONDS
        self._rate_limit_strikes = 0
        self._retry_at: float | None = None

    # ----- state -----------------------------------------------------------------

    @property
    def status(self) -> IntegrationStatus:
        return self._status

    @property
    def config(self) -> dict[str, Any]:
        """The config as it may be shown: secret-named values masked."""
        return self.redactor.redact_mapping(self._config)

    @property
    def retry_at(self) -> datetime | None:
        """When a RATE_LIMITED service will try again."""
        if self._retry_at is None:
            return None
        return datetime.fromtimestamp(self._retry_at, UTC)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, flag={self.flag_name!r}, "
            f"status={self._status.value}, config={self.config!r})"
        )

    def _set_status(self, status: IntegrationStatus) -> None:
        if status != self._status:
            self.log(logging.INFO, "status %s -> %s", self._status.value, status.value)
            self._status = status

    def log(self, level: int, message: str, *args: object) -> None:
        """Log through the redactor: the only way a service writes a log line."""
        if self.logger.isEnabledFor(level):
            text = message % args if args else message
            self.logger.log(level, "%s", self.redactor.redact_text(f"[{self.name}] {text}"))

    # ----- flag ------------------------------------------------------------------

    @property
    def flags(self) -> FlagSource:
        if self._flags is None:
            self._flags = load_flags(self._config.get("flags_path"))
        return self._flags

    @flags.setter
    def flags(self, source: FlagSource) -> None:
        self._flags = source

    def is_flag_enabled(self) -> bool:
        """The service-level gate. A broken flags source reads as off: fail closed."""
        try:
            user_id, cohort = self._flag_user_id, self._flag_cohort
            if user_id is not None or cohort is not None:
                return bool(self.flags.is_enabled(self.flag_name, user_id=user_id, cohort=cohort))
            if self._flag_scope == "user":
                # The SDK's own user context (set_user_context) decides.
                return bool(self.flags.is_enabled(self.flag_name))
            return on_for_anyone(self.flags, self.flag_name)
        except Exception as exc:
            self.log(
                logging.WARNING,
                "cannot read flag %s: %s",
                self.flag_name,
                self.redactor.describe_exception(exc),
            )
            return False

    # ----- lifecycle ---------------------------------------------------------------

    async def init(self, config: Mapping[str, Any]) -> None:
        """Store and validate `config`; the service ends DISABLED or DISCONNECTED."""
        self.redactor.add_from_mapping(config)
        self._config = dict(config)
        user_id, cohort = config.get("flag_user_id"), config.get("flag_cohort")
        self._flag_user_id = None if user_id is None else str(user_id)
        self._flag_cohort = None if cohort is None else str(cohort)
        scope = str(config.get("flag_scope", "any"))
        if scope not in ("any", "user"):
            raise IntegrationConfigError(
                f"{self.name}: flag_scope must be 'any' or 'user', got {scope!r}",
                integration=self.name,
            )
        self._flag_scope = scope
        self._actor = str(config.get("actor") or self._actor)
        self._backoff = float(config.get("rate_limit_backoff_seconds", DEFAULT_BACKOFF_SECONDS))
        self._max_backoff = float(
            config.get("rate_limit_max_backoff_seconds", DEFAULT_MAX_BACKOFF_SECONDS)
        )
        if "flags_path" in config:
            self._flags = None
        started = time.monotonic()
        try:
            await self._init(self._config)
        except IntegrationError:
            self._audit("init", "error", started)
            raise
        self.log(logging.INFO, "initialised with config %s", self.config)
        self._set_status(
            IntegrationStatus.DISCONNECTED if self.is_flag_enabled() else IntegrationStatus.DISABLED
        )
        self._audit("init", "success", started)

    async def connect(self) -> IntegrationStatus:
        """Connect if the flag is on; with the flag off the service stays DISABLED."""
        started = time.monotonic()
        if not self.is_flag_enabled():
            self._set_status(IntegrationStatus.DISABLED)
            self._audit("connect", "disabled", started)
            return self._status
        if self._status in _ACTIVE:
            return self._status
        self._set_status(IntegrationStatus.CONNECTING)
        try:
            await self._connect()
        except Exception as exc:
            self.last_error = self.redactor.describe_exception(exc)
            self._set_status(IntegrationStatus.ERROR)
            self._audit("connect", "error", started, error=self.last_error)
            raise IntegrationConnectionError(
                f"{self.name}: connect failed: {self.last_error}", integration=self.name
            ) from None
        self._set_status(IntegrationStatus.CONNECTED)
        self._audit("connect", "success", started)
        return self._status

    async def disconnect(self) -> IntegrationStatus:
        started = time.monotonic()
        error: str | None = None
        try:
            await self._disconnect()
        except Exception as exc:
            # A failed goodbye must not keep the service "connected".
            error = self.redactor.describe_exception(exc)
            self.log(logging.WARNING, "disconnect failed: %s", error)
        self._retry_at = None
        self._rate_limit_strikes = 0
        self._set_status(
            IntegrationStatus.DISCONNECTED if self.is_flag_enabled() else IntegrationStatus.DISABLED
        )
        self._audit("disconnect", "error" if error else "success", started, error=error)
        return self._status

    async def health_check(self, time_limit: float | None = None) -> HealthCheckResult:
        """Check the remote side, whatever the flag says (probes run before a flag is on).

        An observation only: the result carries what the check saw, the
        service's lifecycle status is left as it is.
        """
        started = time.monotonic()
        status = IntegrationStatus.CONNECTED
        healthy = False
        try:
            async with asyncio.timeout(time_limit):
                message = await self._health_check() or "ok"
            healthy = True
        except TimeoutError:
            status = IntegrationStatus.ERROR
            message = f"health check timed out after {time_limit:g}s"
        except Exception as exc:
            classified = self._classify(exc)
            message = self.redactor.describe_exception(exc)
            status = (
                IntegrationStatus.RATE_LIMITED
                if classified.kind is ErrorKind.RATE_LIMITED
                else IntegrationStatus.ERROR
            )
        latency_ms = (time.monotonic() - started) * 1000
        if not healthy:
            self.last_error = message
        self._audit(
            "health_check",
            "success" if healthy else "error",
            started,
            error=None if healthy else message,
        )
        return HealthCheckResult(
            integration=self.name,
            healthy=healthy,
            status=status,
            message=self.redactor.redact_text(message),
            latency_ms=latency_ms,
        )

    # ----- operations --------------------------------------------------------------

    async def execute(self, fn: Callable[[], Awaitable[T]], *, operation: str = "execute") -> T:
        """Run one operation: flag gate, rate-limit gate, metric, audit, error mapping."""
        started = time.monotonic()
        if not self.is_flag_enabled():
            if self._status in _ACTIVE:
                # Turned off since connect: release the client now, not at the next registry sync.
                await self.disconnect()
            self._audit(operation, "disabled", started)
            raise IntegrationDisabledError(
                f"{self.name}: flag {self.flag_name} is off", integration=self.name
            )
        if self._status not in _ACTIVE:
            self._audit(operation, "not_connected", started)
            raise IntegrationNotConnectedError(
                f"{self.name}: not connected (status {self._status.value})", integration=self.name
            )
        if (
            self._status is IntegrationStatus.RATE_LIMITED
            and self._retry_at is not None
            and self._clock() < self._retry_at
        ):
            self._count(Outcome.RATE_LIMITED)
            self._audit(operation, Outcome.RATE_LIMITED, started, retry_at=self._retry_iso())
            raise IntegrationRateLimitedError(
                f"{self.name}: rate limited until {self._retry_iso()}",
                integration=self.name,
                retry_at=self._retry_datetime(),
            )
        try:
            result = await fn()
        except Exception as exc:
            raise self._failed(operation, exc, started) from None
        if self._status is IntegrationStatus.RATE_LIMITED:
            self._retry_at = None
            self._rate_limit_strikes = 0
            self._set_status(IntegrationStatus.CONNECTED)
        self._count(Outcome.SUCCESS)
        self._audit(operation, Outcome.SUCCESS, started)
        return result

    def _failed(self, operation: str, exc: Exception, started: float) -> IntegrationError:
        classified = self._classify(exc)
        message = self.redactor.describe_exception(exc)
        self.last_error = message
        if classified.kind is ErrorKind.RATE_LIMITED:
            self._rate_limit_strikes += 1
            delay = classified.retry_after
            if delay is None:
                delay = min(self._max_backoff, self._backoff * 2 ** (self._rate_limit_strikes - 1))
            self._retry_at = self._clock() + max(0.0, delay)
            self._set_status(IntegrationStatus.RATE_LIMITED)
            self._count(Outcome.RATE_LIMITED)
            self._audit(
                operation,
                Outcome.RATE_LIMITED,
                started,
                error=message,
                status_code=classified.status_code,
                retry_at=self._retry_iso(),
            )
            return IntegrationRateLimitedError(
                f"{self.name}: {operation} rate limited until {self._retry_iso()}: {message}",
                integration=self.name,
                retry_at=self._retry_datetime(),
                status_code=classified.status_code,
                reason=classified.reason,
            )
        self._count(Outcome.ERROR)
        self._audit(
            operation, Outcome.ERROR, started, error=message, status_code=classified.status_code
        )
        if isinstance(exc, IntegrationError) and not isinstance(exc, IntegrationOperationError):
            return exc
        quota = classified.kind is ErrorKind.QUOTA
        error_type = IntegrationQuotaError if quota else IntegrationOperationError
        return error_type(
            f"{self.name}: {operation} failed: {message}",
            integration=self.name,
            status_code=classified.status_code,
            reason=classified.reason,
        )

    def _classify(self, exc: BaseException) -> ClassifiedError:
        if isinstance(exc, IntegrationRateLimitedError):
            delay = max(0.0, exc.retry_at.timestamp() - self._clock())
            return ClassifiedError(ErrorKind.RATE_LIMITED, exc.status_code, exc.reason, delay)
        if isinstance(exc, IntegrationQuotaError):
            return ClassifiedError(ErrorKind.QUOTA, exc.status_code, exc.reason)
        return self._classify_error(exc)

    def _retry_datetime(self) -> datetime:
        return datetime.fromtimestamp(self._retry_at or self._clock(), UTC)

    def _retry_iso(self) -> str:
        return self._retry_datetime().isoformat().replace("+00:00", "Z")

    def _count(self, outcome: Outcome) -> None:
        self._metrics.count(self.name, self.flag_name, outcome)

    def _audit(
        self,
        operation: str,
        outcome: str,
        started: float,
        *,
        error: str | None = None,
        **details: str | int | float | bool | None,
    ) -> None:
        write_audit(
            integration=self.name,
            flag=self.flag_name,
            operation=operation,
            outcome=str(outcome),
            duration_ms=(time.monotonic() - started) * 1000,
            actor=self._actor,
            error=self.redactor.redact_text(error) if error else None,
            **details,
        )

    # ----- hooks -------------------------------------------------------------------

    async def _init(self, config: Mapping[str, Any]) -> None:
        """Validate integration-specific options; raise IntegrationConfigError."""

    async def _connect(self) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        """Release clients; the default has nothing to release."""

    async def _health_check(self) -> str | None:
        """Raise if unhealthy; return an optional message."""
        raise NotImplementedError

    def _classify_error(self, exc: BaseException) -> ClassifiedError:
        """Map an operation's exception; the default knows HTTP 429 on common attributes."""
        status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
        if isinstance(status, int) and status == 429:
            return ClassifiedError(ErrorKind.RATE_LIMITED, status_code=status)
        return ClassifiedError(ErrorKind.ERROR, status if isinstance(status, int) else None)
