"""Text output of `kubectl flagops`: pure functions from summaries to lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from flagops.clients.flag_admin import FlagChange, FlagSummary
from flagops.clients.rollout_summary import ActionOutcome, Check, RolloutSummary

HISTORY_ROWS = 5


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """kubectl-style columns: upper-case headers, three spaces between columns."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [list(headers), *rows]
    ]
    return "\n".join(lines)


def age(then: datetime | None, now: datetime) -> str:
    """kubectl's short ages: 45s, 3m, 2h, 5d."""
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _samples(value: float | None) -> str:
    return "-" if value is None else str(int(value))


def _or_dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def error_rate_vs_threshold(summary: RolloutSummary) -> str:
    analysis = summary.last_analysis
    rate = percent(analysis.error_rate if analysis else None)
    return f"{rate}/{percent(summary.error_threshold)}"


def rollouts_table(summaries: Sequence[RolloutSummary], now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    rows = []
    for s in summaries:
        analysis = s.last_analysis
        probe = s.last_probe
        rows.append(
            [
                s.name,
                s.flag,
                _or_dash(s.stage and s.stage.value),
                _or_dash(s.percent),
                _or_dash(s.phase and s.phase.value),
                error_rate_vs_threshold(s),
                _samples(analysis.samples if analysis else None),
                f"{probe.result.value} {age(probe.time, now)} ago" if probe else "-",
                age(s.created, now),
            ]
        )
    headers = [
        "NAME", "FLAG", "STAGE", "PERCENT", "PHASE", "ERROR-RATE/THRESHOLD", "SAMPLES",
        "LAST-PROBE", "AGE",
    ]  # fmt: skip
    return table(headers, rows)


def rollout_detail(s: RolloutSummary, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    st = s.status
    stage = _or_dash(s.stage and s.stage.value)
    if s.percent is not None:
        stage += f" ({s.percent}%)"
    stage += f", target {s.target_stage.value}"
    if st.stage_started_at:
        stage += f", in stage for {age(st.stage_started_at, now)}"
    phase = _or_dash(s.phase and s.phase.value)
    if st.pause_reason and s.phase and s.phase.value == "Paused":
        phase += f" ({st.pause_reason})"
    flags = [
        f for f, on in (("spec.paused", s.paused), ("manual advance", not s.auto_advance)) if on
    ]
    if flags:
        phase += f" [{', '.join(flags)}]"
    lines = [
        f"Rollout:     {s.name} (namespace {s.namespace})",
        f"Flag:        {s.flag}",
        f"Stage:       {stage}",
        f"Phase:       {phase}",
    ]
    if st.message:
        lines.append(f"Message:     {st.message}")
    analysis = s.last_analysis
    if analysis:
        lines.append(
            f"Error rate:  {percent(analysis.error_rate)} (threshold {percent(s.error_threshold)})"
            f", samples {_samples(analysis.samples)} (min {s.min_sample_size}),"
            f" verdict {analysis.verdict.value} {age(analysis.time, now)} ago"
        )
    else:
        lines.append(
            f"Error rate:  - (threshold {percent(s.error_threshold)}), no analysis yet"
            f" (min samples {s.min_sample_size})"
        )
    probe = s.last_probe
    if probe:
        text = f"{probe.result.value} {age(probe.time, now)} ago (job {probe.job})"
        lines.append(f"Last probe:  {text}" + (f": {probe.message}" if probe.message else ""))
    else:
        lines.append("Last probe:  -")
    action = s.last_action
    if action:
        text = f"{action.name} {action.result.value} {age(action.at, now)} ago (id {action.id})"
        lines.append(f"Last action: {text}" + (f": {action.message}" if action.message else ""))
    if s.pending_action:
        lines.append(f"Pending:     {s.pending_action} (not handled yet)")
    for condition in s.conditions:
        lines.append(
            f"Condition:   {condition.type}={condition.status.value}"
            + (f" {condition.reason}" if condition.reason else "")
            + (f": {condition.message}" if condition.message else "")
        )
    history = s.history[:HISTORY_ROWS]
    if history:
        rows = [
            [
                f"{age(h.time, now)} ago",
                h.source.value,
                h.verdict.value,
                _or_dash(h.stage and h.stage.value),
                percent(h.error_rate),
                _samples(h.samples),
                _or_dash(h.message),
            ]
            for h in history
        ]
        lines.append("Recent history:")
        headers = ["WHEN", "SOURCE", "VERDICT", "STAGE", "ERROR-RATE", "SAMPLES", "MESSAGE"]
        lines.extend("  " + line for line in table(headers, rows).splitlines())
    return "\n".join(lines)


def action_line(outcome: ActionOutcome) -> str:
    status = outcome.status
    where = _or_dash(status.stage and status.stage.value)
    phase = _or_dash(status.phase and status.phase.value)
    text = f'{outcome.verb} on rollout "{outcome.name}": {outcome.result}'
    if outcome.message:
        text += f": {outcome.message}"
    return f"{text} (stage {where}, phase {phase}, id {outcome.id})"


def checks_table(checks: Sequence[Check]) -> str:
    rows = [
        ["SKIP" if c.skipped else ("OK" if c.ok else "FAIL"), c.name, c.message] for c in checks
    ]
    return table(["RESULT", "CHECK", "MESSAGE"], rows)


def flags_table(flags: Sequence[FlagSummary]) -> str:
    rows = [
        [
            f.key,
            str(f.enabled).lower(),
            str(f.percent),
            ",".join(f.cohorts) or "-",
            _or_dash(f.stage),
            f.source,
        ]
        for f in flags
    ]
    return table(["KEY", "ENABLED", "PERCENT", "COHORTS", "STAGE", "SOURCE"], rows)


def flag_change_line(change: FlagChange) -> str:
    after = change.after
    state = (
        f"enabled={str(after.spec_enabled).lower()} percent={after.spec_percent}"
        f" cohorts={','.join(after.spec_cohorts) or '-'}"
    )
    verb = "updated" if change.changed else "unchanged"
    text = f'featureflag "{after.name}" (key {after.key}) {verb}: {state}'
    if change.controlled_by:
        text += (
            f'\nnote: rollout "{change.controlled_by}" controls this flag; the spec change'
            " takes effect when that Rollout is completed or deleted"
        )
    return text
