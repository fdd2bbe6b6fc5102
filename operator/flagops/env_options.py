"""Command-line options that fall back to an environment variable, then to a default.

The operator (controller/settings.py) and the relay (relay/settings.py) read their settings
this way; both are deployed by the chart, which sets the variables.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any


def add_env_option(
    parser: argparse.ArgumentParser,
    flag: str,
    env_var: str,
    default: object = None,
    *,
    type: Callable[[str], Any] = str,
    **kwargs: Any,
) -> None:
    """`flag` on `parser`, defaulting to $`env_var`, else to `default`.

    The variable's text goes through `type` like a command-line value, so a bad one is a
    usage error naming the flag.
    """
    value = os.environ.get(env_var)
    parser.add_argument(flag, type=type, default=default if value is None else value, **kwargs)


def namespaces_from(given: Sequence[str] | None, env_var: str) -> tuple[str, ...]:
    """The repeated --namespace values, else the comma-separated $`env_var`; blanks dropped."""
    names = list(given or []) or [n.strip() for n in os.environ.get(env_var, "").split(",")]
    return tuple(n for n in names if n)
