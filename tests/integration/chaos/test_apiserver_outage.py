"""kube-apiserver stopped for 30 s, then etcd restarted, in the middle of a Rollout.

On a control plane of its own (stopping the session's would stop every other
test's world): the operator neither exits nor restarts, /healthz says
`degraded` while the apiserver is away (and fails once that lasts longer than
--apiserver-unhealthy-after, here 20 s), the Rollout resumes where it was with
no stage repeated, and publishing catches up.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaos_recorder import ClusterRecorder, as_dict, step_of
from kubernetes import client

from flagops.api.stages import ORDER, Stage
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.crds import apply_crds
from flagops_devtools.testing.objects import GROUP, VERSION, create_flag, create_rollout
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.traffic import TrafficGenerator
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

OUTAGE_SECONDS = 30.0
ETCD_OUTAGE_SECONDS = 8.0
UNHEALTHY_AFTER = 20
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def own_plane() -> Iterator[ControlPlane]:
    plane = ControlPlane(controller_manager=False)
    plane.start()
    try:
        apply_crds(plane, REPO / "crds")
        yield plane
    finally:
        plane.stop()


def healthz(operator: OperatorProcess) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{operator.health_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_apiserver_and_etcd_outages_mid_rollout(
    own_plane: ControlPlane, prometheus_server: Any
) -> None:
    api = own_plane.api_client()
    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    namespace = own_plane.create_namespace()
    traffic = TrafficGenerator("calendar_sync", "calendar_sync", rate=50).start()
    recorder = ClusterRecorder(api, namespace).start()
    prometheus = prometheus_server([traffic.target], scrape_interval="1s")
    operator = OperatorProcess(
        own_plane.kubeconfig,
        [namespace],
        prometheus_address=prometheus.url,
        extra_args=["--apiserver-unhealthy-after", str(UNHEALTHY_AFTER)],
    )
    try:
        operator.start()
        pid = operator.process.pid
        for name, enabled in (("calendar-sync", False), ("bystander", False)):
            create_flag(custom, namespace, name, integration="calendar_sync", enabled=enabled)
        create_rollout(
            custom,
            namespace,
            "calendar-sync",
            stageDuration="3s",
            analysis={"interval": "1s", "minSampleSize": 20},
        )

        def stage() -> str | None:
            obj = as_dict(
                custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "rollouts", "calendar-sync"
                )
            )
            found: str | None = (obj.get("status") or {}).get("stage")
            return found

        wait_for(lambda: stage() == "BETA", timeout=90, message="Rollout at BETA")
        assert healthz(operator)[1]["apiserver"]["status"] == "ok"

        # --- the apiserver away for 30 s ----------------------------------------------
        last_rv = max(v.rv for v in recorder.of("rollouts"))
        down = time.monotonic()
        own_plane.stop_part("kube-apiserver")

        def answered(code: int, state: str | None) -> dict[str, Any] | None:
            assert operator.process.running(), operator.process.describe_failure()
            status, body = healthz(operator)
            if status == code and (state is None or body["apiserver"]["status"] == state):
                return {"code": status, **body}
            return None

        degraded = wait_for(lambda: answered(200, "degraded"), timeout=15)
        degraded_after = time.monotonic() - down
        print(
            f"\n/healthz degraded {degraded_after:.1f}s after the apiserver stopped: "
            f"{degraded['apiserver']['message']}"
        )
        wait_for(lambda: answered(500, None), timeout=OUTAGE_SECONDS - 4)
        failing_after = time.monotonic() - down
        print(
            f"/healthz 500 after {failing_after:.1f}s (--apiserver-unhealthy-after "
            f"{UNHEALTHY_AFTER})"
        )
        # The outage itself (a schedule, not a wait for anything).
        threading.Event().wait(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down)))
        assert operator.process.running(), operator.process.describe_failure()
        own_plane.start_part("kube-apiserver")
        back = time.monotonic()
        print(f"apiserver down {back - down:.1f}s")

        def wrote_again() -> bool:
            return any(v.rv > last_rv for v in recorder.of("rollouts"))

        wait_for(wrote_again, timeout=60, message="the operator writing again")
        print(f"operator wrote again {time.monotonic() - back:.1f}s after the apiserver returned")
        wait_for(lambda: answered(200, "ok"), timeout=30)
        print(f"/healthz ok {time.monotonic() - back:.1f}s after the apiserver returned")

        # --- etcd restarted -------------------------------------------------------------
        last_rv = max(v.rv for v in recorder.of("rollouts"))
        own_plane.stop_part("etcd")
        wait_for(lambda: answered(200, "degraded"), timeout=15)
        threading.Event().wait(ETCD_OUTAGE_SECONDS)
        own_plane.start_part("etcd")
        back = time.monotonic()
        wait_for(wrote_again, timeout=90, message="the operator writing again after etcd")
        print(f"operator wrote again {time.monotonic() - back:.1f}s after etcd returned")

        # Publishing catches up: a change made now reaches the ConfigMap.
        changed = time.monotonic()
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "featureflags", "bystander", {"spec": {"enabled": True}}
        )

        def bystander_published() -> bool:
            cm = core.read_namespaced_config_map("feature-flags", namespace)
            text = (cm.data or {})["flags.json"]
            return bool(json.loads(text)["flags"]["bystander"]["enabled"])

        wait_for(bystander_published, timeout=30, message="bystander published")
        print(f"a flag change after the outages published in {time.monotonic() - changed:.2f}s")

        wait_for(lambda: stage() == "FULL", timeout=120, message="Rollout at FULL")
        assert operator.process.running()
        assert operator.process.pid == pid, "the operator restarted"

        # Resumed where it was: no stage repeated, each advance announced once.
        seen = [s for s, _ in recorder.stages("calendar-sync")]
        assert [ORDER.index(s) for s in seen] == sorted({ORDER.index(s) for s in seen})
        assert seen[-1] is Stage.FULL

        def steps() -> list[tuple[str, str]]:
            return [
                step_of(e)
                for e in recorder.rollout_events("calendar-sync")
                if e.get("reason") == "StageAdvanced"
            ]

        expected = [(a.value, b.value) for a, b in itertools.pairwise(ORDER)]
        wait_for(lambda: len(steps()) >= len(expected), timeout=30)
        assert sorted(steps(), key=lambda s: ORDER.index(Stage(s[0]))) == expected
        print(f"recorder gaps (watch restarted from a list): {len(recorder.gaps)}")
    finally:
        recorder.stop()
        operator.stop()
        traffic.stop()
        api.close()
