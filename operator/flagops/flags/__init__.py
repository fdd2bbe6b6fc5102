"""Flags as apps see them: the published document and the evaluation SDK.

`FeatureFlags(path)` follows a mounted ConfigMap; `FeatureFlags.from_relay(url, ...)`
follows the relay's document stream. `flagops.flags.openfeature` (extra
`[openfeature]`) adapts either to the OpenFeature SDK.

Imports only the standard library, mmh3, pydantic and prometheus_client, so an
app installs the core distribution alone.
"""

from flagops.flags.backoff import Backoff
from flagops.flags.client import FeatureFlags, FlagDetails
from flagops.flags.document import (
    SCHEMA_VERSION,
    FlagState,
    build_document,
    canonical_json,
    parse_document,
    read_document,
    revision_of,
)
from flagops.flags.evaluate import Reason, bucket, evaluate, parse_rfc3339
from flagops.flags.snapshot import Change

__all__ = [
    "SCHEMA_VERSION",
    "Backoff",
    "Change",
    "FeatureFlags",
    "FlagDetails",
    "FlagState",
    "Reason",
    "bucket",
    "build_document",
    "canonical_json",
    "evaluate",
    "parse_document",
    "parse_rfc3339",
    "read_document",
    "revision_of",
]
