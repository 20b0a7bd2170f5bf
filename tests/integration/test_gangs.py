"""Gangs on the emulated tier: the shared scenarios (tests/gangs.py)."""

from tests.gangs import *  # noqa: F403  (the shared scenarios run on this tier too)
