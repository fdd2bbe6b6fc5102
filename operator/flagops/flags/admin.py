"""The flag API for people and programs: change FeatureFlag specs, complete a Rollout.

This is the user's tool (the seed's `update_flag`, `enable_flag`, `disable_flag`,
`rollback(flagName, decrement)`), so unlike the operator it writes specs. It also
holds what every flagops client shares: loading a kubeconfig the way kubectl does
and turning API errors into one-line, typed errors.

Needs the `[operator]` extra (the kubernetes client); apps that only evaluate
flags never import this module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from flagops.api.featureflag import FeatureFlagSpec, source_rollout
from flagops.api.resources import FEATUREFLAGS, ROLLOUTS, Resource
from flagops.api.stages import Stage
from flagops.flags.document import FlagState
from flagops.flags.resolve import FlagInput, RolloutControl, effective_state

__all__ = [
    "AmbiguousFlag",
    "ClusterUnreachable",
    "CompletedRollout",
    "ConfigError",
    "FlagAdmin",
    "FlagChange",
    "FlagNotFound",
    "FlagSummary",
    "FlagopsError",
    "Forbidden",
    "InvalidChange",
    "NotFound",
    "ResourceNotInstalled",
    "default_namespace",
    "disable_flag",
    "enable_flag",
    "load_api_client",
    "rollback",
    "set_cohorts",
    "translate_api_error",
    "update_flag",
]

_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_CONFLICT_RETRIES = 5


# --- errors ------------------------------------------------------------------------


class FlagopsError(Exception):
    """An expected failure; str() is one line fit for a terminal."""


class ConfigError(FlagopsError):
    """The kubeconfig (or the chosen context) cannot be used."""


class ClusterUnreachable(FlagopsError):
    """No answer from the apiserver."""


class NotFound(FlagopsError):
    def __init__(self, resource: Resource, name: str, namespace: str) -> None:
        self.resource, self.name, self.namespace = resource, name, namespace
        super().__init__(f'{resource.singular} "{name}" not found in namespace "{namespace}"')


class FlagNotFound(NotFound):
    def __init__(self, key_or_name: str, namespace: str) -> None:
        super().__init__(FEATUREFLAGS, key_or_name, namespace)
        self.args = (f'no FeatureFlag with name or key "{key_or_name}" in namespace "{namespace}"',)


class AmbiguousFlag(FlagopsError):
    def __init__(self, key_or_name: str, namespace: str, names: Sequence[str]) -> None:
        self.names = list(names)
        listed = ", ".join(self.names)
        super().__init__(
            f'"{key_or_name}" matches several FeatureFlags in namespace "{namespace}" ({listed});'
            f" name one as featureflag/<name>"
        )


class ResourceNotInstalled(FlagopsError):
    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        super().__init__(
            f"the server does not know {resource.crd_name}: are the flagops CRDs installed?"
            " (kubectl apply -k crds/, or install the Helm chart)"
        )


class Forbidden(FlagopsError):
    def __init__(self, verb: str, resource: str, namespace: str | None) -> None:
        self.verb, self.resource, self.namespace = verb, resource, namespace
        where = f' in namespace "{namespace}"' if namespace else ""
        super().__init__(
            f"forbidden: you may not {verb} {resource}{where}"
            f" (ask for RBAC that grants '{verb}' on '{resource}')"
        )


class InvalidChange(FlagopsError, ValueError):
    """The requested spec change is not a valid FeatureFlag (or Rollout) spec."""


# --- client loading ----------------------------------------------------------------


def _kubeconfig_path(kubeconfig: str | os.PathLike[str] | None) -> str:
    # Read at call time (the kubernetes package reads KUBECONFIG once, at import).
    if kubeconfig is not None:
        return str(kubeconfig)
    return os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def _has_kubeconfig(path: str) -> bool:
    return any(Path(p).expanduser().is_file() for p in path.split(os.pathsep) if p)


def load_api_client(
    kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None
) -> client.ApiClient:
    """An ApiClient as kubectl would build it: --kubeconfig, else $KUBECONFIG, else
    ~/.kube/config; in a Pod without any kubeconfig, the service account."""
    path = _kubeconfig_path(kubeconfig)
    if kubeconfig is None and context is None and not _has_kubeconfig(path):
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            raise ConfigError(f"no kubeconfig at {path} and not running in a cluster") from None
        return client.ApiClient(client.Configuration.get_default_copy())
    if not _has_kubeconfig(path):
        raise ConfigError(f"kubeconfig {path} not found")
    try:
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context
        )
    except (config.ConfigException, ValueError, TypeError, KeyError) as exc:
        # The library's messages name contexts and files, never credentials.
        raise ConfigError(f"cannot use kubeconfig {path}: {exc}") from None
    return api


def default_namespace(
    kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None
) -> str:
    """The namespace kubectl would use: the context's, else the Pod's, else `default`."""
    path = _kubeconfig_path(kubeconfig)
    if _has_kubeconfig(path):
        try:
            contexts, active = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
        except (config.ConfigException, ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"cannot use kubeconfig {path}: {exc}") from None
        chosen = active
        if context is not None:
            chosen = next((c for c in contexts if c.get("name") == context), None)
            if chosen is None:
                raise ConfigError(f'context "{context}" not found in kubeconfig {path}')
        namespace = ((chosen or {}).get("context") or {}).get("namespace")
        return str(namespace) if namespace else "default"
    if _IN_CLUSTER_NAMESPACE.is_file():
        return _IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    return "default"


# --- error translation ---------------------------------------------------------------


def _status_body(exc: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def translate_api_error(
    exc: ApiException,
    *,
    verb: str,
    resource: Resource,
    namespace: str | None,
    name: str | None = None,
) -> FlagopsError | ApiException:
    """A typed, one-line error for the usual failures; other errors come back unchanged.

    A 404 means either that the object is missing or that the server does not
    serve the resource at all (CRDs not installed): the Status body's `details`
    names the object only in the first case.
    """
    if exc.status == 403:
        return Forbidden(verb, resource.crd_name, namespace)
    if exc.status == 404:
        details = _status_body(exc).get("details") or {}
        if name is not None and details.get("name") == name:
            return NotFound(resource, name, namespace or "")
        return ResourceNotInstalled(resource)
    return exc


def call(
    fn: Callable[..., Any],
    *args: Any,
    verb: str,
    resource: Resource,
    namespace: str | None,
    name: str | None = None,
    **kwargs: Any,
) -> Any:
    """Run one API call; expected failures become FlagopsError subclasses."""
    import urllib3

    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        translated = translate_api_error(
            exc, verb=verb, resource=resource, namespace=namespace, name=name
        )
        if translated is exc:
            raise
        raise translated from None
    except (urllib3.exceptions.MaxRetryError, urllib3.exceptions.NewConnectionError) as exc:
        host = getattr(getattr(exc, "pool", None), "host", None) or "the apiserver"
        raise ClusterUnreachable(f"cannot reach {host}: is the cluster up?") from None


# --- flags -------------------------------------------------------------------------


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
    name = str(obj["metadata"]["name"])
    spec = obj.get("spec") or {}
    key = str(spec.get("key") or name)
    spec_enabled = bool(spec.get("enabled", False))
    spec_percent = int(spec.get("rolloutPercent", 0))
    spec_cohorts = tuple(str(c) for c in spec.get("allowedCohorts") or ())
    effective = (obj.get("status") or {}).get("effective")
    if not isinstance(effective, dict):
        return FlagSummary(
            name, key, spec_enabled, spec_percent, spec_cohorts, None, UNPUBLISHED,
            spec_enabled, spec_percent, spec_cohorts,
        )  # fmt: skip
    return FlagSummary(
        name=name,
        key=key,
        enabled=bool(effective.get("enabled", False)),
        percent=int(effective.get("rolloutPercent", 0)),
        cohorts=tuple(str(c) for c in effective.get("allowedCohorts") or ()),
        stage=effective.get("stage"),
        source=str(effective.get("source") or UNPUBLISHED),
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


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"spec.{'.'.join(str(p) for p in err['loc']) or '-'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)
    )


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


class NamespacedClient:
    """Custom objects in one namespace, with kubectl's credentials and clear errors.

    The base of both user-side clients, FlagAdmin and RolloutManager.
    """

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        namespace: str = "default",
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
    ) -> None:
        self.api_client = api_client or load_api_client(kubeconfig, context)
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(self.api_client)

    def _list(self, resource: Resource) -> dict[str, Any]:
        """The list response as is (items and the list's resourceVersion)."""
        result: dict[str, Any] = call(
            self.custom.list_namespaced_custom_object,
            resource.group, resource.version, self.namespace, resource.plural,
            verb="list", resource=resource, namespace=self.namespace,
        )  # fmt: skip
        return result

    def _get(self, resource: Resource, name: str) -> dict[str, Any]:
        result: dict[str, Any] = call(
            self.custom.get_namespaced_custom_object,
            resource.group, resource.version, self.namespace, resource.plural, name,
            verb="get", resource=resource, namespace=self.namespace, name=name,
        )  # fmt: skip
        return result


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
            if o["metadata"]["name"] == key_or_name
            or (o.get("spec") or {}).get("key") == key_or_name
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
                raise InvalidChange(f"{name}: {_validation_message(exc)}") from None
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
                    message = _status_body(exc).get("message") or exc.reason
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
            spec = obj.get("spec") or {}
            flag_name = str((spec.get("flagRef") or {}).get("name") or "")
            raw_stage = str((obj.get("status") or {}).get("stage"))
            if raw_stage not in Stage.__members__:
                raise FlagopsError(
                    f'Rollout "{rollout}" holds no stage yet, so there is nothing to complete;'
                    f" delete it (kubectl delete rollout {rollout}) to drop it"
                )
            stage = Stage(raw_stage)
            flag = self.find(f"featureflag/{flag_name}")
            meta = flag["metadata"]
            control = RolloutControl(
                name=rollout,
                flag_name=flag_name,
                stage=stage,
                internal_cohorts=tuple(spec.get("internalCohorts", ["internal"])),
                created=str(obj["metadata"].get("creationTimestamp", "")),
            )
            flag_input = FlagInput.from_spec(
                flag_name, str(meta.get("creationTimestamp", "")), flag.get("spec") or {}
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
