"""Per-token request rate (token buckets) and open event streams.

State is keyed by the token's `kid`, so it survives a reload of the tokens file.
Everything runs on the event loop: no locks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key: `rate` requests per second on average, `burst` at once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str, rate: float, burst: int) -> float:
        """0 when the request may go ahead, else the seconds until it may (Retry-After)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(burst), now)
        else:
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def forget_except(self, keys: set[str]) -> None:
        """Drop the buckets of tokens no longer in the file."""
        for key in [k for k in self._buckets if k not in keys]:
            del self._buckets[key]


def retry_after_header(seconds: float) -> bytes:
    """Retry-After as whole seconds (RFC 9110 delay-seconds), at least 1."""
    return str(max(1, math.ceil(seconds))).encode()


class StreamCounter:
    """Open event streams per key, against a cap."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def try_open(self, key: str, cap: int) -> bool:
        count = self._open.get(key, 0)
        if count >= cap:
            return False
        self._open[key] = count + 1
        return True

    def close(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def open_count(self, key: str) -> int:
        return self._open.get(key, 0)
