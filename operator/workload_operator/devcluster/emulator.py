"""An in-memory kube-apiserver for integration tests, built on kmock's KubernetesEmulator.

kmock parses the requests, logs them (``list(api)``) and routes each one through its DSL
first, so reactions that tests add win; only the requests no reaction takes reach this
server's own logic, which follows the real kube-apiserver where an operator can notice:
resourceVersions, generations, the status subresource, patch content types, optimistic
concurrency, finalizers, selectors, resumable watches and ``Status`` errors.

    async with KubeAPIServer() as api, kmock.Server(api):   # the `kube_api` fixture
        api.register_crd(yaml.safe_load(crd_text))
        ...                                                 # str(api.url) for the clients
        await api.close_watches()                           # open streams would hold the shutdown

Counting what the operator sent: ``api.writes('workloads', subresource='status')``.
Injecting errors: ``api.inject_error(409, method='PATCH', resource='workloads',
subresource='status')`` answers the next matching request with a Status error, and nothing
changes. It is kmock's DSL, ``api[criteria][n:n+1] << 409 << {...}``, which tests can use
directly too; but kmock's slices count matching requests from the start of the log, so
"the next one" needs ``n = len(api[criteria])`` taken at that moment.

Random faults for the operator's requests, without kmock reactions (the fast path stays fast):
``api.faults = Faults(seed=7)`` answers some writes with 409/422/500/503, delays some answers and
ends some watch streams early; ``api.faults.injected`` records each one; ``api.faults = None`` stops.

Write objects through the API; ``api.objects`` (kmock's store, with history) is for assertions.
"""
from __future__ import annotations

import asyncio
import bisect
import copy
import dataclasses
import datetime
import json
import random
import re
import uuid
from collections.abc import Callable, Collection, Mapping
from types import EllipsisType
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock

from workload_operator.devcluster import podsecurity
from workload_operator.devcluster.tables import (DEFAULT_COLUMNS, EVENT_COLUMNS, POD_COLUMNS, Column, NotAcceptable,
                                                 TableRequest, printer_columns)

JsonDict = dict[str, Any]
ObjectKey = tuple[kmock.resource, str | None, str]  # (storage resource, namespace, name)
Matcher = Callable[[JsonDict], bool]
Response = aiohttp.web.StreamResponse

JSON_PATCH = 'application/json-patch+json'
MERGE_PATCH = 'application/merge-patch+json'
STRATEGIC_PATCH = 'application/strategic-merge-patch+json'
APPLY_PATCH = 'application/apply-patch+yaml'
_VERBS = ('create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch')
_BY_NAME = frozenset({'metadata.name', 'metadata.namespace'})
_REASONS = {400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound',
            405: 'MethodNotAllowed', 406: 'NotAcceptable', 409: 'Conflict', 410: 'Expired',
            415: 'UnsupportedMediaType', 422: 'Invalid', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable'}


OPERATOR_AGENTS = ('workload-operator/', 'kopf/')  # User-Agents of the operator's client and of kopf's watches
_WRITES = frozenset({'POST', 'PATCH', 'PUT', 'DELETE'})
# Which writes a real server can refuse with each code although the client did nothing wrong:
# 409/422 only an update (stale resourceVersion; a failed JSON-patch `test`), where a re-read and a
# new decision is the cure; a 409 to a create would claim the object exists, a lie no client can handle.
_FAULT_METHODS: dict[int, frozenset[str]] = {409: frozenset({'PATCH', 'PUT'}), 422: frozenset({'PATCH', 'PUT'})}


@dataclasses.dataclass(frozen=True)
class Injected:
    """One fault the plan injected."""
    kind: str  # '409', '422', '500', '503' (an error answered instead), 'slow' (a delayed answer), 'drop' (a watch ended)
    method: str
    path: str


@dataclasses.dataclass
class Faults:
    """A seeded plan of faults for the operator's requests, decided per request (cheap: a few random draws).

    - with probability `rate`, a write (POST/PATCH/PUT/DELETE) is answered with one of `codes` as a real
      `Status`, and nothing changes (409 and 422 only for updates, see _FAULT_METHODS); the codes take
      turns, so that a few errors show each of them;
    - with probability `rate`, any request is answered after a delay drawn from `slow` (seconds);
    - after each event it sends, a watch stream ends early with probability `drop_watch` (the client
      resumes it from the last resourceVersion it saw).

    Only requests from the operator (User-Agent `workload-operator/…` or `kopf/…`) are touched, never the
    test's own client; `only`, when given, narrows that further. Requests arrive concurrently, so a seed
    fixes the draws, not which request gets which.
    """
    seed: int
    rate: float = 0.2
    codes: tuple[int, ...] = (409, 422, 500, 503)
    slow: tuple[float, float] = (0.0, 0.3)
    drop_watch: float = 0.05
    only: Callable[[kmock.Request], bool] | None = None
    injected: list[Injected] = dataclasses.field(default_factory=list, init=False)
    _random: random.Random = dataclasses.field(init=False, repr=False)
    _turns: dict[tuple[int, ...], int] = dataclasses.field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def applies(self, request: kmock.Request) -> bool:
        agent = request.headers.get('User-Agent', '')
        return agent.startswith(OPERATOR_AGENTS) and (self.only is None or self.only(request))

    def count(self, kind: str) -> int:
        return sum(1 for fault in self.injected if fault.kind == kind)

    def delay(self, request: kmock.Request) -> float:
        """Seconds to wait before answering (0: none)."""
        if self._random.random() >= self.rate:
            return 0.0
        self._record('slow', request)
        return self._random.uniform(*self.slow)

    def error(self, request: kmock.Request, route: Route) -> ApiError | None:
        """The error to answer instead of serving the request, if any."""
        method = request.method.upper()
        codes = tuple(code for code in self.codes if method in _FAULT_METHODS.get(code, _WRITES))
        if not codes or self._random.random() >= self.rate:
            return None
        turn = self._turns[codes] = self._turns.get(codes, -1) + 1
        code = codes[turn % len(codes)]
        self._record(str(code), request)
        if code == 409 and route.spec is not None:
            return _conflict(route.spec, route.name or '', 'the object has been modified; please apply your '
                                                           'changes to the latest version and try again')
        if code == 422:
            return _patch_failed('testing value failed (injected fault)')
        if code == 500:
            return ApiError(500, 'Internal error occurred: injected fault')
        if code == 503:
            return ApiError(503, 'the server is currently unable to handle the request (injected fault)')
        return ApiError(code, f'injected fault {code}')  # any other code, with its usual reason

    def drop(self, request: kmock.Request) -> bool:
        """Whether to end a watch stream after the event just sent."""
        if self._random.random() >= self.drop_watch:
            return False
        self._record('drop', request)
        return True

    def _record(self, kind: str, request: kmock.Request) -> None:
        self.injected.append(Injected(kind, request.method.upper(), request.url.path))


@dataclasses.dataclass
class Hold:
    """Holds the next ``count`` matching requests at the door until released, then serves them as usual:
    a test stops the operator at a chosen moment (a write in flight) and changes the world meanwhile."""
    matches: Callable[[kmock.Request], bool]
    count: int = 1
    held: list[kmock.Request] = dataclasses.field(default_factory=list)
    answered: int = 0  # held requests served since the release
    _open: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def takes(self, request: kmock.Request) -> bool:
        return len(self.held) < self.count and self.matches(request)

    def release(self) -> None:
        self._open.set()


@dataclasses.dataclass(frozen=True)
class ResourceSpec:
    """One served group/version/plural: its discovery entry and how the server treats it."""
    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool = True
    subresources: frozenset[str] = frozenset()
    shortnames: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    custom: bool = False  # from a CRD: no strategic merge, PUT needs a resourceVersion
    storage_version: str = ''  # a CRD stores all its versions once, at the storage version
    field_labels: frozenset[str] = _BY_NAME  # what ?fieldSelector= accepts
    columns: tuple[Column, ...] = DEFAULT_COLUMNS  # of the Tables `kubectl get` asks for (tables.py)

    @property
    def api_version(self) -> str:
        return f'{self.group}/{self.version}' if self.group else self.version

    @property
    def storage(self) -> kmock.resource:
        return kmock.resource(self.group, self.storage_version or self.version, self.plural)

    def qualified(self, name: str) -> str:  # 'workloads.ml.lifecycle.dev', 'Workload.ml.lifecycle.dev'
        return f'{name}.{self.group}' if self.group else name


BUILTIN_RESOURCES: tuple[ResourceSpec, ...] = (
    ResourceSpec('', 'v1', 'pods', 'Pod', 'pod', subresources=frozenset({'status', 'binding'}), shortnames=('po',),
                 categories=('all',), field_labels=_BY_NAME | {'spec.nodeName', 'status.phase'}, columns=POD_COLUMNS),
    ResourceSpec('', 'v1', 'services', 'Service', 'service', subresources=frozenset({'status'}),
                 shortnames=('svc',), categories=('all',)),
    # The field labels of core events (`kubectl describe` lists a thing's Events by involvedObject.*, uid too).
    ResourceSpec('', 'v1', 'events', 'Event', 'event', shortnames=('ev',), columns=EVENT_COLUMNS, field_labels=_BY_NAME | {
        'involvedObject.kind', 'involvedObject.name', 'involvedObject.namespace', 'involvedObject.uid',
        'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath',
        'reason', 'reportingComponent', 'type'}),
    ResourceSpec('', 'v1', 'namespaces', 'Namespace', 'namespace', namespaced=False, shortnames=('ns',),
                 subresources=frozenset({'status'}), field_labels=frozenset({'metadata.name', 'status.phase'})),
    ResourceSpec('', 'v1', 'serviceaccounts', 'ServiceAccount', 'serviceaccount', shortnames=('sa',)),
    ResourceSpec('events.k8s.io', 'v1', 'events', 'Event', 'event', shortnames=('ev',)),
    ResourceSpec('coordination.k8s.io', 'v1', 'leases', 'Lease', 'lease'),
)


def status_body(code: int, message: str, reason: str | None = None, details: JsonDict | None = None) -> JsonDict:
    """A `Status` object as the real server sends for failures."""
    body: JsonDict = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
                      'message': message, 'reason': reason or _REASONS.get(code, 'Unknown'), 'code': code}
    return {**body, 'details': details} if details else body


