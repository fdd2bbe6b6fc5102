"""One bad flag never stops the others: resolution, status reports, the back-off."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime

import pytest

from flagops.controller.coalescer import Coalescer
from flagops.controller.publisher import PublishFailed
from flagops.flags.document import FlagState
from flagops.publishing.record import FlagRecord
from flagops.publishing.resolve import FlagInput, RolloutControl, effective_state, resolve
from flagops.publishing.status import desired_status

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def flag(name: str, created: str = "2026-01-01T00:00:00Z", **spec: object) -> FlagInput:
    return FlagInput.from_spec(name, created, spec)


def test_a_flag_that_cannot_be_resolved_does_not_abort_the_document() -> None:
    def fragile(f: FlagInput, control: RolloutControl | None) -> tuple[FlagState, str]:
        if f.name == "bad":
            raise RuntimeError("boom")
        return effective_state(f, control)

    bad = flag("bad", key="shared")
    heir = flag("heir", created="2026-02-01T00:00:00Z", key="shared", rolloutPercent=5)
    result = resolve([bad, heir, flag("fine", enabled=True)], [], fragile)
    assert set(result.published) == {"shared", "fine"}
    assert result.published["shared"].rollout_percent == 5  # the next owner publishes
    assert result.outcomes["bad"].error is not None and "boom" in result.outcomes["bad"].error
    assert result.outcomes["heir"].published


def test_order_is_oldest_first_and_leave_out_marks_the_flags() -> None:
    result = resolve(
        [flag("b", created="2026-03-01T00:00:00Z"), flag("a", created="2026-04-01T00:00:00Z")],
        [],
    )
    assert result.order == ("b", "a")
    trimmed = result.leave_out(["a"])
    assert set(trimmed.published) == {"b"} and trimmed.order == ("b",)
    assert trimmed.outcomes["a"].omitted and not trimmed.outcomes["a"].published
    assert not trimmed.outcomes["b"].omitted


def test_garbage_conditions_in_a_hand_edited_status_are_dropped() -> None:
    garbage = {"conditions": [{"type": 5}, "not a condition", {"status": "True"}]}
    record = FlagRecord("f", "uid-f", 1, flag("f", enabled=True), status=garbage)
    outcome = resolve([record.input], []).outcomes["f"]
    status, _ = desired_status(record, outcome, "rev", "feature-flags", NOW)
    assert [c["type"] for c in status["conditions"]] == ["Published", "Conflict"]


def test_left_out_and_unwritten_flags_do_not_say_published() -> None:
    record = FlagRecord("f", "uid-f", 1, flag("f", enabled=True))
    result = resolve([record.input], []).leave_out(["f"])
    status, _ = desired_status(record, result.outcomes["f"], "rev", "feature-flags", NOW, 1000)
    published = status["conditions"][0]
    assert (published["status"], published["reason"]) == ("False", "DocumentTooLarge")
    assert "1000 bytes" in published["message"] and status["publishedRevision"] is None


def test_failures_back_off_and_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> tuple[list[float], Coalescer]:
        loop = asyncio.get_running_loop()
        attempts: list[float] = []

        async def flush() -> bool:
            attempts.append(loop.time())
            if len(attempts) < 5:
                raise PublishFailed("ConfigMap shop/feature-flags not written: HTTP 500")
            return True

        coalescer = Coalescer(
            flush,
            min_interval=0.01,
            max_interval=0.02,
            retry_initial=0.05,
            retry_max=0.2,
            expected=(PublishFailed,),
            name="shop",
        )
        coalescer.request()
        await asyncio.wait_for(coalescer.wait_idle(), timeout=10)
        return attempts, coalescer

    with caplog.at_level(logging.INFO, logger="flagops.controller.coalescer"):
        attempts, coalescer = asyncio.run(scenario())
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert len(attempts) == 5
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.19 and gaps[3] >= 0.19
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and not warnings[0].exc_info
    assert any("recovered after 4" in r.getMessage() for r in caplog.records)
    assert coalescer.failures == 0


def test_one_namespace_failing_does_not_delay_another() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()

        async def broken() -> bool:
            raise PublishFailed("down")

        done = asyncio.Event()

        async def healthy() -> bool:
            done.set()
            return True

        stuck = Coalescer(broken, min_interval=0.01, max_interval=0.02, expected=(PublishFailed,))
        fine = Coalescer(healthy, min_interval=0.01, max_interval=0.02)
        stuck.request()
        await asyncio.sleep(0)
        started = loop.time()
        fine.request()
        await asyncio.wait_for(done.wait(), timeout=5)
        took = loop.time() - started
        await stuck.close()
        await fine.close()
        return took

    assert asyncio.run(scenario()) < 0.5


def test_index_functions_never_raise_on_an_unreadable_object() -> None:
    from typing import Any, cast

    from flagops.controller.events import flag_record, rollout_control

    meta = {"name": "odd", "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z"}
    odd_flag = cast(Any, {"metadata": meta, "spec": ["not", "a", "map"], "status": "garbage"})
    record = flag_record(odd_flag)
    assert record.name == "odd" and record.input.key is None and record.input.spec_error
    # It resolves as an unpublished flag with the reason; the others are untouched.
    result = resolve([record.input, flag("fine", enabled=True)], [])
    assert set(result.published) == {"fine"} and result.outcomes["odd"].error

    odd_rollout = cast(
        Any,
        {
            "metadata": meta,
            "spec": {"flagRef": {"name": "f"}, "internalCohorts": 5},
            "status": {"stage": "BETA"},
        },
    )
    assert rollout_control(odd_rollout) is None
