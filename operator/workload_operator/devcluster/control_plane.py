"""Start an API server for development and the cluster tier, and stop it leaving nothing behind.

A real control plane when its binaries are found: the envtest convention (``KUBEBUILDER_ASSETS``, a folder with
``kube-apiserver`` and ``etcd``, or ``TEST_ASSET_KUBE_APISERVER`` and ``TEST_ASSET_ETCD``), else the project's
own build of a pinned Kubernetes release (``tests/controlplane/build.sh``, which also builds kube-scheduler and
kube-controller-manager). Otherwise kmock's emulated API, taught real API-server behaviour.

Started as envtest starts it: etcd and kube-apiserver on loopback; a serving certificate signed by a CA made for
the run (the kubeconfigs carry it, so every client verifies the server); bearer-token users, one in
``system:masters`` and one the operator runs as with only what RBAC grants it; an audit log of every request
at Metadata level; a service-account issuer with a signing key pair. The scheduler and the controller-manager
are started only where asked, with their own identities; without the serviceaccount controller the
ServiceAccount admission plugin is off (no ``default`` ServiceAccount would ever exist). The endpoint
reconciler is off: nothing here serves a Service.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import ipaddress
import json
import os
import pathlib
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException

from workload_operator import crd

READY_TIMEOUT = 60.0


# The release tests/controlplane/build.sh builds (its go.mod pins the same; tests/unit/test_controlplane.py checks).
KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.7.0"


@dataclasses.dataclass(frozen=True)
class Binaries:
    """The control plane's programs; the scheduler and the controller-manager are optional (envtest ships neither)."""

    apiserver: pathlib.Path
    etcd: pathlib.Path
    scheduler: pathlib.Path | None = None
    controller_manager: pathlib.Path | None = None

    @property
    def folder(self) -> pathlib.Path:
        return self.apiserver.parent


def built_folder() -> pathlib.Path:
    """Where tests/controlplane/build.sh puts (and finds) the binaries of the pinned release."""
    root = os.environ.get("WORKLOAD_CONTROLPLANE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "workload-operator", "controlplane")
    return pathlib.Path(root) / f"kubernetes-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}"


def binaries() -> Binaries | None:
    """The binaries named by the envtest convention (``KUBEBUILDER_ASSETS``, or ``TEST_ASSET_KUBE_APISERVER`` and
    ``TEST_ASSET_ETCD``), else the project's own build of the pinned release when it is there; None otherwise."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    named = {what: os.environ.get(f"TEST_ASSET_{what.upper().replace('-', '_')}") or (assets and os.path.join(assets, what))
             for what in ("kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager")}
    if named["kube-apiserver"] and named["etcd"]:
        for what in ("kube-apiserver", "etcd"):
            if not os.access(named[what], os.X_OK):  # type: ignore[arg-type]
                raise FileNotFoundError(f"{named[what]} is not an executable (from KUBEBUILDER_ASSETS / TEST_ASSET_*)")
    else:
        built = built_folder()
        named = {what: str(built / what) for what in named}
        if not all(os.access(path, os.X_OK) for path in named.values()):
            return None

    def optional(what: str) -> pathlib.Path | None:
        path = named[what]
        return pathlib.Path(path) if path and os.access(path, os.X_OK) else None

    return Binaries(pathlib.Path(named["kube-apiserver"]), pathlib.Path(named["etcd"]),  # type: ignore[arg-type]
                    optional("kube-scheduler"), optional("kube-controller-manager"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_kubeconfig(path: pathlib.Path, server: str, token: str, *, ca: bytes | None = None) -> pathlib.Path:
    """A kubeconfig for ``server`` with a bearer token; an https server is verified against ``ca`` (PEM)."""
    cluster: dict[str, Any] = {"server": server}
    if ca is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "dev", "cluster": cluster}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "admin", "namespace": "default"}}],
    }))
    return path


def _signing_key(folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = folder / "sa.key", folder / "sa.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def serving_certificate(folder: pathlib.Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                        days: int = 30) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    """A CA made for this run and a serving certificate it signs for ``hosts``: (ca.crt, tls.crt, tls.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey,
                    extensions: list[tuple[x509.ExtensionType, bool]]) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("workload-dev-ca", ca_key, "workload-dev-ca", ca_key, [
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                       key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                       decipher_only=False), True)])
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    serving = certificate("kube-apiserver", key, "workload-dev-ca", ca_key, [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectAlternativeName(names), False)])
    paths = folder / "ca.crt", folder / "tls.crt", folder / "tls.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def wait_ready(url: str, token: str | None, process: subprocess.Popen[bytes], what: str,
                ca: pathlib.Path | None = None, *, verify: bool = True) -> None:
    """Poll ``url`` until it answers 200. The API server is verified against ``ca``, as every client of it will be;
    ``verify=False`` only for the health port of the scheduler and controller-manager (their own self-signed
    certificate, which no client of the project reads)."""
    context = ssl.create_default_context(cafile=ca)
    if not verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline, last = time.monotonic() + READY_TIMEOUT, "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}; see its log")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError as exc:  # not listening yet, not ready yet (an HTTPError), or a certificate refused
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{what} was not ready within {READY_TIMEOUT:.0f}s (last: {last})")


AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
                "rules": [{"level": "Metadata"}]}
OPERATOR_USER = "workload-operator"
DASHBOARD_USER = "workload-dashboard"
# The identities the control plane knows (bearer tokens; the groups after the name):
USERS = {
    "admin": ("system:masters",),            # the tests' and kubectl's: everything
    OPERATOR_USER: (),                       # RBAC-only: what grant() binds to it, nothing more
    DASHBOARD_USER: (),                      # the same, for `workload-operator dashboard`
    "system:kube-scheduler": (),             # the bootstrap roles the API server makes grant these two
    "system:kube-controller-manager": (),
}
# The controllers that stand in for a cluster's (the cluster tier's scenarios and `dev` rely on these only);
# node-lifecycle and taint-eviction act on the Node objects a test creates and heartbeats, and no others.
CONTROLLERS = ("garbage-collector-controller", "namespace-controller", "serviceaccount-controller",
               "node-lifecycle-controller", "taint-eviction-controller")
# A node is lost 5 s after its last heartbeat (a cluster's default: 50 s), checked every second.
NODE_MONITOR = ("--node-monitor-period=1s", "--node-monitor-grace-period=5s")
# The real scheduler places only pods that ask for it by this name: the scenarios that play the scheduler
# themselves (binding a pod to a node with no kubelet) keep doing so, untouched.
SCHEDULER_NAME = "real-scheduler"


