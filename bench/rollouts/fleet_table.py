"""D. fleet: the figures of each run as columns of one table, with the goals of issue 12."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.rollouts.fleet_run import RunResult
from bench.rollouts.meters import ON_TIME_SECONDS, QUERY_KINDS, WRITE_REASONS, OperatorCounters
from bench.rollouts.world import fmt_counts

# Goals of issue 12 (one process, 10,000 Rollouts, 30 s interval).
RSS_MIB = 400.0
ON_TIME_SHARE = 0.99
QUERIES_PER_INTERVAL = 10.0
OPERATOR_CPU_SHARE = 0.50
STATUS_WRITES_PER_INTERVAL = 2000.0
LATE_BOUNDS = (0.1, 1.0, 5.0, 30.0)
# "The same figure at 1,000 and 10,000": within one query per interval.
SAME_QUERIES = 1.0


@dataclass(frozen=True)
class Column:
    """One operator process's share of a run: the whole run, or one shard of it."""

    title: str
    run: RunResult
    operator: str  # label of the operator process in the run
    rollouts: int  # Rollouts that process serves

    @property
    def counters(self) -> OperatorCounters:
        return self.run.window.operators[self.operator]

    @property
    def intervals(self) -> float:
        return self.run.window.intervals

    @property
    def interval(self) -> float:
        """Seconds per analysis interval."""
        return self.run.window.seconds / max(self.intervals, 1e-9)

    def per_interval(self, value: float) -> float:
        return value / max(self.intervals, 1e-9)

    def cpu_share(self, cpu_seconds: float) -> float:
        """Of one core, over the CPU clock's own span (a little wider than the counters')."""
        return cpu_seconds / max(self.run.window.cpu_span, 1e-9)

    @property
    def analyses(self) -> float:
        """Analyses in the window: the lateness histogram's count, else flagops_analysis_total."""
        timed = self.counters.analyses_timed
        return timed if timed else sum(self.counters.analyses.values())

    @property
    def expected(self) -> float:
        return self.rollouts * self.intervals


# (measure, goal, cell, ok or None for figures without a goal)
Cell = tuple[str, bool | None]
Measure = tuple[str, str, Callable[[Column], Cell]]


def _rss(c: Column) -> Cell:
    mib = c.run.rss_max_kib[c.operator] / 1024
    return f"{mib:.0f} MiB", mib <= RSS_MIB


def _on_time(c: Column) -> Cell:
    k = c.counters
    if not k.analyses_timed:
        return "n/a (no lateness histogram)", None
    share = k.on_time / k.analyses_timed
    return f"{100 * share:.1f}% (p99 <= {k.late_p99_bound:g} s)", share >= ON_TIME_SHARE


def _late_spread(c: Column) -> Cell:
    k = c.counters
    if not k.analyses_timed:
        return "n/a", None
    return " / ".join(f"{100 * k.late_share(b):.0f}%" for b in LATE_BOUNDS), None


def _query_time(c: Column) -> Cell:
    k = c.counters
    parts = [
        f"{kind} {1000 * k.query_seconds[kind] / k.queries[kind]:.0f} ms"
        for kind in QUERY_KINDS
        if k.queries.get(kind) and k.query_seconds.get(kind)
    ]
    return (", ".join(parts) or "n/a"), None


def _counted(c: Column) -> Cell:
    share = c.analyses / max(c.expected, 1e-9)
    return f"{c.analyses:,.0f} / {c.expected:,.0f} ({100 * share:.1f}%)", share >= ON_TIME_SHARE


def _prom_queries(c: Column) -> Cell:
    q = c.per_interval(c.run.window.prometheus_queries)
    return f"{q:,.1f}", q <= QUERIES_PER_INTERVAL


def _op_queries(c: Column) -> Cell:
    k = c.counters.queries
    return ", ".join(f"{kind} {c.per_interval(k.get(kind, 0)):,.1f}" for kind in QUERY_KINDS), None


def _op_cpu(c: Column) -> Cell:
    share = c.cpu_share(c.run.window.cpu_seconds.get(c.operator, 0.0))
    return f"{100 * share:.0f}%", share <= OPERATOR_CPU_SHARE


def _cpu_of(prefix: str) -> Callable[[Column], Cell]:
    def cell(c: Column) -> Cell:
        seconds = sum(v for k, v in c.run.window.cpu_seconds.items() if k.startswith(prefix))
        return f"{c.cpu_share(seconds) * c.interval:.1f} s", None

    return cell


def _busy(c: Column) -> Cell:
    return f"{100 * c.run.window.machine_busy:.0f}%", None


def _apiserver_writes(c: Column) -> Cell:
    w = c.per_interval(c.run.window.apiserver_status_writes)
    return f"{w:,.0f}", w <= STATUS_WRITES_PER_INTERVAL


