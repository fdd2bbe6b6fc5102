"""An example third-party integration (see docs/integrations.md, "Adding an integration").

`WeatherIntegration` talks to a hypothetical weather HTTP API: `base_url`
and an `api_key` come from `init(config)`; it is gated by the flag
`weather_widget`. Only the hooks are written here: flag gating, metrics,
audit, rate limiting and redaction come from IntegrationService.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from flagops.integrations import (
    IntegrationConfigError,
    IntegrationService,
    IntegrationStatus,
)


class WeatherApiError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code  # 429 is classified as rate limited by the base class


class WeatherIntegration(IntegrationService):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("example_weather", "weather_widget", **kwargs)
        self._base_url = ""
        self._api_key = ""

    async def _init(self, config: Mapping[str, Any]) -> None:
        if not config.get("base_url"):
            raise IntegrationConfigError(
                "example_weather: base_url is required", integration=self.name
            )
        self._base_url = str(config["base_url"]).rstrip("/")
        self._api_key = str(config.get("api_key", ""))

    def _get(self, path: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self._base_url}{path}", headers={"X-Api-Key": self._api_key}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                data: dict[str, Any] = json.loads(reply.read())
                return data
        except urllib.error.HTTPError as exc:
            raise WeatherApiError(exc.code, exc.reason) from None

    async def _connect(self) -> None:
        await asyncio.to_thread(self._get, "/status")

    async def _health_check(self) -> str:
        status = await asyncio.to_thread(self._get, "/status")
        return f"weather api {status.get('state', 'unknown')}"

    async def forecast(self, city: str) -> dict[str, Any]:
        """An operation: counted, audited, flag-gated and rate-limit aware via execute()."""
        return await self.execute(
            lambda: asyncio.to_thread(self._get, f"/forecast?city={city}"), operation="forecast"
        )


__all__ = ["IntegrationStatus", "WeatherApiError", "WeatherIntegration"]
