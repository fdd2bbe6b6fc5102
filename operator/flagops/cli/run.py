"""`flagops run`: the operator."""

from __future__ import annotations

import argparse
import asyncio
import logging

from flagops.cli.malloc import bound_arenas
from flagops.controller import settings as settings_module


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings_module.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    # Before anything starts a thread (kopf, the Kubernetes client, to_thread workers).
    bound_arenas()
    from flagops.controller.operator import run_operator

    settings = settings_module.from_args(args)
    try:
        asyncio.run(run_operator(settings))
    except KeyboardInterrupt:
        logging.getLogger(__name__).info("stopped")
    return 0
