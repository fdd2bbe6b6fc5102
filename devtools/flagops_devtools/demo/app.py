"""The demo's meal-plan app: a real app process on the flagops SDK and integrations.

It follows the relay's document stream with `FeatureFlags.from_relay` (starting
from, and falling back to, the mounted-style flags folder), or only the folder.
Every tick a
batch of its users saves a day's meal plan. For each user the `calendar_sync`
flag lets in, the plan's meals go to Calendar through `CalendarSyncIntegration`
(one counted operation per meal); for each user `shopping_list_sync` lets in,
the day's shopping list goes to the household calendar (a second Calendar
account) through `ShoppingListSyncIntegration`. The integrations' counter,
`flagops_integration_operations_total`, is served for Prometheus to scrape.

    python -m flagops_devtools.demo.app [--relay-url URL] [--flags-dir DIR] --metrics-port N \
        [--web-port N --web-relay-url URL --namespace NS] \
        [--calendar-endpoint URL --calendar-credentials FILE] \
        [--shopping-endpoint URL --shopping-credentials FILE] [--mock]

With `--web-port` it also serves the meal-plan web page (flagops_devtools.demo.web). Tokens come
from the environment, never the command line: FLAGOPS_RELAY_TOKEN (the app's) and
FLAGOPS_WEB_RELAY_TOKEN (the browser's, handed to the page).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flagops.flags import FeatureFlags
from flagops.flags.snapshot import Change
from flagops.integrations import IntegrationError, IntegrationRegistry
from flagops.integrations.calendar import CalendarSyncIntegration
from flagops.integrations.flagsource import FlagSource
from flagops_devtools.demo.users import User, population
from flagops_devtools.demo.web import PageConfig, WebServer

log = logging.getLogger("meal-plan-app")

SHOPPING_INTEGRATION = "shopping_list_sync"
MENU = (
    ("breakfast", "Oatmeal with berries", ["oats", "milk", "blueberries"]),
    ("lunch", "Lentil salad", ["lentils", "tomatoes", "feta", "olive oil"]),
    ("dinner", "Salmon with rice", ["salmon", "rice", "broccoli", "lemon"]),
)


class ShoppingListSyncIntegration(CalendarSyncIntegration):
    """A day's shopping list as an event in the household calendar.

    It reuses calendar sync's client and idempotent sync, under its own name and
    flag, so its operations are counted (and judged by its Rollout) apart.
    """

    def __init__(self, *, flags: FlagSource | None = None) -> None:
        super().__init__(flags=flags)
        self.name = SHOPPING_INTEGRATION
        self.flag_name = SHOPPING_INTEGRATION
        self.logger = logging.getLogger(f"flagops.integrations.{SHOPPING_INTEGRATION}")


def meal_plan(user: User, day: dt.date) -> dict[str, Any]:
    meals = [
        {"id": f"{kind}", "type": kind, "name": name, "ingredients": ingredients}
        for kind, name, ingredients in MENU
    ]
    return {"id": f"{user.user_id}-{day.isoformat()}", "days": [{"date": day, "meals": meals}]}


def shopping_list(user: User, day: dt.date) -> dict[str, Any]:
    items = sorted({item for _, _, ingredients in MENU for item in ingredients})
    trip = {
        "id": day.isoformat(),
        "type": "shopping",
        "name": f"Shopping for {day.isoformat()} ({len(items)} items)",
        "time": "17:30",
        "ingredients": items,
    }
    return {"id": f"shopping-{user.user_id}", "days": [{"date": day, "meals": [trip]}]}


def _service_config(endpoint: str | None, credentials: str | None, mock: bool) -> dict[str, Any]:
    if mock or not endpoint or not credentials:
        return {"mock_mode": True, "actor": "meal-plan-app"}
    return {
        "api_endpoint": endpoint,
        "credentials_file": credentials,
        "actor": "meal-plan-app",
        # Retry a 5xx once, quickly: enough to ride out a blip, not to hide an outage.
        "num_retries": 1,
        "retry_backoff_scale": 0.05,
        "request_timeout": 10,
    }


class MealPlanApp:
    def __init__(self, flags: FeatureFlags, users: Sequence[User], per_tick: int) -> None:
        self.flags = flags
        self.users = list(users)
        self.per_tick = per_tick
        self.calendar = CalendarSyncIntegration(flags=flags)
        self.shopping = ShoppingListSyncIntegration(flags=flags)
        self.registry = IntegrationRegistry()
        self.registry.register(self.calendar)
        self.registry.register(self.shopping)
        self._next = 0
        self._round = 0

    async def init(self, calendar: dict[str, Any], shopping: dict[str, Any]) -> None:
        await self.calendar.init(calendar)
        await self.shopping.init(shopping)

    def _batch(self) -> list[User]:
        batch = [self.users[(self._next + i) % len(self.users)] for i in range(self.per_tick)]
        self._next = (self._next + self.per_tick) % len(self.users)
        if self._next < self.per_tick:
            self._round += 1
        return batch

    async def tick(self) -> None:
        # A new day each round through the users: a week of inserts, then mostly re-syncs.
        day = dt.date(2025, 1, 6) + dt.timedelta(days=self._round % 7)
        for user in self._batch():
            if self.flags.is_enabled("calendar_sync", user_id=user.user_id, cohort=user.cohort):
                await self._sync(self.calendar, meal_plan(user, day))
            if self.flags.is_enabled(
                SHOPPING_INTEGRATION, user_id=user.user_id, cohort=user.cohort
            ):
                await self._sync(self.shopping, shopping_list(user, day))

    @staticmethod
    async def _sync(service: CalendarSyncIntegration, plan: dict[str, Any]) -> None:
        try:
            report = await service.sync_meal_plan(plan, reminder_minutes=15)
        except IntegrationError as exc:
            # Not connected yet, or the flag turned off between the check and the call.
            log.info("%s: %s", service.name, exc)
            return
        failed = [o for o in report.outcomes if not o.ok]
        if failed:
            log.warning("%s: plan %s: %d meals failed", service.name, plan["id"], len(failed))


class Arrivals:
    """When each flag revision reached this app (wall clock), and what it said: the demo
    compares these times with the operator's stageStartedAt."""

    def __init__(self, flags: FeatureFlags, keep: int = 1000) -> None:
        self._flags = flags
        self._lock = threading.Lock()
        self._seen: deque[dict[str, Any]] = deque(maxlen=keep)
        self.record(None)
        flags.add_listener(self.record)

    def record(self, change: Change | None) -> None:
        at = time.time()
        revision = self._flags.revision
        if revision is None or (change is not None and change.revision == change.previous):
            return
        flags = {}
        for key in sorted(self._flags.keys()):
            state = self._flags.get(key) or {}
            flags[key] = {
                "enabled": state.get("enabled"),
                "rolloutPercent": state.get("rolloutPercent"),
                "stage": state.get("stage"),
            }
        with self._lock:
            self._seen.append({"revision": revision, "at": at, "flags": flags})

    def __call__(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._seen)


