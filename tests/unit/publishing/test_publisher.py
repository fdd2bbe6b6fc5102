from __future__ import annotations

from datetime import UTC, datetime

from kubernetes.client.exceptions import ApiException

from flagops.controller.publisher import namespace_going_away
from flagops.publishing.record import FlagRecord
from flagops.publishing.resolve import FlagInput, resolve
from flagops.publishing.status import desired_status, prune_none

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def record(name: str, status: dict[str, object] | None = None, **spec: object) -> FlagRecord:
    return FlagRecord(
        name=name,
        uid=f"uid-{name}",
        generation=1,
        input=FlagInput.from_spec(name, "2026-01-01T00:00:00Z", spec),
        status=status or {},
    )


def api_error(status: int, body: str) -> ApiException:
    exc = ApiException(status=status, reason="x")
    exc.body = body
    return exc


def test_namespace_going_away_is_recognised() -> None:
    terminating = '{"reason":"Forbidden","details":{"causes":[{"reason":"NamespaceTerminating"}]}}'
    gone = '{"kind":"Status","details":{"name":"shop","kind":"namespaces"},"code":404}'
    assert namespace_going_away(api_error(403, terminating))
    assert namespace_going_away(api_error(404, gone))
    assert not namespace_going_away(api_error(403, '{"message":"configmaps is forbidden"}'))
    assert not namespace_going_away(api_error(500, terminating))


def test_status_after_publish_and_a_second_identical_round_changes_nothing() -> None:
    flag = record("f", enabled=True, rolloutPercent=20)
    outcome = resolve([flag.input], []).outcomes["f"]
    status, new_conflict = desired_status(flag, outcome, "rev1", "feature-flags", NOW)
    assert not new_conflict
    assert status["publishedRevision"] == "rev1"
    assert status["effective"]["rolloutPercent"] == 20
    assert [c["type"] for c in status["conditions"]] == ["Published", "Conflict"]

    # What the apiserver stores after the merge patch, fed back in: nothing more to write.
    stored = record("f", status=prune_none(status), enabled=True, rolloutPercent=20)
    again, _ = desired_status(stored, outcome, "rev2", "feature-flags", NOW)
    assert prune_none(again) == prune_none(status)  # publishedRevision stays rev1


def test_conflict_begins_once() -> None:
    a = record("a", key="k")
    b = FlagRecord(
        name="b",
        uid="uid-b",
        generation=1,
        input=FlagInput.from_spec("b", "2026-02-01T00:00:00Z", {"key": "k"}),
    )
    outcomes = resolve([a.input, b.input], []).outcomes
    status, new_conflict = desired_status(b, outcomes["b"], "rev", "feature-flags", NOW)
    assert new_conflict
    assert status["publishedRevision"] is None
    stored = FlagRecord(
        name="b", uid="uid-b", generation=1, input=b.input, status=prune_none(status)
    )
    _, again = desired_status(stored, outcomes["b"], "rev", "feature-flags", NOW)
    assert not again


def test_a_flag_records_status_is_kept_as_text_and_reads_back_as_stored() -> None:
    stored: dict[str, object] = {
        "conditions": [{"type": "Published", "status": "True"}],
        "publishedRevision": "r",
    }
    kept = record("f", status=stored)
    assert kept.stored_status() == stored and kept.status == stored
    assert kept.status.get("publishedRevision") == "r" and "conditions" in kept.status
    assert kept.stored_status() is not kept.stored_status()  # a fresh dict to change
    assert kept == record("f", status=dict(stored))
    assert kept != record("f", status={})
