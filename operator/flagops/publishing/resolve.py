"""What each flag publishes: its FeatureFlag spec, or the stage of the Rollout that controls it.

Pure: the publisher gathers the namespace's FeatureFlags and Rollouts, this
module decides the published document and each flag's outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flagops.api.common import format_timestamp
from flagops.api.featureflag import (
    COHORT_ALL,
    SOURCE_SPEC,
    FeatureFlag,
    rollout_source,
)
from flagops.api.rollout import Rollout
from flagops.api.stages import PERCENT, Stage
from flagops.flags.document import FlagState


@dataclass(frozen=True)
class FlagInput:
    """One FeatureFlag as the publisher sees it."""

    name: str
    created: str  # creationTimestamp: the oldest of two flags sharing a key wins
    key: str | None  # None when the spec is invalid
    enabled: bool = False
    rollout_percent: int = 0
    allowed_cohorts: tuple[str, ...] = ()
    start_date: datetime | None = None
    end_date: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    spec_error: str | None = None
    shared_with: tuple[str, ...] = ()  # namespaces given a copy (flagops.publishing.sharing)

    @classmethod
    def from_spec(cls, name: str, created: str, spec: Mapping[str, Any]) -> FlagInput:
        """A FeatureFlag's spec read on its own (see `from_flag`)."""
        obj = {"metadata": {"name": name, "creationTimestamp": created}, "spec": spec}
        return cls.from_flag(FeatureFlag.from_object(obj))

    @classmethod
    def from_flag(cls, flag: FeatureFlag) -> FlagInput:
        """A FeatureFlag as the publisher sees it; a spec the schema let through but the
        model rejects becomes an unpublished flag with the reason, never an exception."""
        if flag.spec_error is not None:
            return cls(name=flag.name, created=flag.created, key=None, spec_error=flag.spec_error)
        model = flag.spec
        return cls(
            name=flag.name,
            created=flag.created,
            key=flag.key,
            enabled=model.enabled,
            rollout_percent=model.rollout_percent,
            allowed_cohorts=tuple(model.allowed_cohorts),
            start_date=model.start_date,
            end_date=model.end_date,
            metadata=dict(model.metadata),
            shared_with=tuple(model.shared_with or ()),
        )


@dataclass(frozen=True)
class RolloutControl:
    """A Rollout that holds a stage for a flag."""

    name: str
    flag_name: str
    stage: Stage
    internal_cohorts: tuple[str, ...]
    created: str

    @classmethod
    def from_rollout(cls, rollout: Rollout) -> RolloutControl | None:
        """The Rollout's hold on its flag, or None while it holds no stage. Cohorts that
        cannot be read make no hold: whom INTERNAL exposes would be a guess."""
        stage, flag_name = rollout.status.stage, rollout.spec.flag_ref.name
        if stage is None or not flag_name or rollout.unreadable("spec", "internalCohorts"):
            return None
        return cls(
            name=rollout.name,
            flag_name=flag_name,
            stage=stage,
            internal_cohorts=tuple(rollout.spec.internal_cohorts),
            created=rollout.created,
        )


@dataclass(frozen=True)
class FlagOutcome:
    key: str | None
    state: FlagState | None
    source: str
    published: bool
    conflict_with: tuple[str, ...] = ()
    error: str | None = None
    # Left out of the document because it did not fit (flagops.publishing.fit).
    omitted: bool = False
    # Why the document carrying this flag's state could not be written, while it fails.
    write_error: str | None = None

    def effective(self) -> dict[str, Any] | None:
        """`status.effective`: the resolved state plus where it came from."""
        if self.state is None:
            return None
        return {**self.state.to_json_obj(), "key": self.key, "source": self.source}


