"""The meal-plan page in headless chromium reads calendar_sync two ways (OpenFeature with
the OFREP web provider, and @flagops/sdk's stream) from the real relay, fed by the real
operator: a `kubectl flagops` change, cohorts and buckets."""

from __future__ import annotations

import pytest
from browser_world import FLAG_KEY, WorldFactory, wait_published

from flagops.flags import FeatureFlags
from flagops.flags.evaluate import bucket, evaluate
from flagops_devtools.demo.browser import LABELS, PATHS

pytestmark = pytest.mark.integration

# ASCII, accented, CJK, an astral emoji, and one with a space and a plus.
USER_IDS = ("ana", "user-042", "josé", "Zoë", "用户", "😀-fan", "a b+c")


def test_kubectl_flagops_disable_reaches_both_paths_within_a_second(
    web_world: WorldFactory,
) -> None:
    world = web_world()
    world.create_flag(enabled=True, rolloutPercent=100)
    wait_published(world, lambda s: s["enabled"] is True)
    page = world.open("grace")
    page.wait_shown(True)
    before = {path: page.state(path).revision for path in PATHS}

    started, returned = world.kubectl_flagops("flag", "disable", FLAG_KEY)

    page.wait_shown(False, timeout=10)
    for path in PATHS:
        state = page.state(path)
        assert state.changed_at is not None
        assert state.revision != before[path]
        # The plugin exits after its write, so the page may flip before it returns (< 0).
        delay = state.changed_at - returned
        print(
            f"kubectl flagops flag disable -> page ({LABELS[path]}): "
            f"{delay * 1000:+.0f} ms after the command returned, "
            f"{(state.changed_at - started) * 1000:.0f} ms after it started"
        )
        assert delay <= 1.0, f"{path}: the change took {delay:.3f}s to reach the page"


def test_a_cohort_user_sees_it_and_others_do_not(web_world: WorldFactory) -> None:
    world = web_world()
    world.create_flag(enabled=True, rolloutPercent=0, allowedCohorts=["beta"])
    wait_published(world, lambda s: s["enabled"] is True)
    beta = world.open("chloe", "beta")
    premium = world.open("emma", "premium")
    nobody = world.open("hugo")
    beta.wait_shown(True)
    premium.wait_shown(False)
    nobody.wait_shown(False)
    # Open the flag to everyone: the cohort user stays in, the others follow.
    world.kubectl_flagops("flag", "enable", FLAG_KEY, "--percent", "100")
    for page in (beta, premium, nobody):
        page.wait_shown(True)


def test_the_page_buckets_as_the_python_sdk_does(web_world: WorldFactory) -> None:
    world = web_world()
    world.create_flag(enabled=True, rolloutPercent=50)
    wait_published(world, lambda s: s["rolloutPercent"] == 50)
    with FeatureFlags.from_relay(world.app_relay_url, token=world.app_token) as flags:
        state = flags.get(FLAG_KEY)
        assert state is not None and state["rolloutPercent"] == 50
        answers = set()
        for user_id in USER_IDS:
            page = world.open(user_id)
            expected = flags.is_enabled(FLAG_KEY, user_id=user_id)
            assert expected == evaluate(state, FLAG_KEY, user_id, None)
            page.wait_shown(expected)
            assert page.bucket() == bucket(FLAG_KEY, user_id), user_id
            answers.add(expected)
            page.close()
            world.pages.remove(page)
    # At 50% the ids fall on both sides, so the comparison above saw both answers.
    assert answers == {True, False}
