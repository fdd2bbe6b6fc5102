"""An operator rollback (an error spike under rollbackOnError) reaches the relay's streams."""

from __future__ import annotations

from typing import Any

import pytest
from rollout_controller_env import EnvFactory

from flagops_devtools.testing.relay import SseReader

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

TOKEN = "rollback-token-gggggggggggggggg"


def test_a_rollback_reaches_stream_clients(make_env: EnvFactory, relay_factory: Any) -> None:
    env = make_env()
    env.create_flag(enabled=False)
    env.create_rollout(stageDuration="10m", analysis={"rollbackOnError": True})
    env.wait_status(
        lambda s: (
            s.get("stage") == "INTERNAL" and (s.get("lastAnalysis") or {}).get("verdict") == "Pass"
        ),
        timeout=60,
    )
    relay = relay_factory(
        [env.namespace],
        tokens=[{"name": "app", "token": TOKEN, "namespaces": [env.namespace]}],
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    documents = SseReader(relay.url + "/v1/flags/stream", auth).start()
    notices = SseReader(relay.url + "/ofrep/v1/events", auth).start()
    try:
        live = documents.wait_event(
            lambda e: e.json()["flags"]["calendar_sync"]["stage"] == "INTERNAL", timeout=15
        )
        assert live.json()["flags"]["calendar_sync"]["enabled"] is True

        env.traffic.set(error_share=0.5)
        env.wait_status(lambda s: s.get("phase") == "RolledBack", timeout=30)
        rolled_back = documents.wait_event(
            lambda e: not e.json()["flags"]["calendar_sync"]["enabled"], timeout=15
        )
        assert rolled_back.json()["flags"]["calendar_sync"]["stage"] == "DISABLED"
        notice = notices.wait_event(lambda e: e.id == rolled_back.id, timeout=15)
        assert notice.json() == {"type": "refetchEvaluation", "etag": rolled_back.id}
    finally:
        documents.close()
        notices.close()
