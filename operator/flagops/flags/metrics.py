"""The SDK's Prometheus metrics, one set of collectors per registry.

Every `FeatureFlags` in a process shares them; the `path` label tells them apart
(the `flags.json` path, or the relay URL for `FeatureFlags.from_relay`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["SdkMetrics", "metrics_for"]


@dataclass(frozen=True)
class SdkMetrics:
    reload_errors: Counter
    reloads: Counter
    revision_info: Gauge
    relay_connected: Gauge
    relay_reconnects: Counter


_lock = threading.Lock()
_by_registry: dict[int, tuple[CollectorRegistry, SdkMetrics]] = {}


def metrics_for(registry: CollectorRegistry) -> SdkMetrics:
    """The collectors registered in `registry`, created on first use.

    Several clients in a process share them instead of failing to register twice.
    """
    with _lock:
        found = _by_registry.get(id(registry))
        if found is not None and found[0] is registry:
            return found[1]
        metrics = SdkMetrics(
            reload_errors=Counter(
                "flagops_flags_reload_errors_total",
                "Flag document loads that failed (missing, unreadable or malformed file, "
                "or a malformed relay event); the last good state stays in use.",
                ["path"],
                registry=registry,
            ),
            reloads=Counter(
                "flagops_flags_reloads_total",
                "Flag documents loaded successfully.",
                ["path"],
                registry=registry,
            ),
            revision_info=Gauge(
                "flagops_flags_revision_info",
                "1 for the revision of the flag document in use.",
                ["path", "revision"],
                registry=registry,
            ),
            relay_connected=Gauge(
                "flagops_flags_relay_connected",
                "1 while the relay's document stream is open, else 0.",
                ["path"],
                registry=registry,
            ),
            relay_reconnects=Counter(
                "flagops_flags_relay_reconnects_total",
                "Attempts to open the relay's document stream after a failure or a drop.",
                ["path"],
                registry=registry,
            ),
        )
        _by_registry[id(registry)] = (registry, metrics)
        return metrics
