"""Kubernetes-facing clients for people and programs: FlagAdmin, RolloutManager, credentials.

Needs the `[operator]` extra (the kubernetes client). Apps that only evaluate
flags use `flagops.flags`, which never imports this package.
"""

from flagops.clients.errors import (
    AmbiguousFlag,
    ClusterUnreachable,
    ConfigError,
    FlagNotFound,
    FlagopsError,
    Forbidden,
    InvalidChange,
    NotFound,
    ResourceNotInstalled,
)
from flagops.clients.flag_admin import (
    CompletedRollout,
    FlagAdmin,
    FlagChange,
    FlagSummary,
    disable_flag,
    enable_flag,
    rollback,
    set_cohorts,
    update_flag,
)
from flagops.clients.kubeconfig import default_namespace, load_api_client
from flagops.clients.rollout_manager import ActionTimeout, RolloutManager
from flagops.clients.rollout_summary import ActionOutcome, Check, RolloutSummary

__all__ = [
    "ActionOutcome",
    "ActionTimeout",
    "AmbiguousFlag",
    "Check",
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
    "RolloutManager",
    "RolloutSummary",
    "default_namespace",
    "disable_flag",
    "enable_flag",
    "load_api_client",
    "rollback",
    "set_cohorts",
    "update_flag",
]
