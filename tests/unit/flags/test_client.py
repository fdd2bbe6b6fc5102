"""FeatureFlags: evaluation order, user context, and following a mounted ConfigMap."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from flagops.flags import FeatureFlags, build_document, canonical_json, revision_of
from flagops.flags.evaluate import bucket

# The client polls every 0.5 s, so a change is seen within a second on an idle machine;
# the deadline leaves room for a loaded CI machine (timing is not what these tests check).
RELOAD_DEADLINE = 5.0

KEY = "calendar_sync"


def _errors(registry: CollectorRegistry, path: Path | None) -> float:
    value = registry.get_sample_value("flagops_flags_reload_errors_total", {"path": str(path)})
    return value or 0.0


def _user_in(percent_low: int, percent_high: int, key: str = KEY) -> str:
    """A user whose bucket for `key` is in (percent_low, percent_high]."""
    return next(
        u
        for u in (f"user-{i}" for i in range(10_000))
        if percent_low < bucket(key, u) <= percent_high
    )


@pytest.fixture
def client(volume: Any, make_client: Any, flag_state: Any) -> FeatureFlags:
    volume.write_flags(
        {
            KEY: flag_state(25, allowedCohorts=["beta"]),
            "off": flag_state(100, enabled=False),
            "everyone": flag_state(100),
        }
    )
    return make_client(volume.root)  # type: ignore[no-any-return]


# -- evaluation order ---------------------------------------------------------------------


def test_reads_the_mounted_folder(client: FeatureFlags, volume: Any) -> None:
    assert client.path == volume.root / "flags.json"
    assert client.keys() == [KEY, "everyone", "off"]
    assert client.get(KEY) == {
        "enabled": True,
        "rolloutPercent": 25,
        "allowedCohorts": ["beta"],
        "startDate": None,
        "endDate": None,
        "stage": None,
        "metadata": {},
    }
    assert client.get("nope") is None
    assert client.revision is not None and len(client.revision) == 64


def test_percent_and_cohorts(client: FeatureFlags) -> None:
    inside, outside = _user_in(0, 25), _user_in(25, 100)
    assert client.is_enabled(KEY, inside) is True
    assert client.is_enabled(KEY, outside) is False
    assert client.is_enabled(KEY, outside, cohort="beta") is True
    assert client.is_enabled(KEY, None, cohort="beta") is True
    assert client.is_enabled(KEY, None) is False
    assert client.is_enabled("off", inside, cohort="beta") is False
    assert client.is_enabled("everyone") is True


def test_unknown_key_gives_the_default(client: FeatureFlags) -> None:
    assert client.is_enabled("unknown", "u") is False
    assert client.is_enabled("unknown", "u", default=True) is True
    # a known key ignores the default
    assert client.is_enabled("off", "u", default=True) is False


def test_override_wins_and_clears(client: FeatureFlags) -> None:
    outside = _user_in(25, 100)
    client.set_override(KEY, True)
    client.set_override("off", True)
    client.set_override("unknown", True)
    client.set_override("everyone", False)
    assert client.is_enabled(KEY, outside) is True
    assert client.is_enabled("off") is True
    assert client.is_enabled("unknown", default=False) is True
    assert client.is_enabled("everyone") is False
    client.clear_override(KEY)
    client.clear_override("unknown")
    client.clear_override("never-set")
    assert client.is_enabled(KEY, outside) is False
    assert client.is_enabled("unknown", default=False) is False
    assert client.is_enabled("off") is True


def test_user_context_fills_what_the_call_leaves_out(client: FeatureFlags) -> None:
    inside, outside = _user_in(0, 25), _user_in(25, 100)
    assert client.is_enabled(KEY) is False
    client.set_user_context(inside, None)
    assert client.is_enabled(KEY) is True
    assert client.is_enabled(KEY, outside) is False  # an explicit user wins
    client.set_user_context(outside, "beta")
    assert client.is_enabled(KEY) is True  # via the context's cohort
    assert client.is_enabled(KEY, cohort="gamma") is False  # explicit cohort wins
    client.set_user_context(None, None)
    assert client.is_enabled(KEY) is False


def test_date_window_uses_the_clock(volume: Any, make_client: Any, flag_state: Any) -> None:
    volume.write_flags(
        {
            KEY: flag_state(
                100, startDate="2026-06-01T12:00:00Z", endDate="2026-06-02T00:00:00+00:00"
            )
        }
    )
    start = datetime(2026, 6, 1, 12, tzinfo=UTC)
    now = [start - timedelta(microseconds=1)]
    client = make_client(volume.root, reload_interval=0, clock=lambda: now[0])
    assert client.is_enabled(KEY, "u") is False
    now[0] = start
    assert client.is_enabled(KEY, "u") is True
    now[0] = start + timedelta(hours=12)
    assert client.is_enabled(KEY, "u") is False


# -- loading and reloading ------------------------------------------------------------


def test_accepts_the_file_path_too(volume: Any, make_client: Any, flag_state: Any) -> None:
    volume.write_flags({KEY: flag_state(100)})
    client = make_client(volume.root / "flags.json")
    assert client.is_enabled(KEY, "u") is True


def test_follows_the_kubelet_symlink_swap(
    client: FeatureFlags, volume: Any, flag_state: Any, wait_for: Any
) -> None:
    user = _user_in(25, 50)
    assert client.is_enabled(KEY, user) is False
    revision = volume.write_flags({KEY: flag_state(50)})
    wait_for(
        lambda: client.revision == revision,
        timeout=RELOAD_DEADLINE,
        message="reload after ..data swap",
    )
    assert client.is_enabled(KEY, user) is True
    assert client.keys() == [KEY]


def test_swap_with_identical_mtime_and_size_is_seen(
    volume: Any, make_client: Any, flag_state: Any, wait_for: Any
) -> None:
    # Same size documents written within one mtime tick: only the real path tells them apart.
    volume.write_flags({KEY: flag_state(10)})
    client = make_client(volume.root)
    revision = volume.write_flags({KEY: flag_state(20)})
    wait_for(lambda: client.revision == revision, timeout=RELOAD_DEADLINE, message="reload")
    assert client.get(KEY)["rolloutPercent"] == 20


def test_explicit_reload_without_a_thread(volume: Any, make_client: Any, flag_state: Any) -> None:
    volume.write_flags({KEY: flag_state(0)})
    client = make_client(volume.root, reload_interval=0)
    assert client.reload() is False  # nothing changed
    revision = volume.write_flags({KEY: flag_state(100)})
    assert client.reload() is True
    assert client.revision == revision
    assert client.is_enabled(KEY, "u") is True


def test_malformed_file_keeps_the_last_good_state(
    client: FeatureFlags,
    volume: Any,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
    wait_for: Any,
) -> None:
    good = client.revision
    assert good is not None
    path = client.path
    assert _errors(registry, path) == 0
    caplog.set_level(logging.WARNING, logger="flagops.flags")
    volume.write_text('{"schema": 1, "flags": {"calendar_sync": SECRET-ISH}}')
    wait_for(lambda: _errors(registry, path) == 1, timeout=RELOAD_DEADLINE, message="error counted")
    assert client.revision == good
    assert client.is_enabled("everyone") is True
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("not valid JSON" in r.getMessage() for r in warnings)
    assert all("SECRET" not in r.getMessage() for r in caplog.records)

    # An invalid value (not a syntax error) is rejected the same way, and named.
    flags_obj = {KEY: {"enabled": True, "rolloutPercent": 101}}
    doc = {"schema": 1, "revision": revision_of(flags_obj), "flags": flags_obj}
    volume.write_text(canonical_json(doc))
    wait_for(
        lambda: _errors(registry, path) == 2,
        timeout=RELOAD_DEADLINE,
        message="second error counted",
    )
    assert client.revision == good
    assert any(
        "rolloutPercent" in r.getMessage() and "101" not in r.getMessage() for r in caplog.records
    )

    # and a good file afterwards is picked up again
    text, revision = build_document({KEY: {"enabled": True, "rolloutPercent": 100}})
    volume.write_text(text)
    wait_for(lambda: client.revision == revision, timeout=RELOAD_DEADLINE, message="recovery")
    assert client.is_enabled(KEY, _user_in(25, 100)) is True
    assert _errors(registry, path) == 2
    info = registry.get_sample_value(
        "flagops_flags_revision_info", {"path": str(path), "revision": revision}
    )
    assert info == 1
    old_info = registry.get_sample_value(
        "flagops_flags_revision_info", {"path": str(path), "revision": good}
    )
    assert old_info is None


def test_a_bad_version_is_counted_once(
    client: FeatureFlags, volume: Any, registry: CollectorRegistry
) -> None:
    volume.write_text("not json")
    for _ in range(3):
        client.reload()
    assert _errors(registry, client.path) == 1


def test_deleted_file_keeps_the_last_state(
    client: FeatureFlags, volume: Any, registry: CollectorRegistry, wait_for: Any
) -> None:
    good = client.revision
    volume.remove_payload()
    wait_for(
        lambda: _errors(registry, client.path) == 1,
        timeout=RELOAD_DEADLINE,
        message="missing file noticed",
    )
    assert client.revision == good
    assert client.is_enabled("everyone") is True


def test_missing_file_at_start_means_defaults(
    tmp_path: Path,
    make_client: Any,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
    flag_state: Any,
    wait_for: Any,
) -> None:
    caplog.set_level(logging.WARNING, logger="flagops.flags")
    path = tmp_path / "flags.json"
    client = make_client(path)
    assert client.revision is None
    assert client.keys() == []
    assert client.is_enabled(KEY, "u") is False
    assert client.is_enabled(KEY, "u", default=True) is True
    assert _errors(registry, path) == 1
    assert any("missing" in r.getMessage() for r in caplog.records)

    text, revision = build_document({KEY: flag_state(100)})
    path.write_text(text, encoding="utf-8")
    wait_for(lambda: client.revision == revision, timeout=RELOAD_DEADLINE, message="file appeared")
    assert client.is_enabled(KEY, "u") is True


def test_unreadable_entry_never_raises(
    client: FeatureFlags, volume: Any, registry: CollectorRegistry
) -> None:
    volume.write_bytes(b'{"schema": 1, "flags": {"\xff": {}}}')
    client.reload()
    volume.write_text("[]")
    client.reload()
    assert _errors(registry, client.path) == 2
    assert client.is_enabled("everyone") is True


def test_clients_share_metrics_per_registry(volume: Any, make_client: Any, flag_state: Any) -> None:
    volume.write_flags({KEY: flag_state(100)})
    first = make_client(volume.root)
    second = make_client(volume.root)  # same registry: must not fail on duplicate collectors
    assert first.is_enabled(KEY, "u") and second.is_enabled(KEY, "u")


def test_close_stops_the_thread_and_context_manager(
    volume: Any, registry: CollectorRegistry, flag_state: Any
) -> None:
    volume.write_flags({KEY: flag_state(100)})
    before = {t.name for t in threading.enumerate()}
    with FeatureFlags(volume.root, registry=registry) as client:
        assert any(t.name.startswith("flagops-flags-reload") for t in threading.enumerate())
        assert client.is_enabled(KEY, "u") is True
    assert {t.name for t in threading.enumerate()} <= before
    assert client.is_enabled(KEY, "u") is True  # still answers after close


def test_concurrent_readers_never_see_half_a_document(
    volume: Any, make_client: Any, flag_state: Any
) -> None:
    # Document i shows both flags to cohorts c0..ci, and documents only move forward. A
    # reader follows the frontier through is_enabled itself: once one flag shows cohort
    # c<j>, the other, read after it, must show it too. A document applied flag by flag
    # instead of swapped whole shows one flag new and the other old.
    steps = 60

    def document(i: int) -> dict[str, Any]:
        cohorts = [f"c{j}" for j in range(i + 1)]
        return {
            "a": flag_state(0, allowedCohorts=cohorts),
            "b": flag_state(0, allowedCohorts=cohorts),
        }

    volume.write_flags(document(0))
    client = make_client(volume.root, reload_interval=0)
    torn: list[tuple[str, int]] = []
    frontiers: list[int] = []
    deadline = time.monotonic() + 60  # only a broken client gets anywhere near it

    def follow(first: str, second: str) -> None:
        j = 1
        while j < steps and time.monotonic() < deadline:
            cohort = f"c{j}"
            if client.is_enabled(first, cohort=cohort):
                if not client.is_enabled(second, cohort=cohort):
                    torn.append((second, j))
                j += 1
        frontiers.append(j)

    readers = [threading.Thread(target=follow, args=pair) for pair in (("a", "b"), ("b", "a"))]
    for t in readers:
        t.start()
    for i in range(1, steps):
        volume.write_flags(document(i))
        assert client.reload() is True
    for t in readers:
        t.join()
    assert torn == []
    assert frontiers == [steps, steps]  # both readers saw every document's flags move


def test_odd_user_ids_hash_like_evaluate(volume: Any, make_client: Any, flag_state: Any) -> None:
    from flagops.flags import evaluate

    state = flag_state(50)
    volume.write_flags({KEY: state})
    client = make_client(volume.root, reload_interval=0)
    odd: list[Any] = [42, "", "\ud800lone", "josé", "用户"]
    results = [client.is_enabled(KEY, u) for u in odd]
    assert results == [evaluate(state, KEY, u) for u in odd]
    assert client.is_enabled(KEY, 42) is client.is_enabled(KEY, "42")


# -- details and listeners ----------------------------------------------------------------


def test_details_give_reason_stage_and_revision(
    volume: Any, make_client: Any, flag_state: Any
) -> None:
    from flagops.flags import Reason

    revision = volume.write_flags({KEY: flag_state(25, stage="EARLY_ACCESS")})
    client = make_client(volume.root, reload_interval=0)
    inside = _user_in(0, 25)
    details = client.details(KEY, inside)
    assert (details.value, details.reason, details.stage) == (True, Reason.SPLIT, "EARLY_ACCESS")
    assert (details.revision, details.overridden) == (revision, False)
    assert client.details("unknown") is None
    client.set_user_context(inside, None)
    assert client.details(KEY).value is True  # the context fills in, as for is_enabled
    client.set_override(KEY, False)
    forced = client.details(KEY, inside)
    assert (forced.value, forced.reason, forced.overridden) == (False, Reason.STATIC, True)
    assert forced.stage == "EARLY_ACCESS"
    client.set_override("unknown", True)
    assert client.details("unknown").value is True


def test_listeners_hear_new_documents_and_overrides(
    volume: Any, make_client: Any, flag_state: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from flagops.flags import Change

    first = volume.write_flags({"a": flag_state(10), "b": flag_state(10), "c": flag_state(10)})
    client = make_client(volume.root, reload_interval=0)
    heard: list[Change] = []

    def broken(change: Change) -> None:
        raise RuntimeError("listener bug")

    client.add_listener(broken)
    client.add_listener(heard.append)
    second = volume.write_flags({"a": flag_state(10), "b": flag_state(20), "d": flag_state(10)})
    assert client.reload() is True
    assert heard == [Change(second, first, frozenset({"b", "c", "d"}))]
    assert any("listener" in r.getMessage() for r in caplog.records)  # logged, not raised
    client.set_override("a", True)
    client.clear_override("a")
    client.clear_override("never-set")  # no change, no call
    assert heard[1:] == [Change(second, second, frozenset({"a"}))] * 2
    client.remove_listener(heard.append)
    volume.write_flags({"a": flag_state(0)})
    assert client.reload() is True
    assert len(heard) == 3


def test_the_same_revision_again_is_not_a_change(
    volume: Any, make_client: Any, flag_state: Any
) -> None:
    revision = volume.write_flags({KEY: flag_state(10)})
    client = make_client(volume.root, reload_interval=0)
    heard: list[Any] = []
    client.add_listener(heard.append)
    assert volume.write_flags({KEY: flag_state(10)}) == revision  # kubelet rewrote the same data
    assert client.reload() is False
    assert heard == []
