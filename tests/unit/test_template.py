"""spec.template and the short fields: how they combine into the pod, and every refusal (the README's table)."""

import pytest

from workload_operator import manifests
from workload_operator.lifecycle import InvalidSpec, parse_spec
from workload_operator.lifecycle.decide import WorkloadView
from workload_operator.lifecycle.template import structural_problems

VIEW = WorkloadView.from_body({"metadata": {"name": "llm", "namespace": "ml", "uid": "u-1"}, "spec": {}})


def pod_for(spec: dict) -> dict:
    return manifests.pod_manifest(VIEW, parse_spec(spec), 1)


def refusal(spec: dict) -> str:
    try:
        parse_spec(spec)
    except InvalidSpec as refused:
        return str(refused)
    raise AssertionError(f"accepted: {spec}")


def main_of(pod: dict) -> dict:
    (main,) = [c for c in pod["spec"]["containers"] if c["name"] == "main"]
    return main


def test_without_a_template_the_pod_is_the_short_fields_alone():
    pod = pod_for({"image": "busybox", "command": ["sh"], "env": [{"name": "A", "value": "1"}]})
    assert pod["spec"] == {
        "restartPolicy": "Never", "automountServiceAccountToken": False,
        "containers": [{"name": "main", "image": "busybox", "terminationMessagePolicy": "FallbackToLogsOnError",
                        "command": ["sh"], "env": [{"name": "A", "value": "1"}]}],
    }
    assert "annotations" not in pod["metadata"]


