"""The demo's users: ten named sample users and a population the sample app serves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flagops.flags import evaluate


@dataclass(frozen=True)
class User:
    user_id: str
    cohort: str | None


SAMPLE_USERS: tuple[User, ...] = (
    User("ana", "internal"),
    User("ben", "internal"),
    User("chloe", "beta"),
    User("dev", "beta"),
    User("emma", "premium"),
    User("farid", "premium"),
    User("grace", None),
    User("hugo", None),
    User("ines", None),
    User("jonas", None),
)

POPULATION_SIZE = 100


def population(size: int = POPULATION_SIZE) -> tuple[User, ...]:
    """The sample users first, then generated ones: 10% internal, 10% beta, 10% premium."""
    cohorts: tuple[str | None, ...] = ("internal", "beta", "premium", *([None] * 7))
    generated = tuple(
        User(f"user-{i:03d}", cohorts[i % len(cohorts)])
        for i in range(len(SAMPLE_USERS), max(size, len(SAMPLE_USERS)))
    )
    return SAMPLE_USERS + generated


def sees(flags: Mapping[str, Mapping[str, Any]], key: str, user: User) -> bool:
    state = flags.get(key)
    return state is not None and evaluate(dict(state), key, user.user_id, user.cohort)


def flag_table(flags: Mapping[str, Mapping[str, Any]], users: Iterable[User] = SAMPLE_USERS) -> str:
    """Which user sees which flag, as a fixed-width text table."""
    listed = list(users)
    keys = sorted(flags)
    name_width = max(len("user (cohort)"), *(len(_label(u)) for u in listed))
    header = "user (cohort)".ljust(name_width) + "  " + "  ".join(keys)
    lines = [header, "-" * len(header)]
    for user in listed:
        cells = [("yes" if sees(flags, k, user) else "-").center(len(k)) for k in keys]
        lines.append(_label(user).ljust(name_width) + "  " + "  ".join(cells))
    return "\n".join(lines)


def _label(user: User) -> str:
    return f"{user.user_id} ({user.cohort or '-'})"
