"""Prometheus answering garbage: each answer is an Error or Inconclusive verdict with a
clear message, no stage advances, no round crashes, and the operator's memory stays put.

The garbage comes from HostilePrometheus, a test double for hostile input (see its
docstring); the real operator runs against the real control plane.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from chaos_recorder import ClusterRecorder, as_dict
from hostile_prometheus import HostilePrometheus
from kubernetes import client

from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.objects import GROUP, VERSION, create_flag, create_rollout
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration]

ROLLOUTS = ("r1", "r2", "r3", "r4", "r5")
QUERY_TIMEOUT = 1.0
HUGE_ANSWERS = 50
# RSS may move with allocator noise and kopf's own caches; a leak of the 20 MiB
# answers would pass this within a few of them.
RSS_GROWTH_LIMIT_MIB = 64

# mode -> (verdicts allowed, text the message must contain)
CASES: dict[str, tuple[set[str], str]] = {
    "nan": ({"Inconclusive"}, "NaN"),
    "inf": ({"Error"}, "+Inf, not a finite number"),
    "string": ({"Error"}, "answered a string, expected an instant vector"),
    "html": ({"Error"}, "with an HTML page, not Prometheus's JSON"),
    "matrix": ({"Error"}, "answered a matrix"),
    "empty": ({"Inconclusive"}, "waiting for samples: 0 of 20"),
    "stall": ({"Error"}, f"did not answer within {QUERY_TIMEOUT:g}s"),
    "huge": ({"Error"}, "answered more than 4096 KiB; not read further"),
}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_garbage_answers_never_advance_nor_crash(
    flagops_crds: ControlPlane, namespace: str, kube_api: Any
) -> None:
    custom = client.CustomObjectsApi(kube_api)
    hostile = HostilePrometheus().start()
    recorder = ClusterRecorder(kube_api, namespace).start()
    operator = OperatorProcess(
        flagops_crds.kubeconfig,
        [namespace],
        extra_args=["--prometheus-timeout", f"{QUERY_TIMEOUT:g}"],
    )
    try:
        operator.start()
        for name in ROLLOUTS:
            create_flag(custom, namespace, name, integration="calendar_sync")
            create_rollout(
                custom,
                namespace,
                name,
                stageDuration="1s",
                analysis={
                    "interval": "1s",
                    "minSampleSize": 20,
                    "consecutiveErrorLimit": 1000,
                    "prometheus": {"address": hostile.url},
                },
            )

        def status(name: str) -> dict[str, Any]:
            obj = as_dict(
                custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", name)
            )
            found: dict[str, Any] = obj.get("status") or {}
            return found

        # An empty answer validates (no traffic yet is fine) and leaving DISABLED needs none.
        def all_internal() -> bool:
            return all(status(n).get("stage") == "INTERNAL" for n in ROLLOUTS)

        wait_for(all_internal, timeout=90, message="every Rollout at INTERNAL")

        for mode, (verdicts, text) in CASES.items():
            switched = datetime.now(UTC)
            hostile.mode = mode

            seen: set[str] = set()

            def judged(
                switched: datetime = switched, text: str = text, seen: set[str] = seen
            ) -> dict[str, Any] | None:
                # Two analyses after the switch: the second surely asked in this mode. The
                # harness writes status after every analysis; polling sees each one.
                found = status(ROLLOUTS[0])
                last = found.get("lastAnalysis") or {}
                if "time" in last and parse_time(last["time"]) > switched:
                    seen.add(last["time"])
                if len(seen) >= 2 and text in (last.get("message") or ""):
                    return found
                return None

            found = wait_for(judged, timeout=30, message=f"analyses under {mode}")
            last = found["lastAnalysis"]
            print(f"\n{mode:7} -> {last['verdict']}: {last.get('message')}")
            assert last["verdict"] in verdicts
            assert text in found["message"] or mode in ("nan", "empty")
            for name in ROLLOUTS:
                assert status(name)["stage"] == "INTERNAL", f"{name} advanced under {mode}"
            assert operator.process.running()

        # Memory: 50 more huge answers after a warm-up of a few.
        hostile.mode = "huge"
        wait_for(lambda: hostile.count("huge") >= 10, timeout=60)
        before = operator.process.rss_kib() or 0
        start = hostile.count("huge")
        wait_for(lambda: hostile.count("huge") >= start + HUGE_ANSWERS, timeout=120)
        after = operator.process.rss_kib() or 0
        growth = (after - before) / 1024
        print(
            f"operator RSS over {HUGE_ANSWERS} answers of 20 MiB: {before / 1024:.0f} MiB -> "
            f"{after / 1024:.0f} MiB ({growth:+.1f} MiB)"
        )
        assert before > 0
        assert growth < RSS_GROWTH_LIMIT_MIB

        # None of that advanced anything; a sane answer does (the test could fail).
        for name in ROLLOUTS:
            stages = [s for s, _ in recorder.stages(name)]
            # Adoption and the first stage may share one status write.
            assert [s.value for s in stages] in (["DISABLED", "INTERNAL"], ["INTERNAL"]), stages
        hostile.mode = "good"
        wait_for(lambda: status(ROLLOUTS[0]).get("stage") == "BETA", timeout=30)
        assert "reconcile of rollout" not in operator.log()
    finally:
        recorder.stop()
        operator.stop()
        hostile.stop()
