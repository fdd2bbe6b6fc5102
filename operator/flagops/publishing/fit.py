"""Fit a namespace's flags into one ConfigMap: leave out the newest flags when they do not fit.

Pure. A ConfigMap holds at most 1 MiB (keys and values together), so a namespace
whose document would pass the limit keeps its oldest flags, in creation order,
and leaves out every flag from the first one that no longer fits (docs/decisions.md,
"A namespace whose flags outgrow one ConfigMap"). The choice depends only on the
flags, so every replica and every restart leaves out the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flagops.flags.document import canonical_json, document_from_entries

# The apiserver's limit on a ConfigMap's data (keys plus values, in bytes).
CONFIGMAP_MAX_BYTES = 1024 * 1024
# The largest flags document by default: the ConfigMap's limit less its key, `flags.json`.
DEFAULT_MAX_DOCUMENT_BYTES = CONFIGMAP_MAX_BYTES - len("flags.json")


def entry_size(key: str, entry: Mapping[str, Any]) -> int:
    """Bytes `"key":{entry}` takes in the canonical document (without the comma)."""
    return len(canonical_json(key).encode()) + 1 + len(canonical_json(entry).encode())


# `{"flags":{},"revision":"<64 hex>","schema":1}`: what an empty document takes.
_EMPTY_DOCUMENT = len(document_from_entries({})[0].encode())


@dataclass(frozen=True)
class Fitted:
    text: str
    revision: str
    size: int  # bytes of `text`
    kept: tuple[str, ...]
    omitted: tuple[str, ...]  # oldest first


def fit_document(
    entries: Mapping[str, Mapping[str, Any]],
    order: Sequence[str],
    limit: int,
    sizes: Mapping[str, int] | None = None,
) -> Fitted:
    """The document holding the longest prefix of `order` (keys, oldest first) that fits
    in `limit` bytes. `sizes` may carry each key's `entry_size`, saving the re-encoding."""
    total = _EMPTY_DOCUMENT
    kept: list[str] = []
    cut = len(order)
    for position, key in enumerate(order):
        size = sizes[key] if sizes is not None and key in sizes else entry_size(key, entries[key])
        grown = total + size + (1 if kept else 0)
        if grown > limit:
            cut = position
            break
        total = grown
        kept.append(key)
    text, revision = document_from_entries({key: entries[key] for key in kept})
    size = len(text.encode())
    if size > limit:  # the arithmetic above is exact; this guards against a format change
        raise RuntimeError(f"fitted document is {size} bytes, over the {limit} byte limit")
    return Fitted(text, revision, size, tuple(kept), tuple(order[cut:]))
