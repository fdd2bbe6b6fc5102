"""The real OpenFeature SDK with the OFREP provider from PyPI, through the real relay.

The operator publishes FeatureFlags; the relay list-watches the ConfigMap; every
answer equals the SDK's local evaluation of the same document.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails
from relay_helpers import context, http, token_entry

from flagops.flags.evaluate import evaluate_reason
from flagops_devtools.testing.objects import create_flag
from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration

TOKEN = "openfeature-test-token-0001"
COHORTS = [None, "beta", "internal", "nobody"]
DOMAIN = "flagops-relay-test"


def _at(hours: float) -> str:
    moment = datetime.now(UTC) + timedelta(hours=hours)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


FLAGS: dict[str, dict[str, Any]] = {
    "ten_percent": {"enabled": True, "rolloutPercent": 10},
    "half_or_beta": {"enabled": True, "rolloutPercent": 50, "allowedCohorts": ["beta"]},
    "window_quarter": {
        "enabled": True,
        "rolloutPercent": 25,
        "startDate": _at(-1),
        "endDate": _at(2),
    },
    "not_yet": {"enabled": True, "rolloutPercent": 100, "startDate": _at(1)},
    "ended": {"enabled": True, "rolloutPercent": 75, "endDate": _at(-1)},
    "everyone_cohort": {"enabled": True, "rolloutPercent": 0, "allowedCohorts": ["all"]},
    "full": {"enabled": True, "rolloutPercent": 100},
    "switched_off": {"enabled": False, "rolloutPercent": 100},
    "zero": {"enabled": True, "rolloutPercent": 0, "allowedCohorts": ["internal"]},
}
SPLIT_FLAGS = ["ten_percent", "half_or_beta", "window_quarter"]


@pytest.fixture
def published(operator_factory: Any, namespace: str, custom: Any, core: Any) -> dict[str, Any]:
    """The FeatureFlags above, published by the real operator; the document's flags."""
    operator_factory([namespace])
    for key, spec in FLAGS.items():
        create_flag(custom, namespace, key.replace("_", "-"), key=key, **spec)

    def document() -> dict[str, Any] | None:
        cm = core.read_namespaced_config_map("feature-flags", namespace)
        flags: dict[str, Any] = json.loads(cm.data["flags.json"])["flags"]
        return flags if set(flags) == set(FLAGS) else None

    result: dict[str, Any] = wait_for(document, timeout=60, message="operator published")
    return result


@pytest.fixture
def client_of(relay_factory: Any, namespace: str) -> Iterator[Any]:
    relay = relay_factory(
        [namespace], tokens=[token_entry(TOKEN, [namespace], requestsPerSecond=1e6, burst=10**6)]
    )

    def make(token: str | None = TOKEN) -> Any:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        api.set_provider(OFREPProvider(relay.url, headers_factory=lambda: headers), domain=DOMAIN)
        return api.get_client(domain=DOMAIN)

    yield make, relay
    api.clear_providers()


def _expect(
    state: dict[str, Any], key: str, user: str | None, cohort: str | None
) -> tuple[bool, str]:
    value, reason = evaluate_reason(state, key, user, cohort)
    return value, reason.value


def _details(
    client: Any, key: str, user: str | None, cohort: str | None
) -> FlagEvaluationDetails[bool]:
    attributes = {} if cohort is None else {"cohort": cohort}
    ctx = EvaluationContext(targeting_key=user, attributes=attributes)
    details: FlagEvaluationDetails[bool] = client.get_boolean_details(key, False, ctx)
    return details


def test_openfeature_answers_equal_local_evaluation(
    published: dict[str, Any], client_of: Any
) -> None:
    make, _ = client_of
    client = make()
    # Wait for the relay to hold the operator's document (it may list before the last flag).
    wait_for(lambda: _details(client, "zero", "u", None).error_code is None, timeout=30)
    checked = 0
    for i in range(2000):
        user, cohort = f"user-{i}", COHORTS[i % len(COHORTS)]
        for key in SPLIT_FLAGS if i >= 100 else FLAGS:
            details = _details(client, key, user, cohort)
            assert details.error_code is None, (key, details.error_message)
            expected = _expect(published[key], key, user, cohort)
            assert (details.value, str(details.reason)) == expected, (key, user, cohort)
            assert details.variant == ("on" if expected[0] else "off")
            assert details.flag_metadata["revision"]
            checked += 1
    assert checked == 100 * len(FLAGS) + 1900 * len(SPLIT_FLAGS)
    # No targetingKey: a partial percentage has no bucket to decide (DEFAULT, off).
    anonymous = _details(client, "ten_percent", None, None)
    assert (anonymous.value, str(anonymous.reason)) == (False, "DEFAULT")
    # Users split as the percentages say.
    on = sum(
        _expect(published["ten_percent"], "ten_percent", f"user-{i}", None)[0] for i in range(2000)
    )
    assert 120 < on < 280


def test_bulk_answers_equal_local_evaluation_for_thousands_of_users(
    published: dict[str, Any], client_of: Any
) -> None:
    _, relay = client_of
    url = relay.url + "/ofrep/v1/evaluate/flags"

    def complete() -> bool:
        reply = http(url, TOKEN, context("u"))
        return reply.status == 200 and len(reply.json()["flags"]) == len(FLAGS)

    wait_for(complete, timeout=30, message="relay holds every flag")
    for i in range(3000):
        user, cohort = f"bulk-user-{i}", COHORTS[i % len(COHORTS)]
        reply = http(url, TOKEN, context(user, cohort))
        assert reply.status == 200
        got = {f["key"]: (f["value"], f["reason"]) for f in reply.json()["flags"]}
        assert got == {key: _expect(state, key, user, cohort) for key, state in published.items()}


def test_openfeature_errors_reach_the_application(
    published: dict[str, Any], client_of: Any
) -> None:
    make, _ = client_of
    client = make()
    wait_for(lambda: _details(client, "full", "u", None).error_code is None, timeout=30)
    missing = _details(client, "no_such_flag", "u", None)
    assert (missing.value, missing.error_code) == (False, ErrorCode.FLAG_NOT_FOUND)
    stranger = _details(make("not-a-valid-token-000000"), "full", "u", None)
    assert stranger.value is False
    assert stranger.error_code == ErrorCode.GENERAL
    assert stranger.error_message == "unauthorized"
