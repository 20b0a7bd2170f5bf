"""The API server a benchmark run talks to, and the log of the requests it received.

- ``emulated_api()``: kmock's emulated API in this process; its own request log is read.
- ``proxied_api(kubeconfig)``: a real API server, reached through a counting proxy in this process.
  A real server's audit log is not ours to configure, so the proxy logs every request on its way
  (method, path, query, user agent) and forwards it with the kubeconfig's credentials, streaming
  the answer (watches included). The operator and the driver both talk to the proxy, so the bare
  round trip it measures pays the same extra hop as the operator.
- ``real_api()``: the project's own control plane (tests/controlplane/build.sh), started for the run; no
  proxy: every client talks to kube-apiserver, and the requests are read from its audit log. The operator
  runs as the RBAC-only user of deploy/clusterrole.yaml; a kube-controller-manager started beside it (the Job
  controller, for the side-by-side rows) as its own service account.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import pathlib
import ssl
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Callable

import aiohttp
import aiohttp.web
import kmock
import kubernetes
import yaml

from workload_operator import GROUP, PLURAL, VERSION, crd
from workload_operator.devcluster import control_plane
from workload_operator.devcluster.control_plane import install_crd, write_kubeconfig
from workload_operator.devcluster.emulator import KubeAPIServer

# Hop-by-hop headers, and those the proxy sets itself, are not forwarded.
DROPPED_HEADERS = frozenset({"host", "authorization", "connection", "keep-alive", "transfer-encoding", "te",
                             "trailer", "upgrade", "proxy-authorization", "content-length", "accept-encoding"})


@dataclasses.dataclass(frozen=True)
class Logged:
    """One request as the API server received it."""
    method: str
    path: str
    watch: bool
    agent: str
    peer: str = ""  # the client's address and port: one per TCP connection the client opened
    user: str = ""  # who the server authenticated (from an audit log only)


PEER = aiohttp.web.RequestKey("peer", str)


def _peer(request: aiohttp.web.BaseRequest) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    return f"{peer[0]}:{peer[1]}" if peer else ""


@dataclasses.dataclass
class BenchApi:
    url: str                                 # where the driver and the operator send their requests
    kubeconfig: pathlib.Path                 # the operator's
    log: Callable[[int], list[Logged]]       # the requests received from index n on
    emulated: bool
    description: str
    plane: control_plane.ControlPlane | None = None  # the control plane started for the run (real_api)
    headers: dict[str, str] = dataclasses.field(default_factory=dict)  # the driver's credentials, if it needs any
    ssl: ssl.SSLContext | bool = False       # how the driver verifies the server


def _from_kmock(request: kmock.Request) -> Logged:
    raw = request._raw_request
    return Logged(request.method.upper(), request.url.path, request.params.get("watch") in ("true", "1"),
                  request.headers.get("User-Agent", ""), raw.get(PEER, "") if raw is not None else "")


class _PeerLoggingAPIServer(KubeAPIServer):
    """The emulator, noting each request's client address while its connection is open (it is gone later)."""

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        raw_request[PEER] = _peer(raw_request)
        return await super().__call__(raw_request)


@contextlib.asynccontextmanager
async def emulated_api() -> AsyncIterator[BenchApi]:
    folder = pathlib.Path(tempfile.mkdtemp(prefix="workload-bench-"))
    async with _PeerLoggingAPIServer() as api, kmock.Server(api):
        api.register_crd(yaml.safe_load(crd.render()))  # the emulator has no apiextensions API
        url = str(api.url).rstrip("/")
        yield BenchApi(url, write_kubeconfig(folder / "kubeconfig", url, "bench"),
                       lambda start: [_from_kmock(r) for r in api.requests_since(start)], emulated=True,
                       description="emulated API (kmock) in the driver's process")
        await api.close_watches()


class CountingProxy:
    """Forwards every request to the upstream API server with its credentials, and logs it."""

    def __init__(self, kubeconfig: pathlib.Path) -> None:
        self.config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=self.config)
        self.upstream = self.config.host.rstrip("/")
        self.requests: list[Logged] = []

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.upstream.startswith("https:"):
            return False
        context = ssl.create_default_context(cafile=self.config.ssl_ca_cert)
        if self.config.cert_file:
            context.load_cert_chain(self.config.cert_file, self.config.key_file)
        if not self.config.verify_ssl:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return context

    async def _forward(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        self.requests.append(Logged(request.method.upper(), request.path, request.query.get("watch") in ("true", "1"),
                                    request.headers.get("User-Agent", ""), _peer(request)))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROPPED_HEADERS}
        headers["Accept-Encoding"] = "identity"  # else aiohttp asks for gzip, and bodies would pass on compressed
        # The official client's own auth settings (its hook refreshes the tokens of exec plugins).
        for auth in self.config.auth_settings().values():
            if auth["in"] == "header" and auth["value"]:
                headers[auth["key"]] = auth["value"]
        body = await request.read()
        # The body goes on as it came, and with the Content-Type it came with or none: the official client sends
        # its POSTs and DELETEs without one (JSON, to a kube-apiserver), where aiohttp would add its own
        # `application/octet-stream`, which a kube-apiserver refuses (415 Unsupported Media Type).
        async with self.session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                        data=body or None, allow_redirects=False,
                                        skip_auto_headers=("Content-Type",)) as upstream:
            response = aiohttp.web.StreamResponse(status=upstream.status, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in DROPPED_HEADERS | {"content-encoding"}})
            await response.prepare(request)
            with contextlib.suppress(ConnectionResetError, aiohttp.ClientPayloadError):  # a watch ended by a client
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            return response

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        """Serve on a free local port until the block ends; yields the proxy's URL."""
        connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as self.session:
            app = aiohttp.web.Application(client_max_size=64 * 2**20)
            app.router.add_route("*", "/{path:.*}", self._forward)
            runner = aiohttp.web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
            await runner.setup()
            site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                await runner.cleanup()


