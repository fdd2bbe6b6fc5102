"""Credentials as kubectl finds them: --kubeconfig, $KUBECONFIG, ~/.kube/config, the Pod."""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client, config

from flagops.clients.errors import ConfigError

__all__ = ["default_namespace", "load_api_client"]

_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


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