class ApiError(Exception):
    """A refused request: answered with its Status, never logged as an emulator failure."""

    def __init__(self, code: int, message: str, reason: str | None = None, details: JsonDict | None = None) -> None:
        super().__init__(message)
        self.code, self.body = code, status_body(code, message, reason, details)


def _details(spec: ResourceSpec, name: str, kind: str) -> JsonDict:
    return {key: val for key, val in {'name': name, 'group': spec.group, 'kind': kind}.items() if val}


def _not_found(spec: ResourceSpec, name: str) -> ApiError:
    return ApiError(404, f'{spec.qualified(spec.plural)} "{name}" not found', 'NotFound',
                    _details(spec, name, spec.plural))


def _conflict(spec: ResourceSpec, name: str, why: str, kind: str | None = None) -> ApiError:
    # apierrors.NewConflict(GroupResource, ...); rest.BeforeDelete passes the Kind as the resource.
    return ApiError(409, f'Operation cannot be fulfilled on {spec.qualified(kind or spec.plural)} "{name}": {why}',
                    'Conflict', _details(spec, name, kind or spec.plural))


def _invalid(spec: ResourceSpec, name: str, field: str, cause: str, error: str, kind: str | None = None) -> ApiError:
    # apierrors.NewInvalid(GroupKind, name, field.ErrorList).
    details = {**_details(spec, name, kind or spec.kind), 'causes': [{'reason': cause, 'message': error, 'field': field}]}
    return ApiError(422, f'{spec.qualified(kind or spec.kind)} "{name}" is invalid: {field}: {error}', 'Invalid', details)


def _no_resource() -> ApiError:
    return ApiError(404, 'the server could not find the requested resource', 'NotFound')


def _now(later: float = 0) -> str:
    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=later)).strftime('%Y-%m-%dT%H:%M:%SZ')


def _carry(key: str, source: JsonDict, target: JsonDict) -> None:
    """Make target[key] what source[key] is, absence included."""
    if key in source:
        target[key] = copy.deepcopy(source[key])
    else:
        target.pop(key, None)


@dataclasses.dataclass(frozen=True)
class ResourcePath:
    """What a resource URL of any Kubernetes API server addresses."""
    group: str  # '' for the core API
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_resource_path(path: str) -> ResourcePath | None:
    """Parse /api/v1/... and /apis/{group}/{version}/...; None for other URLs (discovery, /version)."""
    parts = [part for part in path.split('/') if part]
    if len(parts) >= 3 and parts[0] == 'api':
        group, version, rest = '', parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == 'apis':
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace: str | None = None
    # /namespaces/{ns}/{plural}/..., but /api/v1/namespaces/{ns}/status is the namespace's own.
    if rest[0] == 'namespaces' and len(rest) >= 3 and not (group == '' and rest[2:] == ['status']):
        namespace, rest = rest[1], rest[2:]
    name, subresource = (rest[1:2] or [None])[0], '/'.join(rest[2:]) or None
    return ResourcePath(group, version, rest[0], namespace, name, subresource)


@dataclasses.dataclass(frozen=True)
class Route:
    """What a resource URL addresses; `spec` is None for resources not registered."""
    spec: ResourceSpec | None
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    """One effective write, as etcd's watch reports it: the revision, the new and the old state."""
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: ObjectKey
    obj: JsonDict | None  # None when DELETED
    old: JsonDict | None  # None when ADDED


class _ServeNatively(Exception):
    """Raised by the lowest fallback reaction: no test reaction took the request."""


