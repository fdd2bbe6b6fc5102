"""The token endpoint a credentials file names is used for both kinds of file, with no
`token_uri` option (real google-auth against the local Calendar + OAuth server)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from flagops.integrations import IntegrationStatus
from flagops.integrations.calendar import CalendarSyncIntegration
from flagops_devtools.calendar_server import CalendarServer

pytestmark = pytest.mark.integration

ServiceFactory = Callable[..., CalendarSyncIntegration]


def assert_connected_by(
    service: CalendarSyncIntegration, server: CalendarServer, grant: str
) -> None:
    """Connected, after exactly one token request to `server`, of grant type `grant`."""
    assert service.status is IntegrationStatus.CONNECTED
    assert [r.grant_type for r in server.requests if r.route == "token"] == [grant]


def test_service_account_file_token_uri_is_used(
    make_service: ServiceFactory, calendar_server: CalendarServer
) -> None:
    service = make_service(token_uri=None)
    assert_connected_by(service, calendar_server, "urn:ietf:params:oauth:grant-type:jwt-bearer")
    assert asyncio.run(service.health_check()).healthy


def test_authorized_user_file_token_uri_is_used(
    make_service: ServiceFactory, calendar_server: CalendarServer, tmp_path: Path
) -> None:
    # Before the fix google-auth replaced the file's token_uri with Google's endpoint, and
    # connecting failed unless the option repeated it.
    credentials = calendar_server.create_authorized_user_file(
        tmp_path / "authorized_user.json", token_uri=calendar_server.token_uri
    )
    service = make_service(credentials_file=str(credentials), token_uri=None)
    assert_connected_by(service, calendar_server, "refresh_token")
    assert asyncio.run(service.health_check()).healthy


def test_token_uri_option_still_wins_over_the_file(
    make_service: ServiceFactory, calendar_server: CalendarServer, tmp_path: Path
) -> None:
    credentials = calendar_server.create_authorized_user_file(
        tmp_path / "authorized_user.json", token_uri="http://127.0.0.1:9/nowhere"
    )
    service = make_service(credentials_file=str(credentials), token_uri=calendar_server.token_uri)
    assert_connected_by(service, calendar_server, "refresh_token")
