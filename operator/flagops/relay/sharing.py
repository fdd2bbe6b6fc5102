"""Which document a token reads for a namespace: its own, or a copy shared with its scope.

A token may read namespace A when A is in its scope, or when A shares flags with
a namespace B in its scope: the operator then keeps a copy `<configmap>-from-A`
in B (docs/sharing.md), and that copy, holding only the shared flags, is what the
token is served. The copy is stored under the key `B/A` (a `/` never appears in a
namespace name, so keys cannot collide).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flagops.publishing.sharing import SHARED_FROM_LABEL, owner_of_copy

_SEPARATOR = "/"


@dataclass(frozen=True, slots=True)
class Target:
    """What a request reads: `namespace` as the client named it, `key` in the store."""

    namespace: str
    key: str

    @classmethod
    def own(cls, namespace: str) -> Target:
        return cls(namespace, namespace)

    @property
    def shared(self) -> bool:
        return self.key != self.namespace


def copy_key(holder: str, owner: str) -> str:
    """The store key of `owner`'s copy kept in namespace `holder`."""
    return f"{holder}{_SEPARATOR}{owner}"


def is_copy_key(key: str) -> bool:
    return _SEPARATOR in key


def document_key(configmap_name: str, obj: Mapping[str, Any]) -> str | None:
    """The store key of a watched ConfigMap: its namespace for the namespace's own flag
    ConfigMap, `holder/owner` for a copy, None for any other ConfigMap."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    name = metadata.get("name")
    if not isinstance(namespace, str) or not isinstance(name, str):
        return None
    if name == configmap_name:
        return namespace
    owner = owner_of_copy(
        configmap_name, name, (metadata.get("labels") or {}).get(SHARED_FROM_LABEL)
    )
    if owner is None or owner == namespace:
        return None
    return copy_key(namespace, owner)


class _Documents(Protocol):
    def has(self, key: str) -> bool: ...


def shared_target(documents: _Documents, scope: Iterable[str], namespace: str) -> Target | None:
    """`namespace`'s copy in the first namespace of `scope` (sorted) that holds one."""
    for holder in sorted(scope):
        key = copy_key(holder, namespace)
        if documents.has(key):
            return Target(namespace, key)
    return None
