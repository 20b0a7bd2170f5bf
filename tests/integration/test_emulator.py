"""The emulator's real-server behaviours, over real HTTP: aiohttp, the kubernetes client, kopf."""
import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import kubernetes.client
import pytest
from kopf._cogs.clients import auth, fetching, scanning, watching
from kopf._cogs.configs.configuration import OperatorSettings
from kopf._cogs.structs import credentials, references
from kubernetes.client.exceptions import ApiException

from workload_operator.devcluster.emulator import KubeAPIServer

GROUP, VERSION, PLURAL = 'ml.lifecycle.dev', 'v1alpha1', 'workloads'
WLS = f'/apis/{GROUP}/{VERSION}/namespaces/ns/{PLURAL}'
PODS = '/api/v1/namespaces/ns/pods'
MERGE = 'application/merge-patch+json'
JSON_PATCH = 'application/json-patch+json'
CONFLICT_MESSAGE = ('Operation cannot be fulfilled on workloads.ml.lifecycle.dev "w": the object has been '
                    'modified; please apply your changes to the latest version and try again')
TIMESTAMP = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')


def workload(name: str = 'w', **extra: Any) -> dict[str, Any]:
    return {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'Workload',
            'metadata': {'name': name, **extra.pop('metadata', {})},
            'spec': {'image': 'busybox'}, **extra}


async def call(api: KubeAPIServer, method: str, url: str, body: Any = None,
               content_type: str = 'application/json') -> tuple[int, Any]:
    data = None if body is None else json.dumps(body)
    async with api.request(method, url, data=data, headers={'Content-Type': content_type}) as response:
        return response.status, await response.json()


async def ok(api: KubeAPIServer, method: str, url: str, body: Any = None,
             content_type: str = 'application/json') -> Any:
    status, result = await call(api, method, url, body, content_type)
    assert status in (200, 201), result
    return result


