"""No secret reaches a log record, an exception, a repr, an audit record or a metric label.

Secrets are planted in the service config and in both kinds of credentials
file; the access tokens the server issues count as secrets too. Operations
run through success and every failure path while every logger (flagops,
googleapiclient, google.auth, httplib2, ...) is captured at DEBUG.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from flagops.cli.probe import run_probe
from flagops.integrations import IntegrationError, IntegrationMetrics
from flagops.integrations.calendar import CalendarSyncIntegration
from flagops_devtools.calendar_server import CalendarServer, Fault

pytestmark = pytest.mark.integration

PLANTED_CONFIG: dict[str, Any] = {
    "api_key": "PLANTED-api-key-7f3a9c",
    "client_secret": "PLANTED-client-secret-51b2",
    "password": "PLANTED-password-c0ffee",
    "auth_token": "PLANTED-auth-token-9d8e7f",
    "credentials": {"nested_token": "PLANTED-nested-token-4411"},
}
PLAN = {
    "id": "sec-plan",
    "days": [
        {
            "date": "2024-12-18",
            "meals": [
                {"id": "a", "type": "breakfast", "name": "Eggs"},
                {"id": "b", "type": "lunch", "name": "Soup"},
            ],
        }
    ],
}


def secrets_of(*files: Path) -> list[str]:
    found = [v if isinstance(v, str) else v["nested_token"] for v in PLANTED_CONFIG.values()]
    for path in files:
        info = json.loads(path.read_text())
        for key in ("private_key_id", "client_secret", "refresh_token"):
            if key in info:
                found.append(info[key])
        if "private_key" in info:
            found.extend(
                line
                for line in info["private_key"].splitlines()
                if len(line) > 20 and "-----" not in line
            )
    return found


def describe(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def test_no_secret_anywhere(
    make_service: Callable[..., CalendarSyncIntegration],
    calendar_server: CalendarServer,
    service_account_file: Path,
    authorized_user_file: Path,
    metrics: IntegrationMetrics,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    issued: set[str] = set()
    errors: list[Exception] = []

    def attempt(coro_factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        try:
            result = asyncio.run(coro_factory())
            seen.append(repr(result))
        except Exception as exc:
            errors.append(exc)
            seen.append(describe(exc))
        issued.update(calendar_server.issued_tokens())

    sa = make_service(**PLANTED_CONFIG)
    user = make_service(credentials_file=str(authorized_user_file), **PLANTED_CONFIG)
    user_info = json.loads(authorized_user_file.read_text())

    attempt(lambda: sa.sync_meal_plan(PLAN))
    calendar_server.expire_tokens()
    attempt(lambda: sa.sync_meal_plan({**PLAN, "id": "sec-plan-2"}))  # 401 -> refresh
    calendar_server.script("events.get", *[Fault.too_many_requests(60)] * 4)
    attempt(lambda: sa.sync_meal_plan({**PLAN, "id": "sec-plan-3"}))  # rate limited
    attempt(lambda: sa.unsync_meal("a"))  # refused while rate limited
    attempt(lambda: user.sync_meal_plan(PLAN))
    calendar_server.script("events.get", Fault.quota_exceeded())
    attempt(lambda: user.sync_meal_plan(PLAN))
    calendar_server.script("calendarList.get", *[Fault.server_error()] * 4)
    attempt(lambda: user.health_check())
    attempt(lambda: user.get_sync_status(["a", "b"]))

    # A token endpoint that (wrongly) echoes the refresh token in its error.
    calendar_server.expire_tokens()
    calendar_server.script(
        "token",
        Fault(
            400,
            body={
                "error": "invalid_grant",
                "error_description": f"refresh token {user_info['refresh_token']} revoked",
            },
        ),
    )
    echo = make_service(connect=False, credentials_file=str(authorized_user_file), **PLANTED_CONFIG)
    attempt(lambda: echo.connect())
    attempt(lambda: echo.health_check())

    # A corrupt key file: the library's parse error must not carry the key.
    broken_file = tmp_path / "broken.json"
    broken = json.loads(service_account_file.read_text())
    broken["private_key"] = broken["private_key"].replace("MII", "XXMII", 1)
    broken_file.write_text(json.dumps(broken))
    corrupt = make_service(connect=False, credentials_file=str(broken_file), **PLANTED_CONFIG)
    attempt(lambda: corrupt.connect())

    # The probe, in-process, on a failing token endpoint.
    calendar_server.script("token", Fault.token_error(401, "invalid_client"))
    probe = asyncio.run(
        run_probe(
            "calendar_sync",
            10,
            {
                "FLAGOPS_PROBE_CREDENTIALS_FILE": str(service_account_file),
                "FLAGOPS_CALENDAR_API_ENDPOINT": calendar_server.url,
                "FLAGOPS_TOKEN_URI": calendar_server.token_uri,
                "FLAGOPS_PROBE_CONFIG": json.dumps(PLANTED_CONFIG),
            },
        )
    )
    seen.append(json.dumps(probe))

    for service in (sa, user, echo, corrupt):
        seen.extend([repr(service), str(service.config), str(service.last_error)])
        assert isinstance(service, CalendarSyncIntegration)
    formatter = logging.Formatter()
    for record in caplog.records:
        seen.append(record.getMessage())
        seen.append(repr(record.args))
        if record.exc_info:
            seen.append(formatter.formatException(record.exc_info))
        if hasattr(record, "audit"):
            seen.append(json.dumps(record.audit))
    labels = [
        value
        for family in metrics.operations.collect()
        for sample in family.samples
        for value in sample.labels.values()
    ]
    seen.extend(labels)

    text = "\n".join(seen)
    planted = secrets_of(service_account_file, authorized_user_file) + sorted(issued)
    assert len(planted) > 10 and issued
    leaked = [secret for secret in planted if secret in text]
    assert leaked == []
    # Only flagops' own (redacted) exceptions escape; the scan saw the failures it meant to.
    assert errors and all(isinstance(e, IntegrationError) for e in errors), errors
    assert "revoked" in text and "***" in text  # the echoed token was scrubbed, not dropped
    assert "rate limited" in text and "quotaExceeded" in text and "invalid_client" in text
    assert any(r.name.startswith("googleapiclient") for r in caplog.records)
    assert set(labels) <= {"calendar_sync", "success", "error", "rate_limited"}