@attrs.define(kw_only=True)
class KubeAPIServer(kmock.KubernetesEmulator):
    """kmock's emulator with a kube-apiserver's semantics; run it with ``kmock.Server(api)``."""

    bookmark_interval: float | None = None  # how often idle watches that allow them get a BOOKMARK
    faults: Faults | None = None  # random faults for the operator's requests; None: none

    _specs: dict[tuple[str, str, str], ResourceSpec] = attrs.field(factory=dict, init=False)
    _rv: int = attrs.field(default=0, init=False)  # the one global revision, like etcd's
    _log: list[WatchEvent] = attrs.field(factory=list, init=False)
    _compacted_rv: int = attrs.field(default=0, init=False)  # watches from before it get 410
    _closing: bool = attrs.field(default=False, init=False)
    _builtin_reactions: int = attrs.field(default=0, init=False)
    _changed: asyncio.Condition = attrs.field(init=False)
    _holds: list[Hold] = attrs.field(factory=list, init=False)
    _peers: dict[int, Any] = attrs.field(factory=dict, init=False)  # request id -> the client's (host, port)
    # A paged LIST's rest, by its continue token: the later pages come from the first page's snapshot, as etcd's
    # reads at the list's revision do.
    _pages: dict[str, tuple[list[JsonDict], int]] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        # The scaffold's discovery endpoints & catch-all 404, but NOT KubernetesEmulator's own
        # fallbacks and _handle(), which store writes even when a test reaction answered instead.
        kmock.KubernetesScaffold.__attrs_post_init__(self)
        self.fallback[self._is_resource_request] << _ServeNatively
        self._changed = asyncio.Condition(self._lock)  # all mutations & the event log: one lock
        for spec in BUILTIN_RESOURCES:
            self.register(spec)
        self._builtin_reactions = len(self._payloads)

    # ------------------------------------------------------------------ the API for tests

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion: the revision of the last write."""
        return self._rv

    def register(self, spec: ResourceSpec) -> None:
        self._specs[spec.group, spec.version, spec.plural] = spec
        self.resources[kmock.resource(spec.group, spec.version, spec.plural)] = kmock.ResourceInfo(
            namespaced=spec.namespaced, kind=spec.kind, singular=spec.singular, verbs=_VERBS,
            shortnames=spec.shortnames, categories=spec.categories, subresources=spec.subresources)

    def register_crd(self, manifest: Mapping[str, Any]) -> list[ResourceSpec]:
        """Serve the resource of an apiextensions.k8s.io/v1 CustomResourceDefinition (a dict)."""
        if manifest.get('kind') != 'CustomResourceDefinition':
            raise ValueError(f"not a CustomResourceDefinition: {manifest.get('kind')!r}")
        crd, names = manifest['spec'], manifest['spec']['names']
        storage = next((v['name'] for v in crd['versions'] if v.get('storage')), crd['versions'][0]['name'])
        specs = [ResourceSpec(
            crd['group'], version['name'], names['plural'], names['kind'],
            names.get('singular') or names['kind'].lower(),
            namespaced=crd.get('scope', 'Namespaced') == 'Namespaced',
            subresources=frozenset(version.get('subresources') or {}),
            shortnames=tuple(names.get('shortNames') or ()), categories=tuple(names.get('categories') or ()),
            custom=True, storage_version=storage, columns=printer_columns(version.get('additionalPrinterColumns') or []),
        ) for version in crd['versions'] if version.get('served', True)]
        for spec in specs:
            self.register(spec)
        return specs

    async def compact(self, upto_rv: int | None = None) -> None:
        """Forget the watch history up to a revision (default: all), as etcd compaction does:
        a watch from an older resourceVersion gets a 410 Expired ERROR event and ends."""
        async with self._lock:
            upto = self._rv if upto_rv is None else min(upto_rv, self._rv)
            self._log = [event for event in self._log if event.rv > upto]
            self._compacted_rv = max(self._compacted_rv, upto)
            self._changed.notify_all()

    async def close_watches(self) -> None:
        """End all watch-streams and refuse new ones, as an apiserver shutting down does."""
        async with self._lock:
            self._closing = True
            self._changed.notify_all()

    def writes(self, resource: str | None = None, subresource: str | None | EllipsisType = ...,
               namespace: str | None = None, name: str | None = None,
               methods: Collection[str] = ('PATCH', 'PUT', 'POST', 'DELETE')) -> list[kmock.Request]:
        """The logged requests that match, oldest first, whatever their responses were.

        `resource` is a plural; `subresource=None` is the main resource only, `...` any;
        None for resource/namespace/name means any (POSTs go to the collection: no name).
        """
        wanted = {method.upper() for method in methods}
        return [request for request in self if request.method.upper() in wanted
                and self._request_matches(request, resource, subresource, namespace, name)]

    def requests_since(self, index: int) -> list[kmock.Request]:
        """The requests logged from ``index`` on, oldest first: cheap, unlike filtering kmock's whole log."""
        return self._requests[index:]

    def inject_error(self, code: int, message: str | None = None, reason: str | None = None, *,
                     method: str = 'PATCH', resource: str | None = None,
                     subresource: str | None | EllipsisType = ..., namespace: str | None = None,
                     name: str | None = None, count: int = 1) -> kmock.Reaction:
        """Answer the next `count` matching requests with a Status error; nothing changes.

        Returns kmock's reaction: iterating it gives the requests it answered."""
        def matches(request: kmock.Request) -> bool:
            return (request.method.upper() == method.upper()
                    and self._request_matches(request, resource, subresource, namespace, name))
        view = self[matches]
        seen = len(view)  # kmock's slices count from the first matching request ever logged
        return view[seen:seen + count] << code << status_body(code, message or f'injected error {code}', reason)

    def hold(self, *, method: str, resource: str | None = None, subresource: str | None | EllipsisType = ...,
             name: str | None = None, count: int = 1) -> Hold:
        """Hold the next ``count`` matching requests of the operator until ``release()``."""
        def matches(request: kmock.Request) -> bool:
            return (request.method.upper() == method.upper()
                    and request.headers.get('User-Agent', '').startswith(OPERATOR_AGENTS)
                    and self._request_matches(request, resource, subresource, None, name))
        self._holds.append(hold := Hold(matches, count))
        return hold

    def route(self, path: str) -> Route | None:
        """Parse a resource URL (/api/v1/..., /apis/group/version/...); None for other URLs."""
        if (parsed := parse_resource_path(path)) is None:
            return None
        spec = self._specs.get((parsed.group, parsed.version, parsed.plural))
        return Route(spec, parsed.plural, parsed.namespace, parsed.name, parsed.subresource)

    # ------------------------------------------------------------------ discovery

    # kmock's scaffold routes /apis, /apis/{group} and /api/v1, /apis/{group}/{version} here; these answer
    # from the registered specs, shaped as a real server's legacy discovery. The aggregated discovery that
    # kubectl asks for first (Accept: ...;as=APIGroupDiscoveryList) is not served: like a server without
    # it, the answer is plain JSON, and clients fall back to these (they look at the Content-Type).

    def _group_versions(self) -> dict[str, list[str]]:
        """Each named group's served versions, the preferred one first."""
        groups: dict[str, set[str]] = {}
        for group, version, _ in self._specs:
            if group:
                groups.setdefault(group, set()).add(version)
        return {group: sorted(versions, key=_version_priority) for group, versions in sorted(groups.items())}

    @staticmethod
    def _api_group(group: str, versions: list[str]) -> JsonDict:
        entries = [{'groupVersion': f'{group}/{version}', 'version': version} for version in versions]
        return {'name': group, 'versions': entries, 'preferredVersion': entries[0]}

    async def _serve_apis(self, request: kmock.Request) -> JsonDict:
        groups = [self._api_group(group, versions) for group, versions in self._group_versions().items()]
        return {'kind': 'APIGroupList', 'apiVersion': 'v1', 'groups': groups}

    async def _serve_group(self, request: kmock.Request) -> JsonDict:
        assert request.resource is not None
        if (versions := self._group_versions().get(request.resource.group or '')) is None:
            raise kmock.KubernetesResourceNotFoundError()
        return {'kind': 'APIGroup', 'apiVersion': 'v1', **self._api_group(request.resource.group or '', versions)}

    async def _serve_version(self, request: kmock.Request) -> JsonDict:
        assert request.resource is not None
        group, version = request.resource.group or '', request.resource.version
        specs = [spec for spec in self._specs.values() if (spec.group, spec.version) == (group, version)]
        if not specs:
            raise kmock.KubernetesResourceNotFoundError()
        resources = [_discovered(spec, sub) for spec in specs for sub in (None, *sorted(spec.subresources))]
        return {'kind': 'APIResourceList', 'apiVersion': 'v1', 'groupVersion': specs[0].api_version,
                'resources': resources}

    # ------------------------------------------------------------------ kmock plumbing

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> Response:
        if raw_request.path.rstrip('/') != '/api/v1/namespaces':
            return await super().__call__(raw_request)
        # kmock's URL parser fails on this one URL (it takes "namespaces" for the start of
        # /namespaces/{ns}/...), so log and route it here as kmock's __call__ does the others.
        body = await raw_request.read()
        action = (kmock.action.CREATE if raw_request.method == 'POST' else kmock.action.WATCH
                  if raw_request.query.get('watch') in ('true', '1') else kmock.action.LIST)
        request = kmock.Request(
            id=len(self._requests), raw_request=raw_request, url=raw_request.url, method=raw_request.method,
            params=dict(raw_request.query), headers=dict(raw_request.headers), cookies=dict(raw_request.cookies),
            body=body, text=body.decode('utf-8', 'replace'), action=action,
            resource=kmock.resource('', 'v1', 'namespaces'))
        self._requests.append(request)
        try:
            return await self._handle(request)
        except Exception as e:
            if self._errors:
                self._errors[-1].append(e)
            return await self._render_error(e)

    def peer(self, request: kmock.Request) -> Any:
        """The client's (host, port) of a logged request: which connection, hence which process, sent it."""
        return self._peers.get(request.id)

    async def _handle(self, request: kmock.Request) -> Response:
        if (transport := request._raw_request.transport) is not None:  # noqa: SLF001 (kmock keeps it private)
            self._peers[request.id] = transport.get_extra_info('peername')
        hold = next((h for h in self._holds if h.takes(request)), None)
        if hold is None:
            return await self._handle_now(request)
        hold.held.append(request)
        await hold._open.wait()
        try:
            return await self._handle_now(request)
        finally:
            hold.answered += 1

    async def _handle_now(self, request: kmock.Request) -> Response:
        # kmock decides whether a reaction sees a request by filtering its whole request log again,
        # which makes a long run quadratic; with no reaction added by a test, serve resources directly.
        route = self.route(request.url.path)
        if (faults := self.faults) is not None and route is not None and faults.applies(request):
            if pause := faults.delay(request):
                await asyncio.sleep(pause)
            if request.method.upper() in _WRITES and (error := faults.error(request, route)) is not None:
                return aiohttp.web.json_response(error.body, status=error.code)  # nothing changed
        if len(self._payloads) == self._builtin_reactions and route is not None:
            return await self._answer(request, route)
        try:
            return await kmock.RawHandler._handle(self, request)  # test reactions, then fallbacks
        except _ServeNatively:
            assert route is not None  # guaranteed by the fallback's criterion
            return await self._answer(request, route)

    async def _answer(self, request: kmock.Request, route: Route) -> Response:
        try:
            return await self._serve(request, route)
        except ApiError as e:  # a normal API answer, not a failure of the emulator
            return aiohttp.web.json_response(e.body, status=e.code)

    async def _render_error(self, exc: Exception) -> Response:  # kmock's own errors, sans traceback
        code = exc.status if isinstance(exc, kmock.KubernetesError) else 500
        message = (exc.message if isinstance(exc, kmock.KubernetesError) else None) or repr(exc)
        return aiohttp.web.json_response(status_body(code, message), status=code)

    async def _stream_error(self, exc: Exception, raw_response: Response) -> None:
        await raw_response.write(json.dumps({'type': 'ERROR', 'object': status_body(500, repr(exc))}).encode() + b'\n')

    def _is_resource_request(self, request: kmock.Request) -> bool:
        return self.route(request.url.path) is not None

    def _request_matches(self, request: kmock.Request, resource: str | None, subresource: str | None | EllipsisType,
                         namespace: str | None, name: str | None) -> bool:
        route = self.route(request.url.path)
        return (route is not None and (resource is None or route.plural == resource)
                and (subresource is ... or route.subresource == subresource)
                and (namespace is None or route.namespace == namespace) and (name is None or route.name == name))

    # ------------------------------------------------------------------ dispatching & storage

    async def _serve(self, request: kmock.Request, route: Route) -> Response:
        spec, method, name = route.spec, request.method.upper(), route.name
        if spec is None or (route.namespace is not None and not spec.namespaced):
            raise _no_resource()
        if spec.namespaced and route.namespace is None and not (name is None and method == 'GET'):
            raise _no_resource()  # only list & watch span all namespaces
        if route.subresource is not None and route.subresource not in spec.subresources:
            raise _no_resource()
        watching = request.params.get('watch') in ('true', '1')
        if method == 'GET':
            return await (self._watch if watching else self._list if name is None else self._get)(request, route, spec)
        if method == 'POST' and name is None:
            return await self._create(request, route, spec)
        if method == 'POST' and name is not None and route.subresource == 'binding':
            return await self._bind(request, route, spec)
        if method in ('PUT', 'PATCH') and name is not None and route.subresource in (None, 'status'):
            return await self._update(request, route, spec)
        if method == 'DELETE' and name is not None and route.subresource is None:
            return await self._delete(request, route, spec)
        raise ApiError(405, 'the server does not allow this method on the requested resource')

    def _key(self, spec: ResourceSpec, namespace: str | None, name: str) -> ObjectKey:
        return spec.storage, namespace if spec.namespaced else None, name

    def _current(self, key: ObjectKey) -> JsonDict | None:
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(self._objects[key].raw)

    def _present(self, spec: ResourceSpec, obj: JsonDict) -> JsonDict:
        # CRD versions convert with the "None" strategy: only the apiVersion changes.
        body = {key: val for key, val in copy.deepcopy(obj).items() if key not in ('apiVersion', 'kind')}
        return {'apiVersion': spec.api_version, 'kind': spec.kind, **body}

    def _commit(self, key: ObjectKey, old: JsonDict | None, new: JsonDict | None) -> JsonDict:
        """Store a new state (None: remove it), bump the revision, log the event. Lock held."""
        self._rv += 1
        if new is None:
            assert old is not None
            self._objects[key].delete()
            self._log.append(WatchEvent(self._rv, 'DELETED', key, None, old))
            new = copy.deepcopy(old)  # a deleted object shows the revision of its deletion
            new['metadata']['resourceVersion'] = str(self._rv)
        else:
            new['metadata']['resourceVersion'] = str(self._rv)
            if old is not None:
                self._objects[key].history.append(copy.deepcopy(new))
            elif key in self._objects:  # re-created after a deletion: kmock keeps one history
                self._objects[key].create(copy.deepcopy(new))
            else:
                self._objects[key] = copy.deepcopy(new)
            self._log.append(WatchEvent(self._rv, 'ADDED' if old is None else 'MODIFIED', key, copy.deepcopy(new), old))
        self._changed.notify_all()
        return new

    # ------------------------------------------------------------------ reads

    async def _get(self, request: kmock.Request, route: Route, spec: ResourceSpec) -> Response:
        assert route.name is not None
        table = _negotiate(request)
        async with self._lock:
            obj = self._current(self._key(spec, route.namespace, route.name))
        if obj is None:
            raise _not_found(spec, route.name)
        if table is not None:
            return _table_response(table, _tabulate(table, spec, self._present(spec, obj)))
        return aiohttp.web.json_response(self._present(spec, obj))

    def _items(self, spec: ResourceSpec, match: Matcher) -> list[JsonDict]:
        keys = sorted((key for key, obj in self._objects.items() if key[0] == spec.storage and not obj.deleted),
                      key=lambda key: (key[1] or '', key[2]))  # etcd's key order
        return [self._present(spec, obj) for obj in (self._objects[key].raw for key in keys) if match(obj)]

    async def _list(self, request: kmock.Request, route: Route, spec: ResourceSpec) -> Response:
        table = _negotiate(request)
        match = self._matcher(request, route, spec)
        if token := request.params.get('continue'):
            if token not in self._pages:  # the real server's answer once etcd compacted the list's revision
                raise ApiError(410, 'The provided continue parameter is too old to display a consistent list '
                               'result. You can start a new list without the continue parameter.', 'Expired')
            items, rv = self._pages.pop(token)
        else:
            async with self._lock:
                items, rv = self._items(spec, match), self._rv
        metadata: JsonDict = {'resourceVersion': str(rv)}
        limit = int(request.params.get('limit') or 0)
        if 0 < limit < len(items):  # a page, and a token for the rest (the server's limit/continue)
            items, rest = items[:limit], items[limit:]
            token = uuid.uuid4().hex
            self._pages[token] = rest, rv
            metadata.update({'continue': token, 'remainingItemCount': len(rest)})
        if table is not None:
            return _table_response(table, table.render(spec.columns, items, metadata))
        if not spec.custom:  # lists of built-in (typed) objects omit the items' apiVersion & kind
            items = [{k: v for k, v in item.items() if k not in ('apiVersion', 'kind')} for item in items]
        return aiohttp.web.json_response({'apiVersion': spec.api_version, 'kind': f'{spec.kind}List',
                                          'metadata': metadata, 'items': items})

    def _matcher(self, request: kmock.Request, route: Route, spec: ResourceSpec) -> Matcher:
        labels = [_label_requirement(term) for term in _terms(request.params.get('labelSelector', ''))]
        fields = [_field_requirement(spec, term) for term in _terms(request.params.get('fieldSelector', ''))]

        def match(obj: JsonDict) -> bool:
            meta = obj.get('metadata', {})
            return ((route.namespace is None or meta.get('namespace') == route.namespace)
                    and (route.name is None or meta.get('name') == route.name)
                    and all(check(meta.get('labels') or {}) for check in labels)
                    and all(check(obj) for check in fields))
        return match

    # ------------------------------------------------------------------ watches

    async def _watch(self, request: kmock.Request, route: Route, spec: ResourceSpec) -> Response:
        table = _negotiate(request)
        match = self._matcher(request, route, spec)
        since = _int_param(request, 'resourceVersion')
        timeout = _int_param(request, 'timeoutSeconds') or None  # 0 means the server's default
        bookmarks = request.params.get('allowWatchBookmarks') == 'true'
        send_initial = request.params.get('sendInitialEvents') == 'true'
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        # Without a resourceVersion (or "0"), a watch starts with synthetic ADDED events for the
        # current objects; with one, it replays the history after it (410 if compacted away).
        events: list[JsonDict] = []
        last_rv: int | None = since
        if since is None or since == 0 or send_initial:
            async with self._lock:
                events = [{'type': 'ADDED', 'object': obj} for obj in self._items(spec, match)]
                last_rv = self._rv
            if send_initial and bookmarks:  # WatchList: a bookmark marks the end of the initial events
                events.append(self._bookmark(spec, last_rv, {'k8s.io/initial-events-end': 'true'}))

        content_type = 'application/json' if table is None else table.content_type
        response = aiohttp.web.StreamResponse(headers={'Content-Type': content_type})
        assert request._raw_request is not None
        await response.prepare(request._raw_request)
        try:
            while True:
                for event in events:
                    if table is not None and event['type'] in ('ADDED', 'MODIFIED', 'DELETED'):
                        event = {'type': event['type'], 'object': _tabulate(table, spec, event['object'])}
                        table.headers = False  # the column definitions come with the first event only
                    await response.write(json.dumps(event).encode() + b'\n')
                    if (faults := self.faults) is not None and faults.applies(request) and faults.drop(request):
                        last_rv = None  # dropped: the client resumes from the last resourceVersion it saw
                        break
                if last_rv is None or (deadline is not None and loop.time() >= deadline):
                    break
                events, last_rv = await self._next_events(spec, match, last_rv, deadline, bookmarks)
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        return response

    async def _next_events(self, spec: ResourceSpec, match: Matcher, last_rv: int, deadline: float | None,
                           bookmarks: bool) -> tuple[list[JsonDict], int | None]:
        """Wait for the events after `last_rv`: return them and the new position (None: the end)."""
        loop = asyncio.get_running_loop()
        wait = None if deadline is None else max(0.0, deadline - loop.time())
        if bookmarks and self.bookmark_interval is not None:
            wait = self.bookmark_interval if wait is None else min(wait, self.bookmark_interval)
        async with self._lock:
            try:
                async with asyncio.timeout(wait):
                    await self._changed.wait_for(
                        lambda: self._closing or self._rv > last_rv or last_rv < self._compacted_rv)
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    return [], None
                return [self._bookmark(spec, last_rv)], last_rv
            if self._closing:
                return [], None
            if last_rv < self._compacted_rv:  # started from, or fell behind, a compacted revision
                message = f'too old resource version: {last_rv} ({self._compacted_rv})'
                return [{'type': 'ERROR', 'object': status_body(410, message, 'Expired')}], None
            start = bisect.bisect_right(self._log, last_rv, key=lambda event: event.rv)
            events = [converted for event in self._log[start:] if event.key[0] == spec.storage
                      if (converted := self._convert(spec, event, match)) is not None]
            return events, self._rv

    def _convert(self, spec: ResourceSpec, event: WatchEvent, match: Matcher) -> JsonDict | None:
        # The watch cache's rule (cacheWatcher.convertToWatchEvent): an object that starts matching
        # the selectors is ADDED; one that stops matching, or is deleted, is DELETED with its last
        # matching content at the event's revision.
        if event.obj is not None and match(event.obj):
            matched_before = event.old is not None and match(event.old)
            return {'type': 'MODIFIED' if matched_before else 'ADDED', 'object': self._present(spec, event.obj)}
        if event.old is not None and match(event.old):
            gone = self._present(spec, event.old)
            gone['metadata']['resourceVersion'] = str(event.rv)
            return {'type': 'DELETED', 'object': gone}
        return None

    def _bookmark(self, spec: ResourceSpec, rv: int, annotations: JsonDict | None = None) -> JsonDict:
        meta: JsonDict = {'resourceVersion': str(rv), **({'annotations': annotations} if annotations else {})}
        return {'type': 'BOOKMARK', 'object': {'kind': spec.kind, 'apiVersion': spec.api_version, 'metadata': meta}}

    # ------------------------------------------------------------------ writes

    async def _create(self, request: kmock.Request, route: Route, spec: ResourceSpec) -> Response:
        obj = _json_body(request)
        if not isinstance(obj, dict):
            raise ApiError(400, 'the body of a create must be a JSON object')
        meta = self._check_object(spec, route, obj)
        if not meta.get('name') and meta.get('generateName'):
            meta['name'] = meta['generateName'] + ''.join(random.choices('bcdfghjklmnpqrstvwxz2456789', k=5))
        if not meta.get('name'):
            raise _invalid(spec, '', 'metadata.name', 'FieldValueRequired',
                           'Required value: name or generateName is required')
        # rest.FillObjectMetaSystemFields: these are the server's, whatever a client sent.
        for field in ('deletionTimestamp', 'deletionGracePeriodSeconds', 'resourceVersion'):
            meta.pop(field, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        if spec.group == '' and spec.plural in _VALIDATE_CREATE:
            _VALIDATE_CREATE[spec.plural](spec, obj)
        if spec.group == '' and spec.plural == 'pods':  # admission: the namespace's Pod Security level
            namespaces = self._specs['', 'v1', 'namespaces']
            if refusal := podsecurity.violations(self._current(self._key(namespaces, None, meta['namespace'])), obj):
                raise ApiError(403, refusal, 'Forbidden', _details(spec, meta['name'], spec.plural))
        # The create strategies: pods/services/namespaces set their own initial status; custom
        # resources with a status subresource drop the status given on create.
        if spec.group == '' and spec.plural in _CREATED_STATUS:
            obj['status'] = _CREATED_STATUS[spec.plural](obj)
        elif 'status' in spec.subresources:
            obj.pop('status', None)
        async with self._lock:
            key = self._key(spec, meta.get('namespace'), meta['name'])
            if self._current(key) is not None:
                raise ApiError(409, f'{spec.qualified(spec.plural)} "{meta["name"]}" already exists',
                               'AlreadyExists', _details(spec, meta['name'], spec.plural))
            stored = self._commit(key, None, obj)
        return aiohttp.web.json_response(self._present(spec, stored), status=201)

    def _check_object(self, spec: ResourceSpec, route: Route, obj: JsonDict) -> JsonDict:
        """What every written object goes through (decoding, rest.BeforeCreate/BeforeUpdate)."""
        for field, expected in (('apiVersion', spec.api_version), ('kind', spec.kind)):
            if obj.get(field) not in (None, '', expected):
                raise ApiError(400, f'the {field} in the data ({obj[field]}) does not match the expected {expected}')
            obj[field] = expected
        meta = obj.setdefault('metadata', {})
        if not isinstance(meta, dict):
            raise ApiError(400, 'metadata must be a JSON object')
        for field in [field for field, val in meta.items() if val in (None, [], {})]:
            del meta[field]  # ObjectMeta's fields are `omitempty`: empty ones are not stored
        if not spec.namespaced:
            meta.pop('namespace', None)
        elif not meta.get('namespace'):
            meta['namespace'] = route.namespace
        elif meta['namespace'] != route.namespace:
            raise ApiError(400, 'the namespace of the provided object does not match the namespace sent on the request')
        if route.name is not None and meta.get('name') != route.name:
            raise ApiError(400, f'the name of the object ({meta.get("name", "")}) does not match the name on the URL '
                                f'({route.name})')
        return meta

    async def _update(self, request: kmock.Request, route: Route, spec: ResourceSpec) -> Response:
        assert route.name is not None
        patching = request.method.upper() == 'PATCH'
        content_type = request.headers.get('Content-Type', '').split(';')[0].strip().lower()
        if patching:
            _check_patch_type(spec, content_type)
        body = _json_body(request)
        if patching:
            _check_patch_shape(content_type, body)
        elif not isinstance(body, dict):
            raise ApiError(400, 'the body of an update must be a JSON object')
        async with self._lock:
            key = self._key(spec, route.namespace, route.name)
            current = self._current(key)
            if current is None:  # no create-on-update for the resources served here
                raise _not_found(spec, route.name)
            new = self._prepare_update(spec, route, current, _apply_patch(content_type, current, body)
                                       if patching else copy.deepcopy(body))
            if _without_rv(new) == _without_rv(current):
                return aiohttp.web.json_response(self._present(spec, current))  # a no-op: no write, no event
            if new['metadata'].get('deletionTimestamp') and not new['metadata'].get('finalizers'):
                # The last finalizer left a deleting object: the update deletes it instead
                # (registry.Store: deleteWithoutFinalizers); the response shows what was written.
                rv = self._commit(key, current, None)['metadata']['resourceVersion']
                new['metadata']['resourceVersion'] = rv
            else:
                new = self._commit(key, current, new)
        return aiohttp.web.json_response(self._present(spec, new))

    def _prepare_update(self, spec: ResourceSpec, route: Route, current: JsonDict, candidate: Any) -> JsonDict:
        assert route.name is not None
        if not isinstance(candidate, dict):
            raise ApiError(422, 'the patched object is not a JSON object', 'Invalid')
        self._check_object(spec, route, candidate)
        # Optimistic concurrency (registry.Store.Update): a resourceVersion must be the current
        # one; without one, the update is unconditional, which custom resources do not allow.
        requested_rv = candidate['metadata'].get('resourceVersion')
        if not requested_rv and spec.custom:
            raise _invalid(spec, route.name, 'metadata.resourceVersion', 'FieldValueInvalid',
                           'Invalid value: 0x0: must be specified for an update', kind=spec.plural)
        if requested_rv and requested_rv != current['metadata']['resourceVersion']:
            raise _conflict(spec, route.name, 'the object has been modified; please apply your changes to the '
                                              'latest version and try again')
        if route.subresource == 'status':  # statusStrategy.PrepareForUpdate: only the status is taken
            new = copy.deepcopy(current)
            _carry('status', candidate, new)
            if spec.group == '' and spec.plural == 'pods':
                _validate_container_states(spec, route.name, current, new)
            return new
        new, old_meta, new_meta = candidate, current['metadata'], candidate['metadata']
        if 'status' in spec.subresources:  # PrepareForUpdate: the main resource cannot write the status
            _carry('status', current, new)
        # rest.BeforeUpdate & ValidateObjectMetaUpdate: the server-owned fields stay as they are.
        if new_meta.get('uid', old_meta['uid']) != old_meta['uid']:
            raise _invalid(spec, route.name, 'metadata.uid', 'FieldValueInvalid',
                           f'Invalid value: "{new_meta["uid"]}": field is immutable')
        for field in ('uid', 'creationTimestamp', 'generation', 'deletionTimestamp', 'deletionGracePeriodSeconds'):
            _carry(field, old_meta, new_meta)
        added = [f for f in new_meta.get('finalizers', []) if f not in old_meta.get('finalizers', [])]
        if old_meta.get('deletionTimestamp') and added:
            found = '[]string{' + ', '.join(f'"{f}"' for f in added) + '}'
            raise _invalid(spec, route.name, 'metadata.finalizers', 'FieldValueForbidden', 'Forbidden: no new '
                           f'finalizers can be added if the object is being deleted, found new finalizers {found}')
        # Any change outside the metadata (with a status subresource: to the spec) is a new generation.
        if {k: v for k, v in new.items() if k != 'metadata'} != {k: v for k, v in current.items() if k != 'metadata'}:
            new_meta['generation'] = int(old_meta.get('generation') or 0) + 1
        return new

    async def _delete(self, request: kmock.Request, route: Route, spec: ResourceSpec) -> Response:
        assert route.name is not None
        options = _json_body(request) if request.body else {}
        if not isinstance(options, dict):
            raise ApiError(400, 'DeleteOptions must be a JSON object')
        grace = _int_param(request, 'gracePeriodSeconds')
        grace = options.get('gracePeriodSeconds', grace)
        async with self._lock:
            key = self._key(spec, route.namespace, route.name)
            current = self._current(key)
            if current is None:
                raise _not_found(spec, route.name)
            meta = current['metadata']
            for field, label, why in (('uid', 'UID', 'deleted and then recreated'),
                                      ('resourceVersion', 'ResourceVersion', 'modified')):
                wanted = (options.get('preconditions') or {}).get(field)  # rest.BeforeDelete: "" matches nothing
                if wanted is not None and wanted != meta[field]:
                    raise _conflict(spec, route.name, f'the {label} in the precondition ({wanted}) does not match '
                                    f'the {label} in record ({meta[field]}). The object might have been {why}',
                                    kind=spec.kind)
            if spec.group == '' and spec.plural == 'pods' and (grace := _pod_grace(current, grace)) > 0:
                # A pod on a node is deleted gracefully: marked, and gone only when its kubelet confirms (a delete
                # with grace 0), which a lost node never does. A shorter grace period may replace a longer one.
                due = _now(grace)
                if meta.get('deletionTimestamp') and meta['deletionTimestamp'] <= due:
                    return aiohttp.web.json_response(self._present(spec, current))
                new = copy.deepcopy(current)
                new['metadata'].update(deletionTimestamp=due, deletionGracePeriodSeconds=grace)
                return aiohttp.web.json_response(self._present(spec, self._commit(key, current, new)))
            if meta.get('deletionTimestamp') and not (spec.plural == 'pods' and spec.group == ''):
                return aiohttp.web.json_response(self._present(spec, current))  # already being deleted
            if meta.get('finalizers'):  # registry.Store markAsDeleting: the finalizers go first
                new = copy.deepcopy(current)
                new['metadata'].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0,
                                       generation=int(meta.get('generation') or 0) + 1)
                stored = self._commit(key, current, new)
            else:  # gone at once (a pod: one on no node, finished, or deleted with grace 0)
                if spec.group == '' and spec.plural == 'pods':
                    # registry.Store's graceful deletion with a period of 0 first writes the pod with its
                    # deletionTimestamp (a MODIFIED event), then deletes it (DELETED): watchers see both.
                    marked = copy.deepcopy(current)
                    marked['metadata'].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0)
                    current = self._commit(key, current, marked)
                stored = self._commit(key, current, None)
        return aiohttp.web.json_response(self._present(spec, stored))

    async def _bind(self, request: kmock.Request, route: Route, spec: ResourceSpec) -> Response:
        """pods/binding, as the scheduler writes it: the pod goes to a node (no node object needs to exist)."""
        assert route.name is not None
        binding = _json_body(request)
        node = ((binding or {}).get('target') or {}).get('name') if isinstance(binding, dict) else None
        if not node:
            raise _invalid(spec, route.name, 'target.name', 'FieldValueRequired', 'Required value')
        async with self._lock:
            key = self._key(spec, route.namespace, route.name)
            if (current := self._current(key)) is None:
                raise _not_found(spec, route.name)
            if (current.get('spec') or {}).get('nodeName'):
                raise _conflict(spec, route.name, f'pod {route.name} is already assigned to node '
                                                  f'"{current["spec"]["nodeName"]}"')
            new = copy.deepcopy(current)
            new.setdefault('spec', {})['nodeName'] = node
            conditions = [c for c in new.setdefault('status', {}).get('conditions') or [] if c.get('type') != 'PodScheduled']
            new['status']['conditions'] = [*conditions, {'type': 'PodScheduled', 'status': 'True'}]
            self._commit(key, current, new)
        return aiohttp.web.json_response({'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success',
                                          'code': 201}, status=201)