def test_the_template_supplies_the_pod_and_the_short_fields_fill_main():
    pod = pod_for({
        "image": "vllm/vllm-openai:v0.11.0", "type": "service", "port": 8000,
        "env": [{"name": "VLLM_PORT", "value": "8000"}],
        "resources": {"limits": {"nvidia.com/gpu": 1}},
        "template": {
            "metadata": {"labels": {"kueue.x-k8s.io/queue-name": "gpu"}, "annotations": {"team": "nlp"}},
            "spec": {
                "serviceAccountName": "vllm",
                "nodeSelector": {"nvidia.com/gpu.present": "true"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "imagePullSecrets": [{"name": "regcred"}],
                "volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": "hf-cache"}}],
                "containers": [
                    {"name": "main", "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}],
                     "volumeMounts": [{"name": "cache", "mountPath": "/root/.cache/huggingface"}],
                     "resources": {"requests": {"cpu": "4"}}},
                    {"name": "metrics", "image": "exporter:1"},
                ],
            },
        },
    })
    spec = pod["spec"]
    assert (spec["serviceAccountName"], spec["nodeSelector"], spec["imagePullSecrets"]) == (
        "vllm", {"nvidia.com/gpu.present": "true"}, [{"name": "regcred"}])
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert [c["name"] for c in spec["containers"]] == ["main", "metrics"]
    main = main_of(pod)
    assert main["image"] == "vllm/vllm-openai:v0.11.0"
    assert [e["name"] for e in main["env"]] == ["HF_TOKEN", "VLLM_PORT"]  # the template's first, then the short field's
    assert main["resources"] == {"requests": {"cpu": "4"}, "limits": {"nvidia.com/gpu": "1"}}
    assert main["ports"] == [{"name": "http", "containerPort": 8000}]
    assert main["readinessProbe"] == {"httpGet": {"path": "/", "port": 8000}}
    assert main["volumeMounts"] == [{"name": "cache", "mountPath": "/root/.cache/huggingface"}]
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "workload-operator"
    assert pod["metadata"]["annotations"] == {"team": "nlp"}
    assert (spec["restartPolicy"], spec["automountServiceAccountToken"]) == ("Never", False)
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_main_may_come_wholly_from_the_template_and_keeps_its_place_and_probe():
    pod = pod_for({"type": "service", "port": 8888, "template": {"spec": {"containers": [
        {"name": "proxy", "image": "envoy", "restartPolicy": "Always"},
        {"name": "main", "image": "jupyter", "ports": [{"containerPort": 8888}],
         "readinessProbe": {"tcpSocket": {"port": 8888}}},
    ]}}})
    assert [c["name"] for c in pod["spec"]["containers"]] == ["proxy", "main"]
    main = main_of(pod)
    assert main["image"] == "jupyter" and main["ports"] == [{"containerPort": 8888}]
    assert main["readinessProbe"] == {"tcpSocket": {"port": 8888}}
    assert main["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_without_main_in_the_template_main_is_added_first():
    pod = pod_for({"image": "train", "template": {"spec": {
        "initContainers": [{"name": "stage", "image": "busybox"}],
        "containers": [{"name": "sidecar", "image": "logs"}]}}})
    assert [c["name"] for c in pod["spec"]["containers"]] == ["main", "sidecar"]
    assert pod["spec"]["initContainers"] == [{"name": "stage", "image": "busybox"}]


def test_shm_size_mounts_a_memory_backed_empty_dir_in_every_container():
    pod = pod_for({"image": "vllm", "shmSize": "8Gi", "template": {"spec": {
        "initContainers": [{"name": "stage", "image": "busybox"}],
        "containers": [{"name": "sidecar", "image": "logs"}]}}})
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in pod["spec"]["volumes"]
    for container in [*pod["spec"]["initContainers"], *pod["spec"]["containers"]]:
        assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"], container["name"]


def test_the_operators_own_parts_hold():
    pod = pod_for({"image": "a", "automountServiceAccountToken": True, "template": {"spec": {
        "restartPolicy": "Never", "automountServiceAccountToken": True,
        "containers": [{"name": "main", "terminationMessagePolicy": "FallbackToLogsOnError"}]}}})
    assert (pod["spec"]["restartPolicy"], pod["spec"]["automountServiceAccountToken"]) == ("Never", True)


@pytest.mark.parametrize(("spec", "expected"), [
    ({"template": {"spec": {"containers": [{"name": "sidecar", "image": "x"}]}}},
     "spec.image or a container named main in spec.template.spec.containers is required"),
    ({"template": {"spec": {"containers": [{"name": "main"}]}}},
     "spec.image or a container named main in spec.template.spec.containers is required"),
    ({"image": "a", "template": {"spec": {"containers": [{"name": "main", "image": "b"}]}}},
     "spec.image and spec.template.spec.containers[main].image are both set"),
    ({"image": "a", "command": ["x"], "template": {"spec": {"containers": [{"name": "main", "command": ["y"]}]}}},
     "spec.command and spec.template.spec.containers[main].command are both set"),
    ({"image": "a", "args": ["x"], "template": {"spec": {"containers": [{"name": "main", "args": ["y"]}]}}},
     "spec.args and spec.template.spec.containers[main].args are both set"),
    ({"image": "a", "env": [{"name": "A"}], "template": {"spec": {"containers": [{"name": "main", "env": [{"name": "A"}]}]}}},
     "spec.env A and spec.template.spec.containers[main].env A are both set"),
    ({"image": "a", "resources": {"limits": {"memory": "1Gi"}},
      "template": {"spec": {"containers": [{"name": "main", "resources": {"limits": {"memory": "2Gi"}}}]}}},
     "spec.resources.limits.memory and spec.template.spec.containers[main].resources.limits.memory are both set"),
    ({"image": "a", "type": "service", "port": 80,
      "template": {"spec": {"containers": [{"name": "main", "ports": [{"name": "http", "containerPort": 81}]}]}}},
     "spec.port 80 and spec.template.spec.containers[main].ports http 81 disagree"),
    ({"image": "a", "type": "service", "port": 80, "readinessPath": "/ready",
      "template": {"spec": {"containers": [{"name": "main", "readinessProbe": {"tcpSocket": {"port": 80}}}]}}},
     "spec.readinessPath and spec.template.spec.containers[main].readinessProbe are both set"),
    ({"image": "a", "template": {"spec": {"containers": [{"name": "main", "terminationMessagePolicy": "File"}]}}},
     "spec.template.spec.containers[main].terminationMessagePolicy: the operator's own"),
    ({"image": "a", "template": {"spec": {"restartPolicy": "OnFailure"}}},
     "spec.template.spec.restartPolicy: the operator's own (Never)"),
    ({"image": "a", "template": {"spec": {"automountServiceAccountToken": True}}},
     "spec.template.spec.automountServiceAccountToken and spec.automountServiceAccountToken disagree"),
    ({"image": "a", "template": {"metadata": {"labels": {"app.kubernetes.io/managed-by": "me"}}}},
     "spec.template.metadata.labels.app.kubernetes.io/managed-by: the operator's own label"),
    ({"image": "a", "template": {"metadata": {"labels": {"ml.lifecycle.dev/workload-uid": "x"}}}},
     "spec.template.metadata.labels.ml.lifecycle.dev/workload-uid: the operator's own label"),
    ({"image": "a", "shmSize": "1Gi", "template": {"spec": {"volumes": [{"name": "dshm", "emptyDir": {}}]}}},
     "spec.shmSize and spec.template.spec.volumes dshm are both set"),
    ({"image": "a", "shmSize": "1Gi", "template": {"spec": {"containers": [
        {"name": "main", "volumeMounts": [{"name": "x", "mountPath": "/dev/shm"}]}]}}},
     "spec.shmSize and spec.template.spec.containers[main].volumeMounts /dev/shm are both set"),
    ({"image": "a", "template": {"spec": {"initContainers": [{"name": "main", "image": "b"}]}}},
     "spec.template.spec.containers: the name main is used twice"),
    ({"image": "a", "shmSize": "lots"}, "spec.shmSize: 'lots' is not a resource quantity"),
    ({"image": "a", "template": {"metadata": {"name": "mine"}}}, "spec.template.metadata.name: unknown field"),
    ({"image": "a", "template": {"spec": {"nodeName": "gpu-1"}}}, "spec.template.spec.nodeName: unknown field"),
    ({"image": "a", "template": {"spec": {"ephemeralContainers": []}}}, "spec.template.spec.ephemeralContainers: unknown field"),
    ({"image": "a", "template": "pod"}, "spec.template: must be object, not string"),
])
def test_refusals_name_the_fields(spec, expected):
    assert expected in refusal(spec)


def test_the_structural_check_types_every_field_and_refuses_unknown_ones():
    template = {"spec": {
        "volumes": [{"name": 3, "persistentVolumeClaim": {"claimName": "x", "readOnly": "yes"}}],
        "containers": [{"name": "main", "ports": [{"containerPort": "8000"}], "resources": {"limits": {"cpu": 1.5}},
                        "bogus": 1}, {"image": "x"}],
        "tolerations": {"key": "gpu"},
    }}
    assert sorted(structural_problems(template)) == sorted([
        "spec.template.spec.volumes[0].name: must be string, not integer",
        "spec.template.spec.volumes[0].persistentVolumeClaim.readOnly: must be boolean, not string",
        "spec.template.spec.containers[0].ports[0].containerPort: must be integer, not string",
        "spec.template.spec.containers[0].resources.limits.cpu: must be an integer or a string, not number",
        "spec.template.spec.containers[0].bogus: unknown field",
        "spec.template.spec.containers[1].name: required",
        "spec.template.spec.tolerations: must be array, not object",
    ])
    assert structural_problems({"spec": {"containers": [{"name": "main", "ports": [{"containerPort": 80}],
                                                         "resources": {"limits": {"cpu": 2, "memory": "1Gi"}}}]}}) == []
