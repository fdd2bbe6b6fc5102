"""`flagops probe <integration>`: one health check, one JSON line, exit 0 when healthy.

Runs in the probe Job the operator creates. The integration is built from
the environment and the mounted credentials (docs/integrations.md, "Probe Job
environment"); the result is printed to stdout and written to the
termination log, which is how the operator reads it back from the Pod.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CREDENTIALS_ENV = "FLAGOPS_PROBE_CREDENTIALS_FILE"
DEFAULT_CREDENTIALS_PATH = "/var/run/secrets/flagops/credentials"
CREDENTIALS_FILE_NAME = "credentials.json"
CONFIG_ENV = "FLAGOPS_PROBE_CONFIG"
TIMEOUT_ENV = "FLAGOPS_PROBE_TIMEOUT"
TERMINATION_LOG_ENV = "FLAGOPS_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
DEFAULT_TIMEOUT = 30.0
# Environment variable -> init option, set only when the variable is.
OPTION_ENV: dict[str, str] = {
    "FLAGOPS_CALENDAR_API_ENDPOINT": "api_endpoint",
    "FLAGOPS_TOKEN_URI": "token_uri",
    "FLAGOPS_CALENDAR_ID": "calendar_id",
    "FLAGOPS_PROBE_MOCK_MODE": "mock_mode",
}
_TRUE = {"1", "true", "yes", "on"}
_WORKER_PREFIX = "flagops-probe-worker"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("integration", help="integration name, e.g. calendar_sync")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"seconds for the whole probe (default ${TIMEOUT_ENV}, else {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--termination-log",
        default=None,
        help=f"where the result is written (default ${TERMINATION_LOG_ENV}, "
        f"else {DEFAULT_TERMINATION_LOG})",
    )


def find_credentials(env: dict[str, str]) -> Path | None:
    """The mounted key file: the variable's file, or `credentials.json` / the only file
    in the folder the Secret is mounted at."""
    path = Path(env.get(CREDENTIALS_ENV) or DEFAULT_CREDENTIALS_PATH)
    if path.is_file():
        return path
    if path.is_dir():
        named = path / CREDENTIALS_FILE_NAME
        if named.is_file():
            return named
        # A Secret volume also holds kubelet's "..data" links: only visible regular files count.
        files = [p for p in sorted(path.iterdir()) if not p.name.startswith(".") and p.is_file()]
        if len(files) == 1:
            return files[0]
    return None


def probe_config(env: dict[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    raw = env.get(CONFIG_ENV)
    if raw:
        loaded = json.loads(raw)
        if not isinstance(loaded, dict):
            raise ValueError(f"{CONFIG_ENV} must be a JSON object")
        config.update(loaded)
    credentials = find_credentials(env)
    # An explicit variable wins over FLAGOPS_PROBE_CONFIG; the default mount does not.
    if credentials is not None and (env.get(CREDENTIALS_ENV) or "credentials_file" not in config):
        config["credentials_file"] = str(credentials)
    for variable, option in OPTION_ENV.items():
        value = env.get(variable)
        if value:
            config[option] = value.strip().lower() in _TRUE if option == "mock_mode" else value
    return config


async def run_probe(integration: str, time_limit: float, env: dict[str, str]) -> dict[str, Any]:
    """Build, init and health-check the integration; every failure becomes a result."""
    from flagops.integrations import HealthCheckResult, IntegrationStatus, create_integration
    from flagops.integrations.flagsource import FLAGS_PATH_ENV, NoFlags, default_flags_path

    started = time.monotonic()
    try:
        service = create_integration(integration)
        if not env.get(FLAGS_PATH_ENV) and not default_flags_path().exists():
            # Health checks ignore the flag; without a flags file, say "off" quietly.
            service.flags = NoFlags()
        await asyncio.wait_for(service.init(probe_config(env)), time_limit)
    except Exception as exc:
        # Config errors are already redacted; anything else is reduced to its type.
        from flagops.integrations import IntegrationError

        if isinstance(exc, KeyError):
            detail = str(exc.args[0])
        elif isinstance(exc, IntegrationError):
            detail = str(exc)
        else:
            detail = type(exc).__name__
        return HealthCheckResult(
            integration=integration,
            healthy=False,
            status=IntegrationStatus.ERROR,
            message=f"cannot build integration: {detail}",
            latency_ms=(time.monotonic() - started) * 1000,
        ).to_json_dict()
    remaining = max(0.001, time_limit - (time.monotonic() - started))
    result = await service.health_check(remaining)
    return result.to_json_dict()


def write_termination_log(path: str, line: str) -> None:
    try:
        Path(path).write_text(line + "\n")
    except OSError as exc:
        print(f"flagops probe: cannot write termination log {path}: {exc}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    timeout = (
        args.timeout if args.timeout is not None else float(env.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
    )
    # Not asyncio.run: it waits for worker threads, and a request stuck past the
    # deadline would hold the probe (and the Job) until the socket gives up.
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(thread_name_prefix=_WORKER_PREFIX)
    loop.set_default_executor(executor)
    try:
        result = loop.run_until_complete(run_probe(args.integration, timeout, env))
    except Exception as exc:
        result = {
            "integration": args.integration,
            "healthy": False,
            "status": "ERROR",
            "message": f"probe failed: {type(exc).__name__}",
            "latencyMs": 0.0,
            "checkedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
    line = json.dumps(result, sort_keys=True)
    print(line, flush=True)
    write_termination_log(
        args.termination_log or env.get(TERMINATION_LOG_ENV) or DEFAULT_TERMINATION_LOG, line
    )
    code = 0 if result["healthy"] else 1
    loop.close()
    executor.shutdown(wait=False, cancel_futures=True)
    if _abandoned_workers():
        # The result is out; a worker still blocked in I/O must not delay the exit.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _abandoned_workers(grace: float = 0.5) -> bool:
    """True if one of the probe's worker threads is still busy after `grace` seconds."""
    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread.name.startswith(_WORKER_PREFIX):
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return True
    return False


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m flagops.cli.probe`), same as `flagops probe`."""
    parser = argparse.ArgumentParser(prog="flagops probe", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
