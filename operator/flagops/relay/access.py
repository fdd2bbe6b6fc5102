"""Who is asking, for which namespace, from which browser origin.

Every API request carries a token (`Authorization: Bearer` or `X-API-Key`), or,
for an OFREP event stream only, the ticket the bulk reply handed out. No token
or an unknown one: 401. A namespace outside the token's scope: 403 with the
same words whether or not the namespace exists. An `Origin` the token does not
allow: 403. Messages are fixed text: nothing a client sent is echoed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl

from flagops.relay.http import Headers, HttpError, Request
from flagops.relay.metrics import RelayMetrics
from flagops.relay.settings import RelaySettings
from flagops.relay.tokens import (
    ANY_ORIGIN,
    FileStamp,
    TokenEntry,
    TokensFileError,
    TokenTable,
    load_tokens,
    stamp_of,
)

logger = logging.getLogger(__name__)

DEV_KID = "dev-no-token"
_ALLOW_HEADERS = (
    b"Authorization, X-API-Key, Content-Type, If-None-Match, Last-Event-ID, Cache-Control"
)
_EXPOSE_HEADERS = b"ETag, Retry-After"
_ALLOW_METHODS = b"GET, POST, OPTIONS"
_WWW_AUTHENTICATE = (b"www-authenticate", b'Bearer realm="flagops-relay"')

NO_TOKEN = "a token is required: send Authorization: Bearer <token> or X-API-Key: <token>"  # noqa: S105
BAD_TOKEN = "the token is not valid"  # noqa: S105
NOT_ALLOWED = "this token may not read that namespace"
BAD_ORIGIN = "this token may not be used from this origin"
AMBIGUOUS = (
    "this token may read several namespaces: put /namespaces/<namespace> in front of the "
    "path (for example /namespaces/shop/ofrep/v1/evaluate/flags)"
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller's grant: a token's entry, or the development namespace."""

    kid: str
    name: str
    namespaces: frozenset[str]
    origins: frozenset[str]
    rate: float
    burst: int
    max_streams: int
    entry: TokenEntry | None

    def allows_origin(self, origin: str) -> bool:
        return origin in self.origins or ANY_ORIGIN in self.origins


