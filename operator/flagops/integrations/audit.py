"""One structured audit record per integration operation, on logger `flagops.audit`.

The record is a JSON object (also attached to the LogRecord as `audit`, for
structured handlers). Callers only ever pass names, outcomes and numbers; the
`error` field is already redacted text.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

AUDIT_LOGGER = logging.getLogger("flagops.audit")


def write_audit(
    *,
    integration: str,
    flag: str,
    operation: str,
    outcome: str,
    duration_ms: float,
    actor: str = "",
    error: str | None = None,
    **details: str | int | float | bool | None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "integration": integration,
        "flag": flag,
        "operation": operation,
        "outcome": outcome,
        "duration_ms": round(duration_ms, 3),
        "actor": actor,
    }
    if error is not None:
        record["error"] = error
    record.update({k: v for k, v in details.items() if v is not None})
    AUDIT_LOGGER.info(json.dumps(record, sort_keys=True), extra={"audit": record})
    return record
