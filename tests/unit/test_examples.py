"""The pod built from each example, field by field; and nothing in any example's pod is for the simulation."""

import pathlib

import pytest
import yaml

from workload_operator.lifecycle import parse_spec
from workload_operator.lifecycle.decide import WorkloadView
from workload_operator.manifests import INDEX_LABEL, pod_manifest, service_manifest

EXAMPLES = {doc["metadata"]["name"]: doc for path in sorted((pathlib.Path(__file__).parents[2] / "examples").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc}


def pod_of(name: str) -> dict:
    example = EXAMPLES[name]
    view = WorkloadView.from_body({"metadata": {**example["metadata"], "namespace": "ml", "uid": "u-1"}, "spec": {}})
    return pod_manifest(view, parse_spec(example["spec"]), 1)


def container(pod: dict, name: str, group: str = "containers") -> dict:
    (found,) = [c for c in pod["spec"].get(group, []) if c["name"] == name]
    return found


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_no_example_pod_carries_simulation_settings(name):
    pod = pod_of(name)
    text = yaml.safe_dump(pod)
    assert "SIMULATE" not in text and "dev-" not in text, text


def test_vllm():
    pod = pod_of("llm")
    spec, main = pod["spec"], container(pod_of("llm"), "main")
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert {"name": "hf-cache", "persistentVolumeClaim": {"claimName": "hf-cache"}} in spec["volumes"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in spec["volumes"]
    assert main["env"] == [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}]
    assert main["volumeMounts"] == [{"name": "hf-cache", "mountPath": "/root/.cache/huggingface"},
                                    {"name": "dshm", "mountPath": "/dev/shm"}]
    assert main["resources"]["limits"] == {"memory": "24Gi", "nvidia.com/gpu": "1"}
    assert main["readinessProbe"] == {"httpGet": {"path": "/health", "port": 8000}}
    assert (spec["restartPolicy"], spec["automountServiceAccountToken"]) == ("Never", False)


def test_jupyter():
    pod = pod_of("notebook")
    spec, main = pod["spec"], container(pod, "main")
    assert spec["serviceAccountName"] == "jupyter"
    assert spec["securityContext"] == {"fsGroup": 100}
    assert spec["volumes"] == [{"name": "home", "persistentVolumeClaim": {"claimName": "notebook-home"}}]
    assert main["volumeMounts"] == [{"name": "home", "mountPath": "/home/jovyan"}]
    assert main["ports"] == [{"name": "http", "containerPort": 8888}]
    assert spec["automountServiceAccountToken"] is False


def test_training():
    pod = pod_of("train-resnet")
    spec, main, stage = pod["spec"], container(pod, "main"), container(pod, "stage-data", "initContainers")
    assert [v["name"] for v in spec["volumes"]] == ["dataset", "staged", "checkpoints", "dshm"]
    assert spec["volumes"][0]["persistentVolumeClaim"] == {"claimName": "imagenet", "readOnly": True}
    assert {"name": "staged", "mountPath": "/staged"} in stage["volumeMounts"]
    assert main["volumeMounts"] == [{"name": "staged", "mountPath": "/data"}, {"name": "checkpoints", "mountPath": "/checkpoints"},
                                    {"name": "dshm", "mountPath": "/dev/shm"}]
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert main["image"] == "ghcr.io/acme/train:1.4" and main["command"] == ["python", "train.py"]


def test_distributed_training():
    """A gang of 4: torchrun reads its options from the PET_* variables; the command names none of them."""
    example = EXAMPLES["train-ddp"]
    spec = parse_spec(example["spec"])
    view = WorkloadView.from_body({"metadata": {**example["metadata"], "namespace": "ml", "uid": "u-1"}, "spec": example["spec"]})
    pods = [pod_manifest(view, spec, 1, index) for index in range(spec.replicas)]
    assert spec.replicas == 4 and spec.success_policy == "all"
    for index, pod in enumerate(pods):
        main = container(pod, "main")
        env = {e["name"]: e.get("value") for e in main["env"]}
        assert env["PET_NNODES"] == "4" and env["PET_NODE_RANK"] == str(index)
        assert env["PET_MASTER_ADDR"] == "worker-0.train-ddp.ml.svc" and env["PET_MASTER_PORT"] == "29500"
        assert not any(arg.startswith(("--nnodes", "--node-rank", "--master")) for arg in main["command"] + main["args"])
        assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == (f"worker-{index}", "train-ddp")
        assert main["resources"]["requests"]["nvidia.com/gpu"] == main["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in pod["spec"]["volumes"]
        assert {"name": "checkpoints", "mountPath": "/checkpoints"} in main["volumeMounts"]


def test_multinode_vllm():
    """A service gang of 2: index 0 runs the Ray head and the server, index 1 joins it at MASTER_ADDR."""
    example = EXAMPLES["llm-405b"]
    spec = parse_spec(example["spec"])
    view = WorkloadView.from_body({"metadata": {**example["metadata"], "namespace": "ml", "uid": "u-1"}, "spec": example["spec"]})
    assert (spec.type, spec.replicas) == ("service", 2)
    script = spec.args[0]
    assert '"$WORKLOAD_INDEX" = 0' in script and 'ray start --address="$MASTER_ADDR:' in script
    assert "--distributed-executor-backend ray" in script and '--pipeline-parallel-size "$WORKLOAD_REPLICAS"' in script
    assert service_manifest(view, spec)["spec"]["selector"][INDEX_LABEL] == "0"  # only index 0 serves
    for index in range(2):
        pod = pod_manifest(view, spec, 1, index)
        main = container(pod, "main")
        env = {e["name"]: e.get("value") for e in main["env"]}
        assert env["MASTER_ADDR"] == "worker-0.llm-405b-gang.ml.svc" and env["WORKLOAD_INDEX"] == str(index)
        assert "exec" in main["readinessProbe"]  # the template's own probe: index 1 serves no HTTP
        assert main["resources"]["limits"]["nvidia.com/gpu"] == "8"


def test_the_kueue_example_names_its_local_queue_and_the_cluster_queue_covers_what_the_pods_request():
    documents = [doc for doc in yaml.safe_load_all(
        (pathlib.Path(__file__).parents[2] / "examples" / "kueue" / "train-gang.yaml").read_text()) if doc]
    of = {doc["kind"]: doc for doc in documents}
    workload, local, cluster = of["Workload"], of["LocalQueue"], of["ClusterQueue"]
    spec = parse_spec(workload["spec"])
    assert spec.queue_name == local["metadata"]["name"] and local["spec"]["clusterQueue"] == cluster["metadata"]["name"]
    assert local["metadata"]["namespace"] == workload["metadata"]["namespace"]
    view = WorkloadView.from_body({"metadata": {**workload["metadata"], "uid": "u-1"}, "spec": {}})
    pod = pod_manifest(view, spec, 1, 3)
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/pod-group-name"] == "train-gang-1"
    assert pod["metadata"]["annotations"]["kueue.x-k8s.io/pod-group-total-count"] == str(spec.replicas)
    # Kueue refuses to admit a pod that requests a resource its ClusterQueue does not cover.
    requested = {name for c in pod["spec"]["containers"] for name in (c.get("resources") or {}).get("requests", {})}
    (group,) = cluster["spec"]["resourceGroups"]
    assert requested <= set(group["coveredResources"])
    assert {of["ResourceFlavor"]["metadata"]["name"]} == {flavor["name"] for flavor in group["flavors"]}
