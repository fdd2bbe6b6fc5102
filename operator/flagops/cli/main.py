"""`flagops`: the operator's and the probe Job's command line.

Each subcommand lives in its own module, imported only when it is the one
invoked, so `flagops probe` in a probe Job never imports kopf.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module, help). Each module offers `add_arguments(parser)` and `run(args) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("flagops.cli.run", "run the operator (kopf)"),
    "probe": ("flagops.cli.probe", "run one integration health probe and print its JSON result"),
    "crds": ("flagops.api.crdgen", "print the generated CustomResourceDefinitions"),
    "relay": ("flagops.cli.relay", "serve flags to apps and browsers (OFREP, document streams)"),
    "shard": ("flagops.cli.shard", "print which shard (--shard i/n) serves each namespace"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="flagops", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    parsers = {name: sub.add_parser(name, help=text) for name, (_, text) in SUBCOMMANDS.items()}
    command = next((a for a in args_list if not a.startswith("-")), None)
    if command not in SUBCOMMANDS:
        parser.parse_args(args_list)  # prints usage or help and exits
        return 2
    module = importlib.import_module(SUBCOMMANDS[command][0])
    module.add_arguments(parsers[command])
    args = parser.parse_args(args_list)
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
