"""The real control plane's kubeconfig: every client verifies the server against the CA made for the run.

A kube-apiserver cannot run here; a loopback HTTPS server with the same certificate stands in for it.
"""
import base64
import contextlib
import http.server
import json
import pathlib
import ssl
import threading
import types
import warnings
from collections.abc import Iterator

import kubernetes
import pytest
import urllib3
import yaml

from workload_operator.devcluster import control_plane
from workload_operator.kube import Kube

VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "x", "gitTreeState": "clean",
           "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"}


@contextlib.contextmanager
def https_server(certificate: pathlib.Path, key: pathlib.Path) -> Iterator[str]:
    """A loopback HTTPS server that answers every GET as an API server's /version, with this certificate."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            body = json.dumps(VERSION).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def client(kubeconfig: pathlib.Path) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


@pytest.fixture()
def certificates(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    return control_plane.serving_certificate(tmp_path)


def test_the_kubeconfig_carries_the_ca_and_no_insecure_flag(tmp_path, certificates) -> None:
    ca, _, _ = certificates
    path = control_plane.write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:6443", "t", ca=ca.read_bytes())
    (cluster,) = yaml.safe_load(path.read_text())["clusters"]
    assert set(cluster["cluster"]) == {"server", "certificate-authority-data"}
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == ca.read_bytes()


def test_clients_built_from_it_verify_the_server_and_warn_of_nothing(tmp_path, certificates, monkeypatch) -> None:
    ca, certificate, key = certificates
    with https_server(certificate, key) as url, warnings.catch_warnings():
        warnings.simplefilter("error")  # urllib3's InsecureRequestWarning would fail the test
        path = control_plane.write_kubeconfig(tmp_path / "kubeconfig", url, "t", ca=ca.read_bytes())
        with client(path) as api_client:
            assert api_client.configuration.verify_ssl and api_client.configuration.ssl_ca_cert
            assert kubernetes.client.VersionApi(api_client).get_code().git_version == "v1.32.0"
        # The operator's own client, and kopf's connection (its watches), from the same kubeconfig.
        monkeypatch.setenv("KUBECONFIG", str(path))
        info = Kube.from_environment().connection_info()
        assert info.insecure is False and info.ca_path and pathlib.Path(info.ca_path).read_bytes() == ca.read_bytes()
        # And control_plane's own readiness probe.
        control_plane.wait_ready(f"{url}/readyz", "t", types.SimpleNamespace(poll=lambda: None), "test", ca)


def test_a_server_with_another_certificate_is_refused(tmp_path, certificates) -> None:
    _, certificate, key = certificates
    other = tmp_path / "other"
    other.mkdir()
    other_ca, _, _ = control_plane.serving_certificate(other)
    with https_server(certificate, key) as url:
        path = control_plane.write_kubeconfig(tmp_path / "kubeconfig", url, "t", ca=other_ca.read_bytes())
        with client(path) as api_client, pytest.raises(urllib3.exceptions.MaxRetryError, match="CERTIFICATE_VERIFY_FAILED"):
            kubernetes.client.VersionApi(api_client).get_code()
