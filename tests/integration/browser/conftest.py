"""Fixtures for the browser tests: one headless Debian chromium (Playwright, system
browser) and, per test, the operator, relay and meal-plan app on the test's namespace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_world import APP_TOKEN, WEB_TOKEN, WebWorld, WorldFactory

from flagops_devtools.demo.browser import Browser
from flagops_devtools.demo.parts import AppRelay, MealPlanAppProcess
from flagops_devtools.demo.web import check_built
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.process import free_port


# Per module, not per session: a live Playwright keeps its asyncio loop marked as running
# in this thread, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # No skip: a missing chromium or an unbuilt page is a failure that says what to do.
    check_built()
    with Browser() as started:
        yield started


@pytest.fixture
def web_world(
    flagops_crds: ControlPlane,
    namespace: str,
    custom: Any,
    operator_factory: Any,
    relay_factory: Any,
    browser: Browser,
    tmp_path: Path,
) -> Iterator[WorldFactory]:
    """web_world(**operator options) -> the operator, relay and app on `namespace`."""
    started: list[WebWorld] = []

    def start(**operator_kwargs: Any) -> WebWorld:
        operator_factory([namespace], **operator_kwargs)
        web_port = free_port()
        origin = f"http://127.0.0.1:{web_port}"
        relay = relay_factory(
            [namespace],
            tokens=[
                {"name": "mealplan-app", "token": APP_TOKEN, "namespaces": [namespace]},
                {
                    "name": "mealplan-web",
                    "token": WEB_TOKEN,
                    "namespaces": [namespace],
                    "origins": [origin],
                },
            ],
        )
        app_relay = AppRelay(
            url=f"{relay.url}/namespaces/{namespace}",
            root=relay.url,
            namespace=namespace,
            token=APP_TOKEN,
            web_token=WEB_TOKEN,
        )
        app = MealPlanAppProcess(
            tmp_path, None, None, None, relay=app_relay, web_port=web_port
        ).start()
        world = WebWorld(namespace, flagops_crds.kubeconfig, custom, relay, app, browser)
        started.append(world)
        return world

    yield start
    for world in started:
        for page in world.pages:
            page.close()
        world.app.stop()
