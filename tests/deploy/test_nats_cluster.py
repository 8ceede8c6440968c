"""The prod overlay's NATS, run for real on this machine: three nats-server processes with the
rendered nats.conf and auth.conf (only addresses, ports and paths rewritten for 127.0.0.1; the
users' passwords made up), the services' own set-up code, as the registry's NATS user, with the
overlay's NATS_REPLICAS, the manifest's probe paths, and its preStop command taking one node out
while the stream and the KV bucket keep working."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from shared.bus import SUBSCRIPTIONS_BUCKET, connect
from shared.nats_binary import credentials, nats_server_binary, new_passwords
from shared.settings import CommonSettings
from shared.subjects import EVENTS_STREAM
from tests.conftest import free_port
from tests.deploy.kustomize import render
from tests.deploy.test_manifests import K8S, container, find, find_generated

pytestmark = pytest.mark.e2e


class Node:
    def __init__(self, index: int, directory: Path) -> None:
        self.name = f"nats-{index}"
        self.dir = directory
        self.client, self.cluster, self.monitor = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.dir / "nats.pid"


def local_config(conf: str, node: Node, nodes: list[Node]) -> str:
    """The rendered nats.conf with this machine's ports and paths instead of the pod's."""
    replacements = [
        (r"^port: 4222$", f"port: {node.client}"),
        (r"^http_port: 8222$", f"http_port: {node.monitor}"),
        (r"^(\s+)port: 6222$", rf"\g<1>port: {node.cluster}"),
        (r"^pid_file: /var/run/nats/nats\.pid$", f"pid_file: {node.pid_file}"),
        (r"^(\s+)store_dir: /data$", rf"\g<1>store_dir: {node.dir / 'data'}"),
    ]
    for pattern, replacement in replacements:
        conf, count = re.subn(pattern, replacement, conf, flags=re.M)
        assert count == 1, f"nats.conf no longer has {pattern}"
    for i, other in enumerate(nodes):
        route = f"nats://nats-{i}.nats-headless:6222"
        assert route in conf
        conf = conf.replace(route, f"nats://127.0.0.1:{other.cluster}")
    return conf


PASSWORDS = new_passwords()


@pytest.fixture
def cluster(
    tmp_path: Path,
) -> Iterator[tuple[list[Node], dict[str, str], list[str], dict[str, str]]]:
    objects = render(K8S / "overlays" / "prod")
    nats = find(objects, "StatefulSet", "nats")
    c = container(nats)
    config_map = find_generated(objects, "ConfigMap", "nats-config")["data"]
    conf = config_map["nats.conf"]
    settings = find_generated(objects, "ConfigMap", "volano-config")["data"]
    probes = {
        p: c[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    nodes = [Node(i, tmp_path / f"nats-{i}") for i in range(nats["spec"]["replicas"])]
    binary = nats_server_binary()
    for node in nodes:
        node.dir.mkdir()
        (node.dir / "nats.conf").write_text(local_config(conf, node, nodes))
        (node.dir / "auth.conf").write_text(config_map["auth.conf"])
        node.proc = subprocess.Popen(
            [binary, *c["args"][:-1], str(node.dir / "nats.conf")],
            env={"POD_NAME": node.name, **PASSWORDS},
            stdout=subprocess.DEVNULL,
            stderr=(node.dir / "log").open("wb"),
        )
    try:
        yield nodes, settings, c["lifecycle"]["preStop"]["exec"]["command"], probes
    finally:
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()


def wait_healthy(node: Node, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{node.monitor}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{node.name}{path} not healthy: {(node.dir / 'log').read_text()}")
        time.sleep(0.2)


async def retry(what: str, action: Callable[[], Awaitable[object]], within: float = 20.0) -> object:
    deadline = time.monotonic() + within
    while True:
        try:
            return await action()
        except Exception as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: {exc!r}") from exc
            await asyncio.sleep(0.5)


@pytest.mark.timeout(120)
async def test_prod_nats_forms_a_replicated_jetstream_that_survives_a_lame_duck_node(
    cluster: tuple[list[Node], dict[str, str], list[str], dict[str, str]],
) -> None:
    nodes, config, pre_stop, probes = cluster
    for node in nodes:
        for path in (probes["startupProbe"], probes["livenessProbe"]):
            await asyncio.to_thread(wait_healthy, node, path)
    # First as a one-replica installation, then as the manifest says: an operator raising
    # NATS_REPLICAS on a live installation gets the stream and the bucket scaled up.
    registry = credentials("registry", PASSWORDS)
    settings = CommonSettings(
        nats_url=",".join(f"nats://127.0.0.1:{n.client}" for n in nodes),
        nats_replicas=1,
        nats_user=registry["NATS_USER"],
        nats_password=registry["NATS_PASSWORD"],
    )
    bus = await asyncio.wait_for(connect(settings, "registry"), 60)
    await bus.close()
    settings.nats_replicas = int(config["NATS_REPLICAS"])
    bus = await asyncio.wait_for(connect(settings, "registry"), 60)
    try:
        events = await bus.js.stream_info(EVENTS_STREAM)
        kv = await bus.js.stream_info(f"KV_{SUBSCRIPTIONS_BUCKET}")
        assert events.config.num_replicas == kv.config.num_replicas == len(nodes) == 3
        for node in nodes:
            await asyncio.to_thread(wait_healthy, node, probes["readinessProbe"])

        # The manifest's preStop, as the kubelet runs it, on the node that leads the stream.
        # The client moves to the other nodes first, as lame-duck mode would make it do (over
        # lame_duck_grace_period, 10 s: too long to wait for here).
        for _ in range(150):  # streams just scaled up elect a leader and catch their peers up
            infos = [events, await bus.js.stream_info(f"KV_{SUBSCRIPTIONS_BUCKET}")]
            if all(
                i.cluster
                and i.cluster.leader
                and i.cluster.replicas
                and all(r.current for r in i.cluster.replicas)
                for i in infos
            ):
                break
            await asyncio.sleep(0.2)
            events = await bus.js.stream_info(EVENTS_STREAM)
        leader = events.cluster.leader if events.cluster else None
        victim = next(n for n in nodes if n.name == leader)
        await bus.close()
        others = [n for n in nodes if n is not victim]
        settings.nats_url = ",".join(f"nats://127.0.0.1:{n.client}" for n in others)
        bus = await asyncio.wait_for(connect(settings, "registry"), 60)
        chat = credentials("chat", PASSWORDS)
        chat_settings = settings.model_copy(
            update={"nats_user": chat["NATS_USER"], "nats_password": chat["NATS_PASSWORD"]}
        )
        chat_bus = await asyncio.wait_for(connect(chat_settings, "chat"), 60)
        assert pre_stop[0] == "nats-server" and pre_stop[1].startswith("-sl=ldm=")
        command = [nats_server_binary(), f"-sl=ldm={victim.pid_file}"]
        await asyncio.to_thread(subprocess.run, command, check=True, timeout=10)
        assert victim.proc is not None
        # With no clients left on it, a lame-duck node exits at once.
        await asyncio.to_thread(victim.proc.wait, 15)

        async def publish() -> object:
            return await chat_bus.js.publish("volano.events.k8s.chat", b"x", timeout=2)

        async def put() -> object:
            return await bus.subscriptions.put("k8s-probe", b"x")

        await retry("publish with one node gone", publish)
        await retry("KV put with one node gone", put)
        await bus.subscriptions.delete("k8s-probe")
        await chat_bus.close()
    finally:
        await bus.close()
