"""All of the operator's own Kubernetes API calls (kopf does the watching).

The calls go out on the event loop over one aiohttp session, on keep-alive connections (as kopf's
watches do): no worker thread per call, no new connection (and TLS handshake) per request. The official
client's Configuration still reads the credentials (kubeconfig, in-cluster, token refresh hooks), and
its ApiException still carries the API's refusals. Events are posted in the background, in order per
workload, so that recording a transition never delays the next one. Nothing here decides anything.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import kubernetes
import orjson
from kubernetes.client.exceptions import ApiException

from workload_operator import GROUP, KIND, PLURAL, VERSION, metrics
from workload_operator.lifecycle.decide import FINALIZER, CreationRefusal, WorkloadView
from workload_operator.lifecycle.pods import controller_uid
from workload_operator.lifecycle.status import WorkloadStatus
from workload_operator.manifests import RETIRED_LABEL

JSON_PATCH = "application/json-patch+json"
USER_AGENT = "workload-operator/0.1.0"
CONNECTIONS = 32   # at most this many requests at once, each on a kept-alive connection
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)  # a call that hangs fails (Transient) and is retried
AUTH_SECONDS = 10  # the credentials' headers are read again after this (or at once after a 401)
EVENT_SENDERS = 4  # Events posted at once; one workload's always by the same sender, so in order
LIST_PAGE = 500    # objects per page of a LIST (the API server's own default chunk size)
WATCH_SECONDS = 290  # a watch is closed by the server after this and resumed from the last version seen
logger = logging.getLogger(__name__)


def replica_identity() -> str:
    """Which replica this process is: the pod's name (the downward API's POD_NAME) in a cluster; elsewhere the
    host and the process. It names the leader in the Lease, and each replica's requests in audit logs."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


def user_agent(program: str = USER_AGENT) -> str:
    """``workload-operator/<version> (<replica>)``: the operator's requests, and which replica sent them."""
    return f"{program} ({replica_identity()})"


class Conflict(Exception):
    """A conditional write was refused: the object changed since it was read. Re-read and decide again."""


class Transient(Exception):
    """The API server could not answer now (429, 5xx, connection trouble): try again later."""


class Gone(Exception):
    """The Workload no longer exists."""


class Refused(Exception):
    """The API server refused the write itself (its schema, a CEL rule, any other 4xx): retrying at once cannot help."""


