"""FlagopsProvider through the real OpenFeature SDK: values, details, hooks, events, errors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fake_relay import FakeRelay
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent, ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagValueType, Reason
from openfeature.hook import Hook, HookContext, HookHints

from flagops.flags import FeatureFlags, build_document
from flagops.flags.evaluate import bucket
from flagops.flags.openfeature import FlagopsProvider

DOMAIN = "flagops-unit"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _flags(flag_state: Callable[..., dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        "split": flag_state(25, allowedCohorts=["beta"], stage="EARLY_ACCESS"),
        "off": flag_state(100, enabled=False, stage="DISABLED"),
        "everyone": flag_state(100, stage="FULL"),
        "cohorts": flag_state(0, allowedCohorts=["all"]),
        "ended": flag_state(100, endDate="2026-01-01T00:00:00Z"),
    }


@pytest.fixture
def flags(
    volume: Any, make_client: Callable[..., FeatureFlags], flag_state: Callable[..., Any]
) -> FeatureFlags:
    volume.write_flags(_flags(flag_state))
    return make_client(volume.root, reload_interval=0, clock=lambda: NOW)


@pytest.fixture
def client(flags: FeatureFlags) -> Iterator[OpenFeatureClient]:
    api.set_provider_and_wait(FlagopsProvider(flags), domain=DOMAIN)
    yield api.get_client(DOMAIN)
    api.shutdown()


def _user(key: str, low: int, high: int) -> str:
    return next(u for u in (f"user-{i}" for i in range(10_000)) if low < bucket(key, u) <= high)


def _ctx(user: str | None = None, **attributes: Any) -> EvaluationContext:
    return EvaluationContext(targeting_key=user, attributes=attributes)


def test_metadata(client: OpenFeatureClient) -> None:
    assert client.provider.get_metadata().name == "flagops"
    assert api.get_provider_metadata(DOMAIN).name == "flagops"


@pytest.mark.parametrize(
    ("key", "user", "cohort", "value", "reason"),
    [
        ("off", "u1", "beta", False, Reason.DISABLED),
        ("ended", "u1", None, False, Reason.DISABLED),
        ("split", "any", "beta", True, Reason.TARGETING_MATCH),
        ("cohorts", None, None, True, Reason.TARGETING_MATCH),
        ("everyone", None, None, True, Reason.STATIC),
        ("split", "IN", None, True, Reason.SPLIT),
        ("split", "OUT", None, False, Reason.SPLIT),
        ("split", None, None, False, Reason.DEFAULT),
        # The SDK's context merge (`ctx2.targeting_key or ...`) drops an empty targeting
        # key before the provider sees it, so "" is no user here, unlike is_enabled("", ...).
        ("split", "", None, False, Reason.DEFAULT),
    ],
)
def test_boolean_details(
    client: OpenFeatureClient,
    flags: FeatureFlags,
    key: str,
    user: str | None,
    cohort: str | None,
    value: bool,
    reason: Reason,
) -> None:
    if user == "IN":
        user = _user(key, 0, 25)
    elif user == "OUT":
        user = _user(key, 25, 100)
    attributes = {} if cohort is None else {"cohort": cohort}
    details = client.get_boolean_details(key, not value, _ctx(user, **attributes))
    assert details.value is value
    assert details.reason == reason
    assert details.variant == ("on" if value else "off")
    assert details.error_code is None
    assert details.flag_metadata["revision"] == flags.revision
    stage = (flags.get(key) or {}).get("stage")
    assert details.flag_metadata.get("stage") == stage


def test_unknown_key_is_flag_not_found(client: OpenFeatureClient, flags: FeatureFlags) -> None:
    details = client.get_boolean_details("nope", True)
    assert details.value is True
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND
    assert details.reason == Reason.ERROR
    assert details.error_message is not None and "nope" in details.error_message
    assert client.get_boolean_value("nope", False) is False


@pytest.mark.parametrize(
    ("getter", "default"),
    [
        ("get_string_details", "x"),
        ("get_integer_details", 3),
        ("get_float_details", 1.5),
        ("get_object_details", {"a": 1}),
    ],
)
def test_non_boolean_types(client: OpenFeatureClient, getter: str, default: Any) -> None:
    known = getattr(client, getter)("everyone", default)
    assert known.value == default
    assert known.error_code == ErrorCode.TYPE_MISMATCH
    assert known.reason == Reason.ERROR
    unknown = getattr(client, getter)("nope", default)
    assert unknown.error_code == ErrorCode.FLAG_NOT_FOUND


def test_non_string_cohort_is_an_invalid_context(client: OpenFeatureClient) -> None:
    details = client.get_boolean_details("split", False, _ctx("u", cohort=7))
    assert details.error_code == ErrorCode.INVALID_CONTEXT
    assert details.value is False


def test_context_merges_like_the_sdk_says(client: OpenFeatureClient) -> None:
    # The cohort at API level, the user per call: both reach the evaluation.
    outside = _user("split", 25, 100)
    api.set_evaluation_context(_ctx(None, cohort="beta"))
    try:
        assert client.get_boolean_details("split", False, _ctx(outside)).reason == (
            Reason.TARGETING_MATCH
        )
    finally:
        api.set_evaluation_context(EvaluationContext())
    assert client.get_boolean_value("split", True, _ctx(outside)) is False


def test_agrees_with_is_enabled_for_thousands_of_users(
    client: OpenFeatureClient, flags: FeatureFlags
) -> None:
    mismatches = []
    for i in range(3000):
        user = f"user-{i}"
        cohort = (None, "beta", "gamma")[i % 3]
        for key in ("split", "off", "everyone", "cohorts", "ended"):
            attributes = {} if cohort is None else {"cohort": cohort}
            got = client.get_boolean_value(key, False, _ctx(user, **attributes))
            if got is not flags.is_enabled(key, user, cohort):
                mismatches.append((key, user, cohort))
    assert mismatches == []


def test_overrides_answer_static(client: OpenFeatureClient, flags: FeatureFlags) -> None:
    flags.set_override("off", True)
    flags.set_override("brand-new", False)
    on = client.get_boolean_details("off", False)
    assert (on.value, on.reason, on.variant) == (True, Reason.STATIC, "on")
    assert on.flag_metadata["overridden"] is True
    new = client.get_boolean_details("brand-new", True)
    assert (new.value, new.error_code, new.variant) == (False, None, "off")
    assert client.get_string_details("brand-new", "s").error_code == ErrorCode.TYPE_MISMATCH


class RecordingHook(Hook):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def before(self, hook_context: HookContext, hints: HookHints) -> EvaluationContext | None:
        self.calls.append(("before", hook_context.flag_key))
        return None

    def after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[FlagValueType],
        hints: HookHints,
    ) -> None:
        self.calls.append(("after", (details.value, details.reason, details.variant)))

    def error(self, hook_context: HookContext, exception: Exception, hints: HookHints) -> None:
        self.calls.append(("error", getattr(exception, "error_code", None)))

    def finally_after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[FlagValueType],
        hints: HookHints,
    ) -> None:
        self.calls.append(("finally", (details.value, details.error_code)))


def test_hooks_see_each_evaluation(client: OpenFeatureClient) -> None:
    hook = RecordingHook()
    client.add_hooks([hook])
    client.get_boolean_value("everyone", False)
    assert hook.calls == [
        ("before", "everyone"),
        ("after", (True, Reason.STATIC, "on")),
        ("finally", (True, None)),
    ]
    hook.calls.clear()
    client.get_boolean_value("nope", True)
    assert hook.calls == [
        ("before", "nope"),
        ("error", ErrorCode.FLAG_NOT_FOUND),
        ("finally", (True, ErrorCode.FLAG_NOT_FOUND)),
    ]
    hook.calls.clear()
    client.get_integer_value("everyone", 1)
    assert [name for name, _ in hook.calls] == ["before", "error", "finally"]
    assert hook.calls[1] == ("error", ErrorCode.TYPE_MISMATCH)


def test_a_new_document_emits_configuration_changed(
    client: OpenFeatureClient,
    flags: FeatureFlags,
    volume: Any,
    flag_state: Callable[..., Any],
    wait_for: Any,
) -> None:
    seen: list[EventDetails] = []  # the SDK runs handlers on its own thread pool
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, seen.append)
    changed = _flags(flag_state)
    changed["split"] = flag_state(50, allowedCohorts=["beta"], stage="LIMITED")
    del changed["ended"]
    revision = volume.write_flags(changed)
    assert flags.reload() is True
    wait_for(lambda: len(seen) == 1, timeout=10, message="configuration changed")
    assert seen[0].flags_changed == ["ended", "split"]
    assert seen[0].metadata["revision"] == revision
    flags.set_override("off", True)
    wait_for(lambda: len(seen) == 2, timeout=10, message="override event")
    assert seen[1].flags_changed == ["off"]


class CountingProvider(FlagopsProvider):
    def __init__(self, flags: FeatureFlags) -> None:
        super().__init__(flags)
        self.emitted = 0

    def emit_provider_configuration_changed(self, details: ProviderEventDetails) -> None:
        self.emitted += 1
        super().emit_provider_configuration_changed(details)


def test_shutdown_stops_listening(flags: FeatureFlags) -> None:
    provider = CountingProvider(flags)
    api.set_provider_and_wait(provider, domain=DOMAIN)
    flags.set_override("x", True)
    assert provider.emitted == 1
    api.shutdown()
    flags.set_override("y", True)
    assert provider.emitted == 1


def test_over_the_relay_stream(registry: Any, wait_for: Any) -> None:
    text, revision = build_document({"k": {"enabled": True, "rolloutPercent": 100}})
    with (
        FakeRelay("tok", document=text) as relay,
        FeatureFlags.from_relay(relay.url, token="tok", registry=registry) as flags,
    ):
        provider = FlagopsProvider(flags)
        api.set_provider_and_wait(provider, domain=DOMAIN)
        try:
            client = api.get_client(DOMAIN)
            changed = threading.Event()
            client.add_handler(
                ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, lambda _: changed.set()
            )
            details = client.get_boolean_details("k", False)
            assert (details.value, details.flag_metadata["revision"]) == (True, revision)
            text2, revision2 = build_document({"k": {"enabled": False, "rolloutPercent": 100}})
            relay.publish(text2)
            assert changed.wait(10.0)
            details = client.get_boolean_details("k", True)
            assert (details.value, details.reason) == (False, Reason.DISABLED)
            assert details.flag_metadata["revision"] == revision2
        finally:
            api.shutdown()


def test_close_on_shutdown(volume: Any, flag_state: Callable[..., Any], registry: Any) -> None:
    volume.write_flags(_flags(flag_state))
    flags = FeatureFlags(volume.root, registry=registry)
    api.set_provider_and_wait(FlagopsProvider(flags, close_on_shutdown=True), domain=DOMAIN)
    assert any(t.name.startswith("flagops-flags-reload") for t in threading.enumerate())
    api.shutdown()
    assert not any(t.name.startswith("flagops-flags-reload") for t in threading.enumerate())
