"""What the operator does with the events of shared copies and of namespaces."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from flagops.controller.sharing import CopyRecord, copy_record

COPY_INDEX = "copy_index"


class Sharing(Protocol):
    """What these events need of `ShareWriter`."""

    @property
    def clusterwide(self) -> bool: ...

    def watched(self, namespace: str) -> bool: ...

    def wrote(self, owner: str, target: str, text: str | None) -> bool: ...

    def bind(self, copies: Any) -> None: ...

    def namespace_appeared(self, namespace: str) -> None: ...

    def owners_with_copies_in(self, namespace: str) -> set[str]: ...


class SharingEvents:
    def __init__(
        self, sharing: Sharing, configmap_name: str, publish_namespace: Callable[..., None]
    ) -> None:
        self._sharing = sharing
        self._configmap_name = configmap_name
        self._publish_namespace = publish_namespace

    @property
    def clusterwide(self) -> bool:
        return self._sharing.clusterwide

    def is_copy(self, body: Mapping[str, Any]) -> bool:
        return copy_record(self._configmap_name, body) is not None

    def copy_index(self, body: Mapping[str, Any]) -> dict[str, CopyRecord]:
        found = copy_record(self._configmap_name, body)
        return {} if found is None else {found[0]: found[1]}

    def publish(self, owner: str, indexes: Mapping[str, Any]) -> None:
        # A copy naming a namespace the operator does not watch is not ours to answer for.
        if self._sharing.watched(owner):
            self._publish_namespace(owner, **indexes)

    def copy_changed(
        self,
        type_: str | None,
        namespace: str | None,
        body: Mapping[str, Any],
        indexes: Mapping[str, Any],
    ) -> None:
        """A deleted or hand-edited copy is rewritten (or removed) by the owner's flush."""
        found = copy_record(self._configmap_name, body)
        if found is None or namespace is None:
            return
        owner, record = found
        if type_ == "DELETED" or not self._sharing.wrote(owner, namespace, record.text):
            self.publish(owner, indexes)

    def namespace_changed(self, type_: str | None, name: str, indexes: Mapping[str, Any]) -> None:
        """A namespace appearing gets the copies waiting for it; one disappearing updates
        the owners' `Shared` conditions."""
        if type_ == "DELETED":
            for owner in sorted(self._sharing.owners_with_copies_in(name)):
                self.publish(owner, indexes)
        else:
            self._sharing.bind(indexes[COPY_INDEX])
            self._sharing.namespace_appeared(name)
