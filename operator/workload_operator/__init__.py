"""A Kubernetes operator for the lifecycle of ML workloads."""

GROUP = "ml.lifecycle.dev"
VERSION = "v1alpha1"
PLURAL = "workloads"
KIND = "Workload"
