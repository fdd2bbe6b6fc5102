"""D. fleet: thousands of FeatureFlags and Rollouts, created fast and waited for cheaply.

Objects go through the apiserver as a user's client would (one create per object),
from a thread pool sharing one connection pool; the time of each kind is kept
apart so a slow ramp shows whether creating or analysing is the cost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.bench_shards import namespaces_for
from bench.rollouts.world import INTEGRATIONS, ROLLOUTS
from flagops.api.resources import GROUP, VERSION
from flagops_devtools.testing.controlplane import ControlPlane

FLAGS = "featureflags"
# Long enough that no Rollout changes stage while a run lasts: the window measures
# steady state, and a stage change would be a status write of its own.
STAGE_DURATION = "24h"
CREATE_THREADS = 16
PAGE = 1000


@dataclass(frozen=True)
class Fleet:
    """Where N Rollouts (and their flags) live: `per_namespace` at most in each namespace."""

    rollouts: int
    flags: int
    namespaces: tuple[str, ...]
    interval_seconds: int

    @classmethod
    def plan(
        cls,
        rollouts: int,
        flags: int,
        per_namespace: int,
        interval_seconds: int,
        prefix: str,
        shards: int = 1,
    ) -> Fleet:
        count = max(1, math.ceil(max(rollouts, flags) / per_namespace))
        count = shards * math.ceil(count / shards)  # every shard the same share
        return cls(rollouts, flags, tuple(namespaces_for(count, shards, prefix)), interval_seconds)

    def placed(self, total: int) -> Iterator[tuple[str, int]]:
        """(namespace, index) for `total` objects dealt round the namespaces."""
        for i in range(total):
            yield self.namespaces[i % len(self.namespaces)], i

    def in_namespaces(self, wanted: Sequence[str]) -> int:
        """How many of the Rollouts live in `wanted`."""
        return sum(1 for ns, _ in self.placed(self.rollouts) if ns in wanted)


def flag_body(i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FeatureFlag",
        "metadata": {"name": f"f-{i:05d}"},
        "spec": {
            "key": f"f_{i:05d}",
            "integration": INTEGRATIONS[i % len(INTEGRATIONS)],
            "enabled": True,
            "rolloutPercent": 10,
        },
    }


def rollout_body(i: int, interval_seconds: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Rollout",
        "metadata": {"name": f"f-{i:05d}"},
        "spec": {
            "flagRef": {"name": f"f-{i:05d}"},
            "stageDuration": STAGE_DURATION,
            "analysis": {"interval": f"{interval_seconds}s", "minSampleSize": 20},
        },
    }


def bulk_client(plane: ControlPlane, pool: int = CREATE_THREADS) -> Any:
    """An admin ApiClient whose connection pool holds one connection per creating thread."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(plane.kubeconfig), client_configuration=configuration
    )
    configuration.connection_pool_maxsize = pool
    return client.ApiClient(configuration)


@dataclass(frozen=True)
class Created:
    flags_seconds: float
    rollouts_seconds: float

    def rate(self, fleet: Fleet) -> float:
        total = self.flags_seconds + self.rollouts_seconds
        return (fleet.flags + fleet.rollouts) / max(total, 1e-9)


def create_fleet(api: Any, fleet: Fleet) -> Created:
    """Every flag, then every Rollout, each kind from CREATE_THREADS threads."""
    from kubernetes import client

    custom: Any = client.CustomObjectsApi(api)

    def creator(plural: str, body: Callable[[int], dict[str, Any]]) -> Callable[[Any], None]:
        def create(where: tuple[str, int]) -> None:
            namespace, i = where
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body(i))

        return create

    with ThreadPoolExecutor(CREATE_THREADS) as pool:
        started = time.perf_counter()
        list(pool.map(creator(FLAGS, flag_body), fleet.placed(fleet.flags), chunksize=64))
        flags_done = time.perf_counter()
        rollout = creator(ROLLOUTS, lambda i: rollout_body(i, fleet.interval_seconds))
        list(pool.map(rollout, fleet.placed(fleet.rollouts), chunksize=64))
        done = time.perf_counter()
    return Created(flags_done - started, done - flags_done)


def verdicts(api: Any, namespaces: Sequence[str]) -> dict[str, int]:
    """Rollouts by their last verdict ("none" before the first), listed a page at a time."""
    from kubernetes import client

    custom: Any = client.CustomObjectsApi(api)
    counts: dict[str, int] = {}
    for namespace in namespaces:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE}
            if token:
                kwargs["_continue"] = token
            page = custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, ROLLOUTS, **kwargs
            )
            for item in page["items"]:
                last = (item.get("status") or {}).get("lastAnalysis") or {}
                verdict = str(last.get("verdict") or "none")
                counts[verdict] = counts.get(verdict, 0) + 1
            token = page["metadata"].get("continue")
            if not token:
                break
    return counts


def judged(counts: dict[str, int]) -> int:
    """Rollouts with any verdict."""
    return sum(c for v, c in counts.items() if v != "none")


def settled(counts: dict[str, int]) -> int:
    """Rollouts with a verdict that is not `Inconclusive`: counting their stage's
    traffic, which starts only once the stage is published (the ramp's tail)."""
    return sum(c for v, c in counts.items() if v not in ("none", "Inconclusive"))


def wait_for_verdicts(
    api: Any,
    fleet: Fleet,
    timeout: float,
    say: Callable[[str], None],
    count: Callable[[dict[str, int]], int] = judged,
    what: str = "a verdict",
) -> dict[str, int]:
    """Polls until `count` says every Rollout is there; returns the verdict counts then.

    Listing 10,000 Rollouts costs the apiserver about a second, so the poll period
    grows with the fleet (2 s per 1,000 Rollouts, at least 2 s).
    """
    period = max(2.0, 2.0 * fleet.rollouts / 1000)
    deadline = time.monotonic() + timeout
    last_said = 0.0
    while True:
        counts = verdicts(api, fleet.namespaces)
        done = count(counts)
        if done >= fleet.rollouts:
            return counts
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"only {done} of {fleet.rollouts} Rollouts have {what}")
        if now - last_said >= 30:
            say(f"    {done} of {fleet.rollouts} Rollouts have {what}")
            last_said = now
        time.sleep(period)


@dataclass(frozen=True)
class Ramp:
    created: Created
    verdicts: dict[str, int]  # verdict counts once every Rollout has one
    seconds: float  # from the first create until every Rollout has a verdict
    settled_seconds: float  # ... until every Rollout's verdict counts traffic


def ramp(
    api: Any, fleet: Fleet, timeout: float, say: Callable[[str], None], started: float
) -> Ramp:
    """Create the fleet and wait until every Rollout has a verdict, saying how it goes;
    `started` is the perf_counter the ramp counts from."""
    created = create_fleet(api, fleet)
    say(
        f"    created in {created.flags_seconds + created.rollouts_seconds:.0f} s "
        f"({created.rate(fleet):.0f} objects/s)"
    )
    counts = wait_for_verdicts(api, fleet, timeout, say)
    seconds = time.perf_counter() - started
    say(f"    every Rollout has a verdict after {seconds:.0f} s")
    # The window must be steady state: every stage published and its traffic counted,
    # not the ramp's tail of Inconclusive -> Pass writes.
    wait_for_verdicts(api, fleet, timeout, say, settled, "a conclusive verdict")
    settled_seconds = time.perf_counter() - started
    say(f"    every Rollout has a conclusive verdict after {settled_seconds:.0f} s")
    return Ramp(created, counts, seconds, settled_seconds)
