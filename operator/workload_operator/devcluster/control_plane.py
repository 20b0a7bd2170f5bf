"""Start an API server for development and the cluster tier, and stop it leaving nothing behind.

A real one (etcd + kube-apiserver) when binaries are given by the envtest convention:
``KUBEBUILDER_ASSETS`` (a folder with ``kube-apiserver`` and ``etcd``), or ``TEST_ASSET_KUBE_APISERVER``
and ``TEST_ASSET_ETCD``. Otherwise kmock's emulated API, taught real API-server behaviour.

A bare kube-apiserver needs: etcd; a serving certificate (here signed by a CA made for the run, which the
kubeconfig carries, so that every client verifies the server); a way to authenticate (a token file with an admin in system:masters); a service-account issuer with a
signing key pair; a service cluster IP range. With no controller-manager, the ServiceAccount admission
plugin is disabled (no default service account will ever exist) and the endpoint reconciler is off.
"""

from __future__ import annotations

import base64
import contextlib
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


def binaries() -> tuple[pathlib.Path, pathlib.Path] | None:
    """(kube-apiserver, etcd) from the envtest variables, or None when they do not name both."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    apiserver = os.environ.get("TEST_ASSET_KUBE_APISERVER") or (assets and os.path.join(assets, "kube-apiserver"))
    etcd = os.environ.get("TEST_ASSET_ETCD") or (assets and os.path.join(assets, "etcd"))
    if not apiserver or not etcd:
        return None
    found = pathlib.Path(apiserver), pathlib.Path(etcd)
    for path in found:
        if not os.access(path, os.X_OK):
            raise FileNotFoundError(f"{path} is not an executable (from KUBEBUILDER_ASSETS / TEST_ASSET_*)")
    return found


def _free_port() -> int:
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


def _wait_ready(url: str, token: str | None, process: subprocess.Popen[bytes], what: str,
                ca: pathlib.Path | None = None) -> None:
    context = ssl.create_default_context(cafile=ca)  # verified, as every client of the server will
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


@contextlib.contextmanager
def real_control_plane(apiserver: pathlib.Path, etcd: pathlib.Path) -> Iterator[pathlib.Path]:
    """etcd and kube-apiserver on loopback, in a temporary folder; yields the kubeconfig's path."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="workload-dev-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        client, peer, secure = _free_port(), _free_port(), _free_port()
        etcd_log = open(folder / "etcd.log", "wb")  # noqa: SIM115 (closed with the folder)
        processes.append(subprocess.Popen([
            str(etcd), "--data-dir", str(folder / "etcd"), "--name", "dev",
            "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"dev=http://127.0.0.1:{peer}", "--unsafe-no-fsync",
        ], stdout=etcd_log, stderr=subprocess.STDOUT))
        _wait_ready(f"http://127.0.0.1:{client}/health", None, processes[-1], "etcd")

        token = secrets.token_hex(16)
        (folder / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
        private, public = _signing_key(folder)
        ca, certificate, key = serving_certificate(folder)
        apiserver_log = open(folder / "kube-apiserver.log", "wb")  # noqa: SIM115
        processes.append(subprocess.Popen([
            str(apiserver), "--etcd-servers", f"http://127.0.0.1:{client}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(secure),
            "--tls-cert-file", str(certificate), "--tls-private-key-file", str(key),
            "--token-auth-file", str(folder / "tokens.csv"),
            "--authorization-mode", "RBAC",
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(public), "--service-account-signing-key-file", str(private),
            "--service-cluster-ip-range", "10.0.0.0/24",
            "--disable-admission-plugins", "ServiceAccount", "--endpoint-reconciler-type", "none",
        ], stdout=apiserver_log, stderr=subprocess.STDOUT))
        _wait_ready(f"https://127.0.0.1:{secure}/readyz", token, processes[-1], "kube-apiserver", ca)
        yield write_kubeconfig(folder / "kubeconfig", f"https://127.0.0.1:{secure}", token, ca=ca.read_bytes())
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def install_crd(api_client: kubernetes.client.ApiClient, *, replace: bool = False) -> None:
    """Create the generated Workload CRD if the server has none (with ``replace``, update it to the generated
    one as well) and wait until the server serves it (Established)."""
    api = kubernetes.client.ApiextensionsV1Api(api_client)
    manifest = yaml.safe_load(crd.render())
    name = manifest["metadata"]["name"]
    try:
        current = api.read_custom_resource_definition(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
        api.create_custom_resource_definition(manifest)
    else:
        if replace:
            manifest["metadata"]["resourceVersion"] = current.metadata.resource_version
            api.replace_custom_resource_definition(name, manifest)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        conditions = api.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the CRD {name} was not Established within {READY_TIMEOUT:.0f} s")


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
