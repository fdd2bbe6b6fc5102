"""Flags as apps see them: the published document and the evaluation SDK.

Imports only the standard library, mmh3, pydantic and prometheus_client, so an
app installs the core distribution alone.
"""

from flagops.flags.client import FeatureFlags
from flagops.flags.document import (
    SCHEMA_VERSION,
    FlagState,
    build_document,
    canonical_json,
    parse_document,
    read_document,
    revision_of,
)
from flagops.flags.evaluate import bucket, evaluate, parse_rfc3339

__all__ = [
    "SCHEMA_VERSION",
    "FeatureFlags",
    "FlagState",
    "bucket",
    "build_document",
    "canonical_json",
    "evaluate",
    "parse_document",
    "parse_rfc3339",
    "read_document",
    "revision_of",
]
