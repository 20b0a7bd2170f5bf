"""kopf's start-up gate, as the operator runs it (kopf_startup.py, applied when the handlers are loaded): the
workers waiting for every index to be filled wake when the gate opens, not once per object indexed."""

from __future__ import annotations

import asyncio
import types

from kopf._cogs.aiokits import aiotoggles

import workload_operator.handlers  # noqa: F401  (loading the handlers applies the fix)
from workload_operator import kopf_startup

OBJECTS = 300  # listed at start-up: one toggle and one waiting worker each


class CountingToggleSet(aiotoggles.ToggleSet):
    """Counts how often the set's state is read: each waiter reads it once per wake-up."""

    def __init__(self, fn) -> None:
        super().__init__(fn)
        self.reads = 0

    def is_on(self) -> bool:
        self.reads += 1
        return super().is_on()


async def test_workers_waiting_for_the_indexes_wake_when_the_last_one_is_filled_not_once_per_object():
    indexed = CountingToggleSet(all)
    toggles = [await indexed.make_toggle(name=f"object-{i}") for i in range(OBJECTS)]
    waiters = [asyncio.create_task(indexed.wait_for(True)) for _ in range(OBJECTS)]
    await asyncio.sleep(0)

    for toggle in toggles[:-1]:  # every object indexed but one: nobody may go on yet
        await indexed.drop_toggle(toggle)
        await asyncio.sleep(0)
    assert not any(waiter.done() for waiter in waiters)
    await indexed.drop_toggle(toggles[-1])
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)

    # Each toggle made and dropped reads the state twice, and each waiter twice (waiting, then woken): 6 per
    # object. Woken on every change, the waiters would read it about OBJECTS² times (90,300 here without the fix).
    assert indexed.reads <= 6 * OBJECTS


async def test_a_set_that_turns_off_again_wakes_those_waiting_for_off():
    paused = aiotoggles.ToggleSet(any)  # as kopf's operator_paused: on while any toggle is on
    holder = await paused.make_toggle(True, name="peer")
    waiter = asyncio.create_task(paused.wait_for(False))
    await asyncio.sleep(0)
    assert not waiter.done()
    await paused.make_toggle(False, name="another")  # no change of state: still on
    await asyncio.sleep(0)
    assert not waiter.done()
    await paused.drop_toggle(holder)
    await asyncio.wait_for(waiter, timeout=5)
    await holder.turn_to(False)  # a dropped toggle no longer counts
    assert paused.is_off()


def test_a_kopf_whose_toggle_set_moved_is_left_alone(monkeypatch, caplog):
    monkeypatch.setattr(kopf_startup, "aiotoggles", types.SimpleNamespace())  # a kopf without it
    assert kopf_startup.wake_index_waiters_once() is False
    assert "left as they are" in caplog.text
