"""One poisoned flag ConfigMap never stops the relay's watch from carrying the others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flagops.flags import build_document
from flagops.flags.document import read_document
from flagops.relay.kubewatch import ConfigMapWatch
from flagops.relay.metrics import RelayMetrics
from flagops.relay.settings import RelaySettings
from flagops.relay.store import Snapshot

NESTED = "[" * 200_000 + "]" * 200_000


class FakeSink:
    def __init__(self) -> None:
        self.applied: list[Snapshot] = []

    def deliver(self, call: Callable[[], None]) -> None:
        call()

    def apply(self, snapshot: Snapshot) -> None:
        self.applied.append(snapshot)

    def deleted(self, namespace: str) -> None:
        pass

    def watch_up(self, scope: ConfigMapWatch, up: bool) -> None:
        pass


def configmap(namespace: str, text: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": "feature-flags"},
        "data": {"flags.json": text},
    }


def test_deeply_nested_document_is_bad_input_not_a_crash() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        read_document(NESTED)


def test_a_poisoned_namespace_does_not_stop_the_next() -> None:
    sink = FakeSink()
    metrics = RelayMetrics()
    watch = ConfigMapWatch(None, RelaySettings(tokens_file=None), sink, metrics)
    good, _ = build_document(
        {"on": {"enabled": True, "rolloutPercent": 100, "allowedCohorts": ["all"]}}
    )
    for obj in (configmap("poisoned", NESTED), configmap("poisoned2", "{"), configmap("ok", good)):
        assert watch._accept(obj) == obj["metadata"]["namespace"]
    assert [s.namespace for s in sink.applied] == ["ok"]
    errors = metrics.document_errors.labels(namespace="poisoned")._value.get()
    assert errors == 1
