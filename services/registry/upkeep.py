"""Background upkeep: the current-count gauge, and the sweep of orphans that creates failed
halfway left behind (`shared.sweep.sweep_orphans`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.registry.metrics import COUNT_EVERY_S, CURRENT
from shared.bus import BusHolder
from shared.subscriptions import count_subscriptions
from shared.sweep import sweep_orphans

__all__ = ["SWEEP_EVERY_S", "Upkeep"]

SWEEP_EVERY_S = 900.0  # orphans left by failed creates are removed this often

log = logging.getLogger(__name__)


class Upkeep:
    """Counts registrations at most once a second after a change (and at least every
    `COUNT_EVERY_S`), and sweeps orphans at start and every `SWEEP_EVERY_S`."""

    def __init__(self, holder: BusHolder) -> None:
        self.holder = holder
        self._changed = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def changed(self) -> None:
        """A registration was made or ended: recount soon."""
        self._changed.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="registry-upkeep")

    async def stop(self) -> None:
        """Cancel until it is done: on 3.11, a `wait_for` inside nats-py can swallow one."""
        self._stopping = True
        task = self._task
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.05)

    async def _run(self) -> None:
        bus = await self.holder.wait()
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while not self._stopping:
            try:
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + SWEEP_EVERY_S
                    removed = await sweep_orphans(bus)
                    if removed:
                        log.info("removed %d orphans of failed registrations", removed)
                CURRENT.set(await count_subscriptions(bus))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("registry upkeep failed: %s", exc)
            self._changed.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(COUNT_EVERY_S):
                    await self._changed.wait()
            await asyncio.sleep(1.0)  # at most one count a second, however busy
