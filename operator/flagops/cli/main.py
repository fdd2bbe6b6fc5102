"""`flagops`: the operator's and the probe Job's command line.

Each subcommand lives in its own module and is imported only when used, so
`flagops probe` in a probe Job never imports kopf.
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
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flagops", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        sub_parser.set_defaults(_module=module_name)
        module = importlib.import_module(module_name)
        module.add_arguments(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(args._module)
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
