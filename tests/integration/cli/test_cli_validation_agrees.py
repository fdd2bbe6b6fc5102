"""`kubectl flagops validate` and the operator judge two Rollouts on one flag alike.

The operator runs the oldest Rollout and degrades the other with a reason in its
status; validate must pass the first and fail the second with those very words.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from cli_helpers import create_flag, create_rollout, get_object, run_plugin
from kubernetes import client

from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


def _rows(out: str) -> dict[str, tuple[str, str]]:
    """check name -> (result, message) from the validate table."""
    cells = [re.split(r"\s{3,}", line, maxsplit=2) for line in out.splitlines()[1:]]
    return {cell[1]: (cell[0], cell[2]) for cell in cells if len(cell) == 3}


def test_validate_accepts_the_rollout_the_operator_runs_and_rejects_the_other(
    kubeconfig: str,
    namespace: str,
    custom: client.CustomObjectsApi,
    operator_factory: Any,
    prometheus_server: Any,
) -> None:
    prometheus_url: str = prometheus_server([]).url
    create_flag(
        custom, namespace, "calendar-sync", key="calendar_sync", integration="calendar_sync"
    )
    analysis = {"interval": "1s", "prometheus": {"address": prometheus_url}}
    # Created in this order, and named so that a tie on the (one-second) creationTimestamp
    # also goes to "a-first": the rule is oldest first, then by name.
    create_rollout(
        custom, namespace, "a-first", "calendar-sync", autoAdvance=False, analysis=analysis
    )
    create_rollout(
        custom, namespace, "b-second", "calendar-sync", autoAdvance=False, analysis=analysis
    )
    operator_factory([namespace], prometheus_address=prometheus_url)

    def status(name: str) -> dict[str, Any]:
        return get_object(custom, namespace, "rollouts", name).get("status") or {}

    def settled() -> tuple[dict[str, Any], dict[str, Any]] | None:
        runs, degraded = status("a-first"), status("b-second")
        if runs.get("stage") == "DISABLED" and degraded.get("phase") == "Degraded":
            return runs, degraded
        return None

    try:
        runs, degraded = wait_for(settled, timeout=60, message="not settled")
    except TimeoutError:
        raise AssertionError(
            "the operator did not adopt a-first and degrade b-second:"
            f" {status('a-first')} / {status('b-second')}"
        ) from None
    assert runs.get("phase") != "Degraded", runs
    validated = next(c for c in degraded["conditions"] if c["type"] == "Validated")
    assert validated["status"] == "False", degraded
    operator_words = str(validated["message"])
    assert str(degraded.get("message")).endswith(operator_words), degraded

    base = ["--kubeconfig", kubeconfig, "-n", namespace, "validate"]
    first = run_plugin(*base, "a-first")
    assert first.code == 0, first.out + first.err
    result, message = _rows(first.out)["one rollout per flag"]
    assert result == "OK"
    assert "b-second" in message  # it says which Rollout the operator degrades

    second = run_plugin(*base, "b-second")
    assert second.code == 1, second.out + second.err
    result, message = _rows(second.out)["one rollout per flag"]
    assert result == "FAIL"
    assert message.strip() == operator_words
    assert message.strip() == (
        "FeatureFlag 'calendar-sync' is already rolled out by Rollout 'a-first';"
        " one active Rollout per flag"
    )
