"""A fix for kopf's start-up with many objects, applied when the handlers are loaded.

kopf holds back every object's handlers until every index is filled. Each object listed at start-up gets a
toggle in one ``ToggleSet`` and a worker that indexes it, drops its toggle and waits for the set to be all on,
on the set's one ``asyncio.Condition``. kopf 1.45 wakes every waiting worker whenever a toggle is added or
dropped, though only the set's overall state decides whether any of them may go on: N objects listed cost N²
wake-ups. Restarted on 5,000 finished Workloads and their pods, the operator took 215 s of CPU to settle
(docs/performance.md, "A restart's cost: from the square of what it lists to linear").

Here the set wakes its waiters only when its overall state changes, which is all that their predicates (and
kopf's ``ToggleSet.wait_for``) read; a single toggle's own waiters are woken by ``Toggle.turn_to`` as before,
which adding or dropping a toggle does not affect. Should kopf's ToggleSet move or change shape, it is left
alone (with a warning): the operator then starts as slowly as kopf does, and as correctly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

try:
    from kopf._cogs.aiokits import aiotoggles  # kopf's private module: guarded
except ImportError:  # pragma: no cover - a kopf that moved it
    aiotoggles = None  # type: ignore[assignment]


async def _make_toggle(self: Any, __val: bool = False, *, name: str | None = None) -> aiotoggles.Toggle:
    toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
    async with self._condition:
        before = self.is_on()
        self._toggles.add(toggle)
        if self.is_on() != before:
            self._condition.notify_all()
    return toggle


async def _drop_toggle(self: Any, toggle: aiotoggles.Toggle) -> None:
    await _drop_toggles(self, (toggle,))


async def _drop_toggles(self: Any, toggles: Iterable[aiotoggles.Toggle]) -> None:
    async with self._condition:
        before = self.is_on()
        self._toggles.difference_update(toggles)
        if self.is_on() != before:
            self._condition.notify_all()


def wake_index_waiters_once() -> bool:
    """Make kopf's ToggleSet wake its waiters on a change of its overall state only; whether it could."""
    toggle_set = getattr(aiotoggles, "ToggleSet", None)
    probe = toggle_set(all) if toggle_set is not None and hasattr(aiotoggles, "Toggle") else None
    if probe is None or not all(hasattr(probe, name) for name in (
            "_condition", "_toggles", "is_on", "make_toggle", "drop_toggle", "drop_toggles")) \
            or not isinstance(probe._toggles, set):
        logger.warning("kopf's ToggleSet has moved or changed: its start-up wake-ups are left as they are")
        return False
    toggle_set.make_toggle = _make_toggle        # type: ignore[method-assign]
    toggle_set.drop_toggle = _drop_toggle        # type: ignore[method-assign]
    toggle_set.drop_toggles = _drop_toggles      # type: ignore[method-assign]
    return True
