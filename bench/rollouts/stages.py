"""B. stages: from a passing analysis to the ConfigMap that publishes the new stage."""

from __future__ import annotations

from dataclasses import dataclass

from bench.common import (
    ConfigMapWatch,
    Observed,
    Row,
    percentile,
    verdict,
)
from bench.rollouts.world import (
    ROLLOUTS,
    STAGE_PUBLISH_MAX_MS,
    STAGES,
    RolloutWatch,
    World,
    at_stage,
    deleted,
    fmt_ms,
    parse_time,
    passing,
    publishes,
    status_of,
    wall_offset,
)
from flagops.api.resources import GROUP, VERSION
from flagops_devtools.testing.wait import wait_for


@dataclass(frozen=True)
class StageStep:
    mode: str  # "lone": the only Rollout in its namespace; "busy": others analysing too
    from_stage: str
    to_stage: str
    verdict: str | None
    from_analysis: float | None  # lastAnalysis.time -> ConfigMap event (wall clock)
    from_status: float  # Rollout watch event with the new stage -> ConfigMap event
    analysis_to_status: float | None  # lastAnalysis.time -> Rollout watch event


def _first_showing(
    watch: ConfigMapWatch, key: str, stage: str, since: int
) -> tuple[int, Observed] | None:
    """The first ConfigMap version at or after `since` whose flag `key` is at `stage`."""
    for index, observed in enumerate(watch.events[since:], start=since):
        if observed.flags is not None and (observed.flags.get(key) or {}).get("stage") == stage:
            return index, observed
    return None


def _stage_round(
    world: World,
    watch: RolloutWatch,
    cm_watch: ConfigMapWatch,
    namespace: str,
    name: str,
    mode: str,
) -> tuple[list[StageStep], list[str]]:
    """One Rollout DISABLED -> FULL; every stage change it made, timed to the ConfigMap."""
    timeout = world.config.timeout
    key = name.replace("-", "_")
    steps: list[StageStep] = []
    unpublished: list[str] = []
    offset = wall_offset()
    mark, cm_mark = watch.mark(), cm_watch.mark()
    world.create_flag(namespace, name, "calendar_sync", enabled=False)
    world.create_rollout(namespace, name, stage_duration="2s", interval="1s")
    watch.wait_until(at_stage(name, "FULL"), since=mark, timeout=timeout)
    cm_watch.wait_for_flags(publishes(key, "FULL"), since=cm_mark, timeout=timeout)
    previous: str | None = None
    cm_index = cm_mark
    for seen in watch.since(mark):
        if seen.name != name or seen.stage is None or seen.stage == previous:
            continue
        if previous is None:
            previous = seen.stage  # the adopted stage: no change to time
            continue
        found = _first_showing(cm_watch, key, seen.stage, cm_index)
        if found is None:
            unpublished.append(f"{name}: {previous} -> {seen.stage}")
            previous = seen.stage
            continue
        cm_index, published = found
        last = seen.status.get("lastAnalysis") or {}
        analysed = parse_time(last["time"]) if last.get("time") else None
        # Only an analysis of the stage just left caused the step (DISABLED has none).
        if previous == "DISABLED":
            analysed = None
        steps.append(
            StageStep(
                mode=mode,
                from_stage=previous,
                to_stage=seen.stage,
                verdict=last.get("verdict") if analysed is not None else None,
                from_analysis=None if analysed is None else published.at + offset - analysed,
                from_status=published.at - seen.at,
                analysis_to_status=None if analysed is None else seen.at + offset - analysed,
            )
        )
        previous = seen.stage
    cm_watch.forget_documents()
    return steps, unpublished


