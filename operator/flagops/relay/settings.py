"""The relay's settings, from command-line flags with environment fallbacks."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from flagops.env_options import add_env_option, namespaces_from

LogFormat = Literal["json", "text"]

# One table keeps each setting's flag, environment variable and default together.
_ENV = {
    "namespaces": "FLAGOPS_NAMESPACES",
    "configmap_name": "FLAGOPS_CONFIGMAP_NAME",
    "port": "FLAGOPS_RELAY_PORT",
    "metrics_port": "FLAGOPS_METRICS_PORT",
    "bind_address": "FLAGOPS_BIND_ADDRESS",
    "tokens_file": "FLAGOPS_RELAY_TOKENS_FILE",
    "log_format": "FLAGOPS_LOG_FORMAT",
    "rate_limit": "FLAGOPS_RELAY_RATE_LIMIT",
    "rate_burst": "FLAGOPS_RELAY_RATE_BURST",
    "max_streams": "FLAGOPS_RELAY_MAX_STREAMS",
    "max_body_bytes": "FLAGOPS_RELAY_MAX_BODY_BYTES",
    "keepalive_seconds": "FLAGOPS_RELAY_KEEPALIVE_SECONDS",
    "root_path": "FLAGOPS_RELAY_ROOT_PATH",
    "dev_namespace": "FLAGOPS_RELAY_DEV_NAMESPACE",
}


@dataclass(frozen=True)
class RelaySettings:
    # Namespaces whose flag ConfigMap is served; empty means every namespace.
    namespaces: tuple[str, ...] = ()
    configmap_name: str = "feature-flags"
    port: int = 8080
    # /metrics, /healthz and /readyz without a token, apart from the API port.
    metrics_port: int = 8081
    bind_address: str = "0.0.0.0"  # noqa: S104 - in-cluster Service traffic
    tokens_file: Path | None = None
    log_format: LogFormat = "json"
    # Per token (the tokens file may override each): requests per second and burst.
    rate_limit: float = 1000.0
    rate_burst: int = 2000
    # Open event streams per token.
    max_streams: int = 1000
    max_body_bytes: int = 16 * 1024
    # The longest string a context attribute the relay reads (targetingKey, cohort) may hold.
    max_context_value_chars: int = 1024
    # The most attributes a context may carry (the relay reads two; the rest are ignored).
    max_context_attributes: int = 100
    keepalive_seconds: float = 15.0
    # Suggested reconnection delay for event-stream clients (the SSE `retry:` field).
    retry_ms: int = 2000
    # A refetch that names a revision this replica has not seen yet waits this long for it.
    refetch_wait_seconds: float = 2.0
    # A deleted flag ConfigMap keeps being served this long (the operator restores one
    # deleted by hand within a second); after it the namespace is forgotten.
    deleted_grace_seconds: float = 60.0
    # Watch reconnection back-off bounds.
    watch_backoff_initial: float = 0.2
    watch_backoff_max: float = 5.0
    # Tokens file re-read cadence (a mounted Secret changes by a symlink swap).
    tokens_reload_seconds: float = 1.0
    # Path prefix the relay is served under behind a proxy (ASGI root_path).
    root_path: str = ""
    # Development only: serve this namespace to anyone, without tokens.
    dev_namespace: str | None = None

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = RelaySettings()
    parser.add_argument(
        "--namespace",
        dest="namespaces",
        action="append",
        default=None,
        help="namespace whose flags are served (repeatable; env: comma-separated); "
        "none means all namespaces",
    )
    add_env_option(parser, "--configmap-name", _ENV["configmap_name"], d.configmap_name)
    add_env_option(parser, "--port", _ENV["port"], d.port, type=int)
    add_env_option(
        parser,
        "--metrics-port",
        _ENV["metrics_port"],
        d.metrics_port,
        type=int,
        help="port of /metrics, /healthz and /readyz (no token needed)",
    )
    add_env_option(parser, "--bind-address", _ENV["bind_address"], d.bind_address)
    add_env_option(
        parser,
        "--tokens-file",
        _ENV["tokens_file"],
        type=Path,
        help="YAML or JSON file mapping tokens to namespaces and origins (docs/relay.md)",
    )
    add_env_option(
        parser, "--log-format", _ENV["log_format"], d.log_format, choices=["json", "text"]
    )
    add_env_option(
        parser,
        "--rate-limit",
        _ENV["rate_limit"],
        d.rate_limit,
        type=float,
        help="requests per second per token (default for tokens that set none)",
    )
    add_env_option(parser, "--rate-burst", _ENV["rate_burst"], d.rate_burst, type=int)
    add_env_option(
        parser,
        "--max-streams",
        _ENV["max_streams"],
        d.max_streams,
        type=int,
        help="open event streams per token (default for tokens that set none)",
    )
    add_env_option(parser, "--max-body-bytes", _ENV["max_body_bytes"], d.max_body_bytes, type=int)
    add_env_option(
        parser, "--keepalive-seconds", _ENV["keepalive_seconds"], d.keepalive_seconds, type=float
    )
    add_env_option(parser, "--root-path", _ENV["root_path"], d.root_path)
    add_env_option(
        parser,
        "--dev-serve-namespace-without-tokens",
        _ENV["dev_namespace"],
        dest="dev_namespace",
        metavar="NAMESPACE",
        help="DEVELOPMENT ONLY (make demo): serve this one namespace to anyone, no token",
    )


def from_args(args: argparse.Namespace) -> RelaySettings:
    settings = RelaySettings(
        namespaces=namespaces_from(args.namespaces, _ENV["namespaces"]),
        configmap_name=args.configmap_name,
        port=args.port,
        metrics_port=args.metrics_port,
        bind_address=args.bind_address,
        tokens_file=Path(args.tokens_file) if args.tokens_file else None,
        log_format=args.log_format,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        max_streams=args.max_streams,
        max_body_bytes=args.max_body_bytes,
        keepalive_seconds=args.keepalive_seconds,
        root_path=args.root_path.rstrip("/"),
        dev_namespace=args.dev_namespace or None,
    )
    validate(settings)
    return settings


def validate(settings: RelaySettings) -> None:
    """Refuse settings that cannot serve anyone, with a message saying which."""
    if settings.tokens_file is None and settings.dev_namespace is None:
        raise ValueError(
            "the relay needs --tokens-file (or, for development only, "
            "--dev-serve-namespace-without-tokens NAMESPACE)"
        )
    if settings.rate_limit <= 0 or settings.rate_burst < 1:
        raise ValueError("--rate-limit must be > 0 and --rate-burst >= 1")
    if settings.max_streams < 0 or settings.max_body_bytes < 64:
        raise ValueError("--max-streams must be >= 0 and --max-body-bytes >= 64")
    if settings.keepalive_seconds <= 0:
        raise ValueError("--keepalive-seconds must be > 0")
    dev = settings.dev_namespace
    if dev is not None and settings.namespaces and dev not in settings.namespaces:
        raise ValueError("--dev-serve-namespace-without-tokens must be a watched namespace")
