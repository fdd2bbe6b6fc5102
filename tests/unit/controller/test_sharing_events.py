"""What copies' and namespaces' events do: republish the owner only when it is ours to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flagops.controller.sharing_events import COPY_INDEX, SharingEvents
from flagops.publishing.sharing import SHARED_FROM_LABEL, copy_name


@dataclass
class FakeSharing:
    clusterwide: bool = True
    watching: set[str] = field(default_factory=lambda: {"owner"})
    written: dict[tuple[str, str], str] = field(default_factory=dict)
    owners: dict[str, set[str]] = field(default_factory=dict)
    appeared: list[str] = field(default_factory=list)
    bound: list[Any] = field(default_factory=list)

    def watched(self, namespace: str) -> bool:
        return namespace in self.watching

    def wrote(self, owner: str, target: str, text: str | None) -> bool:
        return text is not None and self.written.get((owner, target)) == text

    def bind(self, copies: Any) -> None:
        self.bound.append(copies)

    def namespace_appeared(self, namespace: str) -> None:
        self.appeared.append(namespace)

    def owners_with_copies_in(self, namespace: str) -> set[str]:
        return self.owners.get(namespace, set())


def copy(owner: str, target: str, text: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": copy_name("flagops-flags", owner),
            "namespace": target,
            "uid": "u",
            "labels": {SHARED_FROM_LABEL: owner},
        },
        "data": {"flags.json": text},
    }


def setup() -> tuple[SharingEvents, FakeSharing, list[str]]:
    sharing, published = FakeSharing(), []
    events = SharingEvents(sharing, "flagops-flags", lambda ns, **_: published.append(ns))
    return events, sharing, published


def test_a_copy_is_indexed_under_its_owner_and_other_configmaps_are_not() -> None:
    events, _, _ = setup()
    body = copy("owner", "team", "{}")
    assert events.is_copy(body)
    assert events.copy_index(body)["owner"].namespace == "team"
    stranger = {"metadata": {"name": "other", "namespace": "team"}}
    assert not events.is_copy(stranger) and events.copy_index(stranger) == {}


def test_an_edited_or_deleted_copy_republishes_its_owner_but_our_echo_does_not() -> None:
    events, sharing, published = setup()
    sharing.written[("owner", "team")] = "{}"
    events.copy_changed("MODIFIED", "team", copy("owner", "team", "{}"), {})
    assert published == []
    events.copy_changed("MODIFIED", "team", copy("owner", "team", "{ }"), {})
    events.copy_changed("DELETED", "team", copy("owner", "team", "{}"), {})
    assert published == ["owner", "owner"]
    # An owner the operator does not watch is not its to answer for.
    events.copy_changed("DELETED", "team", copy("elsewhere", "team", "{}"), {})
    assert published == ["owner", "owner"]


def test_namespaces_appearing_and_going() -> None:
    events, sharing, published = setup()
    sharing.owners["team"] = {"owner", "unwatched"}
    events.namespace_changed("ADDED", "team", {COPY_INDEX: {"x": []}})
    assert sharing.appeared == ["team"] and sharing.bound == [{"x": []}]
    events.namespace_changed("DELETED", "team", {})
    assert published == ["owner"]
    assert events.clusterwide
