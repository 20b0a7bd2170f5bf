"""kube.py's HTTP: the credentials are read again when the API server no longer takes them."""

from __future__ import annotations

import aiohttp.web
import kubernetes

from tests.harness import client_configuration, stand_in_api
from workload_operator.kube import Kube


async def test_a_401_is_tried_again_with_the_configurations_current_credentials(tmp_path):
    seen = []

    async def pods(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != "Bearer new-token":
            return aiohttp.web.json_response({"kind": "Status", "code": 401}, status=401)
        return aiohttp.web.json_response({"kind": "Pod", "metadata": {"name": "p"}})

    app = aiohttp.web.Application()
    app.router.add_get("/api/v1/namespaces/{namespace}/pods/{name}", pods)
    async with stand_in_api(app, tmp_path, "old-token") as kubeconfig:
        configuration = client_configuration(kubeconfig)
        kube = Kube(kubernetes.client.ApiClient(configuration))
        kube.http._credentials(fresh=True)  # read now: the old token is cached
        configuration.refresh_api_key_hook = None
        configuration.api_key["BearerToken"] = "Bearer new-token"  # as a refresh hook would, once the old one expired
        assert await kube.core.read_namespaced_pod("p", "ml") == b'{"kind": "Pod", "metadata": {"name": "p"}}'
        await kube.close()
    assert seen == ["Bearer old-token", "Bearer new-token"]
