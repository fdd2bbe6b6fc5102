"""FlagAdmin: change FeatureFlag specs and complete a Rollout, as a person or program would.

This is the user's tool (the seed's `update_flag`, `enable_flag`, `disable_flag`,
`rollback(flagName, decrement)`), so unlike the operator it writes specs.

Needs the `[operator]` extra (the kubernetes client); apps that only evaluate
flags use `flagops.flags` and never import this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from flagops.api.featureflag import FeatureFlag, FeatureFlagSpec, source_rollout
from flagops.api.resources import FEATUREFLAGS, ROLLOUTS, Resource
from flagops.api.rollout import Rollout
from flagops.api.stages import Stage
from flagops.api.validation import spec_error_message
from flagops.clients.base import NamespacedClient, call, status_body
from flagops.clients.errors import (
    AmbiguousFlag,
    FlagNotFound,
    FlagopsError,
    InvalidChange,
    NotFound,
)
from flagops.clients.kubeconfig import default_namespace
from flagops.flags.document import FlagState
from flagops.publishing.resolve import FlagInput, RolloutControl, effective_state

__all__ = [
    "CompletedRollout",
    "FlagAdmin",
    "FlagChange",
    "FlagSummary",
    "disable_flag",
    "enable_flag",
    "rollback",
    "set_cohorts",
    "summarize_flag",
    "update_flag",
]

_CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class FlagSummary:
    """A flag as `kubectl flagops flags` shows it: the published (effective) state."""

    name: str
    key: str
    enabled: bool
    percent: int
    cohorts: tuple[str, ...]
    stage: str | None
    source: str  # `spec`, `rollout/<name>`, or `unpublished` before the operator wrote status
    spec_enabled: bool
    spec_percent: int
    spec_cohorts: tuple[str, ...]

    @property
    def controlled_by(self) -> str | None:
        """The Rollout that decides what this flag publishes, if any."""
        return source_rollout(self.source)


UNPUBLISHED = "unpublished"


def summarize_flag(obj: dict[str, Any]) -> FlagSummary:
    flag = FeatureFlag.from_object(obj)
    spec_enabled = flag.spec.enabled
    spec_percent = flag.spec.rollout_percent
    spec_cohorts = tuple(flag.spec.allowed_cohorts)
    effective = flag.status.effective
    if effective is None:
        return FlagSummary(
            flag.name, flag.key, spec_enabled, spec_percent, spec_cohorts, None, UNPUBLISHED,
            spec_enabled, spec_percent, spec_cohorts,
        )  # fmt: skip
    return FlagSummary(
        name=flag.name,
        key=flag.key,
        enabled=effective.enabled,
        percent=effective.rollout_percent,
        cohorts=tuple(effective.allowed_cohorts),
        stage=effective.stage.value if effective.stage else None,
        source=effective.source,
        spec_enabled=spec_enabled,
        spec_percent=spec_percent,
        spec_cohorts=spec_cohorts,
    )


@dataclass(frozen=True)
class FlagChange:
    """The outcome of a spec change: the flag before and after, as the API returned it."""

    before: FlagSummary
    after: FlagSummary
    changed: bool

    @property
    def controlled_by(self) -> str | None:
        """A Rollout that controls the flag: the spec change shows only once it is gone."""
        return self.after.controlled_by


@dataclass(frozen=True)
class CompletedRollout:
    rollout: str
    flag: str
    stage: Stage
    change: FlagChange


_FIELDS = {name: info.alias or name for name, info in FeatureFlagSpec.model_fields.items()}
_BY_ALIAS = {alias: alias for alias in _FIELDS.values()}


def _spec_field(name: str) -> str:
    """The camelCase spec field for a snake_case or camelCase name."""
    field = _FIELDS.get(name) or _BY_ALIAS.get(name)
    if field is None:
        known = ", ".join(sorted(_FIELDS))
        raise InvalidChange(f"FeatureFlag spec has no field {name!r} (known: {known})")
    return field


def _merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that turns spec `old` into `new` (maps replaced, not merged)."""
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if old.get(key) == value:
            continue
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            inner = {k: None for k in old[key].keys() - value.keys()}
            inner.update({k: v for k, v in value.items() if old[key].get(k) != v})
            patch[key] = inner
        else:
            patch[key] = value
    return patch