# ---------------------------------------------------------------------- helpers

def _header(request: kmock.Request, name: str) -> str:
    return next((value for key, value in request.headers.items() if key.lower() == name.lower()), '')


def _discovered(spec: ResourceSpec, subresource: str | None) -> JsonDict:
    """A resource's entry in an APIResourceList. A subresource has no singular name, short names or
    categories (kubectl would warn that `mlwl` could also mean `workloads/status`), and only its verbs."""
    if subresource is not None:
        verbs, kind = (['create'], 'Binding') if subresource == 'binding' else (['get', 'patch', 'update'], spec.kind)
        return {'name': f'{spec.plural}/{subresource}', 'singularName': '', 'namespaced': spec.namespaced,
                'kind': kind, 'verbs': verbs}
    entry: JsonDict = {'name': spec.plural, 'singularName': spec.singular, 'namespaced': spec.namespaced,
                       'kind': spec.kind, 'verbs': list(_VERBS)}
    if spec.shortnames:
        entry['shortNames'] = list(spec.shortnames)
    if spec.categories:
        entry['categories'] = list(spec.categories)
    return entry


_KUBE_VERSION = re.compile(r'^v(\d+)(?:(alpha|beta)(\d+))?$')


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key of API versions, highest priority first: v2, v1, v1beta2, v1beta1, v1alpha1, then others by name."""
    m = _KUBE_VERSION.match(version)
    if m is None:
        return (3, 0, 0, version)
    stability = {None: 0, 'beta': 1, 'alpha': 2}[m[2]]
    return (stability, -int(m[1]), -int(m[3] or 0), version)


def _negotiate(request: kmock.Request) -> TableRequest | None:
    """A Table when the Accept header asks for one first (`kubectl get`), None for plain JSON."""
    try:
        return TableRequest.negotiate(_header(request, 'Accept'), request.params)
    except NotAcceptable as e:
        raise ApiError(e.code, str(e)) from None


def _tabulate(table: TableRequest, spec: ResourceSpec, obj: JsonDict) -> JsonDict:
    """One object as a Table of one row (a get, a watch event)."""
    return table.render(spec.columns, [obj], {'resourceVersion': obj['metadata'].get('resourceVersion', '')})


def _table_response(table: TableRequest, body: JsonDict) -> Response:
    return aiohttp.web.Response(body=json.dumps(body).encode(), headers={'Content-Type': table.content_type})


def _json_body(request: kmock.Request) -> Any:
    try:
        return json.loads(request.body)
    except ValueError as e:
        raise ApiError(400, f'the request body is not valid JSON: {e}') from None


def _int_param(request: kmock.Request, name: str) -> int | None:
    raw = request.params.get(name)
    try:
        return None if raw in (None, '') else int(raw)
    except ValueError:
        raise ApiError(400, f'invalid value for {name}: "{raw}"') from None


def _without_rv(obj: JsonDict) -> JsonDict:
    return {**obj, 'metadata': {k: v for k, v in obj['metadata'].items() if k != 'resourceVersion'}}


def _check_patch_type(spec: ResourceSpec, content_type: str) -> None:
    # The PATCH handler picks the patch type by the Content-Type only, never by the body.
    accepted = [JSON_PATCH, MERGE_PATCH] + ([] if spec.custom else [STRATEGIC_PATCH]) + [APPLY_PATCH]
    if content_type == APPLY_PATCH:  # a real server accepts it; field management is not emulated
        raise ApiError(415, 'server-side apply (application/apply-patch+yaml) is not supported by the emulator')
    if content_type not in accepted:  # e.g. a strategic merge patch for a custom resource
        raise ApiError(415, f'the body of the request was in an unknown format - accepted media types include: '
                            f'{", ".join(accepted)}')


def _check_patch_shape(content_type: str, body: Any) -> None:
    # The real decoding errors: a JSON patch must be a list (400 BadRequest). A merge patch that is
    # not an object replaces the whole object, which then fails to decode: 422 (seen from the
    # kubernetes client sending a list without _content_type: kubernetes-client/python#2039).
    kind = 'array' if isinstance(body, list) else 'object' if isinstance(body, dict) else 'value'
    if content_type == JSON_PATCH and not isinstance(body, list):
        raise ApiError(400, f'json: cannot unmarshal {kind} into Go value of type jsonpatch.Patch')
    if content_type == STRATEGIC_PATCH and not isinstance(body, dict):
        raise ApiError(400, f'json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}')
    if content_type == MERGE_PATCH and body is None:
        raise ApiError(400, 'Invalid JSON Patch')
    if content_type == MERGE_PATCH and not isinstance(body, dict):
        error = (f"couldn't get version/kind; json parse error: json: cannot unmarshal {kind} "
                 'into Go value of type struct { APIVersion string; Kind string }')
        raise ApiError(422, f' "" is invalid: patch: Invalid value: "{json.dumps(body)}": {error}', 'Invalid',
                       {'causes': [{'reason': 'FieldValueInvalid', 'message': error, 'field': 'patch'}]})


def _apply_patch(content_type: str, current: JsonDict, body: Any) -> Any:
    if content_type == JSON_PATCH:
        try:
            return jsonpatch.apply_patch(current, body)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
            raise _patch_failed(str(e)) from None
    # RFC 7386 merge patch. Strategic merge (built-ins only) is approximated by it: lists are
    # replaced, not merged by their patchMergeKey, and $patch/$retainKeys directives are unknown.
    return _merge_patch(current, body)


def _patch_failed(error: str) -> ApiError:
    # A failed `test`, a missing path, an unknown op: 422 with the generic message and a cause
    # naming no field (apierrors.NewGenericServerResponse), unlike a schema's or CEL rule's refusal.
    return ApiError(422, 'the server rejected our request due to an error in our request', 'Invalid',
                    {'causes': [{'reason': 'UnexpectedServerResponse', 'message': error}]})


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _terms(selector: str) -> list[str]:
    return re.split(r',(?![^()]*\))', selector) if selector.strip() else []  # commas outside (x,y)


_LABEL_TERM = re.compile(r'''^\s*(?:
    !\s*(?P<absent>[\w./-]+)
  | (?P<key>[\w./-]+)(?:\s*(?P<op>==|=|!=)\s*(?P<value>[\w.-]*) | \s+(?P<set>in|notin)\s*\((?P<values>[^()]*)\))?
)\s*$''', re.X)
_FIELD_TERM = re.compile(r'^\s*(?P<field>[\w.]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*?)\s*$')


def _label_requirement(term: str) -> Callable[[Mapping[str, str]], bool]:
    m = _LABEL_TERM.match(term)
    if not m:
        raise ApiError(400, f'unable to parse requirement: {term.strip()!r}')
    key, value = m['key'] or m['absent'], m['value']
    values = {item.strip() for item in (m['values'] or '').split(',')}
    return {
        None: lambda labels: key not in labels if m['absent'] else key in labels,
        '=': lambda labels: labels.get(key) == value, '==': lambda labels: labels.get(key) == value,
        '!=': lambda labels: labels.get(key) != value,
        'in': lambda labels: key in labels and labels[key] in values,
        'notin': lambda labels: labels.get(key) not in values,
    }[m['op'] or m['set']]


def _field_requirement(spec: ResourceSpec, term: str) -> Callable[[JsonDict], bool]:
    m = _FIELD_TERM.match(term)
    if not m:
        raise ApiError(400, f'invalid field selector: {term.strip()!r}')
    if m['field'] not in spec.field_labels:
        raise ApiError(400, f'field label not supported: {m["field"]}')

    def check(obj: JsonDict) -> bool:
        found: Any = obj
        for step in m['field'].split('.'):
            found = found.get(step) if isinstance(found, dict) else None
        return (str('' if found is None else found) == m['value']) != (m['op'] == '!=')
    return check


def _pod_qos(pod: JsonDict) -> str:
    spec = pod.get('spec') or {}
    resources = [c.get('resources') or {} for c in [*spec.get('containers', []), *spec.get('initContainers', [])]]
    if not any(({*(r.get('requests') or {}), *(r.get('limits') or {})} & {'cpu', 'memory'}) for r in resources):
        return 'BestEffort'
    for r in resources:
        limits = r.get('limits') or {}
        requests = {**limits, **(r.get('requests') or {})}
        if any(k not in limits or str(requests[k]) != str(limits[k]) for k in ('cpu', 'memory')):
            return 'Burstable'
    return 'Guaranteed'


# The status the create strategies of these built-ins set, whatever the client sent.
def _pod_grace(pod: JsonDict, requested: int | None) -> int:
    """The pod strategy's CheckGracefulDelete: none for a pod on no node or one that has finished; else the
    grace period asked for, or the pod's own (terminationGracePeriodSeconds, 30 by default)."""
    if not (pod.get('spec') or {}).get('nodeName') or (pod.get('status') or {}).get('phase') in ('Succeeded', 'Failed'):
        return 0
    if requested is not None:
        return max(int(requested), 0)
    return int((pod.get('spec') or {}).get('terminationGracePeriodSeconds', 30))


