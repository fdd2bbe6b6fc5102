"""Two hooks into kopf's peering pause, which kopf offers no public way to reach.

While a higher-priority replica is active, kopf pauses this one: it stops its watch
streams and every kopf daemon. flagops changes both (controller/standby.py):

- Rollout rounds run from one scheduler of flagops's own (controller/scheduler.py),
  not kopf daemons, so flagops must see the pause to pause with it. kopf keeps it in a
  toggle set (`operator_paused`) made per operator run and handed to its own tasks
  only; the one that user code can reach is the call that starts kopf's daemon killer
  (`kopf._core.engines.daemons.daemon_killer`), made once per run.
  `watch_kopf_pause()` wraps that call to see the toggle set, then hands it on unchanged.
- A standby keeps watching, so a takeover need not list and index everything first.
  `keep_watching_while_paused()` wraps kopf's watch-stream task
  (`kopf._core.reactor.queueing.watcher`) so it is not handed the toggle set.

Each checks first that the kopf function still takes `operator_paused`. A replica that
cannot tell whether it is paused would act alongside the active one, so when a check
fails the function says so and peering operators refuse to start
(controller/operator.py). tests/unit/controller/test_standby.py holds both wrappers to
the installed kopf.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from kopf._cogs.aiokits import aiotoggles
from kopf._core.engines import daemons
from kopf._core.reactor import queueing

logger = logging.getLogger(__name__)

Listener = Callable[[aiotoggles.ToggleSet], None]

_PATCHED = "_flagops_pause_listeners"
_WARM = "_flagops_keeps_watching"


def watch_kopf_pause(listener: Listener, module: Any = daemons) -> bool:
    """Call `listener` with kopf's `operator_paused` toggle set at each operator start;
    False when this kopf no longer passes it where this module looks."""
    listeners: list[Listener] | None = getattr(module.daemon_killer, _PATCHED, None)
    if listeners is None:
        original = module.daemon_killer
        if "operator_paused" not in inspect.signature(original).parameters:
            logger.error("kopf's daemon killer no longer takes operator_paused")
            return False
        listeners = []

        def daemon_killer(*args: Any, operator_paused: aiotoggles.ToggleSet, **kwargs: Any) -> Any:
            for each in list(listeners):
                each(operator_paused)
            return original(*args, operator_paused=operator_paused, **kwargs)

        setattr(daemon_killer, _PATCHED, listeners)
        module.daemon_killer = daemon_killer
    listeners.append(listener)
    return True


def unwatch_kopf_pause(listener: Listener, module: Any = daemons) -> None:
    listeners: list[Listener] | None = getattr(module.daemon_killer, _PATCHED, None)
    if listeners is not None and listener in listeners:
        listeners.remove(listener)


def keep_watching_while_paused(module: Any = queueing) -> bool:
    """Make kopf's resource watch streams run paused or not (peering's own streams are
    never paused); False when this kopf no longer pauses them where this module looks."""
    original = module.watcher
    if getattr(original, _WARM, False):
        return True
    if "operator_paused" not in inspect.signature(original).parameters:
        logger.error("kopf's watcher no longer takes operator_paused")
        return False

    async def watcher(*args: Any, operator_paused: Any = None, **kwargs: Any) -> None:
        # What acts on the events is held back by flagops's Standby instead.
        await original(*args, operator_paused=None, **kwargs)

    setattr(watcher, _WARM, True)
    module.watcher = watcher
    return True
