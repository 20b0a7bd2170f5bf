"""A cluster for development and tests: kmock's API emulator taught real API-server behaviour, a real
control plane from envtest binaries when they are given, and a simulated kubelet.

Needs the `dev` extra (kmock; cryptography for the real control plane): `pip install '.[dev]'`.
"""
