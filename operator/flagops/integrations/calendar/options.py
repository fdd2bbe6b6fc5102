"""`CalendarSyncIntegration.init(config)` options."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CalendarOptions(BaseModel):
    # Common service options (flags_path, actor, ...) share the dict: ignore what is not ours.
    model_config = ConfigDict(extra="ignore", frozen=True)

    mock_mode: bool = False
    calendar_id: str = Field(default="primary", min_length=1)
    credentials_file: str | None = None
    # None: Google's API (the discovery document's rootUrl) and the credentials file's
    # token_uri (service-account keys and authorized-user files alike).
    api_endpoint: str | None = None
    token_uri: str | None = None
    time_zone: str = "UTC"
    delegated_user: str | None = None
    num_retries: int = Field(default=3, ge=0, le=10)
    request_timeout: float = Field(default=30.0, gt=0)
    retry_backoff_scale: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _credentials_unless_mock(self) -> Self:
        if not self.mock_mode and not self.credentials_file:
            raise ValueError("credentials_file is required unless mock_mode is true")
        return self
