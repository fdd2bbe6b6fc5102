#!/usr/bin/env bash
# mypy --strict over the package, bench/ and tests/ ([tool.mypy] in pyproject.toml), then
# each conftest.py on its own: pytest loads every folder's conftest.py as a module named
# `conftest`, which mypy can hold only once per run.
set -euo pipefail
cd "$(dirname "$0")/.."
MYPY=${MYPY:-.venv/bin/mypy}
"$MYPY"
find tests -name conftest.py -print0 | sort -z | xargs -0 -n1 "$MYPY" --no-error-summary
