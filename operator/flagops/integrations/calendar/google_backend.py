"""CalendarBackend on google-api-python-client and google-auth.

Credentials come from a mounted file: a service-account key (JWT-bearer grant)
or an authorized-user refresh token. Both kinds use the `token_uri` their file names;
the `token_uri` option overrides it, and `api_endpoint` can point elsewhere (tests use a
local server). The bundled discovery document is used
(`static_discovery=True`), so building the client needs no network.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import google_auth_httplib2
import httplib2  # type: ignore[import-untyped]
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from googleapiclient import discovery
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from flagops.integrations.calendar.backend import CalendarApiError
from flagops.integrations.redaction import Redactor

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
# The discovery document's servicePath: appended when api_endpoint is a bare host.
SERVICE_PATH = "calendar/v3/"


class CredentialsError(Exception):
    """The credentials file is missing, unreadable, or of an unknown type."""


def load_credentials(
    path: str | Path,
    *,
    token_uri: str | None,
    redactor: Redactor,
    subject: str | None = None,
) -> Any:
    """google-auth credentials from a mounted key file; its secrets join the redactor."""
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot read credentials file: {type(exc).__name__}") from None
    if not isinstance(info, dict):
        raise CredentialsError("credentials file is not a JSON object")
    redactor.add_from_mapping(info)
    kind = info.get("type")
    try:
        if kind == "service_account":
            creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[CALENDAR_SCOPE]
            )
            if token_uri:
                creds = creds.with_token_uri(token_uri)
            if subject:
                creds = creds.with_subject(subject)
            return creds
        if kind == "authorized_user":
            creds = user_credentials.Credentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
                info, scopes=[CALENDAR_SCOPE]
            )
            # from_authorized_user_info always sets Google's token endpoint, whatever the
            # file says; honour the file's token_uri as service-account keys do (the init
            # option still wins over both).
            endpoint = token_uri or _file_token_uri(info)
            return creds.with_token_uri(endpoint) if endpoint else creds
    except (ValueError, KeyError, GoogleAuthError) as exc:
        raise CredentialsError(
            f"invalid {kind} credentials: {redactor.describe_exception(exc)}"
        ) from None
    raise CredentialsError(
        f"unsupported credentials type {kind!r} (expected service_account or authorized_user)"
    )


def _file_token_uri(info: dict[str, Any]) -> str | None:
    value = info.get("token_uri")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CredentialsError("credentials file: token_uri must be a string")
    return value


def normalise_endpoint(api_endpoint: str) -> str:
    """`http://host:port` -> `http://host:port/calendar/v3/`; a path is kept as given."""
    parts = urlsplit(api_endpoint)
    if parts.path in ("", "/"):
        return f"{parts.scheme}://{parts.netloc}/{SERVICE_PATH}"
    return api_endpoint if api_endpoint.endswith("/") else api_endpoint + "/"


def _request_builder(backoff_scale: float) -> type[HttpRequest]:
    """HttpRequest whose retry sleeps are scaled (the library sleeps rand() * 2**n seconds)."""

    class ScaledRetryRequest(HttpRequest):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._rand: Callable[[], float] = lambda: random.random() * backoff_scale  # noqa: S311

    return ScaledRetryRequest


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as delay-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_reason(content: bytes) -> tuple[str, str]:
    try:
        data = json.loads(content.decode("utf-8"))
        error = data["error"]
        errors = error.get("errors") or [{}]
        return str(errors[0].get("reason", "") or error.get("status", "")), str(
            error.get("message", "")
        )
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return "", ""


def to_api_error(exc: Exception) -> CalendarApiError:
    if isinstance(exc, HttpError):
        reason, message = _error_reason(exc.content)
        retry = retry_after_seconds(exc.resp.get("retry-after"))
        return CalendarApiError(exc.resp.status, reason, message[:200], retry_after=retry)
    if isinstance(exc, RefreshError):
        # The token endpoint's reply names the error ("invalid_grant"); it holds no secret.
        return CalendarApiError(401, "authError", f"token refresh failed: {exc.args[0]!s}"[:300])
    if isinstance(exc, TransportError | httplib2.HttpLib2Error | OSError):
        return CalendarApiError(None, "transportError", f"{type(exc).__name__}: {exc}"[:300])
    raise exc


class GoogleCalendarBackend:
    """One Calendar v3 client; calls are serialised (httplib2 is not thread-safe)."""

    def __init__(
        self,
        credentials: Any,
        *,
        api_endpoint: str | None = None,
        num_retries: int = 3,
        timeout: float = 30.0,
        retry_backoff_scale: float = 1.0,
    ) -> None:
        self._num_retries = num_retries
        self._lock = threading.Lock()
        self._close_requested = False
        self._http = google_auth_httplib2.AuthorizedHttp(
            credentials, http=httplib2.Http(timeout=timeout)
        )
        options = {"api_endpoint": normalise_endpoint(api_endpoint)} if api_endpoint else None
        self._service = discovery.build(
            "calendar",
            "v3",
            http=self._http,
            static_discovery=True,
            cache_discovery=False,
            client_options=options,
            requestBuilder=_request_builder(retry_backoff_scale),
        )

    def _call(self, request: Any) -> Any:
        with self._lock:
            try:
                return request.execute(num_retries=self._num_retries)
            except Exception as exc:
                raise to_api_error(exc) from None
            finally:
                if self._close_requested:
                    self._service.close()

    def calendar_get(self, calendar_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            self._service.calendarList().get(calendarId=calendar_id)
        )
        return result

    def get(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            self._service.events().get(calendarId=calendar_id, eventId=event_id)
        )
        return result

    def insert(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            self._service.events().insert(calendarId=calendar_id, body=body)
        )
        return result

    def patch(self, calendar_id: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            self._service.events().patch(calendarId=calendar_id, eventId=event_id, body=body)
        )
        return result

    def update(self, calendar_id: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            self._service.events().update(calendarId=calendar_id, eventId=event_id, body=body)
        )
        return result

    def delete(self, calendar_id: str, event_id: str) -> None:
        self._call(self._service.events().delete(calendarId=calendar_id, eventId=event_id))

    def list_by_private(
        self, calendar_id: str, key: str, value: str, *, show_deleted: bool
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page_token: str | None = None
        while True:
            page = self._call(
                self._service.events().list(
                    calendarId=calendar_id,
                    privateExtendedProperty=f"{key}={value}",
                    showDeleted=show_deleted,
                    maxResults=250,
                    pageToken=page_token,
                )
            )
            items.extend(page.get("items", []))
            page_token = page.get("nextPageToken")
            if not page_token:
                return items

    def close(self) -> None:
        """Never blocks: a call still in flight (abandoned by a timeout) closes on its way out."""
        self._close_requested = True
        if self._lock.acquire(blocking=False):
            try:
                self._service.close()
            finally:
                self._lock.release()
