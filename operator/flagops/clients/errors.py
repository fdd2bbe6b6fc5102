"""The typed, one-line errors every flagops client raises for expected failures."""

from __future__ import annotations

from collections.abc import Sequence

from flagops.api.resources import FEATUREFLAGS, Resource

__all__ = [
    "AmbiguousFlag",
    "ClusterUnreachable",
    "ConfigError",
    "FlagNotFound",
    "FlagopsError",
    "Forbidden",
    "InvalidChange",
    "NotFound",
    "ResourceNotInstalled",
]


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
