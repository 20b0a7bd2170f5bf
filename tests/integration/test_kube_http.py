"""kube.py's HTTP: the credentials are read again when the API server no longer takes them."""

from __future__ import annotations

import aiohttp.web
import kubernetes

from tests.harness import write_kubeconfig
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
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(write_kubeconfig(
            tmp_path / "kubeconfig", f"http://127.0.0.1:{runner.addresses[0][1]}", "old-token")),
            client_configuration=configuration)
        kube = Kube(kubernetes.client.ApiClient(configuration))
        kube.http._credentials(fresh=True)  # read now: the old token is cached
        configuration.refresh_api_key_hook = None
        configuration.api_key["BearerToken"] = "Bearer new-token"  # as a refresh hook would, once the old one expired
        assert await kube.core.read_namespaced_pod("p", "ml") == b'{"kind": "Pod", "metadata": {"name": "p"}}'
        await kube.close()
    finally:
        await runner.cleanup()
    assert seen == ["Bearer old-token", "Bearer new-token"]
