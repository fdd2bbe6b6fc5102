"""Where a service reads its feature flag from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

DEFAULT_FLAGS_PATH = "/etc/flagops/flags.json"
FLAGS_PATH_ENV = "FLAGOPS_FLAGS_PATH"


class FlagSource(Protocol):
    """What a service needs from `flagops.flags.FeatureFlags` (and what test fakes offer)."""

    def is_enabled(
        self,
        key: str,
        user_id: str | None = None,
        cohort: str | None = None,
        default: bool = False,
    ) -> bool: ...


@runtime_checkable
class FlagStateSource(FlagSource, Protocol):
    """A source that can also show a flag's `flags.json` entry (FeatureFlags can)."""

    def get(self, key: str) -> dict[str, Any] | None: ...


def on_for_anyone(flags: FlagSource, key: str) -> bool:
    """True when the flag lets at least someone in right now.

    The gate a server-side service needs: at a partial stage (10% of users
    plus the beta cohort) the integration must be connected for those users,
    and each request is gated per user by the app. "Someone" means: the flag
    is enabled, inside its time window, and has a percent above 0 or a cohort.
    """
    if flags.is_enabled(key):
        return True
    if not isinstance(flags, FlagStateSource):
        return False
    state = flags.get(key)
    if not state or not (state.get("rolloutPercent", 0) > 0 or state.get("allowedCohorts")):
        return False
    from flagops.flags import evaluate

    # Enabled and inside the window is exactly "true at 100%" under the normative algorithm.
    return bool(evaluate({**state, "rolloutPercent": 100, "allowedCohorts": []}, key))


class NoFlags:
    """A source where every flag is off: for processes that only probe health."""

    def is_enabled(
        self,
        key: str,
        user_id: str | None = None,
        cohort: str | None = None,
        default: bool = False,
    ) -> bool:
        return False


def default_flags_path() -> Path:
    return Path(os.environ.get(FLAGS_PATH_ENV) or DEFAULT_FLAGS_PATH)


def load_flags(path: str | os.PathLike[str] | None = None) -> FlagSource:
    """The SDK reader for `path`, else `$FLAGOPS_FLAGS_PATH`, else the default mount."""
    from flagops.flags import FeatureFlags

    return FeatureFlags(Path(path) if path else default_flags_path())
