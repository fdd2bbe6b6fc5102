"""ProbeKubeletStandIn: runs probe pods' commands locally, since no kubelet runs in tests.

It is a stand-in, not a kubelet. It watches Pending pods labelled
`flagops.dev/probe`, runs the first container's command and args as a local
subprocess and reports the outcome through the pods/status subresource the way
a kubelet does (Running, then Succeeded or Failed with the container's
terminated state and termination message). kube-controller-manager's Job
controller then finishes the Job.

What it maps from the pod spec:
- command and args with $(VAR) expansion; without a command, the flagops
  image's entrypoint (`flagops`, resolved in this Python's bin folder first);
- env values, env valueFrom (Secret and ConfigMap keys, pod fields) and envFrom;
- Secret, ConfigMap and emptyDir volumes become folders under a temp dir, and
  each mountPath (and the terminationMessagePath) found in env values or args
  is rewritten to the local path;
- the termination message file: the probe finds its local path in
  FLAGOPS_TERMINATION_LOG; FallbackToLogsOnError uses the output's tail;
- spec.activeDeadlineSeconds, and deletion (the Job controller deletes pods
  when a Job's deadline passes) kill the process.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flagops_devtools.testing.process import ManagedProcess, Service, tail

log = logging.getLogger(__name__)

PROBE_LABEL = "flagops.dev/probe"
TERMINATION_LOG_ENV = "FLAGOPS_TERMINATION_LOG"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
# The kubelet's limits: 4 KiB of termination message, 80 lines / 2 KiB of log fallback.
_MESSAGE_LIMIT = 4096
_FALLBACK_LINES = 80
_FALLBACK_BYTES = 2048
_KILL_GRACE_MAX = 5.0
# The flagops image's ENTRYPOINT (Dockerfile): what runs when a container sets only args.
IMAGE_ENTRYPOINT = ("flagops",)

Json = dict[str, Any]


@dataclass(frozen=True)
class ProbeInvocation:
    """What the stand-in would execute for one pod."""

    namespace: str
    pod: str
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    termination_log: Path
    timeout: float


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    # None: read the termination log file, as for a real command.
    message: str | None = None


CommandOverride = Callable[[ProbeInvocation], CommandResult]


@dataclass
class ProbeRun:
    """A finished run, for tests to inspect."""

    namespace: str
    pod: str
    uid: str
    exit_code: int
    reason: str
    message: str
    log_path: Path | None
    finished: float = field(default_factory=time.monotonic)


class _Cancelled(Exception):
    pass


class _SetupFailed(Exception):
    pass


def _container_status(container: Json, state: Json, *, live: bool) -> Json:
    """The pod's one container as the kubelet reports it: `live` is ready and started."""
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "ready": live,
        "started": live,
        "restartCount": 0,
        "state": state,
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion: $$ escapes, unknown references stay as written."""

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", repl, text)


class ProbeKubeletStandIn(Service):
    """Executes probe pods locally and reports their status through the API."""

    def __init__(
        self,
        kubeconfig: Path | None = None,
        *,
        api_client: Any = None,
        namespace: str | None = None,
        label_selector: str = PROBE_LABEL,
        command_override: CommandOverride | None = None,
        max_runtime: float = 600,
        workers: int = 8,
        default_entrypoint: Sequence[str] = IMAGE_ENTRYPOINT,
    ) -> None:
        if api_client is None:
            if kubeconfig is None:
                raise ValueError("give a kubeconfig or an api_client")
            from kubernetes import config

            api_client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
            self._owns_client = True
        else:
            self._owns_client = False
        from kubernetes import client

        self._api = api_client
        self._core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.label_selector = label_selector
        self.command_override = command_override
        self.max_runtime = max_runtime
        self.default_entrypoint = list(default_entrypoint)
        self.runs: list[ProbeRun] = []
        self._workers = workers
        self._lock = threading.Lock()
        self._active: dict[str, threading.Event] = {}
        self._seen: set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._watch: Any = None
        self._root: Path | None = None
        self.ready = threading.Event()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("stand-in already started")
        self._root = Path(tempfile.mkdtemp(prefix="flagops-kubelet-standin-"))
        self._stopping.clear()
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="standin-run")
        self._thread = threading.Thread(target=self._loop, name="kubelet-standin", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15) -> None:
        """Stop watching and kill running commands without reporting them."""
        self._stopping.set()
        with self._lock:
            for cancel in self._active.values():
                cancel.set()
        if self._thread is not None:
            # Watch.stop() unblocks a stream only once it has its response: a stop that
            # came while the request was under way (the stream resets its flag) would
            # leave the thread reading until the watch's 60 s timeout. Stop it again
            # until the thread is gone.
            deadline = time.monotonic() + timeout
            while self._thread.is_alive() and time.monotonic() < deadline:
                if self._watch is not None:
                    self._watch.stop()
                self._thread.join(0.1)
            self._thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._owns_client:
            with contextlib.suppress(Exception):
                self._api.close()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def runs_for(self, pod: str, namespace: str | None = None) -> list[ProbeRun]:
        with self._lock:
            return [
                r
                for r in self.runs
                if r.pod == pod and (namespace is None or r.namespace == namespace)
            ]

    # -- API helpers (raw JSON: the stand-in needs fields, not models) ------

    def _raw(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
        from kubernetes.client.exceptions import ApiException

        response = call(*args, _preload_content=False, **kwargs)
        try:
            body = response.data
            if not 200 <= int(response.status) < 300:
                raise ApiException(
                    status=response.status, reason=response.reason, body=body.decode()
                )
            result: Json = json.loads(body)
            return result
        finally:
            response.release_conn()

    def _list_pods(self) -> Json:
        if self.namespace:
            return self._raw(
                self._core.list_namespaced_pod, self.namespace, label_selector=self.label_selector
            )
        return self._raw(self._core.list_pod_for_all_namespaces, label_selector=self.label_selector)

    def _patch_status(self, namespace: str, name: str, status: Json) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._raw(
                self._core.patch_namespaced_pod_status,
                name,
                namespace,
                {"status": status},
                _content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    # -- watch loop --------------------------------------------------------

    def _loop(self) -> None:
        from kubernetes import watch

        while not self._stopping.is_set():
            try:
                listing = self._list_pods()
                for pod in listing.get("items", []):
                    self._consider(pod, "ADDED")
                self.ready.set()
                version = listing["metadata"]["resourceVersion"]
                self._watch = watch.Watch()  # type: ignore[no-untyped-call]
                func = (
                    self._core.list_namespaced_pod
                    if self.namespace
                    else self._core.list_pod_for_all_namespaces
                )
                args = (self.namespace,) if self.namespace else ()
                for event in self._watch.stream(
                    func,
                    *args,
                    label_selector=self.label_selector,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=60,
                    deserialize=False,
                ):
                    if self._stopping.is_set():
                        break
                    if event["type"] == "ERROR":
                        break  # usually 410 Gone: list again
                    if event["type"] != "BOOKMARK":
                        self._consider(event["object"], event["type"])
            except Exception as exc:
                if self._stopping.is_set():
                    break
                log.warning("kubelet stand-in watch failed, listing again: %s", exc)
                self._stopping.wait(0.5)

    def _consider(self, pod: Json, event_type: str) -> None:
        meta = pod.get("metadata", {})
        uid = meta.get("uid", "")
        if event_type == "DELETED" or meta.get("deletionTimestamp"):
            with self._lock:
                cancel = self._active.get(uid)
                if event_type == "DELETED":
                    self._seen.discard(uid)
            if cancel is not None:
                cancel.set()
            return
        if pod.get("status", {}).get("phase", "Pending") != "Pending":
            return
        with self._lock:
            if uid in self._seen or self._executor is None:
                return
            self._seen.add(uid)
            cancel = threading.Event()
            self._active[uid] = cancel
        self._executor.submit(self._run_guarded, pod, cancel)

    # -- one pod -----------------------------------------------------------

    def _run_guarded(self, pod: Json, cancel: threading.Event) -> None:
        meta = pod["metadata"]
        try:
            self._run(pod, cancel)
        except _Cancelled:
            pass
        except Exception:
            log.exception("kubelet stand-in failed on pod %s/%s", meta["namespace"], meta["name"])
        finally:
            with self._lock:
                self._active.pop(meta["uid"], None)

    def _run(self, pod: Json, cancel: threading.Event) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        namespace, name = meta["namespace"], meta["name"]
        container = spec["containers"][0]
        began = time.monotonic()
        deadline_seconds = spec.get("activeDeadlineSeconds")
        timeout = float(deadline_seconds) if deadline_seconds else self.max_runtime
        assert self._root is not None
        workdir = self._root / namespace / f"{name}-{meta['uid'][:8]}"
        workdir.mkdir(parents=True)
        termination_log = workdir / "termination-log"
        termination_log.touch()
        started_at = _now()

        # A kubelet retries a missing Secret, ConfigMap or key until the pod is
        # deleted or its deadline passes; so does the stand-in.
        while True:
            try:
                mounts = self._prepare_volumes(pod, container, workdir)
                env = self._container_env(pod, container)
                break
            except Exception as exc:
                if self._stopping.is_set():
                    raise _Cancelled from None
                timed_out = time.monotonic() - began >= timeout
                if cancel.is_set() or timed_out:
                    detail = str(exc) if isinstance(exc, _SetupFailed) else type(exc).__name__
                    self._report(
                        pod,
                        started_at,
                        128,
                        "StartError",
                        f"kubelet stand-in: container never started: {detail}",
                        deadline_exceeded=timed_out,
                    )
                    return
                cancel.wait(0.5)
        path_map = dict(mounts)
        path_map[container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH] = str(
            termination_log
        )
        env = {k: _rewrite_paths(v, path_map) for k, v in env.items()}
        argv = [
            _rewrite_paths(_expand(a, env), path_map)
            for a in (container.get("command") or self.default_entrypoint)
            + (container.get("args") or [])
        ]
        env.setdefault("HOME", str(workdir))
        env[TERMINATION_LOG_ENV] = str(termination_log)
        env["PATH"] = os.pathsep.join(
            [str(Path(sys.executable).parent), env.get("PATH") or os.environ.get("PATH", "")]
        )
        remaining = max(0.0, timeout - (time.monotonic() - began))
        invocation = ProbeInvocation(
            namespace, name, argv, env, workdir, termination_log, remaining
        )

        self._patch_status(namespace, name, self._running_status(container, started_at))
        log_path: Path | None = None
        deadline_hit = False
        if self.command_override is not None:
            outcome = self.command_override(invocation)
            exit_code, message = outcome.exit_code, outcome.message
        else:
            log_path = workdir / "output.log"
            started = self._execute(invocation, log_path, cancel, spec)
            if isinstance(started, str):
                self._report(pod, started_at, 128, "StartError", started, log_path=log_path)
                return
            exit_code, deadline_hit = started
            message = None
        if self._stopping.is_set():
            raise _Cancelled
        if message is None:
            message = _termination_message(
                termination_log,
                log_path,
                exit_code,
                container.get("terminationMessagePolicy") == "FallbackToLogsOnError",
            )
        reason = "Completed" if exit_code == 0 else "Error"
        self._report(
            pod,
            started_at,
            exit_code,
            reason,
            message,
            deadline_exceeded=deadline_hit,
            log_path=log_path,
        )

    def _execute(
        self, invocation: ProbeInvocation, log_path: Path, cancel: threading.Event, spec: Json
    ) -> tuple[int, bool] | str:
        """Run the command: (exit code, whether the pod deadline killed it), or a start error."""
        argv = list(invocation.argv)
        if not argv:
            return "kubelet stand-in: the container has no command (images are not run)"
        resolved = shutil.which(argv[0], path=invocation.env["PATH"])
        if resolved is None:
            return f"kubelet stand-in: executable {argv[0]!r} not found in $PATH"
        argv[0] = resolved
        process = ManagedProcess(
            "probe", argv, log_path, env=invocation.env, cwd=invocation.workdir
        )
        process.start()
        grace = min(float(spec.get("terminationGracePeriodSeconds") or 30), _KILL_GRACE_MAX)
        deadline = time.monotonic() + invocation.timeout
        while True:
            code = process.returncode()
            if code is not None:
                process.stop()
                return code, False
            if cancel.is_set() or time.monotonic() >= deadline:
                code = process.stop(grace) or 0
                # A signal death is a negative status in Python, 128+N in a container.
                return (128 - code if code < 0 else code), not cancel.is_set()
            cancel.wait(0.05)

    def _prepare_volumes(self, pod: Json, container: Json, workdir: Path) -> dict[str, str]:
        namespace = pod["metadata"]["namespace"]
        local: dict[str, Path] = {}
        for volume in pod["spec"].get("volumes") or []:
            directory = workdir / "volumes" / volume["name"]
            directory.mkdir(parents=True, exist_ok=True)
            local[volume["name"]] = directory
            if "secret" in volume or "configMap" in volume:
                self._write_volume(namespace, volume, directory)
        mounts: dict[str, str] = {}
        for mount in container.get("volumeMounts") or []:
            directory = local.get(mount["name"])
            if directory is None:
                continue
            target = directory / mount["subPath"] if mount.get("subPath") else directory
            mounts[mount["mountPath"]] = str(target)
        return mounts

    def _write_volume(self, namespace: str, volume: Json, directory: Path) -> None:
        from kubernetes.client.exceptions import ApiException

        source = volume.get("secret") or volume.get("configMap") or {}
        is_secret = "secret" in volume
        ref = source.get("secretName") if is_secret else source.get("name")
        try:
            if is_secret:
                obj = self._raw(self._core.read_namespaced_secret, ref, namespace)
            else:
                obj = self._raw(self._core.read_namespaced_config_map, ref, namespace)
        except ApiException as exc:
            if exc.status == 404 and source.get("optional"):
                return
            kind = "Secret" if is_secret else "ConfigMap"
            raise _SetupFailed(
                f"volume {volume['name']!r}: {kind} {ref!r} unreadable (HTTP {exc.status})"
            ) from None
        files: dict[str, bytes] = {}
        for key, value in (obj.get("data") or {}).items():
            files[key] = base64.b64decode(value) if is_secret else value.encode()
        for key, value in (obj.get("binaryData") or {}).items():
            files[key] = base64.b64decode(value)
        mode = int(source.get("defaultMode") or 0o644)
        items = source.get("items")
        selected = (
            [(i["key"], i["path"], i.get("mode")) for i in items]
            if items
            else [(k, k, None) for k in files]
        )
        for key, rel, item_mode in selected:
            if key not in files:
                continue
            path = directory / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # a retry may find a read-only copy
            path.write_bytes(files[key])
            path.chmod(int(item_mode) if item_mode else mode)

    def _container_env(self, pod: Json, container: Json) -> dict[str, str]:
        namespace = pod["metadata"]["namespace"]
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for key, value in self._source_data(namespace, source).items():
                env[prefix + key] = value
        for var in container.get("env") or []:
            if "valueFrom" in var:
                resolved = self._value_from(pod, var["valueFrom"])
                if resolved is not None:
                    env[var["name"]] = resolved
            else:
                env[var["name"]] = _expand(var.get("value", ""), env)
        return env

    def _source_data(self, namespace: str, source: Json) -> dict[str, str]:
        from kubernetes.client.exceptions import ApiException

        ref = source.get("secretRef") or source.get("configMapRef") or {}
        try:
            if "secretRef" in source:
                obj = self._raw(self._core.read_namespaced_secret, ref["name"], namespace)
                return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
            obj = self._raw(self._core.read_namespaced_config_map, ref["name"], namespace)
            return dict(obj.get("data") or {})
        except ApiException as exc:
            if exc.status == 404 and ref.get("optional"):
                return {}
            raise _SetupFailed(
                f"kubelet stand-in: envFrom {ref.get('name')!r} unreadable"
            ) from None

    def _value_from(self, pod: Json, value_from: Json) -> str | None:
        from kubernetes.client.exceptions import ApiException

        namespace = pod["metadata"]["namespace"]
        if "fieldRef" in value_from:
            return _field(pod, value_from["fieldRef"]["fieldPath"])
        ref = value_from.get("secretKeyRef") or value_from.get("configMapKeyRef")
        if ref is None:
            return None
        try:
            if "secretKeyRef" in value_from:
                obj = self._raw(self._core.read_namespaced_secret, ref["name"], namespace)
                raw = (obj.get("data") or {}).get(ref["key"])
                value = base64.b64decode(raw).decode() if raw is not None else None
            else:
                obj = self._raw(self._core.read_namespaced_config_map, ref["name"], namespace)
                value = (obj.get("data") or {}).get(ref["key"])
        except ApiException as exc:
            if exc.status == 404 and ref.get("optional"):
                return None
            raise _SetupFailed(f"env from {ref['name']!r} unreadable") from None
        if value is None and not ref.get("optional"):
            raise _SetupFailed(f"key {ref['key']!r} missing in {ref['name']!r}")
        return value

    # -- status reports ----------------------------------------------------

    @staticmethod
    def _running_status(container: Json, started_at: str) -> Json:
        conditions = [
            {"type": t, "status": "True", "lastTransitionTime": started_at}
            for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
        ]
        return {
            "phase": "Running",
            "startTime": started_at,
            "conditions": conditions,
            "containerStatuses": [
                _container_status(container, {"running": {"startedAt": started_at}}, live=True)
            ],
        }

    def _report(
        self,
        pod: Json,
        started_at: str,
        exit_code: int,
        reason: str,
        message: str,
        *,
        deadline_exceeded: bool = False,
        log_path: Path | None = None,
    ) -> None:
        meta, container = pod["metadata"], pod["spec"]["containers"][0]
        finished_at = _now()
        phase = "Succeeded" if exit_code == 0 and not deadline_exceeded else "Failed"
        conditions = [
            {
                "type": "PodReadyToStartContainers",
                "status": "False",
                "lastTransitionTime": finished_at,
            },
            {"type": "Initialized", "status": "True", "lastTransitionTime": started_at},
        ] + [
            {
                "type": t,
                "status": "False",
                "reason": "PodCompleted",
                "lastTransitionTime": finished_at,
            }
            for t in ("Ready", "ContainersReady")
        ]
        status: Json = {
            "phase": phase,
            "startTime": started_at,
            "conditions": conditions,
            "containerStatuses": [
                _container_status(
                    container,
                    {
                        "terminated": {
                            "exitCode": exit_code,
                            "reason": reason,
                            "message": message,
                            "startedAt": started_at,
                            "finishedAt": finished_at,
                        }
                    },
                    live=False,
                )
            ],
        }
        if deadline_exceeded:
            status["reason"] = "DeadlineExceeded"
            status["message"] = "Pod was active on the node longer than the specified deadline"
        self._patch_status(meta["namespace"], meta["name"], status)
        with self._lock:
            self.runs.append(
                ProbeRun(
                    meta["namespace"],
                    meta["name"],
                    meta["uid"],
                    exit_code,
                    reason,
                    message,
                    log_path,
                )
            )
        log.info(
            "kubelet stand-in: pod %s/%s %s (exit %d)",
            meta["namespace"],
            meta["name"],
            phase,
            exit_code,
        )


def _field(pod: Json, path: str) -> str | None:
    meta = pod["metadata"]
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    value = simple.get(path)
    return None if value is None else str(value)


def _rewrite_paths(text: str, path_map: dict[str, str]) -> str:
    """Container mount paths -> local folders, in one pass.

    One pass, so a rewritten path (often itself under /tmp, also a mount) is never
    rewritten again; longest first so /etc/probe/creds wins over /etc/probe; whole
    path segments only, starting where a path can start.
    """
    if not path_map:
        return text
    by_path = {p.rstrip("/") or "/": local for p, local in path_map.items()}
    alternatives = "|".join(re.escape(p) for p in sorted(by_path, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.-])({alternatives})(?=/|$|[^\w.-])")
    return pattern.sub(lambda m: by_path[m.group(1)], text)


def _termination_message(
    termination_log: Path, log_path: Path | None, exit_code: int, fallback_to_logs: bool
) -> str:
    try:
        message = termination_log.read_bytes()[:_MESSAGE_LIMIT].decode(errors="replace")
    except OSError:
        message = ""
    if not message and fallback_to_logs and exit_code != 0 and log_path is not None:
        message = tail(log_path, _FALLBACK_LINES)[-_FALLBACK_BYTES:]
    return message


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flagops_devtools.testing.kubelet_standin",
        description="Run probe pods locally (no kubelet in the local control plane).",
    )
    parser.add_argument("--kubeconfig", type=Path, default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--namespace", help="watch only this namespace (default: all)")
    args = parser.parse_args(argv)
    if not args.kubeconfig:
        parser.error("--kubeconfig or $KUBECONFIG is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with ProbeKubeletStandIn(args.kubeconfig, namespace=args.namespace):
        log.info("kubelet stand-in watching probe pods; Ctrl-C stops")
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