class CreationFailed(Exception):
    """The pod or Service was not created: ``refusal`` says which kind of no, the message the server's words."""

    def __init__(self, refusal: CreationRefusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal


class NotReady(Exception):
    """The operator cannot start: no API server, or the CRD is not installed. The message says which."""


def load_configuration() -> kubernetes.client.Configuration:
    """In a pod: its service account; elsewhere: the kubeconfig's current context (KUBECONFIG)."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        # The client reads KUBECONFIG once, when first imported; read it now.
        config_file = os.environ.get("KUBECONFIG", "~/.kube/config")
        try:
            kubernetes.config.load_kube_config(config_file=config_file, client_configuration=configuration)
        except (kubernetes.config.ConfigException, FileNotFoundError) as exc:
            raise NotReady(f"no Kubernetes credentials: not in a cluster and no usable kubeconfig ({exc})") from None
    return configuration


def _load(data: bytes) -> dict[str, Any]:
    return orjson.loads(data) if data else {}  # as kopf's own parsing (kopf_json.py): twice as fast as json


def _field_causes(exc: ApiException) -> list[Any]:
    """The causes of a Status error that name a field (a failed JSON-patch `test` has a cause naming none)."""
    try:
        causes = (json.loads(exc.body).get("details") or {}).get("causes") or []
        return [cause for cause in causes if cause.get("field")]
    except (TypeError, ValueError, AttributeError):
        return []


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one API call; transient failures become Transient, the rest pass through."""
    try:
        return await fn(*args, **kwargs)
    except ApiException as exc:
        metrics.API_ERRORS.labels(fn.__name__, str(exc.status)).inc()
        if exc.status == 429 or exc.status >= 500 or exc.status == 0:
            raise Transient(f"{exc.status} {exc.reason}") from exc
        raise
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # connection refused, reset, timed out
        metrics.API_ERRORS.labels(fn.__name__, "connection").inc()
        raise Transient(str(exc) or type(exc).__name__) from exc


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return f"{exc.status} {exc.reason}"


async def _create(create: Any, read: Any, manifest: dict[str, Any], owner_uid: str) -> dict[str, Any]:
    """Create ``manifest`` in its namespace and return what the server stored.

    On 409 AlreadyExists the object of that name is read: it is used only when it is this workload's
    own (an earlier attempt at this same step made it); anything else is a NameConflict, left untouched.
    A refusal becomes CreationFailed with the server's message: Invalid (422) can never pass, the rest may.
    """
    meta = manifest["metadata"]
    what = f"{manifest['kind'].lower()} {meta['namespace']}/{meta['name']}"
    try:
        return _load(await _call(create, meta["namespace"], manifest))
    except ApiException as exc:
        if exc.status == 409:
            existing = await _read(read, meta["name"], meta["namespace"])
            if existing is None:  # deleted since: the next try creates it
                raise Transient(f"{what} existed and is gone now") from None
            if controller_uid(existing) == owner_uid:
                return existing
            raise CreationFailed(CreationRefusal.NAME_CONFLICT,
                                 f"{what} already exists and is not this workload's; rename one of them") from None
        refusal = CreationRefusal.INVALID if exc.status == 422 else CreationRefusal.REFUSED
        raise CreationFailed(refusal, f"{what} not created: {_message(exc)}") from exc


async def _read(read: Any, *args: Any) -> dict[str, Any] | None:
    """Read one object; None if there is none."""
    try:
        return _load(await _call(read, *args))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


async def _delete_own(read: Any, delete: Any, name: str, namespace: str, owner_uid: str) -> None:
    """Delete the object of that name if the workload controls it (not watched: read first, then delete that uid)."""
    found = await _read(read, name, namespace)
    if found is not None and controller_uid(found) == owner_uid:  # else gone, or someone else's
        await _delete(delete, name, namespace, uid=found["metadata"]["uid"])


async def _delete(fn: Any, *args: Any, uid: str, **options: Any) -> dict[str, Any] | None:
    """Delete one incarnation of an object: the uid precondition leaves a newer object of the same name alone.

    Returns what the server answered; None when that incarnation is gone already (404, or 409: the name
    now belongs to another object), which is what we wanted.
    """
    if not uid:  # an empty uid precondition matches nothing: the delete would be taken as "already gone"
        raise ValueError(f"a delete needs the uid of the object it is meant for: {args}")
    try:
        return _load(await _call(fn, *args, body={"preconditions": {"uid": uid}, **options}))
    except ApiException as exc:
        if exc.status not in (404, 409):
            raise
        return None


def _ssl_context(config: kubernetes.client.Configuration) -> ssl.SSLContext | bool:
    """The TLS settings of the client's Configuration (its CA, client certificate, verification) for aiohttp."""
    if not config.host.startswith("https:"):
        return False
    context = ssl.create_default_context(cafile=config.ssl_ca_cert or None)
    if config.cert_file:
        context.load_cert_chain(config.cert_file, config.key_file or None)
    if not config.verify_ssl:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    elif config.assert_hostname is False:
        context.check_hostname = False
    return context


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


class _Http:
    """One aiohttp session per event loop: every call on a kept-alive connection, and each response read whole
    (a response left unread is a connection that cannot be used again)."""

    def __init__(self, config: kubernetes.client.Configuration, agent: str = USER_AGENT) -> None:
        self.config, self.agent = config, agent
        self.base = config.host.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._headers: dict[str, str] = {}
        self._credentials_at: float | None = None

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(ssl=_ssl_context(self.config), limit=CONNECTIONS, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(connector=connector, timeout=TIMEOUT, headers={
                "User-Agent": user_agent(self.agent), "Accept": "application/json"})  # ours and the replica's, in audit logs
            self._loop = loop
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None

    def _credentials(self, *, fresh: bool) -> dict[str, str]:
        """The credentials' headers, asked of the Configuration at most every AUTH_SECONDS (its refresh hook, which
        re-reads expiring tokens, also re-sets the whole Configuration: a few hundred µs a call)."""
        now = time.monotonic()
        if fresh or self._credentials_at is None or now - self._credentials_at > AUTH_SECONDS:
            self._headers = {auth["key"]: auth["value"] for auth in self.config.auth_settings().values()
                             if auth["in"] == "header" and auth["value"]}
            self._credentials_at = now
        return self._headers

    async def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                      timeout: float | None = None, **query: Any) -> bytes:
        """The response's body; an ApiException for a refusal (4xx, 5xx), aiohttp's errors for connection trouble.
        A 401 with credentials read earlier is tried once more with the Configuration's current ones."""
        data = orjson.dumps(body) if body is not None else None
        params = {_camel(key): str(value) for key, value in query.items() if value is not None}
        for fresh in (False, True):
            headers = {**self._credentials(fresh=fresh), **({"Content-Type": content_type} if data is not None else {})}
            async with self.session().request(
                    method, self.base + path, data=data, headers=headers, params=params or None,
                    timeout=aiohttp.ClientTimeout(total=timeout) if timeout else None,
                    server_hostname=self.config.tls_server_name or None) as response:
                content = await response.read()
                if response.status == 401 and not fresh:
                    continue
                if response.status >= 400:
                    raise ApiException(status=response.status, reason=response.reason,
                                       body=content.decode("utf-8", "replace"))
                return content
        raise AssertionError("unreachable")

    async def lines(self, path: str, **query: Any) -> AsyncIterator[bytes]:
        """A streamed response (a watch), line by line, however long a line is; ApiException for a refusal."""
        params = {_camel(key): str(value) for key, value in query.items() if value is not None}
        async with self.session().get(self.base + path, params=params, headers=self._credentials(fresh=False),
                                      timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                                      server_hostname=self.config.tls_server_name or None) as response:
            if response.status >= 400:
                if response.status == 401:  # read the credentials again before the next try
                    self._credentials_at = None
                raise ApiException(status=response.status, reason=response.reason,
                                   body=(await response.read()).decode("utf-8", "replace"))
            pending = b""
            async for chunk in response.content.iter_any():
                *complete, pending = (pending + chunk).split(b"\n")
                for line in complete:
                    if line.strip():
                        yield line


class _CustomObjects:
    """The calls of the official client's CustomObjectsApi that the operator makes, by the same names and
    arguments (the metrics name operations by them), over ``_Http``."""

    def __init__(self, http: _Http) -> None:
        self.http = http

    async def get_api_resources(self, group: str, version: str, timeout: float | None = None) -> bytes:
        return await self.http.request("GET", f"/apis/{group}/{version}", timeout=timeout)

    async def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                           name: str) -> bytes:
        return await self.http.request("GET", f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}")

    async def patch_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str,
                                            body: Any, _content_type: str) -> bytes:
        return await self.http.request("PATCH", f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
                                       body, content_type=_content_type)

    async def patch_namespaced_custom_object_status(self, group: str, version: str, namespace: str, plural: str,
                                                   name: str, body: Any, _content_type: str) -> bytes:
        return await self.http.request(
            "PATCH", f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}/status", body,
            content_type=_content_type)

    async def delete_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, name: str,
                                             body: Any = None, **query: Any) -> bytes:
        return await self.http.request("DELETE", f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
                                       body, **query)


