"""A local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager.

Started the way controller-runtime's envtest starts its control plane: free
loopback ports, a temporary folder, a self-made CA with serving and client
certificates, service-account signing keys, RBAC authorization and an admin
kubeconfig. kube-controller-manager adds the Job controller, garbage
collection, TTL-after-finished, namespace deletion and default service
accounts. No scheduler or kubelet runs (see kubelet_standin for probe pods).

Children get SIGTERM when the thread that started them exits (PR_SET_PDEATHSIG),
so start the control plane from a thread that lives as long as it should.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flagops_devtools.testing.binaries import find_bin_dir
from flagops_devtools.testing.certs import CertificateAuthority, service_account_key
from flagops_devtools.testing.kubeconfig import write_kubeconfig
from flagops_devtools.testing.process import ManagedProcess, Service, free_port, tail
from flagops_devtools.testing.wait import wait_for

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTROLLERS = (
    "job-controller",
    "garbage-collector-controller",
    "ttl-after-finished-controller",
    "namespace-controller",
    "serviceaccount-controller",
)
_PORT_ATTEMPTS = 3
_DIR_PREFIX = "flagops-controlplane-"
_KEEP_MARKER = "keep"


class ControlPlaneError(RuntimeError):
    pass


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {self.stderr}\nstdout: {self.stdout}"


def _remove_abandoned_dirs() -> None:
    """Delete folders of control planes whose owner was killed before it could clean up.

    Their children died with the owner (PDEATHSIG); only the files are left.
    Folders kept for diagnosis and folders of live owners stay.
    """
    for folder in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if (folder / _KEEP_MARKER).exists() or Path(f"/proc/{owner}").exists():
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _http_get(url: str, context: ssl.SSLContext | None, timeout: float = 5) -> tuple[int, str]:
    request = urllib.request.Request(url)  # noqa: S310 - loopback URLs we built
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
        return int(response.status), response.read().decode(errors="replace")


class ControlPlane(Service):
    """etcd + kube-apiserver (+ kube-controller-manager) on loopback; a context manager."""

    def __init__(
        self,
        bin_dir: Path | None = None,
        controller_manager: bool = True,
        *,
        ready_timeout: float = 90,
        stop_timeout: float = 10,
        keep_dir: bool = False,
        extra_apiserver_args: Sequence[str] = (),
    ) -> None:
        self._bin_dir = bin_dir
        self.with_controller_manager = controller_manager
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.keep_dir = keep_dir
        self.extra_apiserver_args = list(extra_apiserver_args)
        self.dir: Path | None = None
        self.server = ""
        self.etcd_url = ""
        self.startup_seconds: dict[str, float] = {}
        self._ca: CertificateAuthority | None = None
        self._processes: dict[str, ManagedProcess] = {}
        self._ready_checks: dict[str, Callable[[], bool]] = {}
        self._admin_client: Any = None
        self._users = 0

    # -- lifecycle ---------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            required: tuple[str, ...] = ("etcd", "kube-apiserver")
            if self.with_controller_manager:
                required += ("kube-controller-manager",)
            self._bin_dir = find_bin_dir(required)
        return self._bin_dir

    @property
    def kubeconfig(self) -> Path:
        return self._work_dir / "admin.kubeconfig"

    @property
    def ca_cert_path(self) -> Path:
        return self._work_dir / "pki" / "ca.crt"

    @property
    def logs(self) -> dict[str, Path]:
        return {name: p.log_path for name, p in self._processes.items()}

    @property
    def _work_dir(self) -> Path:
        if self.dir is None:
            raise ControlPlaneError("control plane not started")
        return self.dir

    def start(self) -> None:
        if self.dir is not None:
            raise ControlPlaneError("control plane already started")
        bin_dir = self.bin_dir
        began = time.monotonic()
        _remove_abandoned_dirs()
        self.dir = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))
        (self.dir / "owner.pid").write_text(f"{os.getpid()}\n")
        atexit.register(self.stop)
        try:
            self._write_pki()
            self._start_with_port_retries("etcd", lambda: self._start_etcd(bin_dir))
            self._start_with_port_retries("kube-apiserver", lambda: self._start_apiserver(bin_dir))
            if self.with_controller_manager:
                self._start_with_port_retries(
                    "kube-controller-manager", lambda: self._start_controller_manager(bin_dir)
                )
        except BaseException:
            # Keep the folder: its logs are how a failed start gets diagnosed.
            self.keep_dir = True
            (self.dir / _KEEP_MARKER).touch()
            self.stop()
            raise
        self.startup_seconds["total"] = time.monotonic() - began

    def stop(self) -> None:
        """Stop children newest first (SIGTERM, SIGKILL after stop_timeout)."""
        atexit.unregister(self.stop)
        if self._admin_client is not None:
            with contextlib.suppress(Exception):
                self._admin_client.close()
            self._admin_client = None
        for name in reversed(list(self._processes)):
            self._processes[name].stop(self.stop_timeout)
        if self.dir is not None and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            self._processes.clear()

    # -- outages (chaos tests) ----------------------------------------------

    def stop_part(self, name: str) -> None:
        """Stop one part ("etcd", "kube-apiserver", ...) and keep its data, ports and certs."""
        self._processes[name].stop(self.stop_timeout)

    def start_part(self, name: str) -> float:
        """Start a part stopped by `stop_part` again, on the same port and data; seconds."""
        process = self._processes[name]
        if process.running():
            raise ControlPlaneError(f"{name} is running")
        process.start()
        return self._await(process, self._ready_checks[name], name)

    def rss_kib(self) -> dict[str, int | None]:
        return {name: p.rss_kib() for name, p in self._processes.items()}

    def pids(self) -> dict[str, int | None]:
        return {name: p.pid for name, p in self._processes.items()}

    # -- startup -----------------------------------------------------------

    def _write_pki(self) -> None:
        pki = self._work_dir / "pki"
        pki.mkdir()
        self._ca = CertificateAuthority()
        (pki / "ca.crt").write_bytes(self._ca.cert_pem)
        hosts = [
            "127.0.0.1",
            "localhost",
            "10.0.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        self._ca.issue("kube-apiserver", server_hosts=hosts).write(pki, "apiserver")
        self._ca.issue("flagops-admin", ["system:masters"], client=True).write(pki, "admin")
        # With --use-service-account-credentials=false every controller acts as
        # this identity, so it needs more than the kube-controller-manager role.
        self._ca.issue("system:kube-controller-manager", ["system:masters"], client=True).write(
            pki, "controller-manager"
        )
        private, public = service_account_key()
        (pki / "sa.key").touch(mode=0o600)
        (pki / "sa.key").write_bytes(private)
        (pki / "sa.pub").write_bytes(public)

    def _start_with_port_retries(self, name: str, attempt: Callable[[], float]) -> None:
        # Free ports are picked by binding to port 0 and releasing it, which can
        # race with another process on a busy machine; a new port fixes that.
        for tries in range(1, _PORT_ATTEMPTS + 1):
            try:
                self.startup_seconds[name] = attempt()
                return
            except ControlPlaneError:
                process = self._processes.get(name)
                port_clash = process is not None and "address already in use" in tail(
                    process.log_path, 200
                )
                if not port_clash or tries == _PORT_ATTEMPTS:
                    raise
                if process is not None:
                    process.stop(self.stop_timeout)

    def _launch(self, name: str, argv: list[str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, self._work_dir / f"{name}.log", cwd=self._work_dir)
        self._processes[name] = process
        process.start()
        return process

    def _await(self, process: ManagedProcess, check: Callable[[], bool], what: str) -> float:
        began = time.monotonic()

        def ready() -> str | None:
            if not process.running():
                return "exited"
            return "ready" if check() else None

        try:
            state = wait_for(
                ready, timeout=self.ready_timeout, interval=0.1, message=f"{what} not ready"
            )
        except TimeoutError as exc:
            raise ControlPlaneError(f"{exc}\n{process.describe_failure()}") from None
        if state == "exited":
            raise ControlPlaneError(f"{what} exited during start\n{process.describe_failure()}")
        return time.monotonic() - began

    def _start_etcd(self, bin_dir: Path) -> float:
        client_port, peer_port = free_port(), free_port()
        data_dir = self._work_dir / "etcd-data"
        shutil.rmtree(data_dir, ignore_errors=True)
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        process = self._launch(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=default",
                f"--data-dir={data_dir}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                # envtest does the same: test data need not survive a power cut.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            _, body = _http_get(f"{self.etcd_url}/health", None)
            return bool(json.loads(body).get("health") == "true")

        self._ready_checks["etcd"] = healthy
        return self._await(process, healthy, "etcd")

    def _admin_ssl_context(self) -> ssl.SSLContext:
        pki = self._work_dir / "pki"
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return context

    def _start_apiserver(self, bin_dir: Path) -> float:
        port = free_port()
        pki = self._work_dir / "pki"
        self.server = f"https://127.0.0.1:{port}"
        cert_dir = self._work_dir / "apiserver-certs"
        cert_dir.mkdir(exist_ok=True)
        process = self._launch(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                f"--secure-port={port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--cert-dir={cert_dir}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                "--authorization-mode=RBAC",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--allow-privileged=true",
                # As in envtest: the ServiceAccount admission plugin rejects pods
                # until the namespace's default account exists, a race no test wants.
                "--disable-admission-plugins=ServiceAccount",
                "--profiling=false",
                *self.extra_apiserver_args,
            ],
        )
        context = self._admin_ssl_context()

        def ready() -> bool:
            status, _ = _http_get(f"{self.server}/readyz", context)
            return status == 200

        self._ready_checks["kube-apiserver"] = ready
        seconds = self._await(process, ready, "kube-apiserver")
        write_kubeconfig(
            self.kubeconfig,
            server=self.server,
            ca_pem=(pki / "ca.crt").read_bytes(),
            user="flagops-admin",
            client_cert_pem=(pki / "admin.crt").read_bytes(),
            client_key_pem=(pki / "admin.key").read_bytes(),
        )
        return seconds

    def _start_controller_manager(self, bin_dir: Path) -> float:
        port = free_port()
        pki = self._work_dir / "pki"
        kubeconfig = write_kubeconfig(
            self._work_dir / "controller-manager.kubeconfig",
            server=self.server,
            ca_pem=(pki / "ca.crt").read_bytes(),
            user="system:kube-controller-manager",
            client_cert_pem=(pki / "controller-manager.crt").read_bytes(),
            client_key_pem=(pki / "controller-manager.key").read_bytes(),
        )
        cert_dir = self._work_dir / "controller-manager-certs"
        cert_dir.mkdir(exist_ok=True)
        process = self._launch(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={cert_dir}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--profiling=false",
            ],
        )
        # Its serving cert is self-signed in cert_dir; this is a loopback liveness check.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

        def healthy() -> bool:
            status, _ = _http_get(f"https://127.0.0.1:{port}/healthz", context)
            return status == 200

        self._ready_checks["kube-controller-manager"] = healthy
        return self._await(process, healthy, "kube-controller-manager")

    # -- clients -----------------------------------------------------------

    def api_client(self) -> Any:
        """A new kubernetes.client.ApiClient with admin rights (caller closes it)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]

    def _admin(self) -> Any:
        if self._admin_client is None:
            self._admin_client = self.api_client()
        return self._admin_client

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = ["kubectl", f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def create_namespace(
        self, name: str | None = None, labels: dict[str, str] | None = None
    ) -> str:
        from kubernetes import client

        name = name or f"test-{uuid.uuid4().hex[:10]}"
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        client.CoreV1Api(self._admin()).create_namespace(body)
        return name

    def delete_namespace(self, name: str) -> None:
        """Start deletion without waiting for finalization (the namespace controller ends it)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            client.CoreV1Api(self._admin()).delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def make_user_kubeconfig(self, user: str, groups: list[str]) -> Path:
        """A kubeconfig authenticating as `user` in `groups` by a client certificate."""
        if self._ca is None:
            raise ControlPlaneError("control plane not started")
        pair = self._ca.issue(user, groups, client=True)
        self._users += 1
        users_dir = self._work_dir / "users"
        users_dir.mkdir(exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
        return write_kubeconfig(
            users_dir / f"{self._users:03d}-{safe}.kubeconfig",
            server=self.server,
            ca_pem=self._ca.cert_pem,
            user=user,
            client_cert_pem=pair.cert_pem,
            client_key_pem=pair.key_pem,
        )

    def make_service_account_kubeconfig(
        self, namespace: str, name: str, expiration_seconds: int = 3600
    ) -> Path:
        """A kubeconfig with a bound token for a service account (created when missing)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core = client.CoreV1Api(self._admin())
        try:
            core.create_namespaced_service_account(
                namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=[SERVICE_ACCOUNT_ISSUER], expiration_seconds=expiration_seconds
            )
        )
        token = core.create_namespaced_service_account_token(name, namespace, request)
        self._users += 1
        users_dir = self._work_dir / "users"
        users_dir.mkdir(exist_ok=True)
        return write_kubeconfig(
            users_dir / f"{self._users:03d}-sa-{namespace}-{name}.kubeconfig",
            server=self.server,
            ca_pem=self.ca_cert_path.read_bytes(),
            user=f"system:serviceaccount:{namespace}:{name}",
            token=token.status.token if token.status else None,
            namespace=namespace,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flagops_devtools.testing.controlplane",
        description="Run the local control plane until Ctrl-C.",
    )
    parser.add_argument(
        "--no-controller-manager", action="store_true", help="etcd and kube-apiserver only"
    )
    parser.add_argument("--kubeconfig-out", type=Path, help="also copy the admin kubeconfig here")
    parser.add_argument(
        "--measure", action="store_true", help="print start-up times and RSS, then stop"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with ControlPlane(controller_manager=not args.no_controller_manager) as plane:
        kubeconfig = plane.kubeconfig
        if args.kubeconfig_out:
            shutil.copyfile(plane.kubeconfig, args.kubeconfig_out)
            args.kubeconfig_out.chmod(0o600)
            kubeconfig = args.kubeconfig_out
        if args.measure:
            # Let the apiserver settle after its post-start hooks before sampling RSS.
            wait_for(lambda: plane.kubectl("get", "--raw=/readyz", check=False).returncode == 0)
            for name, seconds in plane.startup_seconds.items():
                print(f"start {name}: {seconds:.2f}s")
            for name, rss in plane.rss_kib().items():
                print(f"rss {name}: {(rss or 0) / 1024:.0f} MiB")
            return 0
        print(f"export KUBECONFIG={kubeconfig}", flush=True)
        print(f"# server {plane.server}; logs in {plane.dir}; Ctrl-C stops", file=sys.stderr)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
