"""Operator settings, from command-line flags with environment fallbacks."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Literal

from flagops.controller.shard import Shard
from flagops.env_options import add_env_option, namespaces_from
from flagops.publishing.fit import DEFAULT_MAX_DOCUMENT_BYTES

LogFormat = Literal["json", "text"]

# One table keeps each setting's flag, environment variable and default together.
_ENV = {
    "prometheus_address": "FLAGOPS_PROMETHEUS_ADDRESS",
    "namespaces": "FLAGOPS_NAMESPACES",
    "configmap_name": "FLAGOPS_CONFIGMAP_NAME",
    "probe_image": "FLAGOPS_PROBE_IMAGE",
    "probe_env": "FLAGOPS_PROBE_ENV",
    "metrics_port": "FLAGOPS_METRICS_PORT",
    "health_port": "FLAGOPS_HEALTH_PORT",
    "log_format": "FLAGOPS_LOG_FORMAT",
    "peering": "FLAGOPS_PEERING",
    "peering_lifetime": "FLAGOPS_PEERING_LIFETIME",
    "max_document_bytes": "FLAGOPS_MAX_DOCUMENT_BYTES",
    "prometheus_timeout": "FLAGOPS_PROMETHEUS_TIMEOUT",
    "apiserver_unhealthy_after": "FLAGOPS_APISERVER_UNHEALTHY_AFTER",
    "shard": "FLAGOPS_SHARD",
    "status_heartbeat": "FLAGOPS_STATUS_HEARTBEAT",
    "analysis_grouping": "FLAGOPS_ANALYSIS_GROUPING",
}


@dataclass(frozen=True)
class Settings:
    prometheus_address: str = "http://prometheus-operated.monitoring.svc:9090"
    namespaces: tuple[str, ...] = ()
    configmap_name: str = "feature-flags"
    probe_image: str = "ghcr.io/flagops/flagops:0.1.0"
    # Non-secret variables for every probe Job (e.g. FLAGOPS_CALENDAR_API_ENDPOINT or
    # FLAGOPS_PROBE_MOCK_MODE, docs/integrations.md); credentials stay in the Secret.
    probe_env: tuple[tuple[str, str], ...] = ()
    metrics_port: int = 8080
    health_port: int = 8081
    log_format: LogFormat = "json"
    peering: str = "flagops"
    standalone: bool = False
    # Seconds a replica's peering record counts as alive: a killed active replica is
    # replaced within about this long (kopf's default is 60).
    peering_lifetime: int = 60
    # This process serves only the namespaces that hash to this shard (controller/shard.py).
    shard: Shard = field(default_factory=Shard)
    # Publishing cadence: the first change after a quiet spell is written at once; a burst
    # of changes is folded into writes at most `publish_max_interval` apart.
    publish_min_interval: float = 0.1
    publish_max_interval: float = 2.0
    # The largest flags document one ConfigMap takes; newer flags beyond it are left out.
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    # A failed ConfigMap write is retried after this, doubling up to the ceiling.
    publish_retry_initial: float = 0.5
    publish_retry_max: float = 30.0
    # Seconds one Prometheus query may take, answer read included (then: Error verdict).
    prometheus_timeout: float = 5.0
    # /healthz says "degraded" (200) while the apiserver is unreachable, and fails (500)
    # once it has been unreachable this long: only then could a restart help.
    apiserver_unhealthy_after: float = 300.0
    # A Rollout's status is written when something a user sees changes, and otherwise at
    # least this often (seconds; 0: after every analysis), which checkpoints its totals.
    status_heartbeat: float = 300.0
    # Default-template analyses share one grouped query per tick; False: each Rollout asks
    # alone over its time in stage (the first version's way, kept as the baseline).
    analysis_grouping: bool = True
    # Metrics and health must be reachable in-cluster; tests and the demo bind to loopback.
    bind_address: str = field(
        default_factory=lambda: os.environ.get("FLAGOPS_BIND_ADDRESS", "0.0.0.0")  # noqa: S104
    )

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Settings()
    add_env_option(
        parser,
        "--prometheus-address",
        _ENV["prometheus_address"],
        defaults.prometheus_address,
        help="Prometheus base URL used when a Rollout does not name one",
    )
    parser.add_argument(
        "--namespace",
        dest="namespaces",
        action="append",
        default=None,
        help="namespace to watch (repeatable); none means all namespaces",
    )
    add_env_option(parser, "--configmap-name", _ENV["configmap_name"], defaults.configmap_name)
    add_env_option(parser, "--probe-image", _ENV["probe_image"], defaults.probe_image)
    parser.add_argument(
        "--probe-env",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="environment variable for every probe Job (repeatable; env: comma-separated)",
    )
    add_env_option(parser, "--metrics-port", _ENV["metrics_port"], defaults.metrics_port, type=int)
    add_env_option(parser, "--health-port", _ENV["health_port"], defaults.health_port, type=int)
    add_env_option(
        parser, "--log-format", _ENV["log_format"], defaults.log_format, choices=["json", "text"]
    )
    add_env_option(parser, "--peering", _ENV["peering"], defaults.peering)
    add_env_option(
        parser,
        "--peering-lifetime",
        _ENV["peering_lifetime"],
        defaults.peering_lifetime,
        type=int,
        help="seconds before a silent peer is presumed dead and another replica takes over",
    )
    parser.add_argument(
        "--standalone", action="store_true", help="no peering: this replica is always active"
    )
    add_env_option(
        parser,
        "--shard",
        _ENV["shard"],
        defaults.shard,
        type=_shard,
        metavar="I/N",
        help="serve only the namespaces of shard I of N (0 <= I < N); each shard has its own"
        " peering object (<peering> for shard 0, else <peering>-shard-I)",
    )
    add_env_option(
        parser,
        "--max-document-bytes",
        _ENV["max_document_bytes"],
        defaults.max_document_bytes,
        type=int,
        help="largest flags document per ConfigMap; newer flags beyond it are left out"
        " (default: the apiserver's 1 MiB ConfigMap limit)",
    )
    add_env_option(
        parser,
        "--prometheus-timeout",
        _ENV["prometheus_timeout"],
        defaults.prometheus_timeout,
        type=float,
        help="seconds one Prometheus query may take, reading the answer included",
    )
    add_env_option(
        parser,
        "--apiserver-unhealthy-after",
        _ENV["apiserver_unhealthy_after"],
        defaults.apiserver_unhealthy_after,
        type=float,
        help="seconds of unreachable apiserver after which /healthz fails (before: degraded)",
    )
    add_env_option(
        parser,
        "--status-heartbeat",
        _ENV["status_heartbeat"],
        defaults.status_heartbeat,
        type=float,
        help="seconds between a Rollout's status writes when nothing a user sees changes"
        " (0: write after every analysis)",
    )
    add_env_option(
        parser,
        "--analysis-grouping",
        _ENV["analysis_grouping"],
        "on" if defaults.analysis_grouping else "off",
        type=_on_off,
        metavar="on|off",
        help="on: default-template analyses share one grouped Prometheus query per tick;"
        " off: every Rollout queries alone over its time in stage",
    )


def from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        prometheus_address=args.prometheus_address,
        namespaces=namespaces_from(args.namespaces, _ENV["namespaces"]),
        configmap_name=args.configmap_name,
        probe_image=args.probe_image,
        probe_env=_probe_env(args.probe_env or os.environ.get(_ENV["probe_env"], "").split(",")),
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        log_format=args.log_format,
        peering=args.peering,
        standalone=args.standalone,
        peering_lifetime=args.peering_lifetime,
        max_document_bytes=_max_document_bytes(args.max_document_bytes),
        prometheus_timeout=args.prometheus_timeout,
        apiserver_unhealthy_after=args.apiserver_unhealthy_after,
        shard=args.shard,
        status_heartbeat=_non_negative("--status-heartbeat", args.status_heartbeat),
        analysis_grouping=args.analysis_grouping,
    )


def _shard(text: str) -> Shard:
    # argparse turns this error into a usage message naming the flag (string defaults,
    # here FLAGOPS_SHARD, go through it too).
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"want on or off, got {text!r}")
    return text == "on"


def _non_negative(flag: str, value: float) -> float:
    if value < 0:
        raise ValueError(f"{flag} must be 0 or more, got {value:g}")
    return value


def _max_document_bytes(value: int) -> int:
    if not 0 < value <= DEFAULT_MAX_DOCUMENT_BYTES:
        raise ValueError(
            f"--max-document-bytes must be 1..{DEFAULT_MAX_DOCUMENT_BYTES}, got {value}"
        )
    return value


def _probe_env(items: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise ValueError(f"--probe-env wants NAME=VALUE, got {item!r}")
        pairs.append((name.strip(), value))
    return tuple(pairs)
