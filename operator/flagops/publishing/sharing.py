"""Which of a namespace's flags go to which other namespace (`spec.sharedWith`), and what
each flag's `Shared` condition says about it.

Pure: the operator resolves a namespace (`flagops.publishing.resolve`), this module
splits the published flags into one document per namespace they are shared
with, and turns what happened to each copy into a condition. See docs/sharing.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from flagops.api.featureflag import FeatureFlagCondition
from flagops.flags.document import FlagState
from flagops.publishing.resolve import FlagInput, Resolution

# On every copy: which namespace's flags it holds (the relay trusts a copy only when its
# name and this label agree).
SHARED_FROM_LABEL = "flagops.dev/shared-from"
COPY_INFIX = "-from-"
CONDITION = FeatureFlagCondition.SHARED.value


def copy_name(configmap_name: str, owner: str) -> str:
    """The copy of `owner`'s shared flags in another namespace: `feature-flags-from-<owner>`."""
    return f"{configmap_name}{COPY_INFIX}{owner}"


def owner_of_copy(configmap_name: str, name: str, label: str | None) -> str | None:
    """The owning namespace of a copy named `name` carrying `label`, None if it is no copy."""
    if label is None or name != copy_name(configmap_name, label):
        return None
    return label


@dataclass(frozen=True)
class SharePlan:
    """What one owner namespace shares."""

    # target namespace -> key -> state: each target's document.
    copies: dict[str, dict[str, FlagState]]
    # FeatureFlag name -> the other namespaces it is shared with (published flags only).
    targets: dict[str, tuple[str, ...]]


def plan_shares(owner: str, flags: Iterable[FlagInput], resolution: Resolution) -> SharePlan:
    """Each target's flags: every published flag whose `sharedWith` names the target.

    A flag that is not published (invalid spec, key conflict) shares nothing, so a copy
    never holds what the owner's own ConfigMap does not. The owner's own namespace is
    skipped (it already has the flags).
    """
    copies: dict[str, dict[str, FlagState]] = {}
    targets: dict[str, tuple[str, ...]] = {}
    for flag in flags:
        if not flag.shared_with:
            continue
        outcome = resolution.outcomes.get(flag.name)
        if outcome is None or not outcome.published or outcome.key is None:
            continue
        state = resolution.published.get(outcome.key)
        if state is None:
            continue
        others = tuple(t for t in flag.shared_with if t != owner)
        targets[flag.name] = others
        for target in others:
            copies.setdefault(target, {})[outcome.key] = state
    return SharePlan(copies=copies, targets=targets)


class CopyResult(StrEnum):
    """What happened to the copy in one target namespace."""

    WRITTEN = "Shared"
    NAMESPACE_NOT_FOUND = "NamespaceNotFound"
    NOT_MANAGED = "ConfigMapNotManaged"
    NOT_WATCHED = "NamespaceNotWatched"
    FAILED = "WriteFailed"


# Most actionable first: the reason of a condition with several problems.
_PRIORITY = [
    CopyResult.NOT_MANAGED,
    CopyResult.NOT_WATCHED,
    CopyResult.NAMESPACE_NOT_FOUND,
    CopyResult.FAILED,
]

_WHY = {
    CopyResult.NAMESPACE_NOT_FOUND: "the namespace does not exist (the copy is written when"
    " it appears)",
    CopyResult.NOT_MANAGED: "a ConfigMap {name} not managed by flagops is in the way (flagops"
    " never overwrites it; delete or rename it)",
    CopyResult.NOT_WATCHED: "the operator does not watch that namespace (it has no access there)",
    CopyResult.FAILED: "writing the copy failed; retrying",
}


@dataclass(frozen=True)
class ShareReport:
    """A flag's `Shared` condition, and the targets where a foreign ConfigMap blocks it."""

    status: bool
    reason: str
    message: str
    blocked: tuple[str, ...] = ()


def share_report(
    flag: FlagInput,
    owner: str,
    published: bool,
    results: Mapping[str, CopyResult],
    copy: str,
) -> ShareReport:
    """The `Shared` condition of `flag` after its namespace's copies were written."""
    listed = flag.shared_with
    if not listed:
        return ShareReport(False, "NotShared", "spec.sharedWith lists no namespace")
    if not published:
        return ShareReport(
            False,
            "NotPublished",
            "the flag is not published (see the Published condition), so it is not shared",
        )
    others = [t for t in listed if t != owner]
    own = f"{owner} is this flag's own namespace and needs no copy"
    if not others:
        return ShareReport(False, "OwnNamespace", own)
    ok = [t for t in others if results.get(t) is CopyResult.WRITTEN]
    problems: dict[CopyResult, list[str]] = {}
    for target in others:
        result = results.get(target, CopyResult.FAILED)
        if result is not CopyResult.WRITTEN:
            problems.setdefault(result, []).append(target)
    parts = [f"shared with {', '.join(ok)} (ConfigMap {copy})"] if ok else []
    for result in _PRIORITY:
        for target in problems.get(result, []):
            parts.append(f"not shared with {target}: {_WHY[result].format(name=copy)}")
    if owner in listed:
        parts.append(own)
    message = "; ".join(parts)
    reason = next((r for r in _PRIORITY if r in problems), None)
    if reason is None:
        return ShareReport(True, CopyResult.WRITTEN.value, message)
    return ShareReport(
        False, reason.value, message, tuple(problems.get(CopyResult.NOT_MANAGED, ()))
    )
