"""kubectl-flagops: parsing, output and exit codes, over FakeRolloutManager and FakeFlagAdmin."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from flagops.api.resources import FEATUREFLAGS, ROLLOUTS
from flagops.api.stages import Stage
from flagops.cli import plugin
from flagops.cli import plugin_format as fmt
from flagops.clients.base import translate_api_error
from flagops.clients.errors import ClusterUnreachable, Forbidden, NotFound, ResourceNotInstalled
from flagops.clients.flag_admin import CompletedRollout, FlagChange, FlagSummary, summarize_flag
from flagops.clients.rollout_manager import ActionTimeout
from flagops.clients.rollout_summary import (
    ActionOutcome,
    Check,
    RolloutSummary,
    summarize_rollout,
)

NOW = datetime(2024, 12, 18, 12, 0, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


def rollout_object(name: str = "calendar-sync", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "generation": 2,
            "creationTimestamp": ts(600),
            "resourceVersion": "7",
        },
        "spec": {"flagRef": {"name": "calendar-sync"}, "analysis": {"errorThreshold": 0.05}},
        "status": status,
    }


BUSY_STATUS: dict[str, Any] = {
    "stage": "BETA",
    "phase": "Progressing",
    "currentPercent": 10,
    "message": "waiting for samples: 40 of 100",
    "stageStartedAt": ts(300),
    "lastAnalysis": {"time": ts(30), "errorRate": 0.012, "samples": 340, "verdict": "Pass"},
    "lastProbe": {"job": "probe-1", "time": ts(90), "result": "Succeeded", "message": "ok"},
    "healthHistory": [
        {"time": ts(30), "source": "Analysis", "verdict": "Pass", "stage": "BETA",
         "errorRate": 0.012, "samples": 340},
        {"time": ts(90), "source": "Probe", "verdict": "Pass", "job": "probe-1"},
    ],
    "lastAction": {"name": "advance", "id": "1-a", "at": ts(120), "result": "Succeeded",
                   "message": "INTERNAL -> BETA"},
}  # fmt: skip


def flag_summary(key: str = "calendar_sync", **kw: Any) -> FlagSummary:
    values: dict[str, Any] = {
        "name": key.replace("_", "-"), "key": key, "enabled": True, "percent": 10,
        "cohorts": ("beta", "internal"), "stage": "BETA", "source": "rollout/calendar-sync",
        "spec_enabled": False, "spec_percent": 0, "spec_cohorts": ("beta",),
    }  # fmt: skip
    values.update(kw)
    return FlagSummary(**values)


@dataclass
class FakeRolloutManager:
    """Stands in for RolloutManager: records calls, answers from canned data."""

    namespace: str = "ns"
    result: str = "Succeeded"
    raise_error: BaseException | None = None
    checks: list[Check] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def _maybe_raise(self) -> None:
        if self.raise_error is not None:
            raise self.raise_error

    def get_rollout_status(self, name: str) -> RolloutSummary:
        self._maybe_raise()
        self.calls.append(("status", name))
        return summarize_rollout(rollout_object(name, **BUSY_STATUS))

    def list_rollouts(self) -> list[RolloutSummary]:
        self._maybe_raise()
        return [summarize_rollout(rollout_object("a", **BUSY_STATUS))]

    def watch_rollouts(self, name: str | None = None) -> Iterator[RolloutSummary]:
        yield summarize_rollout(rollout_object(name or "a", **BUSY_STATUS))
        yield summarize_rollout(rollout_object(name or "a", **{**BUSY_STATUS, "stage": "LIMITED"}))
        raise KeyboardInterrupt

    def act(
        self, name: str, verb: Any, reason: str | None = None, force: bool = False,
        timeout: float = 30,
    ) -> ActionOutcome:  # fmt: skip
        self._maybe_raise()
        self.calls.append(("act", name, verb, reason, force, timeout))
        return ActionOutcome(
            name=name, verb=str(verb), id="9-b", result=self.result, message="done",
            status=summarize_rollout(rollout_object(name, **BUSY_STATUS)),
        )  # fmt: skip

    def validate_rollout(self, name: str) -> list[Check]:
        self._maybe_raise()
        return self.checks


@dataclass
class FakeFlagAdmin:
    """Stands in for FlagAdmin."""

    namespace: str = "ns"
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    flags: list[FlagSummary] = field(default_factory=lambda: [flag_summary()])

    def _change(self) -> FlagChange:
        return FlagChange(before=flag_summary(), after=flag_summary(), changed=True)

    def list_flags(self) -> list[FlagSummary]:
        return self.flags

    def enable_flag(self, key: str, percent: int | None = None) -> FlagChange:
        self.calls.append(("enable", key, percent))
        return self._change()

    def disable_flag(self, key: str) -> FlagChange:
        self.calls.append(("disable", key))
        return self._change()

    def rollback(self, key: str, decrement: int) -> FlagChange:
        self.calls.append(("rollback", key, decrement))
        return self._change()

    def set_cohorts(self, key: str, cohorts: Iterable[str]) -> FlagChange:
        self.calls.append(("set", key, list(cohorts)))
        return self._change()

    def complete_rollout(self, rollout: str) -> CompletedRollout:
        self.calls.append(("complete", rollout))
        return CompletedRollout(rollout, "calendar-sync", Stage.BETA, self._change())


@dataclass
class Run:
    code: int
    out: str
    err: str
    args: argparse.Namespace | None


def run(
    argv: list[str],
    rollouts: FakeRolloutManager | None = None,
    flags: FakeFlagAdmin | None = None,
) -> Run:
    seen: list[argparse.Namespace] = []
    rollouts = rollouts or FakeRolloutManager()
    flags = flags or FakeFlagAdmin()

    def factory(args: argparse.Namespace) -> plugin.Clients:
        seen.append(args)
        return plugin.Clients(rollouts=rollouts, flags=flags)

    out, err = io.StringIO(), io.StringIO()
    code = plugin.main(argv, clients=factory, out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue(), seen[0] if seen else None)


# --- parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "team", "--context", "c", "--kubeconfig", "/k", "flags"],
        ["flags", "-n", "team", "--context", "c", "--kubeconfig", "/k"],
        ["--namespace", "team", "flag", "enable", "k", "--context", "c", "--kubeconfig=/k"],
    ],
)
def test_global_options_before_or_after_the_command(argv: list[str]) -> None:
    result = run(argv)
    assert result.code == 0
    assert result.args is not None
    assert (result.args.namespace, result.args.context, result.args.kubeconfig) == (
        "team", "c", "/k",
    )  # fmt: skip


def test_no_global_options_leave_them_unset_for_the_kubeconfig_to_decide() -> None:
    result = run(["flags"])
    assert result.args is not None
    assert (result.args.namespace, result.args.context, result.args.kubeconfig) == (None,) * 3


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["advance"],
        ["frobnicate", "x"],
        ["flag", "enable", "k", "--percent", "101"],
        ["flag", "enable", "k", "--percent", "ten"],
        ["flag", "rollback", "k"],
        ["flag", "rollback", "k", "--by", "-5"],
        ["flag", "set", "k"],
        ["pause", "r", "--force"],
        ["pause", "r", "--timeout", "0"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(argv)
    assert exc.value.code == plugin.EXIT_USAGE
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("verb", plugin.ACTION_VERBS)
def test_action_verbs_pass_reason_force_and_timeout(verb: str) -> None:
    fake = FakeRolloutManager()
    extra = ["--force"] if verb == "advance" else []
    result = run([verb, "r1", "--reason", "on call", "--timeout", "2.5", *extra], rollouts=fake)
    assert result.code == 0
    assert fake.calls == [("act", "r1", verb, "on call", verb == "advance", 2.5)]
    assert f'{verb} on rollout "r1": Succeeded: done' in result.out


def test_default_timeout_is_30_seconds() -> None:
    fake = FakeRolloutManager()
    run(["check", "r1"], rollouts=fake)
    assert fake.calls[0][-1] == 30.0


@pytest.mark.parametrize(("result", "code"), [("Succeeded", 0), ("Rejected", 1), ("Failed", 1)])
def test_action_exit_code_follows_the_result(result: str, code: int) -> None:
    assert run(["advance", "r"], rollouts=FakeRolloutManager(result=result)).code == code


@pytest.mark.parametrize(
    ("error", "code", "text"),
    [
        (
            ActionTimeout("r", "ns", "pause", "1-a", 3.0),
            3,
            'timed out after 3.0s waiting for the operator to handle "pause" (id 1-a)'
            ' on rollout "r"',
        ),
        (NotFound(ROLLOUTS, "r", "ns"), 4, 'rollout "r" not found in namespace "ns"'),
        (
            Forbidden("patch", "rollouts.flagops.dev", "ns"),
            4,
            'forbidden: you may not patch rollouts.flagops.dev in namespace "ns"',
        ),
        (
            ResourceNotInstalled(ROLLOUTS),
            4,
            "does not know rollouts.flagops.dev: are the flagops CRDs installed?",
        ),
        (ClusterUnreachable("cannot reach 127.0.0.1: is the cluster up?"), 5, "cannot reach"),
        (ApiException(status=500, reason="Server Error"), 1, "answered 500 Server Error"),
    ],
)  # fmt: skip
def test_expected_errors_are_one_line_without_traceback(
    error: BaseException, code: int, text: str
) -> None:
    result = run(["pause", "r"], rollouts=FakeRolloutManager(raise_error=error))
    assert result.code == code
    assert result.err == f"error: {result.err[7:]}"
    assert text in result.err
    assert result.err.count("\n") == 1
    assert "Traceback" not in result.err


def test_a_bug_keeps_its_traceback() -> None:
    with pytest.raises(ZeroDivisionError):
        run(["pause", "r"], rollouts=FakeRolloutManager(raise_error=ZeroDivisionError()))


# --- commands ----------------------------------------------------------------------


def test_flag_verbs_call_the_flag_api() -> None:
    fake = FakeFlagAdmin()
    assert run(["flag", "enable", "a", "--percent", "30"], flags=fake).code == 0
    assert run(["flag", "enable", "b"], flags=fake).code == 0
    assert run(["flag", "disable", "c"], flags=fake).code == 0
    assert run(["flag", "rollback", "d", "--by", "15"], flags=fake).code == 0
    assert run(["flag", "set", "e", "--cohorts", "beta, internal,"], flags=fake).code == 0
    assert run(["flag", "set", "f", "--cohorts", ""], flags=fake).code == 0
    assert fake.calls == [
        ("enable", "a", 30), ("enable", "b", None), ("disable", "c"), ("rollback", "d", 15),
        ("set", "e", ["beta", "internal"]), ("set", "f", []),
    ]  # fmt: skip


def test_flag_change_under_a_rollout_says_the_rollout_decides() -> None:
    result = run(["flag", "disable", "calendar_sync"])
    assert 'featureflag "calendar-sync" (key calendar_sync) updated' in result.out
    assert 'note: rollout "calendar-sync" controls this flag' in result.out


def test_flags_lists_effective_state() -> None:
    flags = FakeFlagAdmin(
        flags=[flag_summary(), flag_summary("export_pdf", cohorts=(), stage=None, source="spec")]
    )
    lines = run(["flags"], flags=flags).out.splitlines()
    assert lines[0].split() == ["KEY", "ENABLED", "PERCENT", "COHORTS", "STAGE", "SOURCE"]
    assert lines[1].split() == [
        "calendar_sync",
        "true",
        "10",
        "beta,internal",
        "BETA",
        "rollout/calendar-sync",
    ]
    assert lines[2].split() == ["export_pdf", "true", "10", "-", "-", "spec"]  # fmt: skip


def test_flags_in_an_empty_namespace() -> None:
    assert "No feature flags in namespace" in run(["flags"], flags=FakeFlagAdmin(flags=[])).out


def test_validate_exit_code_and_table() -> None:
    good = [Check("flag exists", True, "ok"), Check("probe secret", True, "none", skipped=True)]
    result = run(["validate", "r"], rollouts=FakeRolloutManager(checks=good))
    assert result.code == 0
    assert [line.split()[0] for line in result.out.splitlines()] == ["RESULT", "OK", "SKIP"]
    bad = [*good, Check("one rollout per flag", False, "also rolled out by other")]
    result = run(["validate", "r"], rollouts=FakeRolloutManager(checks=bad))
    assert result.code == 1
    assert "FAIL" in result.out
    assert "1 check(s) failed: one rollout per flag" in result.out


def test_complete_reports_the_stage_written() -> None:
    fake = FakeFlagAdmin()
    result = run(["complete", "calendar-sync"], flags=fake)
    assert result.code == 0
    assert fake.calls == [("complete", "calendar-sync")]
    assert 'rollout "calendar-sync" completed at stage BETA and deleted' in result.out


def test_status_watch_prints_each_change_and_ends_quietly_on_ctrl_c() -> None:
    result = run(["status", "r1", "-w"])
    assert result.code == 0
    assert result.out.count("---") == 2
    assert "Stage:       BETA (10%)" in result.out
    assert "Stage:       LIMITED (10%)" in result.out


def test_status_watch_all_prints_one_header_then_rows() -> None:
    result = run(["status", "--watch"])
    lines = result.out.splitlines()
    assert lines[0].startswith("NAME")
    assert [line.split()[2] for line in lines[1:]] == ["BETA", "LIMITED"]


# --- formatting --------------------------------------------------------------------


def test_rollout_detail_shows_every_part() -> None:
    summary = summarize_rollout(rollout_object(**BUSY_STATUS))
    text = fmt.rollout_detail(summary, now=NOW)
    assert "Stage:       BETA (10%), target FULL, in stage for 5m" in text
    assert "Phase:       Progressing" in text
    assert "Message:     waiting for samples: 40 of 100" in text
    assert (
        "Error rate:  1.20% (threshold 5.00%), samples 340 (min 100), verdict Pass 30s ago" in text
    )
    assert "Last probe:  Succeeded 90s ago (job probe-1): ok" in text
    assert "Last action: advance Succeeded 2m ago (id 1-a): INTERNAL -> BETA" in text
    history = text.split("Recent history:\n")[1].splitlines()
    assert history[0].split() == [
        "WHEN",
        "SOURCE",
        "VERDICT",
        "STAGE",
        "ERROR-RATE",
        "SAMPLES",
        "MESSAGE",
    ]
    assert history[1].split()[:6] == ["30s", "ago", "Analysis", "Pass", "BETA", "1.20%"]


def test_rollout_detail_of_a_fresh_rollout_with_a_pending_action() -> None:
    obj = rollout_object()
    obj["metadata"]["annotations"] = {"flagops.dev/action": "pause:now@5-c"}
    text = fmt.rollout_detail(summarize_rollout(obj), now=NOW)
    assert "Stage:       -, target FULL" in text
    assert "no analysis yet" in text
    assert "Pending:     pause:now@5-c (not handled yet)" in text


def test_handled_action_is_not_pending() -> None:
    obj = rollout_object(**BUSY_STATUS)
    obj["metadata"]["annotations"] = {"flagops.dev/action": "advance@1-a"}
    assert summarize_rollout(obj).pending_action is None


def test_status_reader_drops_fields_it_cannot_read() -> None:
    summary = summarize_rollout(rollout_object(**{**BUSY_STATUS, "currentPercent": "lots"}))
    assert summary.stage is Stage.BETA
    assert summary.percent is None


def test_rollouts_table_columns() -> None:
    text = fmt.rollouts_table([summarize_rollout(rollout_object(**BUSY_STATUS))], now=NOW)
    header, row = text.splitlines()
    assert header.split() == [
        "NAME", "FLAG", "STAGE", "PERCENT", "PHASE", "ERROR-RATE/THRESHOLD", "SAMPLES",
        "LAST-PROBE", "AGE",
    ]  # fmt: skip
    assert row.split() == [
        "calendar-sync", "calendar-sync", "BETA", "10", "Progressing", "1.20%/5.00%", "340",
        "Succeeded", "90s", "ago", "10m",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (119, "119s"), (600, "10m"), (7300, "2h"), (200000, "2d")]
)
def test_age(seconds: int, text: str) -> None:
    assert fmt.age(NOW - timedelta(seconds=seconds), NOW) == text


def test_summarize_flag_before_the_operator_published_it() -> None:
    summary = summarize_flag(
        {"metadata": {"name": "x"}, "spec": {"enabled": True, "rolloutPercent": 5}}
    )
    assert (summary.key, summary.enabled, summary.percent, summary.source) == (
        "x", True, 5, "unpublished",
    )  # fmt: skip


# --- API error translation -----------------------------------------------------------


def api_error(status: int, body: dict[str, Any] | str) -> ApiException:
    exc = ApiException(status=status, reason="x")
    exc.body = body if isinstance(body, str) else json.dumps(body)
    return exc


def test_404_naming_the_object_is_not_found() -> None:
    body = {"reason": "NotFound", "details": {"name": "r", "group": "flagops.dev"}}
    error = translate_api_error(
        api_error(404, body), verb="get", resource=ROLLOUTS, namespace="ns", name="r"
    )
    assert isinstance(error, NotFound)


def test_404_without_details_means_the_crds_are_missing() -> None:
    error = translate_api_error(
        api_error(404, "404 page not found"), verb="get", resource=FEATUREFLAGS,
        namespace="ns", name="f",
    )  # fmt: skip
    assert isinstance(error, ResourceNotInstalled)
    assert "featureflags.flagops.dev" in str(error)


def test_403_names_verb_and_resource() -> None:
    error = translate_api_error(
        api_error(403, {}), verb="list", resource=FEATUREFLAGS, namespace="ns"
    )
    assert str(error).startswith(
        'forbidden: you may not list featureflags.flagops.dev in namespace "ns"'
    )


def test_other_statuses_pass_through() -> None:
    exc = api_error(500, {})
    assert translate_api_error(exc, verb="get", resource=ROLLOUTS, namespace="ns") is exc
