"""Which flags go to which namespace (spec.sharedWith), and the Shared condition's words."""

from __future__ import annotations

from flagops.api.stages import Stage
from flagops.publishing.resolve import FlagInput, RolloutControl, resolve
from flagops.publishing.sharing import (
    CopyResult,
    copy_name,
    owner_of_copy,
    plan_shares,
    share_report,
)

COPY = "feature-flags-from-a"


def flag(name: str, created: str = "2026-01-01T00:00:00Z", **spec: object) -> FlagInput:
    return FlagInput.from_spec(name, created, spec)


def test_each_target_gets_only_the_flags_shared_with_it() -> None:
    flags = [
        flag("calendar-sync", key="calendar_sync", enabled=True, sharedWith=["b", "c"]),
        flag("export-pdf", enabled=True, rolloutPercent=100, sharedWith=["b"]),
        flag("private", enabled=True),
    ]
    plan = plan_shares("a", flags, resolve(flags, []))
    assert sorted(plan.copies) == ["b", "c"]
    assert sorted(plan.copies["b"]) == ["calendar_sync", "export-pdf"]
    assert sorted(plan.copies["c"]) == ["calendar_sync"]
    assert plan.targets == {"calendar-sync": ("b", "c"), "export-pdf": ("b",)}


def test_a_copy_carries_the_published_state_including_the_rollout_stage() -> None:
    flags = [flag("f", enabled=False, sharedWith=["b"])]
    hold = RolloutControl("r", "f", Stage.BETA, ("internal",), "2026-01-01T00:00:00Z")
    resolution = resolve(flags, [hold])
    plan = plan_shares("a", flags, resolution)
    assert plan.copies["b"]["f"] is resolution.published["f"]
    assert plan.copies["b"]["f"].stage == "BETA"


def test_unpublished_flags_share_nothing() -> None:
    older = flag("older", "2026-01-01T00:00:00Z", key="k", enabled=True)
    newer = flag("newer", "2026-02-01T00:00:00Z", key="k", enabled=False, sharedWith=["b"])
    broken = FlagInput(name="broken", created="x", key=None, spec_error="bad", shared_with=("b",))
    flags = [older, newer, broken]
    plan = plan_shares("a", flags, resolve(flags, []))
    assert plan.copies == {}
    report = share_report(newer, "a", False, {}, COPY)
    assert (report.status, report.reason) == (False, "NotPublished")


def test_the_own_namespace_is_skipped() -> None:
    flags = [flag("f", enabled=True, sharedWith=["a", "b"])]
    plan = plan_shares("a", flags, resolve(flags, []))
    assert sorted(plan.copies) == ["b"]
    only_own = flag("g", sharedWith=["a"])
    report = share_report(only_own, "a", True, {}, COPY)
    assert (report.status, report.reason) == (False, "OwnNamespace")
    mixed = share_report(flags[0], "a", True, {"b": CopyResult.WRITTEN}, COPY)
    assert mixed.status is True
    assert "own namespace" in mixed.message


def test_report_names_every_target_and_leads_with_the_most_actionable_reason() -> None:
    f = flag("f", sharedWith=["b", "c", "d", "e"])
    results = {
        "b": CopyResult.WRITTEN,
        "c": CopyResult.NAMESPACE_NOT_FOUND,
        "d": CopyResult.NOT_MANAGED,
        "e": CopyResult.NOT_WATCHED,
    }
    report = share_report(f, "a", True, results, COPY)
    assert report.status is False
    assert report.reason == "ConfigMapNotManaged"
    assert report.blocked == ("d",)
    assert report.message.startswith(f"shared with b (ConfigMap {COPY})")
    for target in "cde":
        assert f"not shared with {target}:" in report.message
    all_ok = share_report(f, "a", True, dict.fromkeys("bcde", CopyResult.WRITTEN), COPY)
    assert (all_ok.status, all_ok.reason, all_ok.blocked) == (True, "Shared", ())
    missing = share_report(f, "a", True, {}, COPY)
    assert missing.reason == "WriteFailed"


def test_copy_names_round_trip_only_with_the_matching_label() -> None:
    name = copy_name("feature-flags", "team-a")
    assert name == "feature-flags-from-team-a"
    assert owner_of_copy("feature-flags", name, "team-a") == "team-a"
    assert owner_of_copy("feature-flags", name, "team") is None
    assert owner_of_copy("feature-flags", name, None) is None
    assert owner_of_copy("flags", name, "team-a") is None
