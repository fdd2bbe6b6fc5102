"""SDK evaluation: flagops vs UnleashClient vs the OpenFeature flagd in-process provider.

Same flag (`calendar_sync`, 25% of users), same pre-made user ids, same run.
Every competitor is fully offline: sockets are refused for the whole run and
the attempts are counted, so a figure can never include a network round trip.

    python -m bench.bench_sdk [--users 10000] [--calls 200000]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import socket
import sys
import tempfile
import timeit
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flagops.flags import FeatureFlags, build_document, evaluate

KEY = "calendar_sync"
PERCENT = 25


# -- offline guard ----------------------------------------------------------------------


class _NetworkGuard:
    def __init__(self) -> None:
        self.attempts: list[str] = []


@contextmanager
def no_network() -> Iterator[_NetworkGuard]:
    """Refuse every outgoing connection and record who tried."""
    guard = _NetworkGuard()
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def refuse(self: socket.socket, address: Any) -> Any:
        guard.attempts.append(repr(address))
        raise OSError("network disabled during the SDK benchmark")

    socket.socket.connect = refuse  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign,assignment]
    try:
        yield guard
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]


# -- the contenders ---------------------------------------------------------------------


@dataclass
class Contender:
    """One SDK ready to time: `run_all` evaluates the flag once for every user."""

    name: str
    run_all: Callable[[], object]
    results: list[bool]
    cost: int  # rough cost relative to flagops, so each gets a similar wall-clock budget
    note: str = ""


def flagops_contenders(stack: ExitStack, workdir: Path, users: list[str]) -> list[Contender]:
    text, _ = build_document(
        {KEY: {"enabled": True, "rolloutPercent": PERCENT, "allowedCohorts": ["internal"]}}
    )
    (workdir / "flags.json").write_text(text, encoding="utf-8")
    flags = stack.enter_context(FeatureFlags(workdir))
    is_enabled = flags.is_enabled

    def run_all() -> None:
        for u in users:
            is_enabled(KEY, u)

    state = flags.get(KEY)
    assert state is not None

    def run_pure() -> None:
        for u in users:
            evaluate(state, KEY, u)

    results = [is_enabled(KEY, u) for u in users]
    return [
        Contender("flagops FeatureFlags.is_enabled", run_all, results, 1),
        Contender(
            "flagops evaluate() (parses per call)",
            run_pure,
            [evaluate(state, KEY, u) for u in users],
            20,
            "reference only; apps use FeatureFlags",
        ),
    ]


def unleash_contender(stack: ExitStack, workdir: Path, users: list[str]) -> Contender:
    from UnleashClient.cache import FileCache
    from UnleashClient.clients.unleash_client import UnleashClient
    from UnleashClient.utils import InstanceAllowType

    bootstrap = {
        "version": 1,
        "features": [
            {
                "name": KEY,
                "enabled": True,
                "strategies": [
                    {
                        "name": "flexibleRollout",
                        "parameters": {
                            "rollout": str(PERCENT),
                            "stickiness": "userId",
                            "groupId": KEY,
                        },
                        "constraints": [],
                    }
                ],
            }
        ],
    }
    path = workdir / "unleash-bootstrap.json"
    path.write_text(json.dumps(bootstrap), encoding="utf-8")
    cache = FileCache("flagops-bench", directory=str(workdir / "unleash-cache"))
    cache.bootstrap_from_file(path)
    client = UnleashClient(
        url="http://127.0.0.1:1/api",  # unreachable on purpose: nothing may be fetched
        app_name="flagops-bench",
        cache=cache,
        disable_metrics=True,
        disable_registration=True,
        multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
    )
    stack.callback(client.destroy)
    # fetch_toggles=False: the offline connector, which only re-reads the bootstrapped cache.
    client.initialize_client(fetch_toggles=False)
    contexts = [{"userId": u} for u in users]
    is_enabled = client.is_enabled

    def run_all() -> None:
        for c in contexts:
            is_enabled(KEY, c)

    results = [bool(is_enabled(KEY, c)) for c in contexts]
    return Contender("UnleashClient.is_enabled (bootstrap file, offline)", run_all, results, 100)


def flagd_contender(stack: ExitStack, workdir: Path, users: list[str]) -> Contender:
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType
    from openfeature.evaluation_context import EvaluationContext

    flag_config = {
        "flags": {
            KEY: {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
                # shorthand fractional: buckets by [flagKey, targetingKey]
                "targeting": {"fractional": [["on", PERCENT], ["off", 100 - PERCENT]]},
            }
        }
    }
    path = workdir / "flagd.json"
    path.write_text(json.dumps(flag_config), encoding="utf-8")
    provider = FlagdProvider(
        resolver_type=ResolverType.FILE,
        offline_flag_source_path=str(path),
        host="127.0.0.1",
        port=1,
    )
    api.set_provider_and_wait(provider)  # set_provider initialises on a background thread
    stack.callback(api.shutdown)
    client = api.get_client()
    contexts = [EvaluationContext(targeting_key=u) for u in users]
    get = client.get_boolean_value

    def run_all() -> None:
        for c in contexts:
            get(KEY, False, c)

    results = [bool(get(KEY, False, c)) for c in contexts]
    if not any(results):
        raise RuntimeError("flagd provider returned only defaults: flag file not loaded")
    return Contender(
        "OpenFeature flagd in-process (FILE source)",
        run_all,
        results,
        100,
        "fractional: own hash, buckets differ by design",
    )


def time_interleaved(
    contenders: list[Contender], calls: int, users: int, rounds: int = 5
) -> list[float]:
    """Best ns/call of each contender over `rounds` rounds that take turns.

    Taking turns round by round means a burst of load from a neighbour on this
    shared machine hits every SDK alike instead of skewing one ratio.
    """
    best = [float("inf")] * len(contenders)
    for _ in range(rounds):
        for i, contender in enumerate(contenders):
            number = max(1, calls // contender.cost // users)
            elapsed = timeit.timeit(contender.run_all, number=number)
            best[i] = min(best[i], elapsed / (number * users) * 1e9)
    return best


# -- report ---------------------------------------------------------------------------------


def make_users(count: int) -> list[str]:
    extras = ["josé", "用户", "ユーザー", "😀", "alice@example.com", ""]
    return extras + [f"user-{i}" for i in range(count - len(extras))]


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, Python {platform.python_version()} ({platform.python_implementation()})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument(
        "--calls", type=int, default=400_000, help="flagops calls per round (others: fewer)"
    )
    args = parser.parse_args(argv if argv is not None else [])
    # The competitors log about their own offline set-up (flagd logs an error for
    # the empty user id on every call): silence it so logging costs nobody time.
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _run(args.users, args.calls)
    finally:
        logging.disable(logging.NOTSET)


def _run(user_count: int, calls: int) -> int:
    users = make_users(user_count)
    problems: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="flagops-bench-") as tmp,
        no_network() as guard,
        ExitStack() as stack,
    ):
        workdir = Path(tmp)
        contenders = flagops_contenders(stack, workdir, users)
        ours = contenders[0].results
        unleash: Contender | None = None
        flagd: Contender | None = None
        try:
            unleash = unleash_contender(stack, workdir, users)
            contenders.append(unleash)
        except Exception as exc:
            problems.append(f"UnleashClient: {type(exc).__name__}: {exc}")
        try:
            flagd = flagd_contender(stack, workdir, users)
            contenders.append(flagd)
        except Exception as exc:
            problems.append(f"flagd: {type(exc).__name__}: {exc}")
        timings = time_interleaved(contenders, calls, len(users))

    base = timings[0]
    print(f"SDK evaluation, flag {KEY!r} at {PERCENT}%, {len(users):,} users; {machine()}")
    print(f"{'SDK':<52} {'ns/call':>10} {'vs flagops':>11} {'enabled':>8}")
    for contender, ns in zip(contenders, timings, strict=True):
        ratio = f"{ns / base:,.0f}x"
        share = sum(contender.results) / len(users)
        note = f"  ({contender.note})" if contender.note else ""
        print(f"{contender.name:<52} {ns:>10,.0f} {ratio:>11} {share:>8.2%}{note}")
    if unleash is not None:
        mismatches = sum(a != b for a, b in zip(ours, unleash.results, strict=True))
        print(
            f"flagops vs Unleash flexibleRollout(groupId=key): {mismatches} mismatches"
            f" of {len(users):,} users"
        )
        if mismatches:
            problems.append(f"{mismatches} users bucketed differently from Unleash")
    if flagd is not None:
        same = sum(a == b for a, b in zip(ours, flagd.results, strict=True))
        print(
            f"flagops vs flagd fractional: same answer for {same / len(users):.1%} of users"
            " (not expected to match: flagd hashes differently)"
        )
    print(f"network connection attempts during the run: {len(guard.attempts)}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