def run_stages(world: World) -> tuple[list[StageStep], list[str]]:
    """`rounds` lone Rollouts (each deleted once at FULL), then `rounds` more while `busy`
    other Rollouts analyse every second in the same namespace."""
    config = world.config
    namespace = world.plane.create_namespace("bench-rollout-stages")
    operator = world.operator(namespace)
    watch = RolloutWatch(world.api, namespace).start()
    cm_watch = ConfigMapWatch(world.api, namespace).start()
    steps: list[StageStep] = []
    unpublished: list[str] = []
    try:
        for r in range(config.rounds):
            name = f"lone-{r}"
            mark = watch.mark()
            got, missing = _stage_round(world, watch, cm_watch, namespace, name, "lone")
            steps += got
            unpublished += missing
            # Gone before the next round, so that round is alone in the namespace again.
            world.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, ROLLOUTS, name)
            watch.wait_until(deleted(name), since=mark, timeout=config.timeout)
        if config.busy > 0:
            for i in range(config.busy):
                background = f"busy-{i:02d}"
                world.create_flag(
                    namespace, background, "calendar_sync", enabled=True, rolloutPercent=10
                )
                world.create_rollout(namespace, background, stage_duration="1h", interval="1s")

            def busy_passing() -> bool:
                items = world.rollouts(namespace)
                return sum(1 for o in items if passing(status_of(o))) >= config.busy

            wait_for(busy_passing, timeout=config.timeout, message="busy Rollouts not passing")
            for r in range(config.rounds):
                got, missing = _stage_round(
                    world, watch, cm_watch, namespace, f"busy-round-{r}", "busy"
                )
                steps += got
                unpublished += missing
        return steps, unpublished
    finally:
        cm_watch.stop()
        watch.stop()
        operator.stop()


# -- C: many Rollouts ---------------------------------------------------------------------


def stage_rows(steps: list[StageStep], unpublished: list[str], busy: int) -> list[Row]:
    rows: list[Row] = []
    if unpublished:
        rows.append(
            Row("stage changes never seen in the ConfigMap", "0", "; ".join(unpublished), "MISS")
        )
    for mode in ("lone", "busy"):
        chosen = [s for s in steps if s.mode == mode]
        if chosen:
            rows += _stage_mode_rows(chosen, mode, busy)
    return rows


def _stage_mode_rows(steps: list[StageStep], mode: str, busy: int) -> list[Row]:
    where = (
        "alone in its namespace"
        if mode == "lone"
        else f"with {busy} other Rollouts analysing every 1 s in the namespace"
    )
    rows: list[Row] = []
    by_step: dict[tuple[str, str], list[StageStep]] = {}
    for step in steps:
        by_step.setdefault((step.from_stage, step.to_stage), []).append(step)
    for (old, new), group in sorted(by_step.items(), key=lambda kv: STAGES.index(kv[0][1])):
        analysed = [s.from_analysis for s in group if s.from_analysis is not None]
        status = [s.from_status for s in group]
        verdicts = "/".join(sorted({str(s.verdict) for s in group}))
        seen = (
            f"status write seen -> CM p50 {fmt_ms(percentile(status, 50))},"
            f" max {fmt_ms(max(status))}"
        )
        if analysed:
            figure = (
                f"Pass -> CM p50 {fmt_ms(percentile(analysed, 50))},"
                f" max {fmt_ms(max(analysed))}; {seen}"
            )
        else:
            figure = f"no analysis (leaves DISABLED once Validated); {seen}"
        rows.append(Row(f"  [{mode}] {old} -> {new} (n={len(group)}, {verdicts})", "", figure))
    values = [s.from_analysis for s in steps if s.from_analysis is not None]
    to_status = [s.analysis_to_status for s in steps if s.analysis_to_status is not None]
    every = [s.from_status for s in steps]
    head: list[Row] = []
    if values:
        head.append(
            Row(
                f"Pass verdict -> ConfigMap shows the new stage, {where}: max "
                f"({len(values)} steps)",
                f"<= {STAGE_PUBLISH_MAX_MS:.0f} ms",
                f"{fmt_ms(max(values))} (p50 {fmt_ms(percentile(values, 50))})",
                verdict(max(values) * 1000 <= STAGE_PUBLISH_MAX_MS),
            )
        )
        head.append(
            Row(
                "  of which analysis start -> status write seen (p50 / max)",
                "",
                f"{fmt_ms(percentile(to_status, 50))} / {fmt_ms(max(to_status))}",
            )
        )
    head.append(
        Row(
            f"  status write seen -> ConfigMap seen, all {len(every)} steps (p50 / max)",
            "",
            f"{fmt_ms(percentile(every, 50))} / {fmt_ms(max(every))}",
        )
    )
    return head + rows
