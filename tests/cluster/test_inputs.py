"""Odd inputs on a real API server: the shared scenarios, with the server's own refusals and limits."""

from tests.inputs import *  # noqa: F403
