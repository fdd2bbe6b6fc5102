"""RolloutManager: the seed's rollout API for programs, as a thin Kubernetes client.

Actions never touch `spec` (Git owns it): each writes the `flagops.dev/action`
annotation with a fresh id by a merge patch of `metadata.annotations`, then
watches the Rollout until the operator reports that id in `status.lastAction`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from flagops.api.actions import ACTION_ANNOTATION, ActionVerb, format_action, new_action_id
from flagops.api.featureflag import FeatureFlag, FeatureFlagSpec
from flagops.api.resources import FEATUREFLAGS, ROLLOUTS
from flagops.api.rollout import FlagRef, Rollout, RolloutSpec
from flagops.api.stages import Stage
from flagops.api.validation import (
    claim_from_object,
    missing_flag_message,
    ownership_problem,
)
from flagops.clients.base import NamespacedClient, call, translate_api_error
from flagops.clients.errors import FlagopsError, Forbidden, InvalidChange, NotFound
from flagops.clients.flag_admin import FlagAdmin
from flagops.clients.rollout_summary import (
    ActionOutcome,
    Check,
    RolloutSummary,
    summarize_rollout,
)
from flagops.rollouts import measure, queries
from flagops.rollouts.prometheus import QueryFailed

__all__ = [
    "ActionOutcome",
    "ActionTimeout",
    "Check",
    "RolloutManager",
    "RolloutSummary",
]

PROMETHEUS_ADDRESS_ENV = "FLAGOPS_PROMETHEUS_ADDRESS"
_POLL_INTERVAL = 0.25
_SECRET_METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"  # noqa: S105 - a media type


class ActionTimeout(FlagopsError):
    def __init__(
        self, rollout: str, namespace: str, verb: str, action_id: str, waited: float
    ) -> None:
        self.rollout, self.verb, self.action_id, self.waited = rollout, verb, action_id, waited
        super().__init__(
            f'timed out after {waited:.1f}s waiting for the operator to handle "{verb}"'
            f' (id {action_id}) on rollout "{rollout}" in namespace "{namespace}";'
            " is the flagops operator running? The annotation stays, so it may still act"
        )


@dataclass
class _Deadline:
    seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    @property
    def waited(self) -> float:
        return time.monotonic() - self.started


class RolloutManager(NamespacedClient):
    """Rollouts in one namespace, for programs and on-call people."""

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        namespace: str = "default",
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        prometheus_address: str | None = None,
    ) -> None:
        super().__init__(api_client, namespace, kubeconfig, context)
        self.core = client.CoreV1Api(self.api_client)
        self.prometheus_address = prometheus_address or os.environ.get(PROMETHEUS_ADDRESS_ENV)
        self._can_watch = True

    # -- reading --------------------------------------------------------------------

    def get_rollout_status(self, name: str) -> RolloutSummary:
        return summarize_rollout(self._get(ROLLOUTS, name))

    def list_rollouts(self) -> list[RolloutSummary]:
        items = self._list(ROLLOUTS).get("items", [])
        return sorted((summarize_rollout(o) for o in items), key=lambda r: r.name)

    def watch_rollouts(self, name: str | None = None) -> Iterator[RolloutSummary]:
        """The current state, then every change, until the caller stops iterating."""
        if name is not None:
            first = self._get(ROLLOUTS, name)
            yield summarize_rollout(first)
            version = first["metadata"]["resourceVersion"]
        else:
            listed = self._list(ROLLOUTS)
            for item in sorted(listed.get("items", []), key=lambda o: o["metadata"]["name"]):
                yield summarize_rollout(item)
            version = listed["metadata"]["resourceVersion"]
        while True:
            for event_type, obj in self._watch(name, version, timeout=300):
                version = obj["metadata"]["resourceVersion"]
                if event_type == "DELETED":
                    if name is not None:
                        raise NotFound(ROLLOUTS, name, self.namespace)
                    continue
                yield summarize_rollout(obj)

    def _watch(
        self, name: str | None, version: str, timeout: float
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Events after `version` for `timeout` seconds; a 410 Gone re-lists quietly."""
        import urllib3

        watcher = watch.Watch()  # type: ignore[no-untyped-call]
        kwargs: dict[str, Any] = {
            "resource_version": version,
            "timeout_seconds": max(1, math.ceil(timeout)),
            "allow_watch_bookmarks": False,
            # A read timeout ends a quiet watch on time even when the server holds it longer.
            "_request_timeout": (10, max(0.1, timeout)),
        }
        if name is not None:
            kwargs["field_selector"] = f"metadata.name={name}"
        try:
            for event in watcher.stream(  # type: ignore[no-untyped-call]
                self.custom.list_namespaced_custom_object,
                ROLLOUTS.group, ROLLOUTS.version, self.namespace, ROLLOUTS.plural,
                **kwargs,
            ):  # fmt: skip
                obj = event.get("object")
                if isinstance(obj, dict) and "metadata" in obj:
                    yield str(event["type"]), obj
        except ApiException as exc:
            if exc.status == 410:
                return
            if exc.status in (403, 404):
                raise translate_api_error(
                    exc, verb="watch", resource=ROLLOUTS, namespace=self.namespace
                ) from None
            raise
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError):
            return
        finally:
            watcher.stop()  # type: ignore[no-untyped-call]

    # -- creating -------------------------------------------------------------------

    def start_rollout(
        self,
        flag_name: str,
        name: str | None = None,
        target_stage: Stage | str = Stage.FULL,
        **spec_fields: Any,
    ) -> RolloutSummary:
        """Create a Rollout for a flag (its object name or key); fields as in RolloutSpec."""
        flag = FlagAdmin(self.api_client, self.namespace).find(flag_name)
        flag_object = str(flag["metadata"]["name"])
        try:
            spec = RolloutSpec(
                flag_ref=FlagRef(name=flag_object),
                target_stage=Stage(target_stage),
                **spec_fields,
            )
        except (ValidationError, ValueError, TypeError) as exc:
            raise InvalidChange(f"invalid Rollout spec: {exc}") from None
        rollout_name = name or flag_object
        body: dict[str, Any] = {
            "apiVersion": ROLLOUTS.api_version,
            "kind": ROLLOUTS.kind,
            "metadata": {"name": rollout_name, "namespace": self.namespace},
            # Only what the caller set: the CRD's defaults fill the rest, and stay
            # the operator's to change in a later version.
            "spec": spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
            | {"targetStage": Stage(target_stage).value},
        }
        try:
            created: dict[str, Any] = call(
                self.custom.create_namespaced_custom_object,
                ROLLOUTS.group, ROLLOUTS.version, self.namespace, ROLLOUTS.plural, body,
                verb="create", resource=ROLLOUTS, namespace=self.namespace,
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 409:
                raise FlagopsError(
                    f'rollout "{rollout_name}" already exists in namespace "{self.namespace}"'
                ) from None
            if exc.status == 422:
                raise InvalidChange(f"invalid Rollout: {exc.reason}") from None
            raise
        return summarize_rollout(created)

    # -- actions --------------------------------------------------------------------

    def act(
        self,
        name: str,
        verb: ActionVerb | str,
        reason: str | None = None,
        force: bool = False,
        timeout: float = 30,
    ) -> ActionOutcome:
        """Write the action annotation and wait for the operator's answer."""
        verb = ActionVerb(verb)
        action_id = new_action_id()
        value = format_action(verb, action_id, reason=reason, force=force)
        deadline = _Deadline(timeout)
        body = {"metadata": {"annotations": {ACTION_ANNOTATION: value}}}
        patched: dict[str, Any] = call(
            self.custom.patch_namespaced_custom_object,
            ROLLOUTS.group, ROLLOUTS.version, self.namespace, ROLLOUTS.plural, name, body,
            verb="patch", resource=ROLLOUTS, namespace=self.namespace, name=name,
        )  # fmt: skip
        obj = patched
        while True:
            summary = summarize_rollout(obj)
            record = summary.status.last_action
            if record is not None and record.id == action_id:
                return ActionOutcome(
                    name=name,
                    verb=verb.value,
                    id=action_id,
                    result=record.result.value,
                    message=record.message,
                    status=summary,
                )
            if deadline.remaining <= 0:
                raise ActionTimeout(name, self.namespace, verb.value, action_id, deadline.waited)
            obj = self._next_version(name, obj, deadline)

    def _next_version(
        self, name: str, current: dict[str, Any], deadline: _Deadline
    ) -> dict[str, Any]:
        """The next version of the Rollout after `current`, or `current` at the deadline."""
        if not self._can_watch:
            time.sleep(min(_POLL_INTERVAL, max(0.0, deadline.remaining)))
            return self._get(ROLLOUTS, name)
        version = current["metadata"]["resourceVersion"]
        try:
            for event_type, obj in self._watch(name, version, timeout=deadline.remaining):
                if event_type == "DELETED":
                    raise NotFound(ROLLOUTS, name, self.namespace)
                return obj
        except Forbidden:
            # Allowed to get and patch but not to watch: poll from now on.
            self._can_watch = False
            return self._get(ROLLOUTS, name)
        if deadline.remaining > 0:
            # The watch ended early (410 Gone or a dropped connection): start over from now.
            return self._get(ROLLOUTS, name)
        return current

    def advance_rollout(
        self, name: str, reason: str | None = None, force: bool = False, timeout: float = 30
    ) -> ActionOutcome:
        return self.act(name, ActionVerb.ADVANCE, reason, force, timeout)

    def pause_rollout(
        self, name: str, reason: str | None = None, timeout: float = 30
    ) -> ActionOutcome:
        return self.act(name, ActionVerb.PAUSE, reason, timeout=timeout)

    def resume_rollout(
        self, name: str, reason: str | None = None, timeout: float = 30
    ) -> ActionOutcome:
        return self.act(name, ActionVerb.RESUME, reason, timeout=timeout)

    def rollback(self, name: str, reason: str | None = None, timeout: float = 30) -> ActionOutcome:
        return self.act(name, ActionVerb.ROLLBACK, reason, timeout=timeout)

    def run_health_check(
        self, name: str, reason: str | None = None, timeout: float = 30
    ) -> ActionOutcome:
        return self.act(name, ActionVerb.CHECK, reason, timeout=timeout)

    def retry(self, name: str, reason: str | None = None, timeout: float = 30) -> ActionOutcome:
        return self.act(name, ActionVerb.RETRY, reason, timeout=timeout)

    # -- validation ---------------------------------------------------------------------

    def validate_rollout(self, name: str) -> list[Check]:
        """The checks the operator makes before the first stage, run from the client side.

        Spec, flag and ownership fail with the words the operator writes into the
        Rollout's status (flagops.api.validation), so the two never disagree.
        """
        obj = self._get(ROLLOUTS, name)
        rollout = Rollout.from_object(obj)
        if rollout.spec_error is not None:
            return [Check("spec", False, rollout.spec_error)]
        spec = rollout.spec
        checks: list[Check] = []
        checks.append(Check("spec", True, "spec is valid"))
        flag_check, flag_spec, flag_key = self._check_flag(spec.flag_ref.name)
        checks.append(flag_check)
        checks.append(self._check_single_rollout(obj, flag_exists=flag_spec is not None))
        checks.extend(self._check_prometheus(spec, flag_spec, flag_key, obj))
        checks.append(self._check_probe_secret(spec))
        return checks

    def _check_flag(self, flag: str) -> tuple[Check, FeatureFlagSpec | None, str]:
        try:
            obj = self._get(FEATUREFLAGS, flag)
        except NotFound:
            return (
                Check("flag exists", False, missing_flag_message(flag, self.namespace)),
                None,
                flag,
            )
        model = FeatureFlag.from_object(obj)
        if model.spec_error is not None:
            return (
                Check("flag exists", False, f'FeatureFlag "{flag}" is invalid: {model.spec_error}'),
                None,
                flag,
            )
        key = model.key
        return Check("flag exists", True, f'FeatureFlag "{flag}" (key {key})'), model.spec, key

    def _check_single_rollout(self, obj: dict[str, Any], *, flag_exists: bool) -> Check:
        """The operator's rule: of the Rollouts naming one flag, the oldest runs."""
        label = "one rollout per flag"
        me = claim_from_object(obj)
        if not flag_exists:
            return Check(label, True, "needs the flag", skipped=True)
        claims = [claim_from_object(o) for o in self._list(ROLLOUTS).get("items", [])]
        problem = ownership_problem(me, claims, flag_exists=True, namespace=self.namespace)
        if problem is not None:
            return Check(label, False, problem)
        younger = sorted(c.name for c in claims if c.flag_name == me.flag_name and c.uid != me.uid)
        if younger:
            return Check(
                label,
                True,
                f"oldest Rollout for flag {me.flag_name!r}, so it runs;"
                f" the operator degrades {', '.join(younger)}",
            )
        return Check(label, True, f'no other Rollout for flag "{me.flag_name}"')

    def _check_prometheus(
        self,
        spec: RolloutSpec,
        flag_spec: FeatureFlagSpec | None,
        flag_key: str,
        obj: dict[str, Any],
    ) -> list[Check]:
        address = spec.analysis.prometheus.address or self.prometheus_address
        names = ("prometheus reachable", "error-rate query", "sample-count query")
        if address is None:
            why = (
                "no analysis.prometheus.address in the spec and no address given here"
                f" (--prometheus-address or ${PROMETHEUS_ADDRESS_ENV}); the operator's default"
                " applies"
            )
            return [Check(n, True, why, skipped=True) for n in names]
        shown = measure.redact_address(address)
        if flag_spec is None:
            return [Check(n, True, "needs the flag", skipped=True) for n in names[1:]]
        try:
            config = queries.config_for(
                spec, flag=flag_key, integration=flag_spec.integration, namespace=self.namespace
            )
        except queries.TemplateError as exc:
            return [Check(n, False, str(exc)) for n in names[1:]]
        prom = measure.prometheus_client(address)
        now = datetime.now(UTC)
        try:
            measure.run_query(prom, "vector(1)", now, queries.DEFAULT_TIMEOUT_SECONDS, address)
        except QueryFailed as exc:
            return [Check(names[0], False, str(exc))] + [
                Check(n, False, "Prometheus is unreachable") for n in names[1:]
            ]
        checks = [Check(names[0], True, f"Prometheus {shown} answers")]
        status = Rollout.from_object(obj).status
        stage = status.stage or Stage.DISABLED
        started = status.stage_started_at
        in_stage = now - started if started else timedelta(0)
        values = queries.template_values(config, stage, in_stage)
        for check_name, template in (
            (names[1], config.error_rate_query),
            (names[2], config.sample_count_query),
        ):
            result = measure.validate_query(prom, template, values, now, address=address)
            checks.append(Check(check_name, result.ok, result.message))
        return checks

    def _check_probe_secret(self, spec: RolloutSpec) -> Check:
        name = "probe secret"
        probe = spec.health_probe
        if probe is None or probe.secret_ref is None:
            return Check(name, True, "no healthProbe.secretRef", skipped=True)
        secret = probe.secret_ref.name
        try:
            # Metadata only: the Secret's data never reaches this process.
            response: Any = self.core.read_namespaced_secret(
                secret,
                self.namespace,
                _headers={"Accept": _SECRET_METADATA_ACCEPT},
                _preload_content=False,
            )
            response.release_conn()
        except ApiException as exc:
            if exc.status == 404:
                return Check(name, False, f'Secret "{secret}" not found in "{self.namespace}"')
            if exc.status == 403:
                message = str(Forbidden("get", "secrets", self.namespace))
                return Check(name, True, f"cannot check: {message}", skipped=True)
            raise
        return Check(name, True, f'Secret "{secret}" exists')
