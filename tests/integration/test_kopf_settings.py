"""kopf as the operator sets it up (``configure_kopf``), seen in the requests kopf sends."""

from __future__ import annotations

from tests.harness import Cluster, Operator, wait_for
from workload_operator.handlers import LISTING_PAGE
from workload_operator.manifests import MANAGED_BY, MANAGED_BY_LABEL

from .conftest import NAMESPACE


async def test_kopf_lists_in_pages(cluster: Cluster, kube_api):
    for i in range(LISTING_PAGE + 1):  # pods with the operator's label and no Workload: listed, then left alone
        await cluster.create_foreign_pod(f"listed-{i}", labels={MANAGED_BY_LABEL: MANAGED_BY})
    operator = Operator(NAMESPACE)
    await operator.start()
    try:
        async def two_pages() -> list | None:
            found = [r for r in kube_api if r.method == "GET" and r.url.path.endswith(f"/namespaces/{NAMESPACE}/pods")
                     and r.params.get("watch") not in ("true", "1")]
            return found if len(found) >= 2 else None
        pages = await wait_for(two_pages, "two pages of pods listed")
    finally:
        await operator.stop()
    assert [page.params.get("limit") for page in pages] == [str(LISTING_PAGE)] * len(pages)
    assert "continue" not in pages[0].params and pages[1].params.get("continue")
