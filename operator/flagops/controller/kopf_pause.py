"""Whether kopf has paused this replica (peering): the Rollout scheduler's switch.

While a higher-priority replica is active, kopf stops its watch streams and every kopf
daemon. flagops runs Rollout rounds from one scheduler of its own
(controller/scheduler.py) rather than a daemon per Rollout, so it must pause with them,
and kopf offers no public hook for that. kopf keeps the state in a toggle set
(`operator_paused`) made per operator run and handed to its own tasks only; the one that
user code can reach is the call that starts kopf's daemon killer
(`kopf._core.engines.daemons.daemon_killer`), made once per run. This module wraps that
call to see the toggle set, then hands the call on unchanged.

It checks the function still takes `operator_paused` first. A replica that cannot
tell whether it is paused would analyse alongside the active one, so when the check
fails, `watch_kopf_pause()` says so and peering operators refuse to start
(controller/operator.py). tests/unit/controller/test_kopf_pause.py holds the wrapper to
the installed kopf.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from kopf._cogs.aiokits import aiotoggles
from kopf._core.engines import daemons

logger = logging.getLogger(__name__)

Listener = Callable[[aiotoggles.ToggleSet], None]

_PATCHED = "_flagops_pause_listeners"


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
