"""Which shard serves a namespace: stable, even, and moving little when n changes."""

from __future__ import annotations

import argparse
import collections
from typing import Any

import kopf
import pytest

from flagops.controller.settings import add_arguments, from_args
from flagops.controller.shard import BASE_FINALIZER, Shard, shard_of
from flagops.controller.shard_handlers import restrict
from flagops.publishing.sharing import SHARED_FROM_LABEL

NAMES = [f"team-{i}" for i in range(20_000)]


def test_a_namespace_maps_to_the_same_shard_in_every_process() -> None:
    # Fixed answers: a change of hash (or a salted one) would move namespaces at upgrade.
    assert [shard_of(n, 2) for n in ("default", "team-a", "team-b", "payments")] == [1, 1, 0, 0]
    assert [shard_of(n, 3) for n in ("default", "team-a", "team-b", "kube-system")] == [2, 1, 0, 2]
    assert all(shard_of(n, 1) == 0 for n in NAMES[:100])


@pytest.mark.parametrize("count", [2, 3, 4, 7])
def test_namespaces_spread_evenly(count: int) -> None:
    sizes = collections.Counter(shard_of(n, count) for n in NAMES)
    assert sorted(sizes) == list(range(count))
    expected = len(NAMES) / count
    assert all(abs(size - expected) < 0.05 * expected for size in sizes.values()), sizes


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_growing_by_one_shard_moves_only_what_the_new_shard_takes(count: int) -> None:
    moved = [n for n in NAMES if shard_of(n, count) != shard_of(n, count + 1)]
    assert all(shard_of(n, count + 1) == count for n in moved)
    share = len(moved) / len(NAMES)
    assert abs(share - 1 / (count + 1)) < 0.02, share


def test_shard_spec_is_checked() -> None:
    assert Shard.parse("1/3") == Shard(1, 3)
    assert Shard.parse(" 0 / 2 ") == Shard(0, 2)
    for bad in ("2/2", "-1/2", "1", "a/b", "0/0", ""):
        with pytest.raises(ValueError, match="--shard"):
            Shard.parse(bad)


def test_one_shard_keeps_todays_names() -> None:
    assert Shard().peering_name("flagops") == "flagops"
    assert Shard().finalizer == BASE_FINALIZER == "flagops.dev/finalizer"
    assert Shard(0, 1).owns("anything") and Shard(0, 1).owns(None)


def test_each_shard_has_its_own_peering_and_finalizer() -> None:
    shards = [Shard(i, 3) for i in range(3)]
    assert [s.peering_name("flagops") for s in shards] == [
        "flagops",
        "flagops-shard-1",
        "flagops-shard-2",
    ]
    assert Shard(1, 2).peering_name("flagops") == Shard(1, 3).peering_name("flagops")
    assert len({s.finalizer for s in shards}) == 3
    assert shards[0].finalizer == BASE_FINALIZER
    # No namespace, no owner: nothing cluster-scoped is sharded.
    assert not any(s.owns(None) for s in shards)
    assert [sum(s.owns(n) for s in shards) for n in NAMES[:200]] == [1] * 200


def test_only_finalizers_of_shards_that_no_longer_run_are_stale() -> None:
    found = [
        "flagops.dev/finalizer",
        "flagops.dev/finalizer-shard-1",
        "flagops.dev/finalizer-shard-2",
        "flagops.dev/finalizer-shard-7",
        "other.dev/finalizer-shard-9",
    ]
    assert Shard(0, 2).stale_finalizers(found) == [
        "flagops.dev/finalizer-shard-2",
        "flagops.dev/finalizer-shard-7",
    ]
    assert Shard(0, 8).stale_finalizers(found) == []


def parse(*argv: str) -> Shard:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_args(parser.parse_args(list(argv))).shard


def test_shard_comes_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse() == Shard(0, 1)
    assert parse("--shard", "1/2") == Shard(1, 2)
    monkeypatch.setenv("FLAGOPS_SHARD", "2/3")
    assert parse() == Shard(2, 3)
    assert parse("--shard", "0/3") == Shard(0, 3)


def test_a_bad_shard_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--shard", "3/3")
    assert "--shard wants i/n with 0 <= i < n, got 3/3" in capsys.readouterr().err


def handler_filters(registry: kopf.OperatorRegistry) -> list[Any]:
    return [
        *registry._indexing._handlers,
        *registry._watching._handlers,
        *registry._spawning._handlers,
    ]


def test_every_resource_handler_is_confined_to_its_shard() -> None:
    registry = kopf.OperatorRegistry()
    calls: list[str] = []

    def own_filter(name: str, **_: Any) -> bool:
        calls.append(name)
        return name != "skipped"

    @kopf.on.event("flagops.dev", "v1alpha1", "rollouts", registry=registry)
    def watch(**_: Any) -> None: ...

    @kopf.index("flagops.dev", "v1alpha1", "featureflags", when=own_filter, registry=registry)
    def index(**_: Any) -> None: ...

    @kopf.daemon("flagops.dev", "v1alpha1", "rollouts", registry=registry)
    async def daemon(**_: Any) -> None: ...

    shard = Shard(0, 2)
    restrict(registry, shard, kube=None)  # type: ignore[arg-type]
    mine = next(n for n in NAMES if shard.owns(n))
    theirs = next(n for n in NAMES if not shard.owns(n))
    handlers = handler_filters(registry)
    # Three of ours and the stale-finalizer sweep.
    assert len(handlers) == 4
    for handler in handlers:
        assert handler.when(namespace=mine, name="x") is True
        assert handler.when(namespace=theirs, name="x") is False
        # A shared copy goes with its owner's publishing, wherever it lies.
        copy_of = {SHARED_FROM_LABEL: mine}
        assert handler.when(namespace=theirs, labels=copy_of, name="x") is True
        assert handler.when(namespace=mine, labels={SHARED_FROM_LABEL: theirs}, name="x") is False
        # Namespaces (cluster-scoped) reach every shard; each answers for its own.
        assert handler.when(namespace=None, name="x") is True
    indexer: Any = registry._indexing._handlers[0]
    # A handler's own filter still applies, and only to objects of the shard.
    assert indexer.when(namespace=mine, name="skipped") is False
    assert calls == ["x", "x", "x", "skipped"]


def test_one_shard_filters_nothing() -> None:
    registry = kopf.OperatorRegistry()

    @kopf.on.event("flagops.dev", "v1alpha1", "rollouts", registry=registry)
    def watch(**_: Any) -> None: ...

    restrict(registry, Shard(), kube=None)  # type: ignore[arg-type]
    ours, sweep = handler_filters(registry)
    assert ours.when is None
    # The stale-finalizer sweep runs on one shard too: n may have just shrunk to 1.
    assert sweep.id == "shard_finalizers" and sweep.when(namespace="any", name="x") is True


def test_the_cli_names_each_namespaces_shard(capsys: pytest.CaptureFixture[str]) -> None:
    from flagops.cli.main import main

    assert main(["shard", "--shards", "2", "default", "team-b"]) == 0
    assert capsys.readouterr().out.split() == ["default", "1/2", "team-b", "0/2"]
    assert main(["shard", "--shards", "0", "default"]) == 2
    assert "--shards is at least 1" in capsys.readouterr().err
