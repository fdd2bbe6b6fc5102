"""Bounding glibc's malloc arenas before the operator starts any thread.

glibc gives each thread that allocates its own arena (up to 8 per core) and keeps
what is freed there. The operator's threads (Prometheus queries in
`asyncio.to_thread`, the Kubernetes client's pool) each grow one during a burst and
never give it back: with 1,000 Rollouts the operator held 506 MiB where two arenas
hold 182 MiB (docs/benchmarks.md). `MALLOC_ARENA_MAX=2` does the same from outside;
this applies it whoever starts the process, unless the variable says otherwise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt's parameter number for the arena limit (glibc's malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8
DEFAULT_ARENAS = 2


def bound_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Limit glibc to `arenas` malloc arenas; False where that does not apply (not glibc,
    or MALLOC_ARENA_MAX already set, which glibc has then read itself)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # musl and others: no mallopt, nothing to bound
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