def _op_writes(c: Column) -> Cell:
    k = c.counters.status_writes
    return ", ".join(f"{r} {c.per_interval(k.get(r, 0)):,.0f}" for r in WRITE_REASONS), None


def _steady_writes(c: Column) -> Cell:
    """A window shortly after the ramp sees few heartbeats (each Rollout's first is one
    heartbeat period after its first verdict); in steady state every Rollout adds one
    write per heartbeat period to the changes measured."""
    changes = c.per_interval(c.counters.status_writes.get("change", 0.0))
    heartbeat = c.run.heartbeat_seconds
    total = changes + c.rollouts * c.interval / heartbeat
    return (
        f"{total:,.0f} (changes {changes:,.0f} + "
        f"{c.rollouts:,} x {c.interval:.0f} s / {heartbeat} s)",
        total <= STATUS_WRITES_PER_INTERVAL,
    )


def _modes(c: Column) -> Cell:
    modes = c.counters.modes
    return (", ".join(f"{m} {v:,.0f}" for m, v in sorted(modes.items())) or "n/a"), None


def _ramp(c: Column) -> Cell:
    created = c.run.created
    creating = created.flags_seconds + created.rollouts_seconds
    return f"{c.run.ramp_seconds:,.0f} s (creating {creating:,.0f} s)", None


def _settled(c: Column) -> Cell:
    return f"{c.run.settled_seconds:,.0f} s", None


def _ramp_verdicts(c: Column) -> Cell:
    return fmt_counts(c.run.ramp_verdicts), None


def _wall(c: Column) -> Cell:
    run = c.run
    return f"{run.wall_seconds / 60:.1f} min (estimated {run.estimate_seconds / 60:.0f})", None


MEASURES: list[Measure] = [
    ("operator RSS, max of 1 s samples over ramp + window", f"<= {RSS_MIB:.0f} MiB", _rss),
    (f"analyses on time (lateness <= {ON_TIME_SECONDS:g} s, histogram)", ">= 99%", _on_time),
    ("  lateness <= 0.1 / 1 / 5 / 30 s", "", _late_spread),
    ("analyses counted / expected (Rollouts x intervals)", ">= 99%", _counted),
    ("Prometheus queries per interval (Prometheus's own count)", "<= 10, same", _prom_queries),
    ("  operator's queries per interval, by kind", "", _op_queries),
    ("  mean query time, by kind (flagops_analysis_tick_seconds)", "", _query_time),
    ("operator CPU, share of one core", "<= 50%", _op_cpu),
    ("kube-apiserver CPU per interval", "printed", _cpu_of("kube-apiserver")),
    ("etcd CPU per interval", "printed", _cpu_of("etcd")),
    ("Prometheus CPU per interval", "printed", _cpu_of("prometheus")),
    ("machine busy (both cores, everyone's work)", "", _busy),
    ("Rollout status writes per interval (apiserver's count)", "<= 2,000", _apiserver_writes),
    ("  operator's status writes per interval, by reason", "", _op_writes),
    (
        "  steady state with every heartbeat due (operator's changes + heartbeats)",
        "<= 2,000",
        _steady_writes,
    ),
    ("Rollouts analysed grouped / alone (gauge)", "", _modes),
    ("ramp: create all until every Rollout has a verdict", "printed", _ramp),
    ("  verdicts at the end of the ramp", "", _ramp_verdicts),
    ("  ... until every verdict counts traffic (the window starts after)", "printed", _settled),
    ("wall time of the run", "", _wall),
]


def _same_queries(columns: Sequence[Column]) -> str:
    grouped = [c for c in columns if c.run.grouping == "on" and c.operator == "operator"]
    if len(grouped) < 2:
        return ""
    low, high = grouped[0], grouped[-1]
    a = low.per_interval(low.run.window.prometheus_queries)
    b = high.per_interval(high.run.window.prometheus_queries)
    same = abs(a - b) <= SAME_QUERIES
    return (
        f"Prometheus queries per interval at {low.rollouts:,} vs {high.rollouts:,}: "
        f"{a:.1f} vs {b:.1f}: {'the same' if same else 'NOT the same'} "
        f"(within {SAME_QUERIES:g}) -> {'PASS' if same else 'MISS'}"
    )


def print_grid(title: str, columns: Sequence[Column], judged: Column) -> None:
    """A markdown table, one column per run/shard; `result` judges the `judged` column."""
    headers = ["measure", "goal", *(c.title for c in columns), f"result ({judged.title})"]
    rows: list[list[str]] = []
    for measure, goal, cell in MEASURES:
        cells = [cell(c) for c in columns]
        ok = cell(judged)[1]
        result = "" if ok is None or not goal or goal == "printed" else ("PASS" if ok else "MISS")
        rows.append([measure, goal, *(text for text, _ in cells), result])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print()
    print(title)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |")
    same = _same_queries(columns)
    if same:
        print(same)
    print(flush=True)