@dataclass(frozen=True)
class Resolution:
    published: dict[str, FlagState]
    outcomes: dict[str, FlagOutcome]  # by FeatureFlag name
    # The published keys by their flag's age, oldest first: what is kept when not all fit.
    order: tuple[str, ...] = ()

    def leave_out(self, keys: Iterable[str]) -> Resolution:
        """This resolution with `keys` no longer published, their flags marked `omitted`."""
        gone = set(keys)
        if not gone:
            return self
        outcomes = {
            name: replace(o, published=False, omitted=True) if o.published and o.key in gone else o
            for name, o in self.outcomes.items()
        }
        published = {k: v for k, v in self.published.items() if k not in gone}
        return Resolution(published, outcomes, tuple(k for k in self.order if k not in gone))


def controlling_rollouts(rollouts: Iterable[RolloutControl]) -> dict[str, RolloutControl]:
    """flag name -> the Rollout that controls it (the oldest one holding a stage)."""
    result: dict[str, RolloutControl] = {}
    for rollout in sorted(rollouts, key=lambda r: (r.created, r.name)):
        result.setdefault(rollout.flag_name, rollout)
    return result


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _stage_exposure(flag: FlagInput, control: RolloutControl) -> tuple[bool, int, tuple[str, ...]]:
    stage = control.stage
    if stage is Stage.DISABLED:
        return False, 0, ()
    if stage is Stage.INTERNAL:
        return True, 0, control.internal_cohorts
    if stage is Stage.FULL:
        return True, 100, (COHORT_ALL,)
    return True, PERCENT[stage], _dedupe((*flag.allowed_cohorts, *control.internal_cohorts))


def _date(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def effective_state(flag: FlagInput, control: RolloutControl | None) -> tuple[FlagState, str]:
    """The state `flag` publishes, and its source (`spec` or `rollout/<name>`)."""
    if control is None:
        enabled, percent, cohorts = flag.enabled, flag.rollout_percent, flag.allowed_cohorts
        stage: str | None = None
        source = SOURCE_SPEC
    else:
        enabled, percent, cohorts = _stage_exposure(flag, control)
        stage = control.stage.value
        source = rollout_source(control.name)
    state = FlagState(
        enabled=enabled,
        rolloutPercent=percent,
        allowedCohorts=cohorts,
        startDate=_date(flag.start_date),
        endDate=_date(flag.end_date),
        stage=stage,
        metadata=dict(flag.metadata),
    )
    return state, source


StateOf = Callable[[FlagInput, RolloutControl | None], tuple[FlagState, str]]


def resolve(
    flags: Sequence[FlagInput],
    rollouts: Iterable[RolloutControl],
    state_of: StateOf = effective_state,
) -> Resolution:
    """Each flag's outcome and the published flags. `state_of` lets a caller that keeps
    states between rounds (the operator) skip recomputing unchanged flags."""
    control = controlling_rollouts(rollouts)
    by_key: dict[str, list[FlagInput]] = {}
    outcomes: dict[str, FlagOutcome] = {}
    for flag in flags:
        if flag.key is None:
            outcomes[flag.name] = FlagOutcome(
                key=None, state=None, source=SOURCE_SPEC, published=False, error=flag.spec_error
            )
        else:
            by_key.setdefault(flag.key, []).append(flag)

    published: dict[str, FlagState] = {}
    ages: dict[str, tuple[str, str]] = {}
    for key, owners in by_key.items():
        owners.sort(key=lambda f: (f.created, f.name))
        names = [f.name for f in owners]
        for flag in owners:
            try:
                state, source = state_of(flag, control.get(flag.name))
            except Exception as exc:
                # One flag that cannot be resolved must not take the namespace's document
                # with it: it is reported, the others (and the key's next owner) publish.
                outcomes[flag.name] = FlagOutcome(
                    key=None,
                    state=None,
                    source=SOURCE_SPEC,
                    published=False,
                    error=f"cannot resolve the flag: {type(exc).__name__}: {exc}"[:500],
                )
                continue
            winner = key not in published
            if winner:
                published[key] = state
                ages[key] = (flag.created, flag.name)
            outcomes[flag.name] = FlagOutcome(
                key=key,
                state=state,
                source=source,
                published=winner,
                conflict_with=tuple(n for n in names if n != flag.name),
            )
    order = tuple(sorted(published, key=lambda k: ages[k]))
    return Resolution(published=published, outcomes=outcomes, order=order)
