"""Run every bench/bench_*.py module's main() in turn."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    failed = 0
    names = sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if info.name.startswith("bench_")
    )
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "main", None)
        if run is None:
            continue
        print(f"== {name} ==", flush=True)
        result = run()
        if isinstance(result, int) and result != 0:
            failed += 1
        print(flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
