"""A. actions: pause/resume latency through the annotation and through RolloutManager."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.common import (
    Row,
    counter_value,
    latency_summary,
    verdict,
)
from bench.rollouts.world import (
    ACTION_P50_MS,
    ROLLOUTS,
    RolloutWatch,
    World,
    answers,
    fmt2,
    fmt3,
    fmt_counts,
    parse_time,
    passing,
    status_of,
    wall_offset,
)
from flagops.api.actions import ACTION_ANNOTATION, format_action, new_action_id
from flagops.api.resources import GROUP, VERSION


@dataclass(frozen=True)
class ActionResult:
    latencies: list[float]
    patch_seconds: list[float]
    noticed_seconds: list[float]  # annotation patch start -> status.lastAction.at (operator clock)
    results: dict[str, int]
    manager_seconds: list[float]
    manager_results: dict[str, int]
    analyses: float
    moved_stage: bool


def run_actions(world: World) -> ActionResult:
    config = world.config
    namespace = world.plane.create_namespace("bench-rollout-actions")
    name = "calendar-sync"
    operator = world.operator(namespace)
    watch = RolloutWatch(world.api, namespace).start()
    try:
        world.create_flag(namespace, name, "calendar_sync", enabled=True, rolloutPercent=10)
        world.create_rollout(namespace, name, stage_duration="1h", interval="30s")
        ready = watch.wait_until(lambda s: passing(s.status), since=0, timeout=config.timeout)
        stage = ready.stage
        analyses_before = sum(
            counter_value(operator.metrics(), "flagops_analysis_total", {"verdict": v})
            for v in ("Pass", "Fail", "Inconclusive", "Error")
        )
        latencies: list[float] = []
        patch_seconds: list[float] = []
        noticed: list[float] = []
        results: dict[str, int] = {}
        offset = wall_offset()
        for k in range(config.actions):
            verb = "pause" if k % 2 == 0 else "resume"
            action_id = new_action_id()
            body = {
                "metadata": {"annotations": {ACTION_ANNOTATION: format_action(verb, action_id)}}
            }
            mark = watch.mark()
            started = time.perf_counter()
            world.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, ROLLOUTS, name, body
            )
            patch_seconds.append(time.perf_counter() - started)
            seen = watch.wait_until(answers(action_id), since=mark, timeout=config.timeout)
            latencies.append(seen.at - started)
            last = seen.status["lastAction"]
            noticed.append(parse_time(last["at"]) - (started + offset))
            key = f"{verb}: {last['result']}"
            results[key] = results.get(key, 0) + 1
            if config.action_gap > 0:
                # Spacing so each action meets an idle Rollout loop (its Event posted), as a
                # person's actions would; the gap is not part of any figure.
                time.sleep(config.action_gap)
        analyses_after = sum(
            counter_value(operator.metrics(), "flagops_analysis_total", {"verdict": v})
            for v in ("Pass", "Fail", "Inconclusive", "Error")
        )

        from flagops.clients import RolloutManager

        manager = RolloutManager(world.api, namespace=namespace)
        # An odd count of actions above leaves the Rollout paused: resume first then.
        manager_seconds: list[float] = []
        manager_results: dict[str, int] = {}
        first_resume = config.actions % 2 == 1
        for k in range(config.manager_actions):
            resume = (k % 2 == 0) == first_resume
            started = time.perf_counter()
            outcome = (
                manager.resume_rollout(name, timeout=config.timeout)
                if resume
                else manager.pause_rollout(name, timeout=config.timeout)
            )
            manager_seconds.append(time.perf_counter() - started)
            key = f"{outcome.verb}: {outcome.result}"
            manager_results[key] = manager_results.get(key, 0) + 1
            if config.action_gap > 0:
                time.sleep(config.action_gap)
        final_stage = status_of(
            world.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, ROLLOUTS, name)
        ).get("stage")
        return ActionResult(
            latencies=latencies,
            patch_seconds=patch_seconds,
            noticed_seconds=noticed,
            results=results,
            manager_seconds=manager_seconds,
            manager_results=manager_results,
            analyses=analyses_after - analyses_before,
            moved_stage=final_stage != stage,
        )
    finally:
        watch.stop()
        operator.stop()


# -- B: stage changes -> ConfigMap --------------------------------------------------------


def action_rows(result: ActionResult) -> list[Row]:
    s = latency_summary(result.latencies)
    patch = latency_summary(result.patch_seconds)
    noticed = latency_summary(result.noticed_seconds)
    rows = [
        Row(
            f"action -> status.lastAction: p50 ({int(s['n'])} actions)",
            f"<= {ACTION_P50_MS:.0f} ms",
            f"{s['p50']:.1f} ms",
            verdict(s["p50"] <= ACTION_P50_MS),
        ),
        Row("action -> status.lastAction: p90 / p99 / max", "", fmt3(s)),
        Row("  of which the annotation patch call (p50 / p99)", "", fmt2(patch)),
        Row("  patch start -> lastAction.at, operator's clock (p50 / p99)", "", fmt2(noticed)),
        Row("  results", "", fmt_counts(result.results)),
        Row(
            "  analyses during the actions (one per action, run at once)",
            "",
            f"{result.analyses:.0f}; stage moved: {'yes' if result.moved_stage else 'no'}",
        ),
    ]
    if result.manager_seconds:
        m = latency_summary(result.manager_seconds)
        rows += [
            Row(
                f"RolloutManager.pause/resume_rollout call: p50 ({int(m['n'])})",
                "",
                f"{m['p50']:.1f} ms",
            ),
            Row("RolloutManager call: p90 / p99 / max", "", fmt3(m)),
            Row("  results", "", fmt_counts(result.manager_results)),
        ]
    return rows