class _CoreV1:
    """The calls of the official client's CoreV1Api that the operator makes, by the same names and arguments."""

    def __init__(self, http: _Http) -> None:
        self.http = http

    async def create_namespaced_pod(self, namespace: str, body: Any) -> bytes:
        return await self.http.request("POST", f"/api/v1/namespaces/{namespace}/pods", body)

    async def read_namespaced_pod(self, name: str, namespace: str) -> bytes:
        return await self.http.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")

    async def delete_namespaced_pod(self, name: str, namespace: str, body: Any = None, **query: Any) -> bytes:
        return await self.http.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", body, **query)

    async def patch_namespaced_pod(self, name: str, namespace: str, body: Any, _content_type: str) -> bytes:
        return await self.http.request("PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}", body,
                                       content_type=_content_type)

    async def create_namespaced_service(self, namespace: str, body: Any) -> bytes:
        return await self.http.request("POST", f"/api/v1/namespaces/{namespace}/services", body)

    async def read_namespaced_service(self, name: str, namespace: str) -> bytes:
        return await self.http.request("GET", f"/api/v1/namespaces/{namespace}/services/{name}")

    async def delete_namespaced_service(self, name: str, namespace: str, body: Any = None, **query: Any) -> bytes:
        return await self.http.request("DELETE", f"/api/v1/namespaces/{namespace}/services/{name}", body, **query)

    async def create_namespaced_event(self, namespace: str, body: Any) -> bytes:
        return await self.http.request("POST", f"/api/v1/namespaces/{namespace}/events", body)


