"""What /healthz says about the operator's link to the apiserver.

kopf serves /healthz as a liveness endpoint: 200 with every probe handler's
result, 500 when one fails, and a liveness failure makes the kubelet restart
the container. A restart cannot bring an apiserver back, and a restarted
operator would only wait for it at start-up, so while the apiserver is
unreachable /healthz answers 200 and says `degraded` (and since when); only
after `apiserver_unhealthy_after` seconds of it, when a fresh process might
help (a stale connection, rotated credentials), does it fail. Results are
cached by kopf for 10 s; the check itself runs every 5 s (less when
`apiserver_unhealthy_after` is under 50 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import kopf

from flagops.controller.kube import Kube

CHECK_TIMEOUT_SECONDS = 2.0
MAX_CHECK_INTERVAL = 5.0


class ApiserverNotReady(Exception):
    @property
    def reason(self) -> str:
        return str(self)


class ApiserverHealth:
    """Checks the apiserver in the background; /healthz reports the newest finding.

    kopf runs probe handlers only when /healthz is asked, and caches their results
    for 10 s; checking on our own cadence keeps "how long since the apiserver last
    answered" exact, whoever asks and whenever.
    """

    def __init__(
        self,
        kube: Kube,
        unhealthy_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._unhealthy_after = unhealthy_after
        self._clock = clock
        self.interval = min(MAX_CHECK_INTERVAL, max(unhealthy_after / 10, 0.5))
        self._last_reached = clock()
        self._last_reached_wall = _utc_now()
        self._problem: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="apiserver-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.interval)

    def _ready(self) -> None:
        # /readyz includes etcd: an apiserver without its store cannot serve us either.
        api = self._kube.api_client
        request = api.param_serialize(
            method="GET", resource_path="/readyz", auth_settings=["BearerToken"]
        )
        response: Any = api.call_api(*request, _request_timeout=CHECK_TIMEOUT_SECONDS)
        status = int(response.status)
        response.read()
        if status != 200:
            raise ApiserverNotReady(f"/readyz answered {status}")

    async def check_once(self) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self._ready), CHECK_TIMEOUT_SECONDS + 1)
        except Exception as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            self._problem = str(reason)[:120]
            return
        self._problem = None
        self._last_reached = self._clock()
        self._last_reached_wall = _utc_now()

    def report(self) -> dict[str, Any]:
        """The probe's result: ok or degraded; raises once unreachable for too long."""
        seconds = self._clock() - self._last_reached
        if self._problem is None and seconds < self._unhealthy_after:
            return {"status": "ok"}
        detail = (
            f"apiserver unreachable, last reached {seconds:.0f}s ago"
            f" ({self._problem or 'no check finished since'})"
        )
        if seconds >= self._unhealthy_after:
            raise kopf.PermanentError(f"{detail}; a restart may help")
        return {"status": "degraded", "message": detail, "lastReached": self._last_reached_wall}


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
