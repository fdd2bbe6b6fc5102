"""The tokens file: who may read which namespaces, from which browser origins.

The file is mounted from a Secret the platform team creates (docs/relay.md)::

    tokens:
      - name: meal-plan-web             # shown in logs and metrics, never the token
        sha256: "<hex digest of the token>"   # or token: "<the token itself>"
        namespaces: [meal-plan]
        origins: ["https://meal-plan.example.com"]
        requestsPerSecond: 200          # optional, else the relay's default
        burst: 400                      # optional
        maxStreams: 5000                # optional

Only sha256 digests are kept in memory; a presented token is hashed and the
digests compared in constant time. Nothing here ever puts a token, a digest or
the file's text into a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ANY_ORIGIN = "*"
MIN_TOKEN_CHARS = 16
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ORIGIN = re.compile(r"https?://[^/?#\s]+")
_TICKET_KID = b"flagops-relay-ticket-id\x00"
_TICKET_MAC = b"flagops-relay-event-stream\x00"


class TokensFileError(ValueError):
    """The tokens file cannot be used; the message never holds a token or the file's text."""


def digest_of(token: str | bytes) -> bytes:
    raw = token if isinstance(token, bytes) else token.encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).digest()


_Namespace = Annotated[str, Field(min_length=1, max_length=63)]


class _TokenSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, hide_input_in_errors=True)

    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    sha256: str | None = None
    token: Annotated[str, Field(min_length=MIN_TOKEN_CHARS)] | None = None
    namespaces: Annotated[list[_Namespace], Field(min_length=1)]
    origins: list[str] = Field(default_factory=list)
    requests_per_second: Annotated[float, Field(gt=0)] | None = Field(
        default=None, alias="requestsPerSecond"
    )
    burst: Annotated[int, Field(ge=1)] | None = None
    max_streams: Annotated[int, Field(ge=0)] | None = Field(default=None, alias="maxStreams")

    @model_validator(mode="after")
    def _one_secret(self) -> _TokenSpec:
        if (self.sha256 is None) == (self.token is None):
            raise ValueError("give exactly one of 'sha256' and 'token'")
        if self.sha256 is not None and not _HEX64.fullmatch(self.sha256.lower()):
            raise ValueError("'sha256' must be 64 hexadecimal digits")
        for origin in self.origins:
            if origin != ANY_ORIGIN and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    "each origin must be scheme://host[:port] (no path, no trailing slash) or '*'"
                )
        return self


class _TokensFile(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    tokens: list[_TokenSpec]


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One token's grant. `kid` names it in logs, metrics and event-stream tickets."""

    name: str
    kid: str
    digest: bytes
    namespaces: frozenset[str]
    origins: frozenset[str]
    requests_per_second: float | None
    burst: int | None
    max_streams: int | None

    @property
    def sole_namespace(self) -> str | None:
        if len(self.namespaces) == 1:
            return next(iter(self.namespaces))
        return None

    def allows_origin(self, origin: str) -> bool:
        return origin in self.origins or ANY_ORIGIN in self.origins

    def ticket(self, namespace: str) -> str:
        """A credential for this token's event stream of `namespace`, usable in a URL.

        Browsers' EventSource cannot send headers, so the OFREP bulk reply names its
        stream with this ticket instead of the token: it grants that one stream only,
        is the same on every replica (keyed by the token's digest, which only the
        relay holds) and dies with the token.
        """
        mac = hmac.new(self.digest, _TICKET_MAC + namespace.encode(), hashlib.sha256).digest()
        return f"{self.kid}.{base64.urlsafe_b64encode(mac[:16]).rstrip(b'=').decode()}"


def _kid(digest: bytes) -> str:
    return hashlib.sha256(_TICKET_KID + digest).hexdigest()[:16]


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = ".".join(str(part) for part in err["loc"]) or "(file)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class TokenTable:
    """The tokens in force: lookup by presented token or by event-stream ticket."""

    def __init__(self, entries: Iterable[TokenEntry] = ()) -> None:
        self._by_digest: dict[bytes, TokenEntry] = {}
        self._by_kid: dict[str, TokenEntry] = {}
        origins: set[str] = set()
        for entry in entries:
            if entry.digest in self._by_digest:
                raise TokensFileError(f"token {entry.name!r} appears twice")
            self._by_digest[entry.digest] = entry
            self._by_kid[entry.kid] = entry
            origins |= entry.origins
        # Preflight requests carry no token: an origin any token allows passes them.
        self.any_origin = ANY_ORIGIN in origins
        self.origins = frozenset(origins - {ANY_ORIGIN})

    def __len__(self) -> int:
        return len(self._by_digest)

    def kids(self) -> set[str]:
        return set(self._by_kid)

    def lookup(self, token: str | bytes) -> TokenEntry | None:
        digest = digest_of(token)
        entry = self._by_digest.get(digest)
        if entry is None or not hmac.compare_digest(entry.digest, digest):
            return None
        return entry

    def lookup_ticket(self, ticket: str, namespace: str) -> TokenEntry | None:
        kid, _, _ = ticket.partition(".")
        entry = self._by_kid.get(kid)
        if entry is None or not hmac.compare_digest(entry.ticket(namespace), ticket):
            return None
        return entry

    def preflight_allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    @classmethod
    def parse(cls, text: str | bytes) -> TokenTable:
        """The table from a YAML or JSON tokens file; TokensFileError says what is wrong."""
        try:
            raw: Any = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" at line {mark.line + 1}" if mark is not None else ""
                raise TokensFileError(f"tokens file is neither JSON nor YAML{where}") from None
        if not isinstance(raw, Mapping):
            raise TokensFileError("tokens file must be a mapping with a 'tokens' list")
        try:
            spec = _TokensFile.model_validate(raw)
        except ValidationError as exc:
            raise TokensFileError(f"tokens file: {_describe(exc)}") from None
        entries = []
        for spec_entry in spec.tokens:
            if spec_entry.token is not None:
                digest = digest_of(spec_entry.token)
            else:
                digest = bytes.fromhex(spec_entry.sha256 or "")
            kid = _kid(digest)
            entries.append(
                TokenEntry(
                    name=spec_entry.name or f"token-{kid[:8]}",
                    kid=kid,
                    digest=digest,
                    namespaces=frozenset(spec_entry.namespaces),
                    origins=frozenset(spec_entry.origins),
                    requests_per_second=spec_entry.requests_per_second,
                    burst=spec_entry.burst,
                    max_streams=spec_entry.max_streams,
                )
            )
        return cls(entries)


@dataclass(frozen=True)
class FileStamp:
    """What changes when kubelet swaps a mounted Secret's files (or an editor saves one)."""

    inode: int
    mtime_ns: int
    size: int


def stamp_of(path: Path) -> FileStamp | None:
    try:
        st = os.stat(path)  # follows kubelet's ..data symlink to the current file
    except OSError:
        return None
    return FileStamp(st.st_ino, st.st_mtime_ns, st.st_size)


def load_tokens(path: Path) -> TokenTable:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise TokensFileError(f"cannot read the tokens file: {exc.strerror}") from None
    return TokenTable.parse(text)