_STANDARD_CONTAINER_RESOURCES = frozenset({'cpu', 'memory', 'ephemeral-storage'})


_DNS1123_LABEL = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')
_DNS1123_LABEL_WORDS = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                        "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                        "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


def _dns1123_label(field: str, value: str) -> list[tuple[str, str, str]]:
    """validation.IsDNS1123Label, as (field, cause, error) for each way ``value`` is not one."""
    problems = []
    if len(value) > 63:
        problems.append((field, 'FieldValueInvalid', f'Invalid value: "{value}": must be no more than 63 characters'))
    if not _DNS1123_LABEL.match(value):
        problems.append((field, 'FieldValueInvalid', f'Invalid value: "{value}": {_DNS1123_LABEL_WORDS}'))
    return problems


def _refuse_invalid(spec: ResourceSpec, name: str, problems: list[tuple[str, str, str]]) -> None:
    """apierrors.NewInvalid over a field.ErrorList of (field, cause, error), with the API server's words."""
    if problems:
        causes = [{'reason': cause, 'message': error, 'field': field} for field, cause, error in problems]
        listed = ', '.join(f'{field}: {error}' for field, _, error in problems)
        raise ApiError(422, f'{spec.kind} "{name}" is invalid: {"[" + listed + "]" if len(problems) > 1 else listed}',
                       'Invalid', {'name': name, 'kind': spec.kind, 'causes': causes})


