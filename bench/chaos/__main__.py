"""`make chaos` (`python -m bench.chaos`): the whole system on 127.0.0.1 under random faults for
`CHAOS_SECONDS`, then one table of what was delivered, lost and reordered (docs/reliability.md).

Starts a 3-node NATS JetStream cluster with a TCP proxy in front of each node, two replicas of
each service pointed at the proxies, and the callback receivers; registers every room at every
receiver (and one more registration every `CHAOS_REGISTER_EVERY_S`); drives chat traffic; injects
the seeded faults; lets deliveries settle; reads the stream back straight from the nodes; checks.
Exits 1 if a rule was broken or too few faults were injected. Logs and the fault log stay in
var/chaos/<time>/.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import signal
import sys
import time
from pathlib import Path

from bench.chaos.check import (
    RegistrationResult,
    StreamEvent,
    check_registration,
    check_views,
    membership,
    refused_but_stored,
    stored_twice,
)
from bench.chaos.cluster import Process, nats_nodes, service
from bench.chaos.inject import Injector
from bench.chaos.proxy import Proxy
from bench.chaos.receivers import Receiver, deliveries
from bench.chaos.registrar import Registrar
from bench.chaos.report import Outcome, details, failures, table
from bench.chaos.schedule import plan
from bench.chaos.settings import ChaosSettings
from bench.chaos.stream import open_bus, read_registrations, read_stream
from bench.chaos.traffic import Traffic
from bench.stack import ROOT
from bench.util import free_port
from shared.bus import Bus
from shared.nats_binary import credentials, new_passwords

NODES = 3
QUIET_S = 3.0  # after the last POST, settled if nothing is missing


class Run:
    def __init__(self, settings: ChaosSettings, directory: Path) -> None:
        self.s = settings
        self.dir = directory
        self.token = "chaos-" + secrets.token_urlsafe(32)
        self.passwords = new_passwords()
        self.nodes, node_ports = nats_nodes(directory, NODES, self.passwords)
        self.proxies = {
            f"proxy-{i}": Proxy(f"proxy-{i}", free_port(), port)
            for i, port in enumerate(node_ports)
        }
        self.node_urls = [f"nats://127.0.0.1:{port}" for port in node_ports]
        self.receivers = [Receiver(i) for i in range(settings.receivers)]
        self.rooms = [f"chaos-{i}" for i in range(settings.rooms)]
        self.services: dict[str, Process] = {}
        self.ports: dict[str, list[int]] = {"registry": [], "dispatcher": [], "chat": []}

    def service_env(self) -> dict[str, str]:
        proxies = ",".join(f"nats://127.0.0.1:{p.port}" for p in self.proxies.values())
        return {
            "NATS_URL": proxies,
            "NATS_REPLICAS": str(NODES),
            "BIND_HOST": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            "REGISTRY_API_TOKENS": self.token,
            "EVENT_CALLBACK_PREFIX": " ".join(r.prefix for r in self.receivers),
            "CHAT_RATE_LIMIT": "0",
            "CHAT_HOST_CONNECTIONS": "0",
            "CHAT_HOST_ROOMS_PER_MINUTE": "0",
        }

    async def start(self) -> None:
        for receiver in self.receivers:
            await receiver.start()
        for proxy in self.proxies.values():
            await proxy.start()
        for node in self.nodes:
            node.start()
        await asyncio.gather(*(node.wait_healthy() for node in self.nodes))
        env = self.service_env()
        for kind in self.ports:
            for i in range(2):
                own = {**env, **credentials(kind, self.passwords)}
                process, port = service(f"{kind}-{i}", kind, own, self.dir)
                self.services[process.name] = process
                self.ports[kind].append(port)
        first = self.services["registry-0"]  # makes the stream and buckets, alone
        first.start()
        await first.wait_healthy()
        rest = [p for p in self.services.values() if p is not first]
        for process in rest:
            process.start()
        await asyncio.gather(*(p.wait_healthy() for p in rest))

    async def stop(self) -> None:
        """The services first, while NATS is there for their last words; then NATS."""
        await asyncio.gather(*(p.stop(signal.SIGTERM, 15) for p in self.services.values()))
        await asyncio.gather(*(p.stop(signal.SIGTERM, 15) for p in self.nodes))
        for proxy in self.proxies.values():
            await proxy.close()
        for receiver in self.receivers:
            receiver.close()

    async def register_more(self, registrar: Registrar, stop: asyncio.Event) -> None:
        rng = random.Random(f"{self.s.seed}-registrations")
        n = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.s.register_every_s)
            if stop.is_set():
                return
            n += 1
            receiver = rng.choice(self.receivers)
            room = rng.choice(self.rooms)
            try:
                await registrar.register(room, f"{receiver.prefix}/{room}/{n}")
            except TimeoutError as exc:  # a finding: no registry could store it for minutes
                registrar.stats["not stored in time"] += 1
                logging.warning("%s", exc)

    async def settle(
        self, bus: Bus, registrar: Registrar
    ) -> tuple[list[StreamEvent], list[RegistrationResult], int]:
        """Checks again until nothing is missing, the stream has every user out of its room
        (exits of a killed chat's users come from the other replicas, seconds later) and no
        POST came for `QUIET_S`, or until `CHAOS_SETTLE_S` is over; the last check is the
        outcome."""
        deadline = time.monotonic() + self.s.settle_s
        last_posts, quiet_since = -1, time.monotonic()
        while True:
            stream = await read_stream(bus)
            registrations = await read_registrations(bus, registrar.rooms)
            posts, unreadable = deliveries(self.receivers)
            results = [check_registration(stream, r, posts.get(r.id, [])) for r in registrations]
            count = sum(len(p) for p in posts.values())
            if count != last_posts:
                last_posts, quiet_since = count, time.monotonic()
            missing = sum(len(r.lost) for r in results) + len(membership(stream)[0])
            now = time.monotonic()
            if (missing == 0 and now - quiet_since >= QUIET_S) or now > deadline:
                return stream, results, unreadable
            await asyncio.sleep(1)

    async def run(self) -> int:
        s = self.s
        await self.start()
        registrar = Registrar(self.ports["registry"], self.token)
        for room in self.rooms:
            for receiver in self.receivers:
                await registrar.register(room, f"{receiver.prefix}/{room}/0")
        traffic = Traffic(self.ports["chat"], self.rooms, s.users, s.spread, s.pause_s, s.seed)
        faults = plan(s.seed, s.seconds, s.interval_s, list(self.services), NODES)
        processes = {**self.services, **{n.name: n for n in self.nodes}}
        injector = Injector(processes, self.proxies, self.dir / "faults.log")
        print(f"chaos: {len(faults)} faults planned over {s.seconds:.0f} s; logs in {self.dir}")
        watch = asyncio.create_task(injector.watch())
        driving = asyncio.create_task(traffic.run())
        stop_registering = asyncio.Event()
        registering = asyncio.create_task(self.register_more(registrar, stop_registering))
        await injector.run(faults, s.seconds)
        stop_registering.set()
        traffic.stop()
        await registering
        try:
            await asyncio.wait_for(driving, 60)
        except TimeoutError:
            print("chaos: clients did not all leave within 60 s", file=sys.stderr)
        bus = await open_bus(self.node_urls, NODES, credentials("admin", self.passwords))
        try:
            stream, results, unreadable = await self.settle(bus, registrar)
        finally:
            await bus.close()
        watch.cancel()
        outcome = Outcome(
            stream,
            results,
            check_views(stream, traffic.views()),
            stored_twice(stream),
            len(traffic.refused),
            refused_but_stored(stream, traffic.refused),
            unreadable,
            injector.records,
            injector.crashes,
            s.min_faults,
            {r.id: await registrar.why_ended(r.id) for r in results if r.ended},
            *membership(stream),
            traffic.ends(),
            [
                f"{log.name}: {line}"
                for log in sorted(self.dir.glob("nats-*.log"))
                for line in log.read_text(errors="replace").splitlines()
                if "Violation" in line
            ],
        )
        print(f"chaos: seed {s.seed}, spread rooms {s.spread}; clients: {dict(traffic.stats)}")
        print(f"chaos: registrations: {dict(registrar.stats)}")
        print(table(outcome))
        for line in details(outcome):
            print(line)
        broken = failures(outcome)
        for line in broken:
            print(f"FAILED: {line}")
        return 1 if broken else 0


async def main() -> int:
    settings = ChaosSettings.from_env()
    directory = ROOT / "var" / "chaos" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    directory.mkdir(parents=True)
    logging.basicConfig(filename=directory / "chaos.log", level=logging.INFO)
    run = Run(settings, directory)
    try:
        return await run.run()
    finally:
        await run.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
