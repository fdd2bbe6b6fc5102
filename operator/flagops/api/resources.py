"""Names of the custom resources, in one place for the generator, kopf and clients."""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "flagops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "flagops"


@dataclass(frozen=True)
class Resource:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    group: str = GROUP
    version: str = VERSION

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


FEATUREFLAGS = Resource(
    kind="FeatureFlag", plural="featureflags", singular="featureflag", short_names=("ff",)
)
ROLLOUTS = Resource(kind="Rollout", plural="rollouts", singular="rollout", short_names=("flr",))