def _validate_pod(spec: ResourceSpec, pod: JsonDict) -> None:
    """A few of the API server's own checks of a new pod (its validation.ValidatePodCreate), with its words."""
    name = pod['metadata']['name']
    pod_spec = pod.get('spec') or {}
    problems = []
    if len(name) > 253:
        problems.append(('metadata.name', 'FieldValueInvalid', f'Invalid value: "{name}": must be no more than 253 characters'))
    for field in ('hostname', 'subdomain'):  # the pod's DNS name, <hostname>.<subdomain>.<namespace>.svc
        if pod_spec.get(field):
            problems += _dns1123_label(f'spec.{field}', str(pod_spec[field]))
    for i, container in enumerate(pod_spec.get('containers') or []):
        for kind in ('requests', 'limits'):
            for resource in ((container.get('resources') or {}).get(kind) or {}):
                if '/' not in resource and resource not in _STANDARD_CONTAINER_RESOURCES \
                        and not resource.startswith('hugepages-'):
                    problems.append((f'spec.containers[{i}].resources.{kind}[{resource}]', 'FieldValueInvalid',
                                     f'Invalid value: "{resource}": must be a standard resource type or fully qualified'))
    _refuse_invalid(spec, name, problems)


def _validate_container_states(spec: ResourceSpec, name: str, old: JsonDict, new: JsonDict) -> None:
    """ValidateContainerStateTransition: with restartPolicy Never, a container that has terminated stays so
    (OnFailure: one that exited 0)."""
    policy = (old.get('spec') or {}).get('restartPolicy', 'Always')
    if policy == 'Always':
        return
    ended = {c.get('name'): (c.get('state') or {}).get('terminated') for c in (old.get('status') or {}).get(
        'containerStatuses') or []}
    for index, container in enumerate((new.get('status') or {}).get('containerStatuses') or []):
        before = ended.get(container.get('name'))
        if before is not None and (policy == 'Never' or before.get('exitCode') == 0) and \
                'terminated' not in (container.get('state') or {}):
            raise _invalid(spec, name, f'status.containerStatuses[{index}].state', 'FieldValueForbidden',
                           'Forbidden: may not be transitioned to non-terminated state')