class Kube:
    def __init__(self, api_client: kubernetes.client.ApiClient, agent: str = USER_AGENT) -> None:
        self.api_client = api_client  # the official client, for what runs outside the event loop (leader election)
        self.http = _Http(api_client.configuration, agent)
        self.custom = _CustomObjects(self.http)
        self.core = _CoreV1(self.http)
        self._events: list[asyncio.Queue[dict[str, Any]]] = []  # Events to post, by sender
        self._senders: list[asyncio.Task[None]] = []

    async def close(self) -> None:
        """At shutdown: post the Events still queued, then close the connections."""
        await self.flush()
        for sender in self._senders:
            sender.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        self._events, self._senders = [], []
        await self.http.close()

    @classmethod
    def from_environment(cls, agent: str = USER_AGENT) -> Kube:
        api_client = kubernetes.client.ApiClient(load_configuration())
        api_client.user_agent = user_agent(agent)  # tells the operator's requests apart in audit logs (and in tests)
        return cls(api_client, agent)

    def connection_info(self) -> Any:
        """The same credentials for kopf's own HTTP stack (its watches) as for this client."""
        import kopf  # only the shell needs this; keeps kopf out of the module's import-time dependencies

        config = self.api_client.configuration
        authorization = (config.api_key or {}).get("authorization") or (config.api_key or {}).get("BearerToken") or ""
        return kopf.ConnectionInfo(
            server=config.host,
            ca_path=config.ssl_ca_cert or None,
            insecure=not config.verify_ssl,
            certificate_path=config.cert_file or None,
            private_key_path=config.key_file or None,
            token=authorization.removeprefix("Bearer ").strip() or None,
            username=config.username or None,
            password=config.password or None,
        )

    async def check_ready(self) -> None:
        """Fail with one clear line when the API server is unreachable or does not serve Workloads."""
        host = self.api_client.configuration.host
        try:
            response = _load(await self.custom.get_api_resources(GROUP, VERSION, timeout=10))
        except ApiException as exc:
            if exc.status == 404:
                raise NotReady(f"the Workload CRD is not installed at {host}: "
                               "run `workload-operator crd | kubectl apply -f -`") from None
            raise NotReady(f"the Kubernetes API at {host} answered {exc.status} {exc.reason}") from None
        except Exception as exc:  # connection refused, no such host, TLS, timed out
            raise NotReady(f"cannot reach the Kubernetes API at {host}: {exc or type(exc).__name__}") from None
        finally:
            await self.http.close()  # its own loop, as `workload-operator run` checks before kopf starts
        if not any(r.get("name") == PLURAL for r in response.get("resources", [])):
            raise NotReady(f"the Workload CRD is not installed at {host}: "
                           "run `workload-operator crd | kubectl apply -f -`")

    # --- Workloads -------------------------------------------------------------------------------

    async def get_workload(self, view: WorkloadView) -> dict[str, Any] | None:
        """Read this incarnation of the Workload again: None when it is gone, or replaced by a new one of its name."""
        body = await _read(self.custom.get_namespaced_custom_object, GROUP, VERSION, view.namespace, PLURAL, view.name)
        return body if body is not None and (body.get("metadata") or {}).get("uid") == view.uid else None

    async def write_status(self, view: WorkloadView, new: WorkloadStatus) -> dict[str, Any]:
        """One JSON-patch write of the whole status, applied only if the state we decided from is still there.

        The ``test`` ops make the API server refuse (422) a write decided from a stale
        view; the first write, before any state exists, is tested on the resourceVersion.
        """
        old = view.status
        if old.state is None:
            ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion", "value": view.resource_version}]
        else:
            ops = [{"op": "test", "path": "/status/state", "value": str(old.state)},
                   {"op": "test", "path": "/status/attempts", "value": old.attempts}]
        ops.append({"op": "add", "path": "/status", "value": new.model_dump(mode="json", by_alias=True, exclude_none=True)})
        return await self._patch_workload(view, ops, subresource=True)

    async def add_finalizer(self, view: WorkloadView) -> dict[str, Any]:
        ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": view.resource_version},
               {"op": "add", "path": "/metadata/finalizers", "value": [*view.finalizers, FINALIZER]}]
        return await self._patch_workload(view, ops)

    async def remove_finalizer(self, view: WorkloadView) -> dict[str, Any]:
        index = view.finalizers.index(FINALIZER)
        ops = [{"op": "test", "path": f"/metadata/finalizers/{index}", "value": FINALIZER},
               {"op": "remove", "path": f"/metadata/finalizers/{index}"}]
        return await self._patch_workload(view, ops)

    async def _patch_workload(self, view: WorkloadView, ops: list[dict[str, Any]], subresource: bool = False) -> dict[str, Any]:
        call = self.custom.patch_namespaced_custom_object_status if subresource else self.custom.patch_namespaced_custom_object
        # Bound to the incarnation it was decided for: a Workload deleted and re-created under the same name is
        # another object, which this write must not touch (a failed test is a 422 Conflict, then a re-read).
        ops = [{"op": "test", "path": "/metadata/uid", "value": view.uid}, *ops]
        try:
            return _load(await _call(call, GROUP, VERSION, view.namespace, PLURAL, view.name, ops, _content_type=JSON_PATCH))
        except ApiException as exc:
            if exc.status == 422 and _field_causes(exc):  # a schema or CEL refusal names fields; a failed test op does not
                raise Refused(f"the API server refused the write to {view.namespace}/{view.name}: {exc.body}") from None
            if exc.status in (409, 422):
                raise Conflict(f"{view.namespace}/{view.name} changed since it was read ({exc.status})") from None
            if exc.status == 404:
                raise Gone(f"{view.namespace}/{view.name} no longer exists") from None
            raise Refused(f"the API server refused the write to {view.namespace}/{view.name} "
                          f"({exc.status}): {_message(exc)}") from None  # any other 4xx (5xx are Transient)

    # --- Pods -------------------------------------------------------------------------------------

    async def create_pod(self, manifest: dict[str, Any], owner_uid: str) -> dict[str, Any]:
        """Create the pod, or find the workload's own pod of that name."""
        return await _create(self.core.create_namespaced_pod, self.core.read_namespaced_pod, manifest, owner_uid)

    async def delete_pod(self, namespace: str, name: str, uid: str, *, force: bool = False) -> None:
        """Delete the pod of this uid, and no other: gracefully (its own grace period), or with grace 0 when
        ``force`` (the API server then removes it without waiting for its kubelet)."""
        grace = {"gracePeriodSeconds": 0} if force else {}
        await _delete(self.core.delete_namespaced_pod, name, namespace, uid=uid, **grace)

    async def retire_pod(self, namespace: str, name: str, uid: str) -> bool:
        """Label the pod of this uid retired: the operator's watch (``WATCHED_PODS``) no longer shows it, and the
        API server tells that watch it is gone. False when that pod is gone; Conflict when the write was refused
        as stale (409), or the pod of that name is not of this uid (422: decide again from what the watch shows)."""
        if not uid:  # the test below would never pass: it would be taken for a conflict, again and again
            raise ValueError(f"retiring a pod needs its uid: {namespace}/{name}")
        ops = [{"op": "test", "path": "/metadata/uid", "value": uid},
               {"op": "add", "path": f"/metadata/labels/{RETIRED_LABEL.replace('/', '~1')}", "value": "true"}]
        try:
            await _call(self.core.patch_namespaced_pod, name, namespace, ops, _content_type=JSON_PATCH)
        except ApiException as exc:
            if exc.status == 404:
                return False
            if exc.status in (409, 422):
                raise Conflict(f"pod {namespace}/{name} not retired ({exc.status})") from None
            raise
        return True

    async def delete_retired_pods(self, namespace: str, names: tuple[str, ...], owner_uid: str) -> None:
        """Delete the pods of these names that the Workload controls, which no watch of the operator shows (it
        retired them): each read by name first (not listed by label: a list of a namespace's pods costs the API
        server a pass over all of them), then deleted by its uid."""
        for name in names:
            await _delete_own(self.core.read_namespaced_pod, self.core.delete_namespaced_pod, name, namespace, owner_uid)

    async def create_service(self, manifest: dict[str, Any], owner_uid: str) -> None:
        """Create the Service, or find the workload's own Service of that name."""
        await _create(self.core.create_namespaced_service, self.core.read_namespaced_service, manifest, owner_uid)

    async def delete_service(self, namespace: str, name: str, owner_uid: str) -> None:
        """Delete the Service of that name if it is the workload's own (someone else's: a NameConflict kept us from
        ever using it)."""
        await _delete_own(self.core.read_namespaced_service, self.core.delete_namespaced_service, name, namespace,
                          owner_uid)

    async def delete_workload(self, view: WorkloadView) -> dict[str, Any] | None:
        """Delete this incarnation of the Workload (ttlSecondsAfterFinished); held by the finalizer, the object
        comes back marked. None when it is gone, or when its name belongs to a new Workload now."""
        return await _delete(self.custom.delete_namespaced_custom_object, GROUP, VERSION, view.namespace, PLURAL,
                             view.name, uid=view.uid)

    # --- Events -----------------------------------------------------------------------------------

    async def post_event(self, view: WorkloadView, *, reason: str, message: str, warning: bool, now: datetime.datetime) -> None:
        """A Kubernetes Event on the Workload (shown by `kubectl describe`), stamped ``now``: queued and posted in the
        background, in order for each workload, so that it never delays the next step; ``flush`` waits for it. A
        failure to post is logged, not raised."""
        stamp = now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"generateName": f"{view.name}.", "namespace": view.namespace},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": view.name,
                               "namespace": view.namespace, "uid": view.uid},
            "reason": reason, "message": message[:1024], "type": "Warning" if warning else "Normal",
            "source": {"component": "workload-operator"}, "reportingComponent": "workload-operator",
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        }
        if not self._senders:
            self._events = [asyncio.Queue() for _ in range(EVENT_SENDERS)]
            self._senders = [asyncio.create_task(self._send(queue)) for queue in self._events]
        self._events[hash(view.uid) % EVENT_SENDERS].put_nowait(body)

    async def _send(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            body = await queue.get()
            involved = body["involvedObject"]
            try:
                await _call(self.core.create_namespaced_event, involved["namespace"], body)
            except Exception as exc:
                logger.warning("could not post the event %s on %s/%s: %s", body["reason"], involved["namespace"],
                               involved["name"], exc)
            finally:
                queue.task_done()

    async def flush(self, timeout: float = 10) -> None:
        """Wait until the Events queued so far are posted (or could not be), ``timeout`` seconds at most."""
        try:
            await asyncio.wait_for(asyncio.gather(*(queue.join() for queue in self._events)), timeout)
        except TimeoutError:
            left = sum(queue.qsize() for queue in self._events)
            logger.warning("%d events not posted within %ss of stopping: dropped", left, timeout)


# --- Watching (the dashboard; the operator's watches are kopf's) -----------------------------------


class Expired(Exception):
    """The resourceVersion a watch resumed from is too old (410 Gone): list again."""


async def list_and_watch(http: _Http, path: str, **selectors: str | None) -> AsyncIterator[tuple[str, Any]]:
    """Keep up with a collection for ever, as client-go's reflector does: a LIST (in pages), then a WATCH from its
    resourceVersion, resumed from the last version seen (bookmarks keep it current) when the server closes it or
    the connection breaks, and a new LIST only when that version has expired. Yields ``("LISTED", items)`` after
    each list, then ``(type, object)`` for ADDED, MODIFIED and DELETED. Connection trouble waits and retries
    (doubling up to 30 s); a refusal (403, 404) is raised."""
    version, pause = None, 1.0
    while True:
        try:
            if version is None:
                items, version = await _list(http, path, **selectors)
                yield "LISTED", items
            async for line in http.lines(path, watch="true", resource_version=version, allow_watch_bookmarks="true",
                                         timeout_seconds=WATCH_SECONDS, **selectors):
                event = orjson.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Expired(obj.get("message", ""))
                    raise ApiException(status=obj.get("code", 500), reason=obj.get("reason"), body=json.dumps(obj))
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if kind != "BOOKMARK":
                    yield kind, obj
            pause = 1.0
        except Expired:
            version = None
        except ApiException as exc:
            if exc.status == 410:
                version = None
            elif exc.status not in (429, 500, 502, 503, 504, 401):
                raise
            else:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            logger.info("watch of %s broke (%s); resuming", path, exc or type(exc).__name__)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)


async def _list(http: _Http, path: str, **selectors: str | None) -> tuple[list[dict[str, Any]], str]:
    """Every object of a collection, in pages, and the resourceVersion of the list (to watch from)."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = _load(await http.request("GET", path, limit=LIST_PAGE, continue_=token, **selectors))
        items += page.get("items") or []
        meta = page.get("metadata") or {}
        token = meta.get("continue") or None
        if token is None:
            return items, str(meta.get("resourceVersion", ""))
