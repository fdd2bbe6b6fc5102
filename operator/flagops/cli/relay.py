"""`flagops relay`: serve the published flags to every app (OFREP, documents, streams)."""

from __future__ import annotations

import argparse
import logging
import sys

from flagops.relay import settings as settings_module


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings_module.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_module.from_args(args)
    except ValueError as exc:
        print(f"flagops relay: {exc}", file=sys.stderr)
        return 2
    from flagops.relay.server import run as run_relay
    from flagops.relay.tokens import TokensFileError

    try:
        return run_relay(settings)
    except TokensFileError as exc:
        logging.getLogger("flagops.relay").error("cannot start: %s", exc)
        return 2
