"""One FeatureFlag as the publisher's index keeps it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flagops.api.resources import GROUP, VERSION
from flagops.publishing.resolve import FlagInput


class StoredStatus(Mapping[str, Any]):
    """A FeatureFlag's status as stored, kept as its JSON text: the index holds one per
    flag, and as decoded objects 10,000 of them took about 30 MiB. Read it with
    `decoded()` (each read decodes the whole status: take it once per use)."""

    __slots__ = ("_text",)

    def __init__(self, value: Mapping[str, Any]) -> None:
        self._text = json.dumps(value, separators=(",", ":"), default=str)

    def decoded(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self._text)
        return value

    def __getitem__(self, key: str) -> Any:
        return self.decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.decoded())

    def __len__(self) -> int:
        return len(self.decoded())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredStatus):
            return self._text == other._text
        if isinstance(other, Mapping):
            return self.decoded() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StoredStatus({self._text})"


@dataclass(frozen=True)
class FlagRecord:
    """What the flag index keeps of one FeatureFlag."""

    name: str
    uid: str
    generation: int
    input: FlagInput
    status: Mapping[str, Any] = field(default_factory=dict)
    integration: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.status, StoredStatus):
            object.__setattr__(self, "status", StoredStatus(self.status))

    def stored_status(self) -> dict[str, Any]:
        """The status as stored, decoded: a fresh dict per call."""
        status = self.status
        return status.decoded() if isinstance(status, StoredStatus) else dict(status)

    def involved(self, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FeatureFlag",
            "metadata": {"name": self.name, "namespace": namespace, "uid": self.uid},
        }
