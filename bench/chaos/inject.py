"""Carries out the chaos run's fault schedule against the running processes and proxies.

Each fault waits for its time, then for its group's turn (`schedule.group`: one chat, one
registry, one dispatcher and one NATS node down at a time; each proxy one fault at a time), is
injected, held, and undone: a killed process is started again and waited for until healthy. A
fault whose turn comes after the run's end is dropped, uncounted. Meanwhile `watch` restarts any
process that died with no fault on it, and counts that as a crash: a finding, not a fault.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.chaos.cluster import Process
from bench.chaos.proxy import Proxy
from bench.chaos.schedule import Fault, group

__all__ = ["Injector", "Record"]

SIGNALS = {"sigkill": signal.SIGKILL, "sigterm": signal.SIGTERM, "nats-kill": signal.SIGKILL}


@dataclass
class Record:
    """One fault as it happened, in unix seconds."""

    kind: str
    target: str
    start: float
    end: float = 0.0
    note: str = ""


class Injector:
    def __init__(self, processes: dict[str, Process], proxies: dict[str, Proxy], log: Path) -> None:
        self.processes = processes
        self.proxies = proxies
        self.log = log
        self.records: list[Record] = []
        self.injected: Counter[str] = Counter()
        self.crashes: list[Record] = []
        self._locks: dict[str, asyncio.Lock] = {}
        self._ending = False

    async def run(self, faults: list[Fault], seconds: float) -> None:
        """Injects `faults` over `seconds`, then waits for every fault under way to be undone."""
        start = asyncio.get_running_loop().time()
        tasks = [asyncio.create_task(self._one(fault, start)) for fault in faults]
        await asyncio.sleep(seconds)
        self._ending = True
        await asyncio.gather(*tasks)

    async def watch(self) -> None:
        """Restarts any process that died on its own; runs until cancelled."""
        while True:
            await asyncio.sleep(1)
            for name, process in self.processes.items():
                lock = self._lock(group(name))
                if process.alive or lock.locked():
                    continue
                async with lock:
                    if process.alive:
                        continue
                    record = Record("crash", name, time.time(), note=f"exit {process.exit_code}")
                    self.crashes.append(record)
                    self._write(record, "died on its own; starting it again")
                    await self._restart(process, record)
                    record.end = time.time()

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def _one(self, fault: Fault, start: float) -> None:
        await asyncio.sleep(max(0.0, start + fault.at - asyncio.get_running_loop().time()))
        async with self._lock(group(fault.target)):
            if self._ending:
                return
            record = Record(fault.kind, fault.target, time.time())
            self.records.append(record)
            self.injected[fault.kind] += 1
            self._write(record, f"hold {fault.hold:.1f} s")
            if fault.kind == "proxy-cut":
                record.note = f"{self.proxies[fault.target].cut()} connections"
            elif fault.kind == "proxy-stall":
                proxy = self.proxies[fault.target]
                proxy.stall(True)
                await asyncio.sleep(fault.hold)
                proxy.stall(False)
            else:
                process = self.processes[fault.target]
                code = await process.stop(SIGNALS[fault.kind])
                record.note = f"exit {code}"
                await asyncio.sleep(fault.hold)
                await self._restart(process, record)
            record.end = time.time()
            self._write(record, f"undone {record.note}")

    async def _restart(self, process: Process, record: Record) -> None:
        for attempt in range(3):
            process.start()
            try:
                await process.wait_healthy()
                return
            except (RuntimeError, TimeoutError) as exc:
                record.note += f"; restart {attempt} failed: {exc}"
                await process.stop(signal.SIGKILL)

    def _write(self, record: Record, what: str) -> None:
        with self.log.open("a") as out:
            out.write(f"{time.time():.3f} {record.kind} {record.target}: {what}\n")
