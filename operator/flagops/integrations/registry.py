"""IntegrationRegistry: the services an app (or a probe) knows, kept in step with their flags."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points

from flagops.integrations.errors import IntegrationError
from flagops.integrations.service import IntegrationService
from flagops.integrations.status import HealthCheckResult, IntegrationStatus

ENTRY_POINT_GROUP = "flagops.integrations"

LOG = logging.getLogger("flagops.integrations.registry")

IntegrationFactory = Callable[[], IntegrationService]


def discover_integrations() -> dict[str, IntegrationFactory]:
    """Integration classes (or factories) advertised in the `flagops.integrations` group.

    A distribution declares e.g.
    `[project.entry-points."flagops.integrations"] weather = "pkg.mod:WeatherIntegration"`;
    the entry point's name is the integration's name. Loading is lazy: a broken
    third-party package only fails when it is asked for.
    """
    found: dict[str, IntegrationFactory] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, _lazy(ep.name, ep.load))
    return found


def _lazy(name: str, load: Callable[[], object]) -> IntegrationFactory:
    def factory() -> IntegrationService:
        target = load()
        if not callable(target):
            raise IntegrationError(f"entry point {name!r} is not callable", integration=name)
        service = target()
        if not isinstance(service, IntegrationService):
            raise IntegrationError(
                f"entry point {name!r} built {type(service).__name__}, not an IntegrationService",
                integration=name,
            )
        return service

    return factory


def create_integration(name: str) -> IntegrationService:
    """Build the integration registered under `name` (raises KeyError if none is)."""
    factories = discover_integrations()
    if name not in factories:
        known = ", ".join(sorted(factories)) or "none"
        raise KeyError(f"no integration named {name!r} (installed: {known})")
    return factories[name]()


class IntegrationRegistry:
    def __init__(self) -> None:
        self._services: dict[str, IntegrationService] = {}

    def register(self, service: IntegrationService) -> None:
        if service.name in self._services and self._services[service.name] is not service:
            raise ValueError(f"an integration named {service.name!r} is already registered")
        self._services[service.name] = service

    def unregister(self, name: str) -> IntegrationService | None:
        return self._services.pop(name, None)

    def get(self, name: str) -> IntegrationService | None:
        return self._services.get(name)

    def get_all(self) -> list[IntegrationService]:
        return list(self._services.values())

    def get_enabled(self) -> list[IntegrationService]:
        """The services whose flag is on right now."""
        return [s for s in self._services.values() if s.is_flag_enabled()]

    def load_entry_points(self) -> list[str]:
        """Instantiate and register every installed integration not registered yet.

        Returns the names registered. One broken plug-in is logged and skipped so
        it cannot take the others down.
        """
        added: list[str] = []
        for name, factory in sorted(discover_integrations().items()):
            if name in self._services:
                continue
            try:
                service = factory()
            except Exception as exc:
                LOG.error("cannot load integration %s: %s: %s", name, type(exc).__name__, exc)
                continue
            self.register(service)
            added.append(service.name)
        return added

    async def health_check_all(
        self, time_limit: float | None = None
    ) -> dict[str, HealthCheckResult]:
        services = self.get_all()
        results = await asyncio.gather(*(s.health_check(time_limit) for s in services))
        return {s.name: r for s, r in zip(services, results, strict=True)}

    async def connect_enabled(self) -> dict[str, IntegrationStatus]:
        """Connect every service whose flag is on; a failure leaves that one in ERROR."""
        return {s.name: await self._connect(s) for s in self.get_enabled()}

    async def disconnect_all(self) -> None:
        for service in self.get_all():
            await service.disconnect()

    async def sync_with_flags(self) -> dict[str, IntegrationStatus]:
        """Disconnect services whose flag turned off, connect those whose flag turned on."""
        states: dict[str, IntegrationStatus] = {}
        for service in self.get_all():
            enabled = service.is_flag_enabled()
            status = service.status
            if enabled and status in (IntegrationStatus.DISABLED, IntegrationStatus.DISCONNECTED):
                states[service.name] = await self._connect(service)
            elif not enabled and status is not IntegrationStatus.DISABLED:
                states[service.name] = await service.disconnect()
            else:
                states[service.name] = status
        return states

    async def watch(self, interval: float = 1.0, stop: asyncio.Event | None = None) -> None:
        """Call `sync_with_flags` every `interval` seconds until `stop` is set.

        The flags SDK reloads the mounted file within a second, so a flag turned
        off by a rollback disconnects the integration within about two.
        """
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.sync_with_flags()
            except Exception as exc:
                LOG.error("flag sync failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    @staticmethod
    async def _connect(service: IntegrationService) -> IntegrationStatus:
        try:
            return await service.connect()
        except IntegrationError as exc:
            LOG.warning("%s", exc)
            return service.status
