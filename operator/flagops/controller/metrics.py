"""The operator's Prometheus metrics (names fixed by DESIGN.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROLLOUT_INFO = Gauge(
    "flagops_rollout_info",
    "Always 1; labels say where each Rollout stands",
    ["namespace", "rollout", "flag", "stage", "phase"],
)
ROLLOUT_PERCENT = Gauge(
    "flagops_rollout_percent",
    "Percent of users the Rollout's stage exposes",
    ["namespace", "rollout", "flag"],
)
ROLLOUT_TRANSITIONS = Counter(
    "flagops_rollout_transitions_total",
    "Stage changes made by Rollouts",
    ["from", "to", "reason"],
)
ANALYSIS = Counter("flagops_analysis_total", "Analyses taken, by verdict", ["verdict"])
ANALYSIS_ERROR_RATE = Gauge(
    "flagops_analysis_error_rate",
    "Error rate of the newest analysis",
    ["namespace", "rollout"],
)
PROBES = Counter("flagops_probe_total", "Health probe results", ["integration", "result"])
CONFIGMAP_WRITES = Counter(
    "flagops_configmap_writes_total", "Writes of the flag ConfigMap", ["namespace"]
)
PUBLISH_FLAGS_OMITTED = Gauge(
    "flagops_publish_flags_omitted",
    "Flags left out of the namespace's ConfigMap because the document would not fit",
    ["namespace"],
)
PUBLISH_DOCUMENT_BYTES = Gauge(
    "flagops_publish_document_bytes",
    "Size of the namespace's published flags document",
    ["namespace"],
)
PUBLISH_FAILURES = Counter(
    "flagops_publish_failures_total",
    "Failed writes of the flag ConfigMap (each is retried with back-off)",
    ["namespace"],
)
RECONCILE_SECONDS = Histogram(
    "flagops_reconcile_seconds",
    "Time spent reconciling, by kind",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Every replica says which shard it is and how many there are: a shard with no replica
# scraped is then visible (alert FlagopsShardDown) even while other shards are up.
SHARDS = Gauge("flagops_shards", "Shard count n of this replica's --shard i/n", ["shard"])
# Analysis ticks (issue 12): what each tick costs and how late each analysis starts.
ANALYSIS_QUERIES = Counter(
    "flagops_analysis_queries_total",
    "Prometheus queries sent by analysis: grouped (one per tick and group), catchup (a"
    " longer window after a gap), alone (a custom template), validate",
    ["kind"],
)
ANALYSIS_TICK_SECONDS = Histogram(
    "flagops_analysis_tick_seconds",
    "Time one analysis query took, by kind",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ANALYSIS_LATENESS = Histogram(
    "flagops_analysis_lateness_seconds",
    "How long after its due time on the tick grid each analysis started",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
ANALYSIS_ROLLOUTS = Gauge(
    "flagops_analysis_rollouts",
    "Rollouts analysed by this replica: grouped (shared tick queries) or alone",
    ["mode"],
)
STATUS_WRITES = Counter(
    "flagops_rollout_status_writes_total",
    "Rollout status writes: change (something a user sees) or heartbeat (checkpoint)",
    ["reason"],
)
