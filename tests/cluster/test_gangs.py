"""Gangs on a real API server: the shared scenarios (its own validation of hostnames, subdomains and headless
Services; graceful deletion of pods on a node, confirmed by the kubelet the test plays)."""

from tests.gangs import *  # noqa: F403
