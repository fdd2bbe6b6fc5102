"""Checks the operator and `kubectl flagops validate` share, with one wording.

Pure: the callers fetch the objects, these functions say what is wrong with them.
A message here is what the operator writes into a Rollout's status and what the
CLI prints, so the two can never disagree about the same Rollout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from flagops.api.common import error_message

__all__ = [
    "RolloutClaim",
    "claim_from_object",
    "missing_flag_message",
    "older_claim",
    "ownership_problem",
    "spec_error_message",
]


def spec_error_message(exc: ValidationError) -> str:
    """`spec.a.b: msg; spec.c: msg` for a spec that failed its model."""
    return error_message(exc, "spec")


@dataclass(frozen=True)
class RolloutClaim:
    """What a Rollout wants: which flag, since when (the oldest claim on a flag wins)."""

    name: str
    uid: str
    flag_name: str
    created: str  # metadata.creationTimestamp as the API gives it (RFC 3339, sorts as text)


def claim_from_object(obj: Mapping[str, Any]) -> RolloutClaim:
    """The claim of a Rollout object as the API returns it; missing fields read as empty."""
    meta = obj.get("metadata") or {}
    flag_name = ((obj.get("spec") or {}).get("flagRef") or {}).get("name") or ""
    return RolloutClaim(
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        flag_name=str(flag_name),
        created=str(meta.get("creationTimestamp") or ""),
    )


def older_claim(claims: Iterable[RolloutClaim], me: RolloutClaim) -> RolloutClaim | None:
    """The Rollout that owns `me`'s flag when it is not `me` (oldest wins, then name)."""
    # `me` counts even when the list does not hold it yet (an index that lags).
    rivals = [me, *(c for c in claims if c.flag_name == me.flag_name)]
    owner = min(rivals, key=lambda c: (c.created, c.name))
    return None if owner.uid == me.uid else owner


def missing_flag_message(flag_name: str, namespace: str) -> str:
    return f"FeatureFlag {flag_name!r} not found in namespace {namespace}"


def ownership_problem(
    me: RolloutClaim, claims: Iterable[RolloutClaim], *, flag_exists: bool, namespace: str
) -> str | None:
    """Why the Rollout `me` may not drive its flag, or None when it may.

    The flag must exist and `me` must be the oldest Rollout that names it; a younger
    one is degraded with this message while the oldest carries on.
    """
    if not flag_exists:
        return missing_flag_message(me.flag_name, namespace)
    owner = older_claim(claims, me)
    if owner is not None:
        return (
            f"FeatureFlag {me.flag_name!r} is already rolled out by Rollout "
            f"{owner.name!r}; one active Rollout per flag"
        )
    return None
