"""Ownership on a real API server: the shared scenarios (uid preconditions and owner references as the
server itself enforces them)."""

from tests.ownership import *  # noqa: F403