class Access:
    def __init__(self, settings: RelaySettings, metrics: RelayMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self.table = TokenTable()
        self._stamp: FileStamp | None = None
        self._principals: dict[str, Principal] = {}
        self._dev: Principal | None = None
        if settings.dev_namespace is not None:
            self._dev = Principal(
                kid=DEV_KID,
                name=DEV_KID,
                namespaces=frozenset({settings.dev_namespace}),
                origins=frozenset({ANY_ORIGIN}),
                rate=settings.rate_limit,
                burst=settings.rate_burst,
                max_streams=settings.max_streams,
                entry=None,
            )
            metrics.dev_mode.set(1)

    # -- the tokens file -----------------------------------------------------------------

    def load(self) -> None:
        """First load: a missing or malformed file stops the relay with the reason."""
        path = self._settings.tokens_file
        if path is None:
            return
        self._install(load_tokens(path), stamp_of(path))

    def reload_if_changed(self) -> bool:
        path = self._settings.tokens_file
        if path is None:
            return False
        stamp = stamp_of(path)
        if stamp is None or stamp == self._stamp:
            return False
        try:
            table = load_tokens(path)
        except TokensFileError as exc:
            self._stamp = stamp  # say it once per version of the file, not every second
            self._metrics.token_file_errors.inc()
            logger.error("tokens file not reloaded, the tokens in force stay: %s", exc)
            return False
        self._install(table, stamp)
        logger.info("tokens file reloaded: %d token(s)", len(table))
        return True

    async def follow(self, interval: float) -> None:
        """Re-read the tokens file whenever it changes, checking every `interval` seconds."""
        while True:
            await asyncio.sleep(interval)
            self.reload_if_changed()

    def _install(self, table: TokenTable, stamp: FileStamp | None) -> None:
        self.table = table
        self._stamp = stamp
        self._principals = {}
        self._metrics.tokens.set(len(table))

    def principal_of(self, entry: TokenEntry) -> Principal:
        found = self._principals.get(entry.kid)
        if found is None:
            s = self._settings
            found = self._principals[entry.kid] = Principal(
                kid=entry.kid,
                name=entry.name,
                namespaces=entry.namespaces,
                origins=entry.origins,
                rate=entry.requests_per_second or s.rate_limit,
                burst=entry.burst or max(s.rate_burst, 1),
                max_streams=s.max_streams if entry.max_streams is None else entry.max_streams,
                entry=entry,
            )
        return found

    def token_kids(self) -> set[str]:
        return self.table.kids() | {DEV_KID}

    # -- per request ---------------------------------------------------------------------

    def authenticate(
        self, request: Request, path_namespace: str | None, ticket_ok: bool = False
    ) -> Principal:
        token = _presented_token(request)
        if token is not None:
            entry = self.table.lookup(token)
            if entry is None:
                raise HttpError(401, BAD_TOKEN, "GENERAL", [_WWW_AUTHENTICATE])
            return self.principal_of(entry)
        if ticket_ok and path_namespace is not None:
            ticket = query_value(request.query, "ticket")
            if ticket is not None:
                entry = self.table.lookup_ticket(ticket, path_namespace)
                if entry is None:
                    raise HttpError(401, BAD_TOKEN, "GENERAL", [_WWW_AUTHENTICATE])
                return self.principal_of(entry)
        if self._dev is not None:
            return self._dev
        raise HttpError(401, NO_TOKEN, "GENERAL", [_WWW_AUTHENTICATE])

    def namespace_for(self, principal: Principal, path_namespace: str | None) -> str:
        if path_namespace is None:
            if len(principal.namespaces) == 1:
                return next(iter(principal.namespaces))
            raise HttpError(400, AMBIGUOUS, "GENERAL")
        if path_namespace not in principal.namespaces:
            raise HttpError(403, NOT_ALLOWED, "GENERAL")
        return path_namespace

    def cors(self, request: Request, principal: Principal | None) -> Headers:
        """CORS headers for a request from a browser; 403 for an origin the token refuses."""
        origin = request.headers.get(b"origin")
        if origin is None:
            return []
        text = origin.decode("latin-1")
        if principal is None:
            # Before the token is known (401): let the page read why, if any token allows it.
            if not self.preflight_allows(text):
                return []
        elif not principal.allows_origin(text):
            raise HttpError(403, BAD_ORIGIN, "GENERAL")
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-expose-headers", _EXPOSE_HEADERS),
            (b"vary", b"Origin"),
        ]

    def preflight_allows(self, origin: str) -> bool:
        if self._dev is not None:
            return True
        return self.table.preflight_allows(origin)

    def preflight(self, request: Request) -> tuple[int, Headers]:
        """OPTIONS carries no token: an origin some token allows may ask."""
        origin = request.headers.get(b"origin")
        if origin is None or not self.preflight_allows(origin.decode("latin-1")):
            return 403, [(b"vary", b"Origin")]
        return 204, [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", _ALLOW_METHODS),
            (b"access-control-allow-headers", _ALLOW_HEADERS),
            (b"access-control-max-age", b"600"),
            (b"vary", b"Origin"),
        ]


def _presented_token(request: Request) -> bytes | None:
    authorization = request.headers.get(b"authorization")
    if authorization is not None:
        scheme, _, value = authorization.partition(b" ")
        if scheme.lower() == b"bearer" and value.strip():
            return value.strip()
    api_key = request.headers.get(b"x-api-key")
    if api_key is not None and api_key.strip():
        return api_key.strip()
    return None


def query_value(query: bytes, name: str) -> str | None:
    if not query:
        return None
    for key, value in parse_qsl(query.decode("latin-1")):
        if key == name:
            return value
    return None