def open_flags(args: argparse.Namespace) -> FeatureFlags:
    if args.relay_url:
        return FeatureFlags.from_relay(
            args.relay_url,
            token=os.environ.get("FLAGOPS_RELAY_TOKEN") or None,
            fallback_path=args.flags_dir,
        )
    return FeatureFlags(args.flags_dir)


async def run(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server, _ = start_http_server(args.metrics_port, addr="127.0.0.1")
    flags = open_flags(args)
    arrivals = Arrivals(flags)
    web: WebServer | None = None
    if args.web_port:
        config = PageConfig(
            relay_url=args.web_relay_url,
            namespace=args.namespace,
            token=os.environ.get("FLAGOPS_WEB_RELAY_TOKEN") or None,
        )
        web = WebServer(args.web_port, config, arrivals, args.web_dir).start()
        log.info("meal-plan page on %s", web.url)
    app = MealPlanApp(flags, population(args.users), args.per_tick)
    await app.init(
        _service_config(args.calendar_endpoint, args.calendar_credentials, args.mock),
        _service_config(args.shopping_endpoint, args.shopping_credentials, args.mock),
    )
    watcher = asyncio.create_task(app.registry.watch(interval=0.5, stop=stop))
    log.info("meal-plan app serving %d users, metrics on :%d", len(app.users), args.metrics_port)
    try:
        while not stop.is_set():
            await app.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.tick)
    finally:
        stop.set()
        await watcher
        await app.registry.disconnect_all()
        if web is not None:
            web.stop()
        flags.close()
        server.shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flagops_devtools.demo.app", description=__doc__
    )
    parser.add_argument("--relay-url", help="follow the relay's document stream (from_relay)")
    parser.add_argument("--flags-dir", type=Path, help="mounted flags (with --relay-url: fallback)")
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--web-port", type=int, help="serve the meal-plan web page on this port")
    parser.add_argument("--web-relay-url", help="the relay's address as the browser reaches it")
    parser.add_argument(
        "--web-dir", type=Path, help="the built page (default: the checkout's mealplan-web)"
    )
    parser.add_argument("--namespace", help="the namespace whose flags the page reads")
    parser.add_argument("--calendar-endpoint")
    parser.add_argument("--calendar-credentials")
    parser.add_argument("--shopping-endpoint")
    parser.add_argument("--shopping-credentials")
    parser.add_argument("--mock", action="store_true", help="offline mock calendars")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-tick", type=int, default=10, help="users who save a plan per tick")
    parser.add_argument("--tick", type=float, default=1.0, help="seconds between ticks")
    args = parser.parse_args(argv)
    if not args.relay_url and not args.flags_dir:
        parser.error("give --relay-url, --flags-dir or both")
    if args.web_port and not (args.web_relay_url and args.namespace):
        parser.error("--web-port needs --web-relay-url and --namespace")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # One audit record per operation is the product's contract; the demo's log needs less.
    logging.getLogger("flagops.audit").setLevel(logging.WARNING)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
