"""Pod templates on a real API server (its PodSecurity admission): the shared scenarios."""

from tests.templates import *  # noqa: F403