async def watch(api: KubeAPIServer, url: str, count: int | None = None, timeout: float = 5) -> list[dict[str, Any]]:
    """Read a watch-stream until `count` events arrive or the server ends it (a hang fails)."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout), api.get(url) as response:
        assert response.status == 200
        async for line in response.content:
            if line.strip():
                events.append(json.loads(line))
            if count is not None and len(events) >= count:
                break
    return events


def brief(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(event['type'], event['object']['metadata'].get('name', '')) for event in events]


@pytest.fixture()
def k8s(kube_api: KubeAPIServer) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=str(kube_api.url).rstrip('/')))
    yield client
    client.close()


@contextlib.asynccontextmanager
async def kopf_connected(api: KubeAPIServer) -> AsyncIterator[OperatorSettings]:
    vault = credentials.Vault()
    await vault.populate({'emulator': credentials.ConnectionInfo(server=str(api.url).rstrip('/'))})
    token = auth.vault_var.set(vault)
    try:
        yield OperatorSettings()
    finally:
        auth.vault_var.reset(token)
        await vault.close()


WORKLOADS = references.Resource(GROUP, VERSION, PLURAL, namespaced=True, kind='Workload',
                                subresources=frozenset({'status'}))


# ------------------------------------------------------------------ 1. registry & discovery

async def test_builtin_discovery(kube_api: KubeAPIServer) -> None:
    core = await ok(kube_api, 'GET', '/api/v1')
    assert (core['kind'], core['groupVersion']) == ('APIResourceList', 'v1')  # not '/v1': kubectl drops a mismatch
    found = {res['name']: res for res in core['resources']}
    assert {'pods', 'pods/status', 'services', 'services/status', 'events', 'namespaces',
            'namespaces/status', 'serviceaccounts'} <= set(found)
    assert found['namespaces']['namespaced'] is False and found['pods']['namespaced'] is True
    assert found['pods']['kind'] == 'Pod' and 'watch' in found['pods']['verbs']
    assert found['pods']['shortNames'] == ['po'] and found['pods']['categories'] == ['all']
    # A subresource has only its own verbs, and no singular name, short names or categories.
    assert found['pods/status'] == {'name': 'pods/status', 'singularName': '', 'namespaced': True, 'kind': 'Pod',
                                    'verbs': ['get', 'patch', 'update']}
    events = await ok(kube_api, 'GET', '/apis/events.k8s.io/v1')
    leases = await ok(kube_api, 'GET', '/apis/coordination.k8s.io/v1')
    assert [r['name'] for r in events['resources']] == ['events']
    assert [r['name'] for r in leases['resources']] == ['leases']


async def test_kopf_discovers_the_crd_with_its_status_subresource(kube_api: KubeAPIServer) -> None:
    async with kopf_connected(kube_api) as settings:
        resources = await scanning.scan_resources(settings=settings, logger=logging.getLogger('test'))
    (wl,) = [r for r in resources if r.group == GROUP]
    assert (wl.version, wl.plural, wl.kind, wl.singular) == (VERSION, PLURAL, 'Workload', 'workload')
    assert wl.subresources == {'status'} and wl.namespaced is True
    assert wl.shortcuts == {'mlwl'} and wl.categories == {'ml'}
    (pods,) = [r for r in resources if r.group == '' and r.plural == 'pods']
    assert pods.subresources == {'status', 'binding'}


async def test_register_crd_scope_and_versions(kube_api: KubeAPIServer) -> None:
    kube_api.register_crd({
        'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition',
        'spec': {'group': 'x.dev', 'scope': 'Cluster',
                 'names': {'plural': 'things', 'kind': 'Thing', 'shortNames': ['th']},
                 'versions': [{'name': 'v1', 'served': True, 'storage': True},
                              {'name': 'v2', 'served': True, 'storage': False,
                               'subresources': {'status': {}}}]}})
    v2 = await ok(kube_api, 'GET', '/apis/x.dev/v2')
    assert {r['name']: r['namespaced'] for r in v2['resources']} == {'things': False, 'things/status': False}
    # One storage for both versions: an object created via v1 is served via v2 as v2.
    await ok(kube_api, 'POST', '/apis/x.dev/v1/things', {'metadata': {'name': 't'}})
    fetched = await ok(kube_api, 'GET', '/apis/x.dev/v2/things/t')
    assert fetched['apiVersion'] == 'x.dev/v2' and fetched['kind'] == 'Thing'
    assert (await call(kube_api, 'GET', '/apis/x.dev/v2/namespaces/ns/things/t'))[0] == 404


# ------------------------------------------------------------------ 2. create

async def test_create_assigns_server_fields(kube_api: KubeAPIServer) -> None:
    rv0 = kube_api.resource_version
    status, pod = await call(kube_api, 'POST', PODS, {'metadata': {'name': 'p'}, 'spec': {'containers': []}})
    assert status == 201
    body = workload(metadata={'uid': 'mine', 'resourceVersion': '999', 'generation': 7, 'namespace': 'ns'},
                    status={'state': 'Running'})
    status, wl = await call(kube_api, 'POST', WLS, body)
    assert status == 201
    meta = wl['metadata']
    assert uuid.UUID(meta['uid']).version == 4 and meta['uid'] != pod['metadata']['uid']
    assert TIMESTAMP.match(meta['creationTimestamp'])
    assert (meta['generation'], meta['namespace']) == (1, 'ns')
    # One global counter over all resources, like etcd's revision.
    assert (pod['metadata']['resourceVersion'], meta['resourceVersion']) == (str(rv0 + 1), str(rv0 + 2))
    assert (wl['apiVersion'], wl['kind']) == (f'{GROUP}/{VERSION}', 'Workload')
    assert 'status' not in wl  # the status subresource: status is ignored on create
    assert (await ok(kube_api, 'GET', f'{WLS}/w')) == wl


async def test_create_conflicts_and_bad_requests(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', WLS, workload())
    status, error = await call(kube_api, 'POST', WLS, workload())
    assert (status, error['reason'], error['message']) == (409, 'AlreadyExists', 'workloads.ml.lifecycle.dev "w" already exists')
    assert error['details'] == {'name': 'w', 'group': GROUP, 'kind': PLURAL}
    status, error = await call(kube_api, 'POST', WLS, workload('x', metadata={'namespace': 'other'}))
    assert (status, error['reason']) == (400, 'BadRequest')
    assert error['message'] == 'the namespace of the provided object does not match the namespace sent on the request'
    status, error = await call(kube_api, 'POST', WLS, {'spec': {}})
    assert (status, error['reason']) == (422, 'Invalid')
    assert error['details']['causes'][0]['field'] == 'metadata.name'
    generated = await ok(kube_api, 'POST', WLS, workload(metadata={'name': '', 'generateName': 'job-'}))
    assert re.fullmatch(r'job-[a-z0-9]{5}', generated['metadata']['name'])


async def test_pod_status_on_create_is_the_servers(kube_api: KubeAPIServer) -> None:
    pod = await ok(kube_api, 'POST', PODS, {'metadata': {'name': 'p'}, 'spec': {'containers': [{'name': 'c'}]},
                                            'status': {'phase': 'Running'}})
    assert pod['status'] == {'phase': 'Pending', 'qosClass': 'BestEffort'}
    limits = {'cpu': '1', 'memory': '1Gi'}
    pod = await ok(kube_api, 'POST', PODS, {'metadata': {'name': 'q'}, 'spec': {'containers': [
        {'name': 'c', 'resources': {'limits': limits}}]}})
    assert pod['status'] == {'phase': 'Pending', 'qosClass': 'Guaranteed'}



async def test_a_container_that_ended_under_restart_policy_never_stays_ended(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', PODS, {'metadata': {'name': 'done'}, 'spec': {
        'restartPolicy': 'Never', 'containers': [{'name': 'main'}]}})
    ended = {'name': 'main', 'state': {'terminated': {'exitCode': 0}}}
    await ok(kube_api, 'PATCH', f'{PODS}/done/status', {'status': {'phase': 'Succeeded', 'containerStatuses': [ended]}},
             MERGE)
    running = {'name': 'main', 'state': {'running': {}}}
    status, error = await call(kube_api, 'PATCH', f'{PODS}/done/status', {'status': {
        'phase': 'Running', 'containerStatuses': [running]}}, MERGE)
    assert (status, error['reason']) == (422, 'Invalid')
    assert error['message'] == ('Pod "done" is invalid: status.containerStatuses[0].state: '
                                'Forbidden: may not be transitioned to non-terminated state')


async def test_a_pods_hostname_and_subdomain_must_be_dns_labels(kube_api: KubeAPIServer) -> None:
    def pod(name: str, **spec: str) -> dict[str, Any]:
        return {'metadata': {'name': name}, 'spec': {'containers': [{'name': 'c'}], **spec}}
    created = await ok(kube_api, 'POST', PODS, pod('w-1-0', hostname='worker-0', subdomain='train'))
    assert (created['spec']['hostname'], created['spec']['subdomain']) == ('worker-0', 'train')
    status, error = await call(kube_api, 'POST', PODS, pod('w-1-1', hostname='Worker_1', subdomain='x' * 64))
    assert (status, error['reason']) == (422, 'Invalid')
    assert error['message'].startswith('Pod "w-1-1" is invalid: [spec.hostname: Invalid value: "Worker_1": '
                                       'a lowercase RFC 1123 label must consist of')
    assert [c['field'] for c in error['details']['causes']] == ['spec.hostname', 'spec.subdomain']
    assert 'must be no more than 63 characters' in error['details']['causes'][1]['message']


async def test_services_get_a_cluster_ip_and_only_a_headless_one_may_have_no_ports(kube_api: KubeAPIServer) -> None:
    services = '/api/v1/namespaces/ns/services'
    front = await ok(kube_api, 'POST', services, {'metadata': {'name': 'web'}, 'spec': {
        'selector': {'app': 'web'}, 'ports': [{'name': 'http', 'port': 80}]}})
    assert front['spec']['type'] == 'ClusterIP' and re.fullmatch(r'10\.96\.\d+\.\d+', front['spec']['clusterIP'])
    assert front['spec']['clusterIPs'] == [front['spec']['clusterIP']]
    assert front['spec']['ports'] == [{'name': 'http', 'port': 80, 'protocol': 'TCP', 'targetPort': 80}]
    headless = await ok(kube_api, 'POST', services, {'metadata': {'name': 'gang'}, 'spec': {
        'clusterIP': 'None', 'selector': {'app': 'web'}, 'publishNotReadyAddresses': True}})
    assert (headless['spec']['clusterIP'], headless['spec']['clusterIPs']) == ('None', ['None'])
    assert 'ports' not in headless['spec']
    status, error = await call(kube_api, 'POST', services, {'metadata': {'name': 'portless'}, 'spec': {
        'selector': {'app': 'web'}}})
    assert (status, error['message']) == (422, 'Service "portless" is invalid: spec.ports: Required value')
    status, error = await call(kube_api, 'POST', services, {'metadata': {'name': 'lb'}, 'spec': {
        'type': 'LoadBalancer', 'clusterIP': 'None', 'ports': [{'port': 80}]}})
    assert status == 422 and "may not be set to 'None' for LoadBalancer services" in error['message']

# ------------------------------------------------------------------ 3. status subresource & generation

async def test_main_resource_writes_keep_status(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', WLS, workload())
    await ok(kube_api, 'PATCH', f'{WLS}/w/status', {'status': {'state': 'Pending'}}, MERGE)
    patched = await ok(kube_api, 'PATCH', f'{WLS}/w', {'spec': {'image': 'nginx'}, 'status': {'state': 'X'}}, MERGE)
    assert patched['status'] == {'state': 'Pending'} and patched['spec']['image'] == 'nginx'
    assert patched['metadata']['generation'] == 2
    # A label change is metadata: no new generation.
    labelled = await ok(kube_api, 'PATCH', f'{WLS}/w', {'metadata': {'labels': {'a': 'b'}}}, MERGE)
    assert labelled['metadata']['generation'] == 2 and labelled['metadata']['labels'] == {'a': 'b'}


async def test_status_writes_change_only_status(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', WLS, workload())
    patch = {'metadata': {'labels': {'x': 'y'}, 'finalizers': ['f'], 'annotations': {'a': 'b'}},
             'spec': {'image': 'other'}, 'status': {'state': 'Running'}}
    result = await ok(kube_api, 'PATCH', f'{WLS}/w/status', patch, MERGE)
    assert result['status'] == {'state': 'Running'} and result['spec'] == {'image': 'busybox'}
    assert not {'labels', 'finalizers', 'annotations'} & set(result['metadata'])
    assert result['metadata']['generation'] == 1
    replaced = await ok(kube_api, 'PUT', f'{WLS}/w/status', {**result, 'status': {'state': 'Done'}, 'spec': {}})
    assert replaced['status'] == {'state': 'Done'} and replaced['spec'] == {'image': 'busybox'}
    assert replaced['metadata']['generation'] == 1


async def test_server_owned_fields_are_immutable(kube_api: KubeAPIServer) -> None:
    created = await ok(kube_api, 'POST', WLS, workload())
    meta = created['metadata']
    forged = {'creationTimestamp': '2000-01-01T00:00:00Z', 'generation': 99,
              'deletionTimestamp': '2000-01-01T00:00:00Z', 'deletionGracePeriodSeconds': 5}
    result = await ok(kube_api, 'PATCH', f'{WLS}/w', {'metadata': forged}, MERGE)
    assert result['metadata'] == meta  # a no-op: nothing a client may change was changed
    status, error = await call(kube_api, 'PATCH', f'{WLS}/w', {'metadata': {'uid': 'x'}}, MERGE)
    assert (status, error['reason'], error['details']['causes'][0]['field']) == (422, 'Invalid', 'metadata.uid')


# ------------------------------------------------------------------ 4. no-op writes

async def test_noop_writes_neither_bump_nor_emit(kube_api: KubeAPIServer) -> None:
    created = await ok(kube_api, 'POST', WLS, workload(metadata={'labels': {'a': 'b'}}))
    rv = created['metadata']['resourceVersion']
    same = await ok(kube_api, 'PATCH', f'{WLS}/w', {'spec': {'image': 'busybox'}, 'metadata': {'labels': {'a': 'b'}}}, MERGE)
    assert same['metadata']['resourceVersion'] == rv and kube_api.resource_version == int(rv)
    same = await ok(kube_api, 'PUT', f'{WLS}/w', created)
    assert same['metadata']['resourceVersion'] == rv
    await ok(kube_api, 'PATCH', f'{WLS}/w/status', [{'op': 'add', 'path': '/status', 'value': {}}], JSON_PATCH)
    events = await watch(kube_api, f'{WLS}?watch=true&resourceVersion={rv}', count=1)
    assert [e['type'] for e in events] == ['MODIFIED']
    assert events[0]['object']['metadata']['resourceVersion'] == str(int(rv) + 1)


# ------------------------------------------------------------------ 5. patch content types

async def test_json_patch_operations(kube_api: KubeAPIServer) -> None:
    created = await ok(kube_api, 'POST', WLS, workload(metadata={'labels': {'a': '1'}}))
    ops = [{'op': 'test', 'path': '/metadata/resourceVersion', 'value': created['metadata']['resourceVersion']},
           {'op': 'add', 'path': '/spec/args', 'value': ['x']},
           {'op': 'copy', 'from': '/spec/args', 'path': '/spec/command'},
           {'op': 'move', 'from': '/metadata/labels/a', 'path': '/metadata/labels/b'},
           {'op': 'replace', 'path': '/spec/image', 'value': 'nginx'},
           {'op': 'remove', 'path': '/spec/args'}]
    result = await ok(kube_api, 'PATCH', f'{WLS}/w', ops, JSON_PATCH)
    assert result['spec'] == {'image': 'nginx', 'command': ['x']} and result['metadata']['labels'] == {'b': '1'}
    for bad in ([{'op': 'test', 'path': '/metadata/resourceVersion', 'value': '1'}],
                [{'op': 'remove', 'path': '/spec/nothing'}],
                [{'op': 'replace', 'path': '/spec/nothing', 'value': 1}]):
        status, error = await call(kube_api, 'PATCH', f'{WLS}/w', bad, JSON_PATCH)
        assert (status, error['kind'], error['reason']) == (422, 'Status', 'Invalid'), bad
    assert (await ok(kube_api, 'GET', f'{WLS}/w')) == result  # failed patches changed nothing


async def test_patch_type_comes_from_content_type_only(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', WLS, workload(spec={'image': 'a', 'args': ['1', '2'], 'command': ['c']}))
    merged = await ok(kube_api, 'PATCH', f'{WLS}/w', {'spec': {'args': ['3'], 'command': None}}, MERGE)
    assert merged['spec'] == {'image': 'a', 'args': ['3']}  # RFC 7386: lists replaced, null deletes
    ops = [{'op': 'replace', 'path': '/spec/image', 'value': 'b'}]
    status, error = await call(kube_api, 'PATCH', f'{WLS}/w', ops, MERGE)  # a list as a merge patch
    assert (status, error['reason']) == (422, 'Invalid')
    assert 'cannot unmarshal array' in error['message']
    status, error = await call(kube_api, 'PATCH', f'{WLS}/w', {'spec': {'image': 'b'}}, JSON_PATCH)
    assert (status, error['reason']) == (400, 'BadRequest')
    for content_type in ('application/strategic-merge-patch+json', 'application/apply-patch+yaml', 'text/plain'):
        status, error = await call(kube_api, 'PATCH', f'{WLS}/w', {'spec': {'image': 'b'}}, content_type)
        assert (status, error['reason']) == (415, 'UnsupportedMediaType'), content_type
    assert (await ok(kube_api, 'GET', f'{WLS}/w'))['spec']['image'] == 'a'
    # Strategic merge is accepted for built-ins.
    await ok(kube_api, 'POST', PODS, {'metadata': {'name': 'p', 'labels': {'a': '1'}}})
    pod = await ok(kube_api, 'PATCH', f'{PODS}/p', {'metadata': {'labels': {'b': '2'}}},
                   'application/strategic-merge-patch+json')
    assert pod['metadata']['labels'] == {'a': '1', 'b': '2'}


async def test_kubernetes_client_patches(kube_api: KubeAPIServer, k8s: kubernetes.client.ApiClient) -> None:
    api = kubernetes.client.CustomObjectsApi(k8s)
    created = await asyncio.to_thread(api.create_namespaced_custom_object, GROUP, VERSION, 'ns', PLURAL, workload())
    rv = created['metadata']['resourceVersion']
    ops = [{'op': 'test', 'path': '/metadata/resourceVersion', 'value': rv},
           {'op': 'add', 'path': '/status', 'value': {'state': 'Running'}}]
    patched = await asyncio.to_thread(api.patch_namespaced_custom_object_status, GROUP, VERSION, 'ns', PLURAL, 'w',
                                      body=ops, _content_type=JSON_PATCH)
    assert patched['status'] == {'state': 'Running'} and patched['metadata']['resourceVersion'] != rv
    with pytest.raises(ApiException) as failed:  # the `test` op fails now: rv is stale
        await asyncio.to_thread(api.patch_namespaced_custom_object_status, GROUP, VERSION, 'ns', PLURAL, 'w',
                                body=ops, _content_type=JSON_PATCH)
    assert failed.value.status == 422 and json.loads(failed.value.body)['reason'] == 'Invalid'
    # Without _content_type the client sends the list as a merge patch, which the server refuses.
    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(api.patch_namespaced_custom_object_status, GROUP, VERSION, 'ns', PLURAL, 'w',
                                body=ops[1:])
    assert refused.value.status == 422
    assert json.loads(refused.value.body)['reason'] == 'Invalid'
    merged = await asyncio.to_thread(api.patch_namespaced_custom_object, GROUP, VERSION, 'ns', PLURAL, 'w',
                                     body={'spec': {'image': 'nginx'}})
    assert merged['spec']['image'] == 'nginx' and merged['metadata']['generation'] == 2
    assert [r.headers['Content-Type'] for r in kube_api.writes(PLURAL, methods=['PATCH'])] == [
        JSON_PATCH, JSON_PATCH, MERGE, MERGE]


# ------------------------------------------------------------------ 6. optimistic concurrency

async def test_stale_resource_versions_conflict(kube_api: KubeAPIServer) -> None:
    created = await ok(kube_api, 'POST', WLS, workload())
    stale = created['metadata']['resourceVersion']
    fresh = await ok(kube_api, 'PATCH', f'{WLS}/w', {'spec': {'image': 'b'}}, MERGE)
    status, error = await call(kube_api, 'PATCH', f'{WLS}/w', {'metadata': {'resourceVersion': stale}, 'spec': {'image': 'c'}}, MERGE)
    assert (status, error['reason'], error['message']) == (409, 'Conflict', CONFLICT_MESSAGE)
    assert error['details'] == {'name': 'w', 'group': GROUP, 'kind': PLURAL}
    status, error = await call(kube_api, 'PUT', f'{WLS}/w', created)
    assert (status, error['reason']) == (409, 'Conflict')
    no_rv = {**fresh, 'metadata': {k: v for k, v in fresh['metadata'].items() if k != 'resourceVersion'}}
    status, error = await call(kube_api, 'PUT', f'{WLS}/w', no_rv)
    assert (status, error['reason']) == (422, 'Invalid')
    assert 'must be specified for an update' in error['message']
    updated = await ok(kube_api, 'PUT', f'{WLS}/w', {**fresh, 'spec': {'image': 'd'}})
    assert updated['spec'] == {'image': 'd'} and updated['metadata']['generation'] == 3
    # Built-ins allow unconditional updates (no resourceVersion given).
    await ok(kube_api, 'POST', PODS, {'metadata': {'name': 'p'}})
    pod = await ok(kube_api, 'PUT', f'{PODS}/p', {'metadata': {'name': 'p', 'labels': {'x': 'y'}}})
    assert pod['metadata']['labels'] == {'x': 'y'}


# ------------------------------------------------------------------ 7. deletion

async def test_deletion_waits_for_finalizers(kube_api: KubeAPIServer) -> None:
    created = await ok(kube_api, 'POST', WLS, workload(metadata={'finalizers': ['a', 'b']}))
    rv = created['metadata']['resourceVersion']
    deleting = await ok(kube_api, 'DELETE', f'{WLS}/w')
    meta = deleting['metadata']
    assert TIMESTAMP.match(meta['deletionTimestamp']) and meta['deletionGracePeriodSeconds'] == 0
    assert int(meta['resourceVersion']) == int(rv) + 1
    status, error = await call(kube_api, 'PATCH', f'{WLS}/w', {'metadata': {'finalizers': ['a', 'b', 'c']}}, MERGE)
    assert (status, error['reason']) == (422, 'Invalid') and 'no new finalizers' in error['message']
    await ok(kube_api, 'PATCH', f'{WLS}/w', [{'op': 'remove', 'path': '/metadata/finalizers/0'}], JSON_PATCH)
    assert (await ok(kube_api, 'GET', f'{WLS}/w'))['metadata']['finalizers'] == ['b']
    await ok(kube_api, 'PATCH', f'{WLS}/w', {'metadata': {'finalizers': []}}, MERGE)
    assert (await call(kube_api, 'GET', f'{WLS}/w'))[0] == 404
    events = await watch(kube_api, f'{WLS}?watch=true&resourceVersion={rv}', count=3)
    assert brief(events) == [('MODIFIED', 'w'), ('MODIFIED', 'w'), ('DELETED', 'w')]
    assert events[2]['object']['metadata']['resourceVersion'] == str(kube_api.resource_version)
    status, error = await call(kube_api, 'DELETE', f'{WLS}/w')
    assert (status, error['reason'], error['message']) == (404, 'NotFound', 'workloads.ml.lifecycle.dev "w" not found')


async def test_deletion_without_finalizers_and_preconditions(kube_api: KubeAPIServer) -> None:
    created = await ok(kube_api, 'POST', WLS, workload())
    for preconditions in ({'uid': 'other'}, {'resourceVersion': '999'}):
        status, error = await call(kube_api, 'DELETE', f'{WLS}/w', {'preconditions': preconditions})
        assert (status, error['reason']) == (409, 'Conflict'), preconditions
    gone = await ok(kube_api, 'DELETE', f'{WLS}/w', {'preconditions': {'uid': created['metadata']['uid']}})
    assert gone['metadata']['uid'] == created['metadata']['uid']
    assert gone['metadata']['resourceVersion'] == str(kube_api.resource_version)  # the deletion's revision
    assert kube_api.resource_version == int(created['metadata']['resourceVersion']) + 1
    assert (await call(kube_api, 'GET', f'{WLS}/w'))[0] == 404
    await ok(kube_api, 'POST', PODS, {'metadata': {'name': 'p'}})
    await ok(kube_api, 'DELETE', f'{PODS}/p?gracePeriodSeconds=30')
    assert (await call(kube_api, 'GET', f'{PODS}/p'))[0] == 404


# ------------------------------------------------------------------ 8. list & selectors

async def test_list_with_selectors(kube_api: KubeAPIServer) -> None:
    for ns, name, labels in (('ns', 'a', {'app': 'x', 'tier': 'web'}), ('ns', 'b', {'app': 'y'}),
                             ('ns', 'c', {}), ('other', 'd', {'app': 'x'})):
        await ok(kube_api, 'POST', f'/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}',
                 workload(name, metadata={'labels': labels}))

    async def names(url: str) -> list[str]:
        result = await ok(kube_api, 'GET', url)
        assert result['kind'] == 'WorkloadList' and result['apiVersion'] == f'{GROUP}/{VERSION}'
        assert result['metadata']['resourceVersion'] == str(kube_api.resource_version)
        return [item['metadata']['name'] for item in result['items']]

    all_wls = f'/apis/{GROUP}/{VERSION}/{PLURAL}'
    assert await names(all_wls) == ['a', 'b', 'c', 'd']
    assert await names(WLS) == ['a', 'b', 'c']
    selectors = {'app=x': ['a', 'd'], 'app==x': ['a', 'd'], 'app!=x': ['b', 'c'], 'app': ['a', 'b', 'd'],
                 '!app': ['c'], 'app in (x, y)': ['a', 'b', 'd'], 'app notin (x)': ['b', 'c'],
                 'app=x,tier=web': ['a'], 'app in (x,y),!tier': ['b', 'd']}
    for selector, expected in selectors.items():
        assert await names(f'{all_wls}?labelSelector={selector}') == expected, selector
    fields = {'metadata.name=a': ['a'], 'metadata.name==b': ['b'], 'metadata.namespace!=ns': ['d'],
              'metadata.namespace=ns,metadata.name!=a': ['b', 'c']}
    for selector, expected in fields.items():
        assert await names(f'{all_wls}?fieldSelector={selector}') == expected, selector
    for param in ('fieldSelector=spec.image=x', 'labelSelector=a%20b', 'labelSelector=a%20in%20x'):
        status, error = await call(kube_api, 'GET', f'{all_wls}?{param}')
        assert (status, error['reason']) == (400, 'BadRequest'), param
    await ok(kube_api, 'POST', PODS, {'metadata': {'name': 'p'}})
    pods = await ok(kube_api, 'GET', PODS)
    assert pods['kind'] == 'PodList' and 'kind' not in pods['items'][0]  # typed lists' items
    assert [p['metadata']['name'] for p in (await ok(kube_api, 'GET', '/api/v1/pods?fieldSelector=status.phase=Pending'))['items']] == ['p']


async def test_a_list_is_served_in_pages_from_one_snapshot(kube_api: KubeAPIServer) -> None:
    for name in 'abcde':
        await ok(kube_api, 'POST', WLS, workload(name))
    first = await ok(kube_api, 'GET', f'{WLS}?limit=2')
    token, rv = first['metadata']['continue'], first['metadata']['resourceVersion']
    assert [i['metadata']['name'] for i in first['items']] == ['a', 'b'] and first['metadata']['remainingItemCount'] == 3
    await ok(kube_api, 'POST', WLS, workload('f'))  # after the first page: not in this list (the watch brings it)
    await ok(kube_api, 'DELETE', f'{WLS}/e')
    second = await ok(kube_api, 'GET', f'{WLS}?limit=2&continue={token}')
    third = await ok(kube_api, 'GET', f'{WLS}?limit=2&continue={second["metadata"]["continue"]}')
    assert [i['metadata']['name'] for i in second['items'] + third['items']] == ['c', 'd', 'e']
    assert 'continue' not in third['metadata'] and second['metadata']['resourceVersion'] == rv
    status, error = await call(kube_api, 'GET', f'{WLS}?limit=2&continue={token}')  # used up, or compacted away
    assert (status, error['reason']) == (410, 'Expired')
    assert len((await ok(kube_api, 'GET', f'{WLS}?limit=0'))['items']) == 5  # 0: no limit


async def test_kopf_lists_in_the_operators_pages(kube_api: KubeAPIServer) -> None:
    for i in range(5):
        await ok(kube_api, 'POST', WLS, workload(f'w{i}'))
    async with kopf_connected(kube_api) as settings:
        settings.watching.chunk_size = 2
        chunks = [chunk async for chunk in fetching.fetch_objs(settings=settings, resource=WORKLOADS,
                                                                namespace='ns', logger=logging.getLogger('test'))]
    assert [[item['metadata']['name'] for item in items] for items, _ in chunks] == [['w0', 'w1'], ['w2', 'w3'], ['w4']]
    assert len({rv for _, rv in chunks}) == 1


async def test_namespaces_are_cluster_scoped(kube_api: KubeAPIServer) -> None:
    created = await ok(kube_api, 'POST', '/api/v1/namespaces', {'metadata': {'name': 'team', 'namespace': 'x'}})
    assert 'namespace' not in created['metadata'] and created['status'] == {'phase': 'Active'}
    listed = await ok(kube_api, 'GET', '/api/v1/namespaces')
    assert [n['metadata']['name'] for n in listed['items']] == ['team']
    assert (await ok(kube_api, 'GET', '/api/v1/namespaces/team'))['metadata']['uid'] == created['metadata']['uid']
    assert len(kube_api.writes('namespaces')) == 1


# ------------------------------------------------------------------ 9. watch

async def test_watch_from_list_resource_version_misses_nothing(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', WLS, workload('a'))
    listed = await ok(kube_api, 'GET', WLS)
    await ok(kube_api, 'POST', WLS, workload('b'))
    await ok(kube_api, 'PATCH', f'{WLS}/a', {'spec': {'image': 'x'}}, MERGE)
    await ok(kube_api, 'DELETE', f'{WLS}/b')
    events = await watch(kube_api, f'{WLS}?watch=true&resourceVersion={listed["metadata"]["resourceVersion"]}', count=3)
    assert brief(events) == [('ADDED', 'b'), ('MODIFIED', 'a'), ('DELETED', 'b')]
    rvs = [int(e['object']['metadata']['resourceVersion']) for e in events]
    assert rvs == sorted(rvs) and rvs[-1] == kube_api.resource_version
    # And live: the stream goes on with the next writes.
    async with asyncio.timeout(5), kube_api.get(f'{WLS}?watch=1&resourceVersion={rvs[-1]}') as response:
        await ok(kube_api, 'PATCH', f'{WLS}/a', {'spec': {'image': 'y'}}, MERGE)
        line = await response.content.readline()
    assert json.loads(line)['object']['spec']['image'] == 'y'


async def test_watch_without_resource_version_starts_with_added(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', WLS, workload('a'))
    await ok(kube_api, 'POST', WLS, workload('b'))
    for query in ('watch=true', 'watch=1&resourceVersion=0'):
        events = await watch(kube_api, f'{WLS}?{query}', count=2)
        assert brief(events) == [('ADDED', 'a'), ('ADDED', 'b')]
    events = await watch(kube_api, f'{WLS}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true'
                                   '&resourceVersionMatch=NotOlderThan', count=3)
    assert [e['type'] for e in events] == ['ADDED', 'ADDED', 'BOOKMARK']
    assert events[2]['object']['metadata'] == {'resourceVersion': str(kube_api.resource_version),
                                               'annotations': {'k8s.io/initial-events-end': 'true'}}


async def test_watch_from_compacted_history_expires(kube_api: KubeAPIServer) -> None:
    created = await ok(kube_api, 'POST', WLS, workload())
    await ok(kube_api, 'PATCH', f'{WLS}/w', {'spec': {'image': 'x'}}, MERGE)
    await kube_api.compact()
    events = await watch(kube_api, f'{WLS}?watch=true&resourceVersion={created["metadata"]["resourceVersion"]}')
    assert len(events) == 1 and events[0]['type'] == 'ERROR'  # ...and the stream ended
    error = events[0]['object']
    assert (error['kind'], error['code'], error['reason'], error['status']) == ('Status', 410, 'Expired', 'Failure')
    # Watching from the current revision still works.
    now = kube_api.resource_version
    await ok(kube_api, 'PATCH', f'{WLS}/w', {'spec': {'image': 'y'}}, MERGE)
    assert brief(await watch(kube_api, f'{WLS}?watch=true&resourceVersion={now}', count=1)) == [('MODIFIED', 'w')]


async def test_watch_selectors_turn_matching_changes_into_added_and_deleted(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', WLS, workload('a', metadata={'labels': {'team': 'x'}}))
    await ok(kube_api, 'POST', WLS, workload('b'))
    since = kube_api.resource_version
    await ok(kube_api, 'PATCH', f'{WLS}/b', {'metadata': {'labels': {'team': 'x'}}}, MERGE)
    await ok(kube_api, 'PATCH', f'{WLS}/a', {'metadata': {'labels': {'team': None}}}, MERGE)
    await ok(kube_api, 'PATCH', f'{WLS}/a', {'spec': {'image': 'unseen'}}, MERGE)
    await ok(kube_api, 'PATCH', f'{WLS}/b', {'spec': {'image': 'seen'}}, MERGE)
    events = await watch(kube_api, f'{WLS}?watch=true&labelSelector=team%3Dx&resourceVersion={since}', count=3)
    assert brief(events) == [('ADDED', 'b'), ('DELETED', 'a'), ('MODIFIED', 'b')]
    assert events[1]['object']['metadata']['labels'] == {'team': 'x'}  # the last matching content
    assert events[1]['object']['metadata']['resourceVersion'] == str(since + 2)
    events = await watch(kube_api, f'{WLS}?watch=true&fieldSelector=metadata.name%3Da&resourceVersion={since}', count=2)
    assert brief(events) == [('MODIFIED', 'a'), ('MODIFIED', 'a')]


async def test_watch_timeout_seconds_ends_the_stream(kube_api: KubeAPIServer) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await watch(kube_api, f'{WLS}?watch=true&timeoutSeconds=1', timeout=3) == []
    assert 0.9 < loop.time() - started < 2.5


async def test_watch_bookmarks_when_idle(kube_api: KubeAPIServer) -> None:
    kube_api.bookmark_interval = 0.05
    rv = kube_api.resource_version
    events = await watch(kube_api, f'{WLS}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true', count=2)
    assert [(e['type'], e['object']['metadata']['resourceVersion']) for e in events] == [('BOOKMARK', str(rv))] * 2


async def test_kopf_lists_then_watches_from_the_list_resource_version(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', WLS, workload('a'))
    await ok(kube_api, 'POST', WLS, workload('b'))
    async with kopf_connected(kube_api) as settings:
        logger = logging.getLogger('test')
        chunks = [chunk async for chunk in fetching.fetch_objs(settings=settings, resource=WORKLOADS,
                                                                namespace='ns', logger=logger)]
        (items, list_rv), = chunks
        assert sorted(item['metadata']['name'] for item in items) == ['a', 'b']
        await ok(kube_api, 'PATCH', f'{WLS}/a/status', {'status': {'state': 'Running'}}, MERGE)
        await ok(kube_api, 'POST', WLS, workload('c'))
        await ok(kube_api, 'DELETE', f'{WLS}/b')
        pause = asyncio.get_running_loop().create_future()
        stream = watching.watch_objs(settings=settings, resource=WORKLOADS, namespace='ns', since=list_rv,
                                     operator_pause_waiter=pause)
        seen = []
        async with asyncio.timeout(5):
            async for event in stream:
                seen.append(event)
                if len(seen) == 3:
                    break
        await stream.aclose()
        assert brief(seen) == [('MODIFIED', 'a'), ('ADDED', 'c'), ('DELETED', 'b')]
        assert seen[0]['object']['status'] == {'state': 'Running'}
        # A compaction between kopf's list and its watch: kopf gets the 410 and returns to re-list.
        continuous = watching.continuous_watch(settings=settings, resource=WORKLOADS, namespace='ns',
                                               operator_pause_waiter=pause)
        async with asyncio.timeout(5):
            listed = [event async for event in _until_listed(continuous)]
            assert sorted(event['object']['metadata']['name'] for event in listed) == ['a', 'c']
            await ok(kube_api, 'PATCH', f'{WLS}/c', {'spec': {'image': 'x'}}, MERGE)
            await kube_api.compact()
            rest = [event async for event in continuous]  # ends by itself: no WatchingError
        assert rest == []
        pause.cancel()


async def _until_listed(stream: AsyncIterator[Any]) -> AsyncIterator[dict[str, Any]]:
    async for event in stream:
        if event is watching.Bookmark.LISTED:
            return
        yield event


# ------------------------------------------------------------------ 10. errors are Status objects

async def test_errors_are_status_objects_without_tracebacks(kube_api: KubeAPIServer) -> None:
    for method, url in (('GET', f'{WLS}/missing'), ('GET', '/apis/unknown.dev/v1/namespaces/ns/things'),
                        ('GET', '/apis/unknown.dev/v1'), ('GET', '/not/an/api'), ('POST', f'{WLS}/w'),
                        ('GET', f'/apis/{GROUP}/{VERSION}/{PLURAL}/w')):
        status, error = await call(kube_api, method, url)
        assert error['kind'] == 'Status' and error['apiVersion'] == 'v1' and error['status'] == 'Failure', url
        assert error['code'] == status and status in (404, 405), url
        assert error['reason'] in ('NotFound', 'MethodNotAllowed') and 'traceback' not in json.dumps(error).lower()
    status, error = await call(kube_api, 'GET', f'{WLS}/missing')
    assert error['details'] == {'name': 'missing', 'group': GROUP, 'kind': PLURAL}


# ------------------------------------------------------------------ 11. counting & injecting

async def test_writes_and_injected_errors(kube_api: KubeAPIServer) -> None:
    created = await ok(kube_api, 'POST', WLS, workload())
    await ok(kube_api, 'PATCH', f'{WLS}/w/status', {'status': {'n': 1}}, MERGE)
    kube_api.inject_error(409, 'try again', method='PATCH', resource=PLURAL, subresource='status', name='w')
    rv = kube_api.resource_version
    status, error = await call(kube_api, 'PATCH', f'{WLS}/w/status', {'status': {'n': 2}}, MERGE)
    assert (status, error['reason'], error['message']) == (409, 'Conflict', 'try again')
    assert kube_api.resource_version == rv  # the injected failure changed nothing
    assert (await ok(kube_api, 'PATCH', f'{WLS}/w/status', {'status': {'n': 3}}, MERGE))['status'] == {'n': 3}
    kube_api.inject_error(500, method='PATCH', resource=PLURAL, subresource=None, count=2)
    assert [(await call(kube_api, 'PATCH', f'{WLS}/w', {}, MERGE))[0] for _ in range(3)] == [500, 500, 200]
    assert len(kube_api.writes(PLURAL, subresource='status')) == 3
    assert len(kube_api.writes(PLURAL, subresource=None, methods=['PATCH'])) == 3
    assert len(kube_api.writes(PLURAL, name='w')) == 6 and len(kube_api.writes(PLURAL)) == 7
    assert len(kube_api.writes('pods')) == 0
    assert kube_api.objects[kube_api.resource(GROUP, VERSION, PLURAL), 'ns', 'w']['metadata']['uid'] == created['metadata']['uid']


# ------------------------------------------------------------------ 12. concurrency

async def test_concurrent_writes_keep_versions_and_events_consistent(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', WLS, workload())
    start = kube_api.resource_version
    await asyncio.gather(*(ok(kube_api, 'PATCH', f'{WLS}/w/status', {'status': {f'k{i}': i}}, MERGE)
                           for i in range(30)),
                         *(ok(kube_api, 'POST', WLS, workload(f'x{i}')) for i in range(10)))
    assert kube_api.resource_version == start + 40
    events = await watch(kube_api, f'{WLS}?watch=true&resourceVersion={start}', count=40)
    rvs = [int(e['object']['metadata']['resourceVersion']) for e in events]
    assert rvs == list(range(start + 1, start + 41))
    final = await ok(kube_api, 'GET', f'{WLS}/w')
    assert final['status'] == {f'k{i}': i for i in range(30)}
    history = kube_api.objects[kube_api.resource(GROUP, VERSION, PLURAL), 'ns', 'w'].history
    assert len({version['metadata']['resourceVersion'] for version in history}) == len(history) == 31


# ------------------------------------------------------------------ 13. what kubectl asks for

# The Accept headers of kubectl 1.32, as `kubectl -v=8` shows them.
KUBECTL_DISCOVERY = ('application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,'
                     'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json')
KUBECTL_GET = ('application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,'
               'application/json')
KUBECTL_TYPED = 'application/vnd.kubernetes.protobuf,application/json'
WORKLOAD_COLUMNS = ['Name', 'State', 'Type', 'Ready', 'Attempts', 'Reason', 'Age', 'Message']


async def fetch(api: KubeAPIServer, url: str, accept: str) -> tuple[int, str, Any]:
    async with api.get(url, headers={'Accept': accept, 'User-Agent': 'kubectl/v1.32.4 (linux/amd64)'}) as response:
        return response.status, response.headers['Content-Type'], await response.json(content_type=None)


async def test_discovery_as_kubectl_asks_for_it(kube_api: KubeAPIServer) -> None:
    # Aggregated discovery is not served: the answer is the legacy kind, as plain JSON, which kubectl then uses.
    status, content_type, api = await fetch(kube_api, '/api?timeout=32s', KUBECTL_DISCOVERY)
    assert (status, content_type.split(';')[0], api['kind'], api['versions']) == (200, 'application/json',
                                                                                  'APIVersions', ['v1'])
    status, content_type, apis = await fetch(kube_api, '/apis?timeout=32s', KUBECTL_DISCOVERY)
    assert (status, content_type.split(';')[0], apis['kind']) == (200, 'application/json', 'APIGroupList')
    groups = {group['name']: group for group in apis['groups']}
    assert set(groups) == {GROUP, 'events.k8s.io', 'coordination.k8s.io'}
    assert groups[GROUP]['preferredVersion'] == {'groupVersion': f'{GROUP}/{VERSION}', 'version': VERSION}
    # Each resource list names its own groupVersion; the short name `mlwl` is the main resource's only.
    short_names: list[tuple[str, str]] = []
    for group_version in ['v1', *(version['groupVersion'] for g in groups.values() for version in g['versions'])]:
        url = '/api/v1' if group_version == 'v1' else f'/apis/{group_version}'
        status, _, listed = await fetch(kube_api, f'{url}?timeout=32s', 'application/json, */*')
        assert (status, listed['groupVersion']) == (200, group_version)
        short_names += [(name, res['name']) for res in listed['resources'] for name in res.get('shortNames', [])]
    assert [res for name, res in short_names if name == 'mlwl'] == ['workloads']


async def test_discovery_prefers_the_highest_priority_version(kube_api: KubeAPIServer) -> None:
    kube_api.register_crd({
        'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition',
        'spec': {'group': 'x.dev', 'scope': 'Namespaced', 'names': {'plural': 'things', 'kind': 'Thing'},
                 'versions': [{'name': name, 'served': True, 'storage': name == 'v1'}
                              for name in ('v1alpha1', 'v2beta1', 'v1', 'v1beta2', 'v1beta1')]}})
    group = await ok(kube_api, 'GET', '/apis/x.dev')
    assert [v['version'] for v in group['versions']] == ['v1', 'v2beta1', 'v1beta2', 'v1beta1', 'v1alpha1']
    assert group['preferredVersion']['version'] == 'v1'
    listed = await ok(kube_api, 'GET', '/apis/x.dev/v1beta2')
    assert listed['resources'] == [{'name': 'things', 'singularName': 'thing', 'namespaced': True, 'kind': 'Thing',
                                    'verbs': ['create', 'delete', 'deletecollection', 'get', 'list', 'patch',
                                              'update', 'watch']}]


async def test_get_as_a_table_from_the_crds_printer_columns(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', WLS, workload('a', spec={'image': 'x', 'type': 'service'}))
    await ok(kube_api, 'PATCH', f'{WLS}/a/status', {'status': {'state': 'running', 'attempts': 2,
                                                                'message': 'hi', 'podsReady': '1/2'}}, MERGE)
    await ok(kube_api, 'POST', WLS, workload('b'))
    status, content_type, table = await fetch(kube_api, f'{WLS}?limit=500', KUBECTL_GET)
    assert (status, content_type) == (200, 'application/json;as=Table;v=v1;g=meta.k8s.io')
    assert (table['kind'], table['apiVersion']) == ('Table', 'meta.k8s.io/v1')
    assert table['metadata'] == {'resourceVersion': str(kube_api.resource_version)}
    definitions = table['columnDefinitions']
    assert [c['name'] for c in definitions] == WORKLOAD_COLUMNS
    assert [c['type'] for c in definitions] == ['string', 'string', 'string', 'string', 'integer', 'string', 'date', 'string']
    assert [c['priority'] for c in definitions] == [0, 0, 0, 0, 0, 0, 0, 1] and definitions[0]['format'] == 'name'
    (a, b) = table['rows']
    assert a['cells'][:6] == ['a', 'running', 'service', '1/2', 2, None] and a['cells'][7] == 'hi'
    assert re.fullmatch(r'\d+s', a['cells'][6])  # the Age: creationTimestamp as a duration
    assert b['cells'][:6] == ['b', None, None, None, None, None]
    assert a['object']['kind'] == 'PartialObjectMetadata' and a['object']['apiVersion'] == 'meta.k8s.io/v1'
    assert a['object']['metadata']['name'] == 'a' and 'spec' not in a['object']
    # One object; v1beta1 when only that is asked for; the whole object, or none, by ?includeObject=.
    status, _, one = await fetch(kube_api, f'{WLS}/a', KUBECTL_GET)
    assert [row['cells'][0] for row in one['rows']] == ['a']
    assert one['metadata']['resourceVersion'] == a['object']['metadata']['resourceVersion']
    _, content_type, beta = await fetch(kube_api, f'{WLS}/a', 'application/json;as=Table;v=v1beta1;g=meta.k8s.io')
    assert beta['apiVersion'] == 'meta.k8s.io/v1beta1' and content_type.endswith('v=v1beta1;g=meta.k8s.io')
    _, _, whole = await fetch(kube_api, f'{WLS}?includeObject=Object', KUBECTL_GET)
    assert whole['rows'][0]['object']['spec'] == {'image': 'x', 'type': 'service'}
    _, _, bare = await fetch(kube_api, f'{WLS}?includeObject=None', KUBECTL_GET)
    assert all('object' not in row for row in bare['rows'])
    # Clients that do not ask for a Table get the objects, as before.
    _, _, listed = await fetch(kube_api, WLS, 'application/json')
    assert listed['kind'] == 'WorkloadList'
    status, _, error = await fetch(kube_api, WLS, 'application/vnd.kubernetes.protobuf')
    assert (status, error['kind'], error['reason']) == (406, 'Status', 'NotAcceptable')


async def test_watch_as_a_table_sends_the_column_definitions_once(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', WLS, workload('a'))
    since = kube_api.resource_version
    await ok(kube_api, 'PATCH', f'{WLS}/a/status', {'status': {'state': 'queued'}}, MERGE)
    await ok(kube_api, 'DELETE', f'{WLS}/a')
    events = []
    async with asyncio.timeout(5), kube_api.get(f'{WLS}?resourceVersion={since}&watch=true',
                                                headers={'Accept': KUBECTL_GET}) as response:
        assert response.headers['Content-Type'] == 'application/json;as=Table;v=v1;g=meta.k8s.io'
        while len(events) < 2:
            events.append(json.loads(await response.content.readline()))
    assert [event['type'] for event in events] == ['MODIFIED', 'DELETED']
    assert [c['name'] for c in events[0]['object']['columnDefinitions']] == WORKLOAD_COLUMNS
    assert events[1]['object']['columnDefinitions'] is None
    assert [event['object']['rows'][0]['cells'][:2] for event in events] == [['a', 'queued'], ['a', 'queued']]


async def test_pods_and_events_have_columns_of_their_own(kube_api: KubeAPIServer) -> None:
    await ok(kube_api, 'POST', PODS, {'metadata': {'name': 'p'}, 'spec': {'containers': [{'name': 'a'}, {'name': 'b'}]}})
    containers = [{'name': 'a', 'ready': True, 'restartCount': 1, 'state': {'running': {}}},
                  {'name': 'b', 'ready': False, 'restartCount': 2, 'state': {'waiting': {'reason': 'CrashLoopBackOff'}}}]
    await ok(kube_api, 'PATCH', f'{PODS}/p/status', {'status': {'phase': 'Running', 'containerStatuses': containers}},
             MERGE)
    _, _, table = await fetch(kube_api, PODS, KUBECTL_GET)
    assert [(c['name'], c['priority']) for c in table['columnDefinitions']] == [
        ('Name', 0), ('Ready', 0), ('Status', 0), ('Restarts', 0), ('Age', 0), ('IP', 1), ('Node', 1)]
    assert table['rows'][0]['cells'][:4] == ['p', '1/2', 'CrashLoopBackOff', '3']
    await ok(kube_api, 'POST', '/api/v1/namespaces/ns/events', {
        'metadata': {'name': 'e'}, 'involvedObject': {'kind': 'Workload', 'name': 'w'}, 'type': 'Normal',
        'reason': 'Created', 'message': 'hello', 'lastTimestamp': '2000-01-01T00:00:00Z'})
    _, _, table = await fetch(kube_api, '/api/v1/namespaces/ns/events', KUBECTL_GET)
    assert [c['name'] for c in table['columnDefinitions'] if not c['priority']] == [
        'Last Seen', 'Type', 'Reason', 'Object', 'Message']
    assert re.fullmatch(r'\d+y\d*d?', table['rows'][0]['cells'][0])
    assert table['rows'][0]['cells'][1:5] == ['Normal', 'Created', 'workload/w', 'hello']
    # The others: the server's default columns.
    await ok(kube_api, 'POST', '/api/v1/namespaces', {'metadata': {'name': 'ns'}})
    _, _, table = await fetch(kube_api, '/api/v1/namespaces', KUBECTL_GET)
    assert [c['name'] for c in table['columnDefinitions']] == ['Name', 'Created At']
    assert table['rows'][0]['cells'][0] == 'ns' and TIMESTAMP.match(table['rows'][0]['cells'][1])


async def test_events_of_one_object_as_kubectl_describe_lists_them(kube_api: KubeAPIServer) -> None:
    ours = await ok(kube_api, 'POST', WLS, workload('a'))
    uid = ours['metadata']['uid']
    involved = [{'kind': 'Workload', 'name': 'a', 'namespace': 'ns', 'uid': uid},
                {'kind': 'Workload', 'name': 'a', 'namespace': 'ns', 'uid': 'an-older-a'},
                {'kind': 'Pod', 'name': 'a', 'namespace': 'ns', 'uid': uid},
                {'kind': 'Workload', 'name': 'b', 'namespace': 'ns', 'uid': uid}]
    for n, obj in enumerate(involved):
        await ok(kube_api, 'POST', '/api/v1/namespaces/ns/events',
                 {'metadata': {'name': f'e{n}'}, 'involvedObject': obj, 'reason': 'R', 'message': f'{n}'})
    selector = f'involvedObject.name%3Da%2CinvolvedObject.namespace%3Dns%2CinvolvedObject.kind%3DWorkload%2C' \
               f'involvedObject.uid%3D{uid}'
    status, _, events = await fetch(kube_api, f'/api/v1/namespaces/ns/events?fieldSelector={selector}&limit=500',
                                    KUBECTL_TYPED)
    assert (status, events['kind']) == (200, 'EventList')
    assert [event['metadata']['name'] for event in events['items']] == ['e0']
