"""The spec model: defaults, and a clear message naming the field for every bad input."""

import pytest

from workload_operator.lifecycle import InvalidSpec, WorkloadType, parse_spec


def test_defaults():
    spec = parse_spec({"image": "python:3.12"})
    assert spec.type is WorkloadType.BATCH
    assert (spec.command, spec.args, spec.env) == ([], [], [])
    assert (spec.max_attempts, spec.priority, spec.cancel) == (3, 0, False)
    assert spec.active_deadline_seconds is None and spec.ttl_seconds_after_finished is None
    assert spec.automount_service_account_token is False
    assert spec.readiness_path is None  # the probe asks "/": no default in the schema, where a server would store it


def test_a_gpu_training_job_passes_through():
    spec = parse_spec({
        "image": "ghcr.io/acme/train:1.4",
        "command": ["python", "train.py"],
        "args": ["--epochs", "3"],
        "env": [{"name": "WANDB_MODE", "value": "offline"}],
        "resources": {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"nvidia.com/gpu": 2, "memory": "16Gi"}},
        "maxAttempts": 5, "activeDeadlineSeconds": 3600, "ttlSecondsAfterFinished": 600, "priority": 10,
    })
    assert spec.resources.limits == {"nvidia.com/gpu": 2, "memory": "16Gi"}
    assert spec.env[0].name == "WANDB_MODE"


def test_a_service_needs_a_port():
    assert parse_spec({"image": "vllm/vllm-openai", "type": "service", "port": 8000, "readinessPath": "/health"}).port == 8000
    with pytest.raises(InvalidSpec, match="port is required for type: service"):
        parse_spec({"image": "jupyter/base-notebook", "type": "service"})
    with pytest.raises(InvalidSpec, match="port is only used by type: service"):
        parse_spec({"image": "python", "port": 80})


@pytest.mark.parametrize(("spec", "expected"), [
    ({}, "spec.image or a container named main in spec.template.spec.containers is required"),
    (None, "spec.image or a container named main in spec.template.spec.containers is required"),
    ({"image": ""}, "spec.image: String should have at least 1 character"),
    ({"image": "has space"}, "spec.image: String should match pattern"),
    ({"image": "x" * 600}, "spec.image: String should have at most 512 characters"),
    ({"image": 42}, "spec.image: Input should be a valid string"),
    ({"image": "a", "type": "cron"}, "spec.type: Input should be 'batch' or 'service'"),
    ({"image": "a", "maxAttempts": 0}, "spec.maxAttempts: Input should be greater than or equal to 1"),
    ({"image": "a", "maxAttempts": "many"}, "spec.maxAttempts: Input should be a valid integer"),
    ({"image": "a", "activeDeadlineSeconds": -5}, "spec.activeDeadlineSeconds: Input should be greater than or equal to 1"),
    ({"image": "a", "ttlSecondsAfterFinished": -1}, "spec.ttlSecondsAfterFinished: Input should be greater than or equal to 0"),
    ({"image": "a", "priority": 10**6}, "spec.priority: Input should be less than or equal to 1000"),
    ({"image": "a", "cancel": "please"}, "spec.cancel: Input should be a valid boolean"),
    ({"image": "a", "command": "python train.py"}, "spec.command: Input should be a valid list"),
    ({"image": "a", "args": ["x" * 5000]}, "spec.args.0: String should have at most 4096 characters"),
    ({"image": "a", "env": [{"name": "1BAD"}]}, "spec.env.0.name: String should match pattern"),
    ({"image": "a", "env": [{"value": "x"}]}, "spec.env.0.name: Field required"),
    ({"image": "a", "resources": {"limits": {"nvidia.com/gpu": "lots"}}},
     "spec.resources.limits.nvidia.com/gpu: 'lots' is not a resource quantity"),
    ({"image": "a", "resources": {"limits": {"cpu": -1}}}, "spec.resources.limits.cpu: -1 is not a resource quantity"),
    ({"image": "a", "port": 0, "type": "service"}, "spec.port: Input should be greater than or equal to 1"),
    ({"image": "a", "readinessPath": "health"}, "spec.readinessPath: String should match pattern '^/'"),
    ({"image": "a", "imagePullPolicy": "Always"}, "spec.imagePullPolicy: unknown field"),
])
def test_bad_input_is_refused_naming_the_field(spec, expected):
    with pytest.raises(InvalidSpec) as refused:
        parse_spec(spec)
    assert expected in str(refused.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(InvalidSpec) as refused:
        parse_spec({"maxAttempts": 0, "bogus": True})
    assert str(refused.value).count(";") == 2


@pytest.mark.parametrize(("resources", "expected"), [
    ({"limits": {"nvidia.com/gpu": "0.5"}}, "resources.limits.nvidia.com/gpu must be a whole number"),
    ({"requests": {"nvidia.com/gpu": 1}}, "resources.limits.nvidia.com/gpu must be set and equal to the request"),
    ({"requests": {"nvidia.com/gpu": 2}, "limits": {"nvidia.com/gpu": 1}}, "must be set and equal to the request"),
])
def test_devices_are_whole_and_not_overcommitted(resources, expected):
    with pytest.raises(InvalidSpec, match=expected):
        parse_spec({"image": "a", "resources": resources})


def test_devices_with_equal_request_and_limit_and_divisible_cpu_pass():
    spec = parse_spec({"image": "a", "resources": {"requests": {"nvidia.com/gpu": 1, "cpu": "500m"},
                                                   "limits": {"nvidia.com/gpu": "1"}}})
    assert spec.resources.requests["cpu"] == "500m"
