"""A local Google Calendar v3 + OAuth 2.0 token server (stdlib http.server).

It implements what flagops' calendar sync uses, on the paths the real client
sends to when `api_endpoint` is `<url>/calendar/v3/` and `token_uri` is
`<url>/token`:

- POST /token: grant types `urn:ietf:params:oauth:grant-type:jwt-bearer`
  (the RS256 assertion is verified against the registered service account's
  public key, audience and expiry are checked) and `refresh_token`
  (client id, secret and refresh token are checked);
- GET  /calendar/v3/users/me/calendarList/{calendarId}        calendarList.get
- POST /calendar/v3/calendars/{calendarId}/events             events.insert
- GET  /calendar/v3/calendars/{calendarId}/events             events.list
  (privateExtendedProperty filters, showDeleted, maxResults/pageToken)
- GET/PATCH/PUT/DELETE /calendar/v3/calendars/{calendarId}/events/{eventId}
  events.get / patch / update / delete (delete is a soft delete: the event
  becomes `cancelled`, as in Google Calendar; deleting it again is 410).

Every API call needs a Bearer token the token endpoint issued. Scripted
faults (`CalendarServer.script`) replace the next replies of a route with
Google-shaped errors: 401, 403 rateLimitExceeded / userRateLimitExceeded /
quotaExceeded, 429 with Retry-After, 5xx, 409, 410; a fault can also be
applied *after* doing the work (a write that landed but whose reply was
lost). Every request is logged for assertions.

Standalone: `python -m flagops_devtools.calendar_server.server [--port N]
[--service-account-out FILE] [--authorized-user-out FILE]` prints one JSON
line with the URLs and serves until interrupted; `/_admin/...` endpoints
(requests, events, faults, expire-tokens) drive it from another process.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import re
import secrets
import signal
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from flagops_devtools.calendar_server.credentials import (
    JwtError,
    ServiceAccountKey,
    generate_service_account,
    verify_jwt,
)

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
# An address, not a secret: what a real key file names and the tests replace.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
API_PREFIX = "/calendar/v3/"
# Google's form; httplib2 parses this header and rejects a bare "Bearer".
WWW_AUTHENTICATE = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
PRIMARY_OWNER = "owner@flagops.test"
_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
WRITE_ROUTES = frozenset({"events.insert", "events.patch", "events.update", "events.delete"})


@dataclass(frozen=True)
class Fault:
    """One scripted reply. `apply=True`: do the work first, then reply with the fault."""

    status: int
    reason: str = ""
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    apply: bool = False
    body: dict[str, Any] | None = None

    @classmethod
    def rate_limit(cls, reason: str = "rateLimitExceeded") -> Fault:
        return cls(403, reason, "Rate Limit Exceeded")

    @classmethod
    def too_many_requests(cls, retry_after: float | None = None) -> Fault:
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return cls(429, "rateLimitExceeded", "Rate Limit Exceeded", headers)

    @classmethod
    def quota_exceeded(cls) -> Fault:
        return cls(403, "quotaExceeded", "Calendar usage limits exceeded.")

    @classmethod
    def unauthorized(cls) -> Fault:
        return cls(
            401,
            "authError",
            "Invalid Credentials",
            {"WWW-Authenticate": WWW_AUTHENTICATE},
        )

    @classmethod
    def server_error(cls, status: int = 500, *, apply: bool = False) -> Fault:
        return cls(status, "backendError", "Backend Error", apply=apply)

    @classmethod
    def conflict(cls) -> Fault:
        return cls(409, "duplicate", "The requested identifier already exists.")

    @classmethod
    def gone(cls) -> Fault:
        return cls(410, "deleted", "Resource has been deleted")

    @classmethod
    def token_error(cls, status: int = 400, error: str = "invalid_grant") -> Fault:
        return cls(status, body={"error": error, "error_description": "scripted token failure"})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    route: str
    status: int
    query: dict[str, list[str]] = field(default_factory=dict)
    grant_type: str | None = None
    scripted: bool = False


@dataclass
class _Client:
    client_secret: str
    refresh_token: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


class _State:
    """Everything the server knows; one lock guards it all."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calendars: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.tokens: dict[str, float] = {}
        self.service_accounts: dict[str, bytes] = {}
        self.clients: dict[str, _Client] = {}
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.requests: list[RequestRecord] = []
        self.token_lifetime = 3600