@dataclasses.dataclass
class ControlPlane:
    """etcd and kube-apiserver on loopback (and, when started, kube-scheduler and kube-controller-manager)."""

    binaries: Binaries
    folder: pathlib.Path
    server: str
    ca: pathlib.Path
    tokens: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)
    controllers: tuple[str, ...] = ()  # those of the kube-controller-manager started with it

    @property
    def kubeconfig(self) -> pathlib.Path:
        """The admin's (system:masters)."""
        return self.kubeconfig_for("admin")

    @property
    def audit_log(self) -> pathlib.Path:
        """Every request at Metadata level, one JSON line each (who, verb, URI, response code, user agent)."""
        return self.folder / "audit.log"

    def client(self, user: str = "admin") -> kubernetes.client.ApiClient:
        """The official client, as ``user``."""
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(self.kubeconfig_for(user)), client_configuration=configuration)
        return kubernetes.client.ApiClient(configuration)

    def kubeconfig_for(self, user: str) -> pathlib.Path:
        path = self.folder / f"{user.replace(':', '-')}.kubeconfig"
        if not path.exists():
            write_kubeconfig(path, self.server, self.tokens[user], ca=self.ca.read_bytes())
        return path

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """A process of the control plane, logging to <folder>/<name>.log; stopped with the control plane."""
        with open(self.folder / f"{name}.log", "ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def start_scheduler(self) -> subprocess.Popen[bytes]:
        """The real kube-scheduler, for pods whose ``spec.schedulerName`` is ``SCHEDULER_NAME``."""
        if self.binaries.scheduler is None:
            raise FileNotFoundError("no kube-scheduler among the control plane's binaries")
        config = self.folder / "scheduler.yaml"
        config.write_text(json.dumps({
            "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(self.kubeconfig_for("system:kube-scheduler"))},
            "leaderElection": {"leaderElect": False}, "profiles": [{"schedulerName": SCHEDULER_NAME}]}))
        port = free_port()
        process = self.start("kube-scheduler", [
            str(self.binaries.scheduler), "--config", str(config), "--bind-address", "127.0.0.1",
            "--secure-port", str(port), "--cert-dir", str(self.folder / "kube-scheduler")])
        wait_ready(f"https://127.0.0.1:{port}/healthz", None, process, "kube-scheduler", verify=False)
        return process

    def start_controller_manager(self, controllers: tuple[str, ...] = CONTROLLERS, *, name: str = "kube-controller-manager",
                                 options: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        """The real kube-controller-manager running ``controllers`` only, each with its own service account's
        credentials (as kubeadm runs it); ``name`` tells apart two of them (its log file)."""
        if self.binaries.controller_manager is None:
            raise FileNotFoundError("no kube-controller-manager among the control plane's binaries")
        port = free_port()
        process = self.start(name, [
            str(self.binaries.controller_manager), "--kubeconfig", str(self.kubeconfig_for("system:kube-controller-manager")),
            "--controllers", ",".join(controllers), "--leader-elect=false", "--use-service-account-credentials",
            "--bind-address", "127.0.0.1", "--secure-port", str(port), "--cert-dir", str(self.folder / name),
            "--root-ca-file", str(self.ca), "--service-account-private-key-file", str(self.folder / "sa.key"),
            *(NODE_MONITOR if "node-lifecycle-controller" in controllers else ()), *options])
        wait_ready(f"https://127.0.0.1:{port}/healthz", None, process, name, verify=False)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def real_control_plane(found: Binaries, *, scheduler: bool = False, controllers: tuple[str, ...] = ()
                       ) -> Iterator[ControlPlane]:
    """etcd and kube-apiserver on loopback, in a temporary folder, as envtest starts them, with an audit log; with
    ``scheduler`` the real kube-scheduler, with ``controllers`` a kube-controller-manager running those."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="workload-dev-"))
    plane = ControlPlane(found, folder, "", folder / "ca.crt", {user: secrets.token_hex(16) for user in USERS})
    try:
        client, peer, secure = free_port(), free_port(), free_port()
        etcd = plane.start("etcd", [
            str(found.etcd), "--data-dir", str(folder / "etcd"), "--name", "dev",
            "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"dev=http://127.0.0.1:{peer}", "--unsafe-no-fsync"])
        wait_ready(f"http://127.0.0.1:{client}/health", None, etcd, "etcd")

        (folder / "tokens.csv").write_text("".join(
            f'{plane.tokens[user]},{user},{user},"{",".join(groups)}"\n' for user, groups in USERS.items()))
        (folder / "audit-policy.yaml").write_text(json.dumps(AUDIT_POLICY))
        private, public = _signing_key(folder)
        ca, certificate, key = serving_certificate(folder)
        apiserver = plane.start("kube-apiserver", [
            str(found.apiserver), "--etcd-servers", f"http://127.0.0.1:{client}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(secure),
            "--tls-cert-file", str(certificate), "--tls-private-key-file", str(key),
            "--token-auth-file", str(folder / "tokens.csv"),
            "--authorization-mode", "Node,RBAC",
            "--allow-privileged=true",  # as kubeadm and every managed cluster set it: Pod Security admission decides
            "--audit-policy-file", str(folder / "audit-policy.yaml"), "--audit-log-path", str(plane.audit_log),
            "--audit-log-format", "json", "--audit-log-maxsize", "1000000",  # never rotated: readers keep an offset
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(public), "--service-account-signing-key-file", str(private),
            "--service-cluster-ip-range", "10.0.0.0/24", "--endpoint-reconciler-type", "none",
            # Without a serviceaccount controller no `default` ServiceAccount is made, and admission would refuse pods.
            *([] if "serviceaccount-controller" in controllers else ["--disable-admission-plugins", "ServiceAccount"]),
        ])
        plane.server = f"https://127.0.0.1:{secure}"
        wait_ready(f"{plane.server}/readyz", plane.tokens["admin"], apiserver, "kube-apiserver", ca)
        if controllers:
            plane.start_controller_manager(controllers)
            plane.controllers = controllers
        if scheduler:
            plane.start_scheduler()
        yield plane
    finally:
        plane.stop()
        shutil.rmtree(folder, ignore_errors=True)


def grant(api_client: kubernetes.client.ApiClient, cluster_role: dict[str, Any], user: str = OPERATOR_USER) -> None:
    """Create ``cluster_role`` (a manifest: deploy/clusterrole.yaml's, say) and bind ``user`` to it, and to nothing
    else; both may exist already."""
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    name = cluster_role["metadata"]["name"]
    binding = {"metadata": {"name": f"{name}-{user.replace(':', '-')}"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}
    for create, body in ((rbac.create_cluster_role, cluster_role), (rbac.create_cluster_role_binding, binding)):
        try:
            create(body)
        except ApiException as exc:
            if exc.status != 409:
                raise


def install_crd(api_client: kubernetes.client.ApiClient, *, replace: bool = False) -> None:
    """Create the generated Workload CRD if the server has none (with ``replace``, make it the generated one in
    any case: see ``put_crd``) and wait until the server serves it."""
    manifest = yaml.safe_load(crd.render())
    if replace:
        put_crd(api_client, manifest)
        return
    try:
        kubernetes.client.ApiextensionsV1Api(api_client).create_custom_resource_definition(manifest)
    except ApiException as exc:
        if exc.status != 409:
            raise
    wait_served(api_client, manifest)


def put_crd(api_client: kubernetes.client.ApiClient, manifest: dict[str, Any]) -> None:
    """Make the CRD of that name this one: created, or replaced if another is there, or created once one being
    deleted is gone (a create would answer 409, and the one being deleted vanish after it); then wait until the
    server serves it."""
    api = kubernetes.client.ApiextensionsV1Api(api_client)
    name = manifest["metadata"]["name"]
    current = _read_crd(api, name)
    if current is not None and current.metadata.deletion_timestamp is not None:
        _wait_crd_gone(api, name)
        current = None
    if current is None:
        api.create_custom_resource_definition(manifest)
    else:
        api.replace_custom_resource_definition(
            name, {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": current.metadata.resource_version}})
    wait_served(api_client, manifest)


def delete_crd(api_client: kubernetes.client.ApiClient, name: str) -> None:
    """Delete the CRD of that name and wait until it is gone (its objects go first)."""
    api = kubernetes.client.ApiextensionsV1Api(api_client)
    with contextlib.suppress(ApiException):
        api.delete_custom_resource_definition(name)
    _wait_crd_gone(api, name)


def _read_crd(api: kubernetes.client.ApiextensionsV1Api, name: str) -> Any:
    """The CRD of that name, or None."""
    try:
        return api.read_custom_resource_definition(name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _wait_crd_gone(api: kubernetes.client.ApiextensionsV1Api, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while _read_crd(api, name) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the CRD {name} was not gone within {READY_TIMEOUT:.0f} s")
        time.sleep(0.2)


def wait_served(api_client: kubernetes.client.ApiClient, crd_manifest: dict[str, Any]) -> None:
    """Until the API server serves the CRD's resource in every version it names: Established, its storage ready
    (before that a list is answered 404, then 429 "storage is (re)initializing"), and in discovery, which the
    server updates a moment later (a controller that looks its kinds up there at start, as Kueue does, fails
    with "no matches for kind" until then)."""
    spec = crd_manifest["spec"]
    versions = [v["name"] for v in spec["versions"] if v.get("served", True)]
    custom = kubernetes.client.CustomObjectsApi(api_client)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            custom.list_cluster_custom_object(spec["group"], versions[0], spec["names"]["plural"], limit=1)
            if all(any(r.name == spec["names"]["plural"] for r in custom.get_api_resources(spec["group"], v).resources)
                   for v in versions):
                return
        except ApiException as exc:
            if exc.status not in (404, 429):
                raise
        time.sleep(0.2)
    raise RuntimeError(f"the CRD {crd_manifest['metadata']['name']} was not served within {READY_TIMEOUT:.0f} s")


@contextlib.asynccontextmanager
async def emulated_control_plane() -> AsyncIterator[pathlib.Path]:
    """kmock's emulated API in this process (no schema, no CEL); yields the kubeconfig's path."""
    import kmock

    from workload_operator.devcluster.emulator import KubeAPIServer

    folder = pathlib.Path(tempfile.mkdtemp(prefix="workload-dev-"))
    try:
        async with KubeAPIServer() as api, kmock.Server(api):
            api.register_crd(yaml.safe_load(crd.render()))  # the emulator has no apiextensions API
            yield write_kubeconfig(folder / "kubeconfig", str(api.url).rstrip("/"), "dev")
            await api.close_watches()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
