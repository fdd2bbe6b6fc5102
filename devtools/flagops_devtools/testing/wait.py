"""Wait for a condition with a deadline: the only synchronisation tests use."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | bool | None],
    timeout: float = 30,
    interval: float = 0.05,
    message: str = "condition not met",
) -> T:
    """Return the predicate's first truthy value; raise TimeoutError at the deadline.

    An exception from the predicate counts as "not yet": systems under test are
    often briefly unreachable while they start, so it is remembered and shown in
    the TimeoutError rather than ending the wait early.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except Exception as exc:
            last_error = exc
        else:
            if value:
                return value  # type: ignore[return-value]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = (
                f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            )
            raise TimeoutError(f"{message} within {timeout:g}s{detail}") from last_error
        time.sleep(min(interval, remaining))