async def _ensure_crd(url: str, config: kubernetes.client.Configuration) -> None:
    """Install the generated CRD if the server does not serve Workloads yet, and wait until it does."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/apis/{GROUP}/{VERSION}/{PLURAL}", params={"limit": "1"}) as response:
            if response.status == 200:
                return
    print(f"installing the CRD {PLURAL}.{GROUP} (the API server does not serve it)", flush=True)
    await asyncio.to_thread(install_crd, kubernetes.client.ApiClient(config))


@contextlib.asynccontextmanager
async def proxied_api(kubeconfig: pathlib.Path) -> AsyncIterator[BenchApi]:
    folder = pathlib.Path(tempfile.mkdtemp(prefix="workload-bench-"))
    proxy = CountingProxy(kubeconfig)
    async with proxy.serving() as url:
        await _ensure_crd(url, proxy.config)
        # The operator's credentials are the proxy's to add: any token will do on the way in.
        yield BenchApi(url, write_kubeconfig(folder / "kubeconfig", url, "via-proxy"), lambda start: proxy.requests[start:],
                       emulated=False, description=f"the API server of {kubeconfig} ({proxy.upstream}), through a "
                                               "counting proxy in the driver's process")


# The HTTP method of each audit verb (a watch is a GET with ?watch=true).
AUDIT_METHODS = {"get": "GET", "list": "GET", "watch": "GET", "create": "POST", "update": "PUT", "patch": "PATCH",
                 "delete": "DELETE", "deletecollection": "DELETE"}


class AuditLog:
    """kube-apiserver's audit log (JSON lines, Metadata level), read as far as it has been written. A request is
    counted once: a watch when its response starts, any other request when its response is complete."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path, self.offset, self.requests = path, 0, []

    def since(self, start: int) -> list[Logged]:
        if self.path.exists():
            with self.path.open("rb") as log:
                log.seek(self.offset)
                data = log.read()
            complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next read
            self.offset += len(complete)
            for line in complete.splitlines():
                event = json.loads(line)
                verb = event.get("verb", "")
                if event.get("stage") != ("ResponseStarted" if verb == "watch" else "ResponseComplete"):
                    continue
                self.requests.append(Logged(AUDIT_METHODS.get(verb, verb.upper()), urllib.parse.urlsplit(
                    event["requestURI"]).path, verb == "watch", event.get("userAgent", ""),
                    user=event.get("user", {}).get("username", "")))
        return self.requests[start:]


@contextlib.asynccontextmanager
async def real_api(controllers: tuple[str, ...] = ()) -> AsyncIterator[BenchApi]:
    """The project's control plane, started for the run (with a kube-controller-manager running ``controllers``,
    when given); the operator's kubeconfig is the RBAC-only user's, bound to deploy/clusterrole.yaml's rules."""
    found = control_plane.binaries()
    if found is None:
        raise RuntimeError("no control plane's binaries: run tests/controlplane/build.sh (or set KUBEBUILDER_ASSETS)")
    with control_plane.real_control_plane(found) as plane:
        with plane.client() as client:
            await asyncio.to_thread(install_crd, client)
            role = yaml.safe_load((pathlib.Path(__file__).parents[1] / "deploy" / "clusterrole.yaml").read_text())
            await asyncio.to_thread(control_plane.grant, client, role)
        if controllers:
            await asyncio.to_thread(plane.start_controller_manager, controllers, name="bench-controller-manager")
        audit = AuditLog(plane.audit_log)
        yield BenchApi(plane.server, plane.kubeconfig_for(control_plane.OPERATOR_USER), audit.since, emulated=False,
                       description=f"kube-apiserver {control_plane.KUBERNETES_VERSION} and etcd "
                                   f"{control_plane.ETCD_VERSION} started for the run, requests read from its audit log",
                       plane=plane, headers={"Authorization": f"Bearer {plane.tokens['admin']}"},
                       ssl=ssl.create_default_context(cafile=plane.ca))


def api_for(kubeconfig: pathlib.Path | None, real: bool = False, controllers: tuple[str, ...] = ()
            ) -> contextlib.AbstractAsyncContextManager[BenchApi]:
    if real:
        return real_api(controllers)
    return proxied_api(kubeconfig) if kubeconfig is not None else emulated_api()
