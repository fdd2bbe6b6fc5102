"""Capped exponential back-off with jitter, for reconnecting to the relay."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Wait n (from 0) after a `reset()` is uniform in [d/2, d], d = min(cap, initial * factor**n).

    Half the span is jitter, so clients dropped together by one relay restart
    come back spread out; the other half keeps a floor, so no retry is immediate.
    `rng` returns a float in [0, 1) (default `random.random`).
    """

    def __init__(
        self,
        initial: float = 0.5,
        cap: float = 30.0,
        factor: float = 2.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if initial < 0 or cap < initial or factor < 1:
            raise ValueError("back-off needs 0 <= initial <= cap and factor >= 1")
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self._rng = rng
        self._step = 0

    def next(self) -> float:
        """Seconds to wait before the next attempt."""
        ceiling = min(self.cap, self.initial * self.factor**self._step)
        if ceiling < self.cap:  # past the cap the exponent stops growing (no float overflow)
            self._step += 1
        return ceiling / 2 + ceiling / 2 * self._rng()

    def reset(self) -> None:
        """A connection worked: the next failure starts from `initial` again."""
        self._step = 0

    def set_initial(self, seconds: float) -> None:
        """The server's SSE `retry:` value, kept within [0, cap]."""
        self.initial = min(max(seconds, 0.0), self.cap)
