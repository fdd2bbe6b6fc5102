"""The one redaction helper: every log line, exception message and repr goes through it.

Two complementary rules:
- by name: a config value whose key looks secret (token, secret, key,
  password, credentials, ...) is shown as `***`;
- by value: every such value (and every secret found inside credential files)
  is remembered, and any text that later contains it is scrubbed, whatever
  path the text took (an exception from a library, a URL, a log argument).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"

_SECRET_NAME = re.compile(
    r"(token|secret|key|password|passwd|passphrase|credential|private|assertion|auth)",
    re.IGNORECASE,
)
# Shapes that are secret wherever they appear, even if nobody registered them.
_SECRET_SHAPES = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|client_secret|assertion)[\"']?\s*[=:]\s*[\"']?)[^\"'&\s,}]+"
    ),
)
# Locators (a token endpoint, a key file's path) are masked by name in config
# dumps but not scrubbed by value: they are not secret, and scrubbing a URL
# from every error message would hide where a failing request went.
_LOCATOR_SUFFIXES = ("_uri", "_url", "_file", "_path", "_endpoint")
# Values shorter than this are not scrubbed by value: "1" or "on" would wreck every message.
_MIN_SECRET_LENGTH = 6


def is_secret_name(name: str) -> bool:
    """True for config keys whose values must never be shown."""
    return bool(_SECRET_NAME.search(name))


class Redactor:
    """Remembers secret values and scrubs them from any text; thread-safe."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, value: object) -> None:
        if not isinstance(value, str) or len(value) < _MIN_SECRET_LENGTH:
            return
        # A secret may appear verbatim or JSON-escaped (a PEM key's newlines as "\n").
        variants = {value, json.dumps(value)[1:-1]}
        variants.update(line for line in value.splitlines() if len(line) >= _MIN_SECRET_LENGTH * 2)
        with self._lock:
            self._secrets.update(v for v in variants if len(v) >= _MIN_SECRET_LENGTH)

    def add_from_mapping(self, mapping: Mapping[str, Any]) -> None:
        """Register every value stored under a secret-looking key, at any depth."""
        for key, value in mapping.items():
            if isinstance(value, Mapping):
                self.add_from_mapping(value)
            elif is_secret_name(str(key)) and not str(key).lower().endswith(_LOCATOR_SUFFIXES):
                if isinstance(value, Mapping | list | tuple):
                    self.add_secret(json.dumps(value, default=str))
                else:
                    self.add_secret(str(value))

    def redact_text(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for shape in _SECRET_SHAPES:
            text = shape.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
        return text

    def redact_value(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return self.redact_mapping(value)
        if isinstance(value, list | tuple):
            return [self.redact_value(v) for v in value]
        if isinstance(value, str):
            return self.redact_text(value)
        return value

    def redact_mapping(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """A copy safe to log: secret-named values masked, other strings scrubbed."""
        return {
            str(key): REDACTED if is_secret_name(str(key)) else self.redact_value(value)
            for key, value in mapping.items()
        }

    def describe_exception(self, exc: BaseException) -> str:
        """`Type: message`, scrubbed: the only way an exception's text leaves a service."""
        text = str(exc) or repr(exc)
        return self.redact_text(f"{type(exc).__name__}: {text}")
