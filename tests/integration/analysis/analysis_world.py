"""The grouped-analysis tests' world: one app per integration (its error share under the test's
control), a real Prometheus scraping them all, the operator on short aligned ticks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from flagops.api.resources import GROUP, VERSION
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.objects import stage_steps
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.prometheus import PrometheusServer
from flagops_devtools.testing.stage_totals import StageTotals
from flagops_devtools.testing.traffic import TrafficGenerator
from flagops_devtools.testing.wait import wait_for

INTERVAL_SECONDS = 2
THRESHOLD = 0.05
MIN_SAMPLES = 100
# Operations a second per app, errors spread evenly: the exact query and the totals may
# begin and end a scrape apart, and at this rate no lump of errors sits at an edge (at 50/s
# with 1% errors one error every 2 s is half a point of a short window), so what the tests
# measure is the operator's bookkeeping.
RATE = 2000.0
# Stage time counted before a test changes an error mix (see AnalysisWorld.wait_in_stage).
SETTLED_SECONDS = 16
# A custom template (anything but both defaults unset) is analysed alone.
CUSTOM_ERROR_RATE = (
    'sum(increase(flagops_integration_operations_total{integration="{{integration}}",'
    'outcome="error"}[{{window}}])) / sum(increase(flagops_integration_operations_total'
    '{integration="{{integration}}"}[{{window}}]))'
)
CUSTOM_SAMPLE_COUNT = (
    'sum(increase(flagops_integration_operations_total{integration="{{integration}}"}[{{window}}]))'
)


@dataclass(frozen=True)
class Watched:
    """A Rollout under test and the integration its flag gates."""

    name: str
    integration: str


@dataclass
class AnalysisWorld:
    namespace: str
    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    prometheus: PrometheusServer
    apps: dict[str, TrafficGenerator]
    operator: OperatorProcess
    rollouts: dict[str, Watched] = field(default_factory=dict)

    # --- writing -------------------------------------------------------------------------

    def create(
        self,
        name: str,
        integration: str,
        *,
        custom_template: bool = False,
        stage_duration: str = "10m",
        target_stage: str = "FULL",
        **analysis: Any,
    ) -> Watched:
        """A flag gating `integration` at 10% and a Rollout of it (adopted at BETA), analysed
        every INTERVAL_SECONDS; a long bake keeps it in the stage unless asked otherwise.
        `analysis` goes into spec.analysis."""
        flag = {
            "key": name.replace("-", "_"),
            "integration": integration,
            "enabled": True,
            "rolloutPercent": 10,
        }
        self._create("featureflags", "FeatureFlag", name, flag)
        spec: dict[str, Any] = {
            "interval": f"{INTERVAL_SECONDS}s",
            "errorThreshold": THRESHOLD,
            "minSampleSize": MIN_SAMPLES,
            **analysis,
        }
        if custom_template:
            spec["prometheus"] = {
                "errorRateQuery": CUSTOM_ERROR_RATE,
                "sampleCountQuery": CUSTOM_SAMPLE_COUNT,
            }
        rollout = {
            "flagRef": {"name": name},
            "stageDuration": stage_duration,
            "targetStage": target_stage,
            "analysis": spec,
        }
        self._create("rollouts", "Rollout", name, rollout)
        watched = Watched(name, integration)
        self.rollouts[name] = watched
        return watched

    def _create(self, plural: str, kind: str, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body)

    # --- reading -------------------------------------------------------------------------

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Every Rollout's status, from one list call."""
        listed = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "rollouts"
        )
        assert isinstance(listed, dict)
        return {item["metadata"]["name"]: item.get("status") or {} for item in listed["items"]}

    def status(self, name: str) -> dict[str, Any]:
        return self.statuses().get(name) or {}

    def totals(self, name: str) -> StageTotals | None:
        return StageTotals.from_status(self.status(name))

    def wait_all(
        self,
        check: Callable[[dict[str, Any]], bool],
        names: list[str] | None = None,
        *,
        timeout: float = 60,
        message: str = "rollouts",
        observe: Callable[[dict[str, dict[str, Any]]], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Statuses once `check` holds for every named Rollout; `observe` sees each poll."""
        wanted = names if names is not None else list(self.rollouts)
        last: dict[str, dict[str, Any]] = {}

        def ready() -> dict[str, dict[str, Any]] | None:
            nonlocal last
            last = self.statuses()
            if observe is not None:
                observe(last)
            return last if all(check(last.get(n) or {}) for n in wanted) else None

        try:
            result: dict[str, dict[str, Any]] = wait_for(
                ready, timeout=timeout, interval=0.2, message=message
            )
        except TimeoutError as exc:
            shown = {n: _brief(last.get(n) or {}) for n in wanted}
            raise TimeoutError(f"{exc}; last statuses: {shown}") from None
        return result

    def wait_ticks(
        self,
        name: str,
        count: int,
        *,
        observe: Callable[[dict[str, dict[str, Any]]], None] | None = None,
    ) -> StageTotals:
        """The Rollout's totals once they run `count` ticks further than now (time passing,
        as the operator's own grid counts it)."""
        start = self.totals(name)
        assert start is not None, f"{name} has no stageTotals"
        goal = start.through + timedelta(seconds=count * INTERVAL_SECONDS)

        def far_enough(status: dict[str, Any]) -> bool:
            totals = StageTotals.from_status(status)
            return totals is not None and totals.through >= goal

        statuses = self.wait_all(
            far_enough,
            [name],
            timeout=count * INTERVAL_SECONDS + 30,
            message=f"{count} more ticks of {name}",
            observe=observe,
        )
        totals = StageTotals.from_status(statuses[name])
        assert totals is not None
        return totals

    def wait_in_stage(
        self,
        names: list[str],
        seconds: int,
        *,
        observe: Callable[[dict[str, dict[str, Any]]], None] | None = None,
    ) -> None:
        """Until the Rollouts' totals cover `seconds` of their stage.

        Tests change an error mix only then: the exact query and the totals may begin up to
        a scrape or two apart, which weighs little against a long stretch."""

        def long_enough(status: dict[str, Any]) -> bool:
            totals = StageTotals.from_status(status)
            return totals is not None and totals.window_seconds >= seconds

        self.wait_all(
            long_enough,
            names,
            timeout=seconds + 60,
            message=f"{seconds}s counted in the stage",
            observe=observe,
        )

    def stage_steps(self, name: str) -> list[tuple[str, str]]:
        """(from, to) of every StageAdvanced Event, oldest first."""
        return stage_steps(self.events(name))

    def events(self, name: str) -> list[Any]:
        items = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=Rollout"
        ).items
        return sorted(items, key=lambda e: (e.first_timestamp or e.event_time, e.metadata.name))

    # --- the operator's metrics ----------------------------------------------------------

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the operator's samples named `name` whose labels include `labels`."""
        return metric_value(self.operator.metrics(), name, **labels)


def metric_value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def analysed(status: dict[str, Any]) -> bool:
    """A verdict and stage totals are in status."""
    return verdict(status) is not None and StageTotals.from_status(status) is not None


def verdict(status: dict[str, Any]) -> str | None:
    last = status.get("lastAnalysis") or {}
    value = last.get("verdict")
    return str(value) if value is not None else None


def _brief(status: dict[str, Any]) -> dict[str, Any]:
    keys = ("stage", "phase", "message", "lastAnalysis", "stageTotals")
    return {k: status.get(k) for k in keys if k in status}


@dataclass
class WorldFactory:
    control_plane: ControlPlane
    namespace: str
    kube_api: Any
    prometheus_server: Callable[..., PrometheusServer]
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def __call__(self, error_shares: dict[str, float], *, grouping: str = "on") -> AnalysisWorld:
        """Apps for the integrations in `error_shares` at RATE operations a second, a Prometheus
        scraping them (each seen once), and the operator writing status every round."""
        apps: dict[str, TrafficGenerator] = {}
        for integration, share in error_shares.items():
            app = TrafficGenerator(integration, integration, rate=RATE)
            app.set(error_share=share)
            apps[integration] = app.start()
            self.cleanup.append(app.stop)
        prometheus = self.prometheus_server([a.target for a in apps.values()], scrape_interval="1s")
        for app in apps.values():
            prometheus.wait_for_scrape(app.target)
        operator = OperatorProcess(
            self.control_plane.kubeconfig,
            [self.namespace],
            prometheus_address=prometheus.url,
            # Heartbeat 0: every round's totals land in status, so each can be checked.
            extra_args=["--status-heartbeat", "0", "--analysis-grouping", grouping],
        )
        self.cleanup.append(operator.stop)
        operator.start()
        return AnalysisWorld(
            namespace=self.namespace,
            custom=client.CustomObjectsApi(self.kube_api),
            core=client.CoreV1Api(self.kube_api),
            prometheus=prometheus,
            apps=apps,
            operator=operator,
        )
