"""Prometheus queries run on threads of their own, never behind Kubernetes calls.

The Kubernetes client's calls (status writes, Events, ConfigMaps) run on the default
executor. With 10,000 Rollouts a burst of status writes to a busy apiserver filled its
threads for seconds, and the one grouped query every Rollout of the tick was waiting for
sat in the queue behind them: 13 s on average, so most analyses of that tick were late.
A query takes milliseconds of Prometheus; it gets a small pool that writes cannot fill.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

# Enough for the grouped queries of a few Prometheus servers and intervals at once, and
# for Rollouts on custom templates (two blocking queries per analysis).
QUERY_THREADS = 8

P = ParamSpec("P")
T = TypeVar("T")


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=QUERY_THREADS, thread_name_prefix="flagops-query")


async def in_query_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` on a Prometheus query thread."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(fn, *args, **kwargs))
