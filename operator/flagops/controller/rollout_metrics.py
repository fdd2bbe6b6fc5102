"""Each Rollout's own metrics, kept in step with its rounds: `flagops_rollout_info` (its
stage and phase as labels), `flagops_rollout_percent`, `flagops_analysis_error_rate`,
and the count of Rollouts per analysis mode (`flagops_analysis_rollouts{mode}`); plus
the counters every round adds to."""

from __future__ import annotations

import collections
import contextlib

from flagops.api.rollout import Rollout, RolloutStatus
from flagops.api.stages import PERCENT
from flagops.controller import metrics
from flagops.rollouts.judge import AnalysisResult
from flagops.rollouts.model import Decision


class RolloutGauges:
    def __init__(self) -> None:
        self._info_labels: dict[str, tuple[str, ...]] = {}
        self._modes: dict[str, str] = {}
        self._mode_counts: collections.Counter[str] = collections.Counter()

    def set_mode(self, uid: str, mode: str | None) -> None:
        """Keep flagops_analysis_rollouts{mode} counting this replica's Rollouts."""
        old = self._modes.pop(uid, None)
        if mode is not None:
            self._modes[uid] = mode
        if old == mode:
            return
        for changed, step in ((old, -1), (mode, 1)):
            if changed is not None:
                self._mode_counts[changed] += step
                metrics.ANALYSIS_ROLLOUTS.labels(changed).set(self._mode_counts[changed])

    def record(
        self,
        namespace: str,
        rollout: Rollout,
        decision: Decision,
        result: AnalysisResult | None,
        status: RolloutStatus,
    ) -> None:
        name, uid = rollout.name, rollout.uid
        for transition in decision.transitions:
            metrics.ROLLOUT_TRANSITIONS.labels(
                transition.from_stage.value if transition.from_stage else "None",
                transition.to_stage.value,
                transition.reason,
            ).inc()
        if result is not None:
            metrics.ANALYSIS.labels(result.verdict.value).inc()
            if result.error_rate is not None:
                metrics.ANALYSIS_ERROR_RATE.labels(namespace, name).set(result.error_rate)
        flag = rollout.spec.flag_ref.name
        stage = status.stage.value if status.stage else ""
        phase = status.phase.value if status.phase else ""
        labels = (namespace, name, flag, stage, phase)
        old = self._info_labels.get(uid)
        if old != labels:
            if old is not None:
                with contextlib.suppress(KeyError):
                    metrics.ROLLOUT_INFO.remove(*old)
            metrics.ROLLOUT_INFO.labels(*labels).set(1)
            self._info_labels[uid] = labels
        percent = PERCENT[status.stage] if status.stage else 0
        metrics.ROLLOUT_PERCENT.labels(namespace, name, flag).set(percent)

    def forget(self, uid: str, namespace: str, name: str) -> None:
        """A deleted Rollout's series go (a paused replica keeps them: they say what it
        last did)."""
        self.set_mode(uid, None)
        labels = self._info_labels.pop(uid, None)
        if labels is not None:
            with contextlib.suppress(KeyError):
                metrics.ROLLOUT_INFO.remove(*labels)
        for gauge, labels_ in (
            (metrics.ROLLOUT_PERCENT, (namespace, name, labels[2] if labels else "")),
            (metrics.ANALYSIS_ERROR_RATE, (namespace, name)),
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels_)
