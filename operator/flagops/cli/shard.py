"""`flagops shard --shards N NAMESPACE...`: which shard serves each namespace."""

from __future__ import annotations

import argparse
import sys

from flagops.controller.shard import shard_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shards", type=int, required=True, metavar="N", help="shard count")
    parser.add_argument("namespaces", nargs="+", metavar="NAMESPACE")


def run(args: argparse.Namespace) -> int:
    if args.shards < 1:
        print(f"flagops shard: --shards is at least 1, got {args.shards}", file=sys.stderr)
        return 2
    width = max(len(n) for n in args.namespaces)
    for namespace in args.namespaces:
        print(f"{namespace:<{width}}  {shard_of(namespace, args.shards)}/{args.shards}")
    return 0
