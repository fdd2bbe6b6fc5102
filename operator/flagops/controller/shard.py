"""Shards: which operator process serves a namespace (`flagops run --shard i/n`).

A namespace belongs to exactly one shard, so its publishing (FeatureFlags to the
ConfigMap), its Rollouts and their probe Jobs never meet two processes. The shard is
jump consistent hashing (Lamping & Veach, 2014) of the first 8 bytes of the SHA-256
of the namespace name: stable across processes, Python versions and languages (no
salted `hash()`), and when n changes only the namespaces that must move do (about
1/(n+1) of them going from n to n+1, none between the shards that stay).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

# Without --shard the process is the one shard of one: names stay as they always were.
BASE_FINALIZER = "flagops.dev/finalizer"
_FINALIZER_OF_SHARD = re.compile(re.escape(BASE_FINALIZER) + r"-shard-(\d+)$")
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
# The multiplier and shift of the published algorithm (a 64-bit linear congruential step).
_JUMP_MULTIPLIER = 2862933555777941757
_MASK64 = (1 << 64) - 1


@lru_cache(maxsize=65536)
def shard_of(namespace: str, count: int) -> int:
    """The shard (0..count-1) that serves `namespace`."""
    if count < 1:
        raise ValueError(f"a shard count is at least 1, got {count}")
    key = int.from_bytes(hashlib.sha256(namespace.encode()).digest()[:8], "big")
    bucket, jump = -1, 0
    while jump < count:
        bucket = jump
        key = (key * _JUMP_MULTIPLIER + 1) & _MASK64
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"--shard wants i/n with 0 <= i < n, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SPEC.match(text)
        if match is None:
            raise ValueError(f"--shard wants i/n (e.g. 0/2), got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def sharded(self) -> bool:
        return self.count > 1

    def owns(self, namespace: str | None) -> bool:
        """Cluster-scoped objects (namespace None) are nobody's: the operator has none."""
        if not self.sharded:
            return True
        return namespace is not None and shard_of(namespace, self.count) == self.index

    def peering_name(self, base: str) -> str:
        """Each shard index elects its own active replica. n is not in the name and shard 0
        keeps the base name: while n changes, the old and the new process of one index
        share a peering, so only one of them acts on the namespaces they both serve (with
        jump hashing, every namespace that stays)."""
        if self.index == 0:
            return base
        return f"{base}-shard-{self.index}"

    @property
    def finalizer(self) -> str:
        """kopf removes its finalizer from every Rollout no handler of it matches: one name
        for all shards would have each remove the others'. Shard 0 keeps the historic name,
        so going from 1 shard to n leaves nothing behind on shard 0's Rollouts."""
        if self.index == 0:
            return BASE_FINALIZER
        return f"{BASE_FINALIZER}-shard-{self.index}"

    @property
    def manager(self) -> str:
        """The field manager (user agent) of a sharded process's writes: managedFields
        then say which shard wrote a ConfigMap or a Rollout's status."""
        return f"flagops-shard-{self.index}-of-{self.count}"

    def stale_finalizers(self, finalizers: list[str]) -> list[str]:
        """Finalizers of shards that no longer exist (n shrank): nobody else removes them."""
        stale = []
        for name in finalizers:
            match = _FINALIZER_OF_SHARD.match(name)
            if match is not None and int(match.group(1)) >= self.count:
                stale.append(name)
        return stale

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
