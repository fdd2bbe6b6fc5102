"""A ConfigMap volume without a kubelet: the ConfigMap's keys in a folder, updated the way
kubelet's atomic writer does it (a fresh `..<timestamp>` folder, then one rename of the
`..data` symlink), so the SDK reading the folder sees exactly what it sees in a pod."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class AtomicFolder:
    """kubelet's AtomicWriter layout: `<key> -> ..data/<key>`, `..data -> ..<timestamp>`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, files: dict[str, str]) -> None:
        payload = self.root / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
        payload.mkdir()
        for key, text in files.items():
            (payload / key).write_text(text)
        data_link = self.root / "..data"
        old = os.readlink(data_link) if data_link.is_symlink() else None
        temporary = self.root / "..data_tmp"
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        temporary.symlink_to(payload.name)
        # rename(2) over the old link: readers see the old or the new folder, never neither.
        os.replace(temporary, data_link)
        for key in files:
            user_link = self.root / key
            if not user_link.is_symlink():
                user_link.symlink_to(f"..data/{key}")
        if old is not None and old != payload.name:
            shutil.rmtree(self.root / old, ignore_errors=True)


class ConfigMapMount:
    """Keeps a folder in step with one ConfigMap, polling as kubelet's periodic sync does."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        name: str,
        root: Path,
        *,
        interval: float = 0.5,
    ) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.folder = AtomicFolder(root)
        self.interval = interval
        self.updates = 0
        self._version: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def root(self) -> Path:
        return self.folder.root

    def sync_once(self) -> bool:
        """Copy the ConfigMap when it changed; True when the folder was updated."""
        from kubernetes.client.exceptions import ApiException

        try:
            config_map = self._core.read_namespaced_config_map(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:  # an optional volume: nothing to show yet
                return False
            raise
        version = config_map.metadata.resource_version if config_map.metadata else None
        if version == self._version:
            return False
        self.folder.write(dict(config_map.data or {}))
        self._version = version
        self.updates += 1
        return True

    def start(self) -> ConfigMapMount:
        self._thread = threading.Thread(target=self._loop, name="configmap-mount", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync_once()
            except Exception as exc:
                log.warning("configmap mount: sync failed, retrying: %s", exc)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