class _Reply(Exception):
    def __init__(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class CalendarServer:
    """Start/stop, scripting and inspection of the local Calendar + token server."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._state = _State()
        self.add_calendar("primary", summary="Meals", owner=PRIMARY_OWNER)
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self._state))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ----- lifecycle ---------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_endpoint(self) -> str:
        return self.url + API_PREFIX

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    def start(self) -> CalendarServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="calendar-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> CalendarServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- set-up ------------------------------------------------------------------

    def add_calendar(
        self,
        calendar_id: str,
        *,
        summary: str = "",
        owner: str | None = None,
        time_zone: str = "UTC",
    ) -> None:
        with self._state.lock:
            self._state.calendars[calendar_id] = {
                "kind": "calendar#calendarListEntry",
                "id": owner or calendar_id,
                "summary": summary or calendar_id,
                "timeZone": time_zone,
                "accessRole": "owner",
            }

    def register_service_account(self, key: ServiceAccountKey) -> None:
        with self._state.lock:
            self._state.service_accounts[key.client_email] = key.public_key_pem

    def register_oauth_client(self, client_id: str, client_secret: str, refresh_token: str) -> None:
        with self._state.lock:
            self._state.clients[client_id] = _Client(client_secret, refresh_token)

    def create_service_account_file(self, path: str | Path) -> Path:
        """Write a service-account key file whose token_uri is this server; register it."""
        key = generate_service_account(self.token_uri)
        self.register_service_account(key)
        target = Path(path)
        target.write_text(json.dumps(key.info))
        target.chmod(0o600)
        return target

    def create_authorized_user_file(
        self, path: str | Path, token_uri: str = GOOGLE_TOKEN_URI
    ) -> Path:
        """Write an authorized-user file (token_uri is Google's by default, as real ones are);
        register it."""
        client_id = f"{secrets.randbelow(10**12)}.apps.googleusercontent.com"
        client_secret = "GOCSPX-" + secrets.token_urlsafe(18)
        refresh_token = "1//" + secrets.token_urlsafe(40)
        self.register_oauth_client(client_id, client_secret, refresh_token)
        target = Path(path)
        target.write_text(
            json.dumps(
                {
                    "type": "authorized_user",
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "refresh_token": refresh_token,
                    "token_uri": token_uri,
                }
            )
        )
        target.chmod(0o600)
        return target

    # ----- scripting ---------------------------------------------------------------

    def script(self, route: str, *faults: Fault) -> None:
        """Queue replies for a route: "token", "calendarList.get", "events.insert", ..."""
        with self._state.lock:
            self._state.faults[route].extend(faults)

    def pending_faults(self, route: str | None = None) -> int:
        with self._state.lock:
            if route is not None:
                return len(self._state.faults[route])
            return sum(len(q) for q in self._state.faults.values())

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()

    def issued_tokens(self) -> list[str]:
        """Access tokens currently valid (for secret-leak assertions)."""
        with self._state.lock:
            return list(self._state.tokens)

    def expire_tokens(self) -> None:
        """Every issued access token stops working (as if it had expired)."""
        with self._state.lock:
            self._state.tokens.clear()

    # ----- remote edits (what a user does in the Calendar UI) ----------------------

    def edit_event(self, event_id: str, calendar_id: str = "primary", **fields: Any) -> None:
        with self._state.lock:
            event = self._state.events[calendar_id][event_id]
            _merge(event, copy.deepcopy(fields))
            event["updated"] = _now()
            event["sequence"] = event.get("sequence", 0) + 1

    def delete_event(self, event_id: str, calendar_id: str = "primary") -> None:
        """Delete as the UI does: the event stays, `cancelled`."""
        self.edit_event(event_id, calendar_id, status="cancelled")

    def purge_event(self, event_id: str, calendar_id: str = "primary") -> None:
        """Forget the event entirely: get answers 404 afterwards."""
        with self._state.lock:
            self._state.events[calendar_id].pop(event_id, None)

    # ----- inspection --------------------------------------------------------------

    def events(
        self, calendar_id: str = "primary", *, include_cancelled: bool = False
    ) -> list[dict[str, Any]]:
        with self._state.lock:
            return [
                copy.deepcopy(e)
                for e in self._state.events[calendar_id].values()
                if include_cancelled or e.get("status") != "cancelled"
            ]

    def event(self, event_id: str, calendar_id: str = "primary") -> dict[str, Any] | None:
        with self._state.lock:
            found = self._state.events[calendar_id].get(event_id)
            return copy.deepcopy(found)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._state.lock:
            return list(self._state.requests)

    def count(self, route: str | None = None, *, status: int | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (route is None or r.route == route) and (status is None or r.status == status)
        )

    def writes(self) -> int:
        """Successful insert/patch/update/delete calls."""
        return sum(1 for r in self.requests if r.route in WRITE_ROUTES and 200 <= r.status < 300)

    def reset_log(self) -> None:
        with self._state.lock:
            self._state.requests.clear()


def _make_handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "flagops-calendar-test/1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the request log is kept in `state.requests`."""

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            route, params = _route(method, parts.path)
            grant: str | None = None
            scripted = False
            try:
                if route == "token":
                    form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                    grant = form.get("grant_type")
                    scripted = self._fault(route, lambda: None)
                    _token(state, form, self._token_uri())
                elif route.startswith("admin."):
                    _admin(state, route, query, raw)
                elif route == "unknown":
                    raise _Reply(404, _error(404, "notFound", "Not Found"))
                else:
                    body = json.loads(raw) if raw else {}

                    def work() -> Any:
                        self._authorise()
                        return _api(state, route, params, query, body)

                    scripted = self._fault(route, work)
                    work()
            except Exception as exc:
                reply = (
                    exc
                    if isinstance(exc, _Reply)
                    else _Reply(
                        500, _error(500, "backendError", f"test server: {type(exc).__name__}")
                    )
                )
                self._send(reply.status, reply.body, reply.headers)
                with state.lock:
                    state.requests.append(
                        RequestRecord(
                            method, parts.path, route, reply.status, query, grant, scripted
                        )
                    )

        def _fault(self, route: str, work: Any) -> bool:
            with state.lock:
                queue = state.faults.get(route)
                fault = queue.popleft() if queue else None
            if fault is None:
                return False
            if fault.apply:
                with contextlib.suppress(_Reply):
                    work()
            body = (
                fault.body
                if fault.body is not None
                else _error(fault.status, fault.reason, fault.message)
            )
            raise _Reply(fault.status, body, fault.headers)

        def _token_uri(self) -> str:
            address: Any = self.server.server_address
            host, port = address[:2]
            return f"http://{host!s}:{port}/token"

        def _authorise(self) -> None:
            header = self.headers.get("Authorization", "")
            token = header[7:] if header.startswith("Bearer ") else ""
            with state.lock:
                expiry = state.tokens.get(token)
            if expiry is None or expiry < time.time():
                raise _Reply(
                    401,
                    _error(401, "authError", "Invalid Credentials"),
                    {"WWW-Authenticate": WWW_AUTHENTICATE},
                )

        def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if body is not None:
                self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _route(method: str, path: str) -> tuple[str, list[str]]:
    if path == "/token" and method == "POST":
        return "token", []
    if path.startswith("/_admin/"):
        return f"admin.{method.lower()}.{path[len('/_admin/') :]}", []
    if not path.startswith(API_PREFIX):
        return "unknown", []
    segments = [unquote(s) for s in path[len(API_PREFIX) :].split("/")]
    match segments, method:
        case ["users", "me", "calendarList", calendar_id], "GET":
            return "calendarList.get", [calendar_id]
        case ["calendars", calendar_id, "events"], "POST":
            return "events.insert", [calendar_id]
        case ["calendars", calendar_id, "events"], "GET":
            return "events.list", [calendar_id]
        case ["calendars", calendar_id, "events", event_id], _:
            name = {"GET": "get", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(method)
            if name:
                return f"events.{name}", [calendar_id, event_id]
    return "unknown", []


def _token(state: _State, form: dict[str, str], token_uri: str) -> None:
    grant = form.get("grant_type")
    if grant == JWT_BEARER:
        try:
            with state.lock:
                keys = dict(state.service_accounts)
            claims = verify_jwt(form.get("assertion", ""), keys)
        except JwtError as exc:
            raise _Reply(400, {"error": "invalid_grant", "error_description": str(exc)}) from None
        now = time.time()
        # google-auth always addresses the assertion to Google's endpoint, whatever token_uri is.
        if claims.get("aud") not in (token_uri, GOOGLE_TOKEN_URI):
            raise _Reply(400, {"error": "invalid_grant", "error_description": "Invalid audience."})
        if float(claims.get("exp", 0)) < now - 30 or float(claims.get("iat", now)) > now + 300:
            raise _Reply(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT: token expired."}
            )
        if CALENDAR_SCOPE not in str(claims.get("scope", "")).split():
            raise _Reply(400, {"error": "invalid_scope", "error_description": "scope missing"})
    elif grant == "refresh_token":
        with state.lock:
            client = state.clients.get(form.get("client_id", ""))
        if client is None or not secrets.compare_digest(
            client.client_secret, form.get("client_secret", "")
        ):
            raise _Reply(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        if not secrets.compare_digest(client.refresh_token, form.get("refresh_token", "")):
            raise _Reply(400, {"error": "invalid_grant", "error_description": "Bad Request"})
    else:
        raise _Reply(400, {"error": "unsupported_grant_type"})
    token = "ya29.test-" + secrets.token_urlsafe(32)
    with state.lock:
        state.tokens[token] = time.time() + state.token_lifetime
    raise _Reply(
        200, {"access_token": token, "expires_in": state.token_lifetime, "token_type": "Bearer"}
    )


def _api(
    state: _State, route: str, params: list[str], query: dict[str, list[str]], body: dict[str, Any]
) -> None:
    with state.lock:
        calendar_id = params[0]
        if calendar_id not in state.calendars:
            raise _Reply(404, _error(404, "notFound", "Not Found"))
        if route == "calendarList.get":
            raise _Reply(200, copy.deepcopy(state.calendars[calendar_id]))
        events = state.events[calendar_id]
        if route == "events.list":
            raise _Reply(200, _list(events, query))
        if route == "events.insert":
            event_id = str(body.get("id") or secrets.token_hex(16))
            if not _EVENT_ID.match(event_id):
                raise _Reply(400, _error(400, "invalid", "Invalid resource id value."))
            if event_id in events:
                raise _Reply(
                    409, _error(409, "duplicate", "The requested identifier already exists.")
                )
            _require_times(body)
            event = _new_event(calendar_id, event_id, body)
            events[event_id] = event
            raise _Reply(200, copy.deepcopy(event))
        event_id = params[1]
        existing = events.get(event_id)
        if existing is None:
            raise _Reply(404, _error(404, "notFound", "Not Found"))
        if route == "events.get":
            raise _Reply(200, copy.deepcopy(existing))
        if route == "events.delete":
            if existing.get("status") == "cancelled":
                raise _Reply(410, _error(410, "deleted", "Resource has been deleted"))
            existing["status"] = "cancelled"
            _touch(existing)
            raise _Reply(204)
        if route == "events.patch":
            _merge(existing, copy.deepcopy({k: v for k, v in body.items() if k != "id"}))
            _touch(existing)
            raise _Reply(200, copy.deepcopy(existing))
        if route == "events.update":
            _require_times(body)
            replaced = _new_event(calendar_id, event_id, body)
            replaced["created"] = existing["created"]
            replaced["sequence"] = existing.get("sequence", 0) + 1
            events[event_id] = replaced
            raise _Reply(200, copy.deepcopy(replaced))
    raise _Reply(404, _error(404, "notFound", "Not Found"))


def _require_times(body: dict[str, Any]) -> None:
    for key in ("start", "end"):
        if not isinstance(body.get(key), dict):
            raise _Reply(400, _error(400, "required", f"Missing {key} time."))


def _new_event(calendar_id: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(body)
    event.update(
        kind="calendar#event",
        id=event_id,
        status=body.get("status") or "confirmed",
        htmlLink=f"https://calendar.test/event?eid={event_id}",
        created=_now(),
        updated=_now(),
        iCalUID=f"{event_id}@flagops.test",
        sequence=0,
        etag=f'"{secrets.randbelow(10**15)}"',
    )
    return event


def _touch(event: dict[str, Any]) -> None:
    event["updated"] = _now()
    event["sequence"] = event.get("sequence", 0) + 1
    event["etag"] = f'"{secrets.randbelow(10**15)}"'


def _list(events: dict[str, dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    show_deleted = query.get("showDeleted", ["false"])[0] == "true"
    filters = [f.split("=", 1) for f in query.get("privateExtendedProperty", []) if "=" in f]
    matching = [
        copy.deepcopy(e)
        for e in events.values()
        if (show_deleted or e.get("status") != "cancelled")
        and all(
            ((e.get("extendedProperties") or {}).get("private") or {}).get(k) == v
            for k, v in filters
        )
    ]
    size = int(query.get("maxResults", ["250"])[0])
    offset = int(query.get("pageToken", ["0"])[0])
    page: dict[str, Any] = {"kind": "calendar#events", "items": matching[offset : offset + size]}
    if offset + size < len(matching):
        page["nextPageToken"] = str(offset + size)
    return page


def _admin(state: _State, route: str, query: dict[str, list[str]], raw: bytes) -> None:
    """Control endpoints for a server running in another process (the demo)."""
    with state.lock:
        if route == "admin.get.requests":
            raise _Reply(200, [asdict(r) for r in state.requests])
        if route == "admin.get.events":
            calendar_id = query.get("calendarId", ["primary"])[0]
            raise _Reply(200, list(state.events[calendar_id].values()))
        if route == "admin.post.faults":
            spec = json.loads(raw or b"{}")
            for item in spec.get("faults", []):
                state.faults[str(spec["route"])].append(Fault(**item))
            raise _Reply(204)
        if route == "admin.post.expire-tokens":
            state.tokens.clear()
            raise _Reply(204)
    raise _Reply(404, {"error": "unknown admin route"})


@contextlib.contextmanager
def running(host: str = "127.0.0.1", port: int = 0) -> Iterator[CalendarServer]:
    with CalendarServer(host, port) as server:
        yield server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--service-account-out",
        type=Path,
        help="write a service-account key file registered with this server",
    )
    parser.add_argument(
        "--authorized-user-out",
        type=Path,
        help="write an authorized-user file registered with this server",
    )
    args = parser.parse_args(argv)
    server = CalendarServer(args.host, args.port)
    info: dict[str, Any] = {
        "url": server.url,
        "api_endpoint": server.api_endpoint,
        "token_uri": server.token_uri,
    }
    if args.service_account_out:
        info["service_account_file"] = str(
            server.create_service_account_file(args.service_account_out)
        )
    if args.authorized_user_out:
        info["authorized_user_file"] = str(
            server.create_authorized_user_file(args.authorized_user_out)
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    print(json.dumps(info), flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
