"""Asking Prometheus one instant query, with a deadline and a bounded read.

prometheus_api_client reads a whole answer into memory and trusts its shape;
an answer is input from another system, so here it is read up to
`max_bytes` within one total deadline and checked before anything uses it.
`parse_answer` is pure (bytes in, result or `QueryFailed` out) so each hostile
shape has a unit test. Messages never carry the address's credentials.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# An aggregated instant query answers a few hundred bytes; this is generous.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
_CHUNK = 64 * 1024
_SNIPPET = 80


class QueryFailed(Exception):
    """A query that got no usable answer; the message is safe to show."""


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text + ("…" if len(body) > _SNIPPET else "")


def _looks_like_html(body: bytes, content_type: str) -> bool:
    head = body[:256].lstrip().lower()
    return "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html"))


def parse_answer(status: int, content_type: str, body: bytes) -> list[dict[str, Any]]:
    """The instant vector of an /api/v1/query answer, or QueryFailed saying what is wrong.

    A scalar answer (e.g. `vector(1)` aggregated away, or `1`) counts as a
    one-sample vector; a matrix, a string or anything else is refused by name.
    """
    if _looks_like_html(body, content_type):
        raise QueryFailed(
            f"answered HTTP {status} with an HTML page, not Prometheus's JSON"
            " (is the address a Prometheus query API?)"
        )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise QueryFailed(
            f"answered HTTP {status} with something that is not JSON: {_snippet(body)!r}"
        ) from None
    if not isinstance(payload, dict):
        raise QueryFailed(f"answered HTTP {status} with JSON that is not an object")
    if payload.get("status") != "success" or status != 200:
        kind, error = payload.get("errorType"), payload.get("error")
        detail = f" {kind}: {error}" if kind or error else ""
        raise QueryFailed(f"refused the query: HTTP {status}{detail}"[:300])
    data = payload.get("data")
    if not isinstance(data, dict):
        raise QueryFailed("answered success without a data object")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector":
        if not isinstance(result, list) or not all(isinstance(s, dict) for s in result):
            raise QueryFailed("answered a vector whose result is not a list of samples")
        return result
    if kind == "scalar":
        return [{"metric": {}, "value": result}]
    if kind == "matrix":
        raise QueryFailed(
            "answered a matrix (a range vector), expected an instant vector:"
            " the query must not end in a [range] selector"
        )
    if kind == "string":
        raise QueryFailed("answered a string, expected an instant vector")
    raise QueryFailed(f"answered an unknown resultType {str(kind)[:40]!r}")


def sample_value(sample: dict[str, Any]) -> float:
    """The float of one vector sample; QueryFailed when it has none or it is not a number."""
    try:
        raw = sample["value"][1]
    except (KeyError, IndexError, TypeError):
        raise QueryFailed("answered a sample without a value") from None
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise QueryFailed(f"answered a sample value of type {type(raw).__name__}, not a number")
    try:
        value = float(raw)
    except ValueError:
        raise QueryFailed(f"answered the sample value {str(raw)[:40]!r}, not a number") from None
    if math.isinf(value):
        raise QueryFailed(f"answered the sample value {raw}, not a finite number")
    return value


def read_bounded(chunks: Iterator[bytes], max_bytes: int, deadline: float) -> bytes:
    """Join `chunks` up to `max_bytes`, giving up at `deadline` (time.monotonic)."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise QueryFailed(f"answered more than {max_bytes // 1024} KiB; not read further")
        if time.monotonic() > deadline:
            raise TimeoutError
    return bytes(body)


class PrometheusQueryClient:
    """`custom_query` as prometheus_api_client spells it, with the limits above."""

    def __init__(self, address: str, timeout: float, max_bytes: int = MAX_ANSWER_BYTES) -> None:
        self.url = address.rstrip("/") + "/api/v1/query"
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._session = requests.Session()
        # One quick retry absorbs a dropped keep-alive connection; a read timeout is not
        # retried (a slow Prometheus would only be asked twice as long); the next interval
        # is the real retry.
        retry = Retry(total=1, read=False, backoff_factor=0.1, status_forcelist=[502, 503, 504])
        adapter = HTTPAdapter(max_retries=retry)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def custom_query(
        self, query: str, params: dict[str, Any] | None = None, timeout: Any = None
    ) -> list[dict[str, Any]]:
        limit = float(timeout or self.timeout)
        deadline = time.monotonic() + limit
        try:
            with self._session.get(
                self.url,
                params={"query": query, **(params or {})},
                timeout=limit,
                stream=True,
            ) as response:
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                    raise QueryFailed(
                        f"announced an answer of {int(declared) // 1024} KiB, more than"
                        f" {self.max_bytes // 1024} KiB; not read"
                    )
                try:
                    body = read_bounded(response.iter_content(_CHUNK), self.max_bytes, deadline)
                except requests.ConnectionError:
                    # requests reports a read timeout inside the body as a ConnectionError.
                    if time.monotonic() >= deadline - 0.05:
                        raise TimeoutError from None
                    raise
                content_type = response.headers.get("Content-Type", "")
                return parse_answer(response.status_code, content_type, body)
        except TimeoutError:
            raise requests.Timeout from None
