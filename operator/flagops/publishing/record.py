"""One FeatureFlag as the publisher's index keeps it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flagops.api.resources import GROUP, VERSION
from flagops.publishing.resolve import FlagInput


@dataclass(frozen=True)
class FlagRecord:
    """What the flag index keeps of one FeatureFlag."""

    name: str
    uid: str
    generation: int
    input: FlagInput
    status: Mapping[str, Any] = field(default_factory=dict)
    integration: str | None = None

    def involved(self, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FeatureFlag",
            "metadata": {"name": self.name, "namespace": namespace, "uid": self.uid},
        }
