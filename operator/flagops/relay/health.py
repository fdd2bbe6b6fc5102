"""`/healthz` and `/readyz`: the semantics docs/relay.md ("Readiness") promises.

- `/healthz` is 200 while the process answers at all.
- `/readyz` is 503 until the first list of flag ConfigMaps is in, then 200 for
  good: a relay that lost the API server still serves every app its last good
  state, which beats taking both replicas out of the Service. The body says
  whether the watch is connected and, if not, for how long the state is stale;
  `flagops_relay_watch_up` says the same to Prometheus.
"""

from __future__ import annotations

import orjson

from flagops.relay.store import Store


def health_reply(path: str, store: Store, detailed: bool = True) -> tuple[int, bytes]:
    if path == "/healthz":
        return 200, b'{"status":"ok"}'
    body: dict[str, object] = {
        "ready": store.synced,
        "synced": store.synced,
        "watch": "connected" if store.watch_up else "disconnected",
        "stale": store.synced and not store.watch_up,
    }
    if not store.watch_up and store.down_since is not None:
        body["disconnectedSeconds"] = round(store.disconnected_seconds(), 3)
    if detailed:
        body["namespaces"] = len(store.namespaces())
    return (200 if store.synced else 503), orjson.dumps(body)
