"""HTTP load for the relay benchmark: wrk runs with Lua scripts, and Unleash Edge beside it.

wrk (Debian package `wrk`) drives the load from its own core; each script's `done()`
prints one JSON line with the figures, so nothing depends on wrk's text layout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flagops_devtools.testing.process import ManagedProcess, free_port
from flagops_devtools.testing.wait import wait_for

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%f,"p50":%f,"p95":%f,"p99":%f,"max":%f,'
    .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors, timeouts and HTTP statuses >= 400

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        errors = f", {self.errors} errors" if self.errors else ""
        return (
            f"{self.rps:,.0f} req/s, p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms{errors}"
        )


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here (ASCII)


def ofrep_bulk_script(token: str, users: int) -> str:
    """POST /ofrep/v1/evaluate/flags, a different user of `users` on each request."""
    return f"""
wrk.method = "POST"
wrk.headers["Authorization"] = {lua_string("Bearer " + token)}
wrk.headers["Content-Type"] = "application/json"
local bodies = {{}}
for i = 1, {users} do
  bodies[i] = '{{"context":{{"targetingKey":"user-' .. i .. '"}}}}'
end
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % {users}) + 1])
end
{_DONE}"""


def revalidation_script(token: str, pairs: Sequence[tuple[str, str]]) -> str:
    """The same POSTs with each user's own ETag in If-None-Match: every answer a 304."""
    rows = ",\n".join(f"{{{lua_string(body)}, {lua_string(etag)}}}" for body, etag in pairs)
    return f"""
local auth = {lua_string("Bearer " + token)}
local items = {{
{rows}
}}
-- wrk.format's headers argument replaces wrk.headers: each request carries all of its own.
local requests = {{}}
for i, p in ipairs(items) do
  requests[i] = wrk.format("POST", nil, {{
    ["Authorization"] = auth,
    ["Content-Type"] = "application/json",
    ["If-None-Match"] = p[2],
  }}, p[1])
end
local n = 0
request = function()
  n = n + 1
  return requests[(n % #requests) + 1]
end
response = function(status, headers, body)
  if status ~= 304 then
    io.stderr:write("unexpected status " .. status .. "\\n")
  end
end
{_DONE}"""


def edge_frontend_script(token: str, users: int) -> str:
    """GET /api/frontend?userId=..., Unleash's remote evaluation of every toggle for a user."""
    return f"""
wrk.headers["Authorization"] = {lua_string(token)}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/frontend?userId=user-" .. ((n % {users}) + 1))
end
{_DONE}"""


def run_wrk(
    url: str,
    script: str,
    seconds: float,
    connections: int = 32,
    cpu: int = 1,
) -> WrkResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        path = handle.name
    try:
        argv = [
            "taskset",
            "-c",
            str(cpu),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            path,
            url,
        ]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        Path(path).unlink(missing_ok=True)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith('{"requests"')), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr[-500:]}")
    data = json.loads(line)
    unexpected = result.stderr.count("unexpected status")
    return WrkResult(
        requests=int(data["requests"]),
        seconds=float(data["seconds"]),
        p50_ms=float(data["p50"]),
        p95_ms=float(data["p95"]),
        p99_ms=float(data["p99"]),
        max_ms=float(data["max"]),
        errors=sum(int(data[k]) for k in ("connect", "read", "write", "status", "timeout"))
        + unexpected,
    )


def have_wrk() -> bool:
    return shutil.which("wrk") is not None and shutil.which("taskset") is not None


# -- Unleash Edge ----------------------------------------------------------------------------


def edge_binary() -> str | None:
    """`unleash-edge` when on PATH; never built here (`cargo install` takes ~20 minutes)."""
    return shutil.which("unleash-edge")


def edge_bootstrap(flags: int) -> dict[str, object]:
    """`flags` flexibleRollout toggles: Edge's equivalent of the relay's percentage flags."""
    return {
        "version": 2,
        "features": [
            {
                "name": f"flag-{i:04d}",
                "type": "release",
                "enabled": True,
                "project": "default",
                "strategies": [
                    {
                        "name": "flexibleRollout",
                        "parameters": {
                            "rollout": str(1 + (i * 7) % 98),
                            "stickiness": "userId",
                            "groupId": f"flag-{i:04d}",
                        },
                    }
                ],
            }
            for i in range(flags)
        ],
    }


def edge_version(binary: str) -> str:
    """Edge 20 has no `--version`: `cargo install` names the version in the binary's path
    or its crates metadata, so ask cargo, and fall back to the binary's name."""
    crates = Path(binary).resolve().parent.parent / ".crates.toml"
    if crates.is_file():
        for line in crates.read_text().splitlines():
            if line.startswith('"unleash-edge '):
                return "unleash-edge " + line.split()[1]
    return Path(binary).name


class EdgeProcess:
    """Unleash Edge in offline mode on one core, bootstrapped from a file."""

    TOKEN = "*:development.flagops-bench-token"

    def __init__(self, binary: str, flags: int, work_dir: Path, cpu: int = 0) -> None:
        self.port = free_port()
        bootstrap = work_dir / "edge-bootstrap.json"
        bootstrap.write_text(json.dumps(edge_bootstrap(flags)))
        self.version = edge_version(binary)
        argv = [
            "taskset",
            "-c",
            str(cpu),
            binary,
            "--port",
            str(self.port),
            "--interface",
            "127.0.0.1",
            "offline",
            "--bootstrap-file",
            str(bootstrap),
            # Edge 20 splits `--tokens`: offline mode needs client tokens, and
            # /api/frontend answers frontend tokens.
            "--client-tokens",
            self.TOKEN,
            "--frontend-tokens",
            self.TOKEN,
        ]
        self.process = ManagedProcess("unleash-edge", argv, work_dir / "unleash-edge.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EdgeProcess:
        import urllib.request

        self.process.start()

        def answers() -> bool:
            if not self.process.running():
                raise RuntimeError(self.process.describe_failure())
            request = urllib.request.Request(
                self.url + "/api/frontend?userId=user-1", headers={"Authorization": self.TOKEN}
            )
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.status == 200)

        wait_for(answers, timeout=30, message=f"unleash-edge: {self.process.describe_failure()}")
        return self

    def stop(self) -> None:
        self.process.stop()