class FlagAdmin(NamespacedClient):
    """Reads and changes FeatureFlags in one namespace."""

    # -- reading --------------------------------------------------------------------

    def _items(self, resource: Resource) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._list(resource).get("items", [])
        return sorted(items, key=lambda o: str(o["metadata"]["name"]))

    def list_flags(self) -> list[FlagSummary]:
        """Every FeatureFlag in the namespace, sorted by key."""
        return sorted(
            (summarize_flag(o) for o in self._items(FEATUREFLAGS)), key=lambda f: (f.key, f.name)
        )

    def find(self, key_or_name: str) -> dict[str, Any]:
        """The FeatureFlag whose metadata.name or key is `key_or_name`.

        `featureflag/<name>` (or `ff/<name>`) names an object exactly, for when a
        name and another flag's key collide.
        """
        kind, slash, exact = key_or_name.partition("/")
        if slash and kind in {"featureflag", "featureflags", "ff", FEATUREFLAGS.crd_name}:
            try:
                return self._get(FEATUREFLAGS, exact)
            except NotFound:
                raise FlagNotFound(exact, self.namespace) from None
        matches = [
            o
            for o in self._items(FEATUREFLAGS)
            if key_or_name in (o["metadata"]["name"], FeatureFlag.from_object(o).spec.key)
        ]
        if not matches:
            raise FlagNotFound(key_or_name, self.namespace)
        if len(matches) > 1:
            raise AmbiguousFlag(
                key_or_name, self.namespace, [str(o["metadata"]["name"]) for o in matches]
            )
        return matches[0]

    def get_flag(self, key_or_name: str) -> FlagSummary:
        return summarize_flag(self.find(key_or_name))

    # -- writing --------------------------------------------------------------------

    def _change(
        self, key_or_name: str, edit: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> FlagChange:
        """Apply `edit` to the flag's spec, guarded by resourceVersion (re-read on conflict)."""
        target = key_or_name
        for _ in range(_CONFLICT_RETRIES):
            obj = self.find(target)
            name = str(obj["metadata"]["name"])
            target = f"featureflag/{name}"  # a retry must hit the same object
            old_spec: dict[str, Any] = dict(obj.get("spec") or {})
            new_spec = edit(dict(old_spec))
            try:
                FeatureFlagSpec.model_validate(new_spec)
            except ValidationError as exc:
                raise InvalidChange(f"{name}: {spec_error_message(exc)}") from None
            patch = _merge_patch(old_spec, new_spec)
            before = summarize_flag(obj)
            if not patch:
                return FlagChange(before=before, after=before, changed=False)
            body = {
                "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                "spec": patch,
            }
            try:
                result: dict[str, Any] = call(
                    self.custom.patch_namespaced_custom_object,
                    FEATUREFLAGS.group, FEATUREFLAGS.version, self.namespace,
                    FEATUREFLAGS.plural, name, body,
                    verb="patch", resource=FEATUREFLAGS, namespace=self.namespace, name=name,
                )  # fmt: skip
            except ApiException as exc:
                if exc.status == 409:
                    continue
                if exc.status == 422:
                    message = status_body(exc).get("message") or exc.reason
                    raise InvalidChange(f"{name}: {message}") from None
                raise
            return FlagChange(before=before, after=summarize_flag(result), changed=True)
        raise FlagopsError(
            f'FeatureFlag "{target}" kept changing under us; gave up after'
            f" {_CONFLICT_RETRIES} attempts"
        )

    def update_flag(self, key_or_name: str, **fields: Any) -> FlagChange:
        """Set spec fields (snake_case or camelCase); None removes a field.

        `metadata` and `allowed_cohorts` are replaced whole, not merged.
        """
        if not fields:
            raise InvalidChange("update_flag needs at least one field")
        wanted = {_spec_field(name): value for name, value in fields.items()}
        if any(isinstance(v, tuple) for v in wanted.values()):
            wanted = {k: list(v) if isinstance(v, tuple) else v for k, v in wanted.items()}

        def edit(spec: dict[str, Any]) -> dict[str, Any]:
            for field, value in wanted.items():
                if value is None:
                    spec.pop(field, None)
                else:
                    spec[field] = value
            return spec

        return self._change(key_or_name, edit)

    def enable_flag(self, key: str, percent: int | None = None) -> FlagChange:
        """Turn the flag on; with `percent`, also set its rolloutPercent."""
        if percent is None:
            return self.update_flag(key, enabled=True)
        return self.update_flag(key, enabled=True, rollout_percent=percent)

    def disable_flag(self, key: str) -> FlagChange:
        return self.update_flag(key, enabled=False)

    def rollback(self, key: str, decrement: int) -> FlagChange:
        """The seed's rollback(flagName, decrement): rolloutPercent -= decrement, floor 0."""
        if isinstance(decrement, bool) or not isinstance(decrement, int) or decrement < 0:
            raise InvalidChange(f"decrement must be a whole number >= 0, got {decrement!r}")

        def edit(spec: dict[str, Any]) -> dict[str, Any]:
            spec["rolloutPercent"] = max(0, int(spec.get("rolloutPercent", 0)) - decrement)
            return spec

        return self._change(key, edit)

    def set_cohorts(self, key: str, cohorts: Iterable[str]) -> FlagChange:
        return self.update_flag(key, allowed_cohorts=list(cohorts))

    # -- completing a Rollout -----------------------------------------------------------

    def complete_rollout(self, rollout: str) -> CompletedRollout:
        """Write the Rollout's current stage into its FeatureFlag's spec, then delete it.

        The delete is conditional on the Rollout's resourceVersion, so a stage change
        in between makes us write the new stage and try again: who sees the feature
        does not change when the Rollout goes away.
        """
        for _ in range(_CONFLICT_RETRIES):
            obj = self._get(ROLLOUTS, rollout)
            model = Rollout.from_object(obj)
            if model.status.stage is None:
                raise FlagopsError(
                    f'Rollout "{rollout}" holds no stage yet, so there is nothing to complete;'
                    f" delete it (kubectl delete rollout {rollout}) to drop it"
                )
            control = RolloutControl.from_rollout(model)
            if control is None:
                raise FlagopsError(f'Rollout "{rollout}" is unreadable: {model.spec_error}')
            stage, flag_name = control.stage, control.flag_name
            flag_input = FlagInput.from_flag(
                FeatureFlag.from_object(self.find(f"featureflag/{flag_name}"))
            )
            state, _ = effective_state(flag_input, control)

            def edit(
                spec: dict[str, Any], stage: Stage = stage, state: FlagState = state
            ) -> dict[str, Any]:
                spec["enabled"] = state.enabled
                spec["rolloutPercent"] = state.rollout_percent
                # A disabled flag exposes nobody whatever its cohorts say: keep the owner's.
                if stage is not Stage.DISABLED:
                    spec["allowedCohorts"] = list(state.allowed_cohorts)
                return spec

            change = self._change(f"featureflag/{flag_name}", edit)
            precondition = client.V1Preconditions(
                resource_version=obj["metadata"]["resourceVersion"], uid=obj["metadata"]["uid"]
            )
            try:
                call(
                    self.custom.delete_namespaced_custom_object,
                    ROLLOUTS.group, ROLLOUTS.version, self.namespace, ROLLOUTS.plural, rollout,
                    body=client.V1DeleteOptions(preconditions=precondition),
                    verb="delete", resource=ROLLOUTS, namespace=self.namespace, name=rollout,
                )  # fmt: skip
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise
            return CompletedRollout(rollout=rollout, flag=flag_name, stage=stage, change=change)
        raise FlagopsError(
            f'Rollout "{rollout}" kept changing; gave up completing it after'
            f" {_CONFLICT_RETRIES} attempts"
        )


# --- the seed's module-level API ---------------------------------------------------------


def _admin(namespace: str | None, kubeconfig: str | None, context: str | None) -> FlagAdmin:
    ns = namespace or default_namespace(kubeconfig, context)
    return FlagAdmin(namespace=ns, kubeconfig=kubeconfig, context=context)


def update_flag(
    key_or_name: str,
    *,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    **fields: Any,
) -> FlagChange:
    return _admin(namespace, kubeconfig, context).update_flag(key_or_name, **fields)


def enable_flag(
    key: str,
    percent: int | None = None,
    *,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> FlagChange:
    return _admin(namespace, kubeconfig, context).enable_flag(key, percent)


def disable_flag(
    key: str,
    *,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> FlagChange:
    return _admin(namespace, kubeconfig, context).disable_flag(key)


def rollback(
    key: str,
    decrement: int,
    *,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> FlagChange:
    return _admin(namespace, kubeconfig, context).rollback(key, decrement)


def set_cohorts(
    key: str,
    cohorts: Iterable[str],
    *,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> FlagChange:
    return _admin(namespace, kubeconfig, context).set_cohorts(key, cohorts)