def _validate_service(spec: ResourceSpec, service: JsonDict) -> None:
    """The Service defaults and checks a gang's headless Service meets (SetDefaults_Service, ValidateService): the
    type is ClusterIP unless said; a headless one (clusterIP None) may have no ports, any other must have some."""
    name = service['metadata']['name']
    service_spec = service.setdefault('spec', {})
    service_spec.setdefault('type', 'ClusterIP')
    headless = service_spec['type'] == 'ClusterIP' and service_spec.get('clusterIP') == 'None'
    problems = []
    if service_spec.get('clusterIP') == 'None' and service_spec['type'] != 'ClusterIP':
        problems.append(('spec.clusterIP', 'FieldValueInvalid',
                         f'Invalid value: "None": may not be set to \'None\' for {service_spec["type"]} services'))
    if not service_spec.get('ports') and not headless and service_spec['type'] != 'ExternalName':
        problems.append(('spec.ports', 'FieldValueRequired', 'Required value'))
    _refuse_invalid(spec, name, problems)
    for port in service_spec.get('ports') or []:
        port.setdefault('protocol', 'TCP')
        port.setdefault('targetPort', port.get('port'))
    if service_spec['type'] != 'ExternalName' and not service_spec.get('clusterIP'):  # the IP allocator's
        service_spec['clusterIP'] = f'10.96.{random.randrange(256)}.{random.randrange(1, 255)}'
    if service_spec.get('clusterIP'):
        service_spec.setdefault('clusterIPs', [service_spec['clusterIP']])


_VALIDATE_CREATE: dict[str, Callable[[ResourceSpec, JsonDict], None]] = {'pods': _validate_pod,
                                                                       'services': _validate_service}

_CREATED_STATUS: dict[str, Callable[[JsonDict], JsonDict]] = {
    'pods': lambda pod: {'phase': 'Pending', 'qosClass': _pod_qos(pod)},
    'services': lambda service: {'loadBalancer': {}},
    'namespaces': lambda namespace: {'phase': 'Active'},
}
