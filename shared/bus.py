"""The NATS connection and the JetStream objects all services agree on (docs/operations.md).

`EVENTS_STREAM` holds every room event on `volano.events.<room-token>.<kind>`, kept by age and
size (`EVENTS_MAX_AGE_S`, `EVENTS_MAX_BYTES`; the oldest go first), whoever has read it: the
dispatcher keeps its own position per registration (docs/design.md, "Delivery"), and direct
gets (`allow_direct`) let it read a room's events from any position without a consumer.
`SUBSCRIPTIONS_BUCKET` is the KV bucket of registrations, `POSITIONS_BUCKET` where each stands.

Each service connects as its own NATS user (`NATS_USER`, `NATS_PASSWORD`; anonymous without
them) with only the rights it needs (deploy/k8s/base/nats/auth.conf, docs/operations.md "NATS
users"). So `connect` makes sure only of what that service uses (`USES`), and its replies come
to an inbox of its own (`_INBOX.<service>.`), which no other user may subscribe to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, BucketNotFoundError
from nats.js.kv import KeyValue

from shared.direct import DirectReader
from shared.natsclient import Client
from shared.settings import CommonSettings
from shared.subjects import EVENT_SUBJECTS, EVENTS_STREAM

__all__ = [
    "EVERYTHING",
    "POSITIONS_BUCKET",
    "SUBSCRIPTIONS_BUCKET",
    "USES",
    "Bus",
    "BusHolder",
    "LazyBucket",
    "Uses",
    "connect",
    "events_stream_config",
]

SUBSCRIPTIONS_BUCKET = "volano_subscriptions"
POSITIONS_BUCKET = "volano_positions"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Uses:
    """What of JetStream a service uses, which `connect` makes sure of: the events stream,
    created if missing and, if `manage`, brought to the configured limits and replicas (a user
    that may create streams but not change them gets `manage=False`), and the KV `buckets`."""

    buckets: tuple[str, ...]
    manage: bool


# By service name, the identity each has on NATS (its user, connection name and inbox). The
# chat opens its own buckets itself, and never the registrations. Anything else (tests, tools,
# benchmarks) connects as an operator would and gets `EVERYTHING`.
EVERYTHING = Uses((SUBSCRIPTIONS_BUCKET, POSITIONS_BUCKET), manage=True)
USES = {
    "chat": Uses((), manage=False),
    "registry": EVERYTHING,
    "dispatcher": EVERYTHING,
}


class Bus:
    """One NATS connection with its JetStream context, the events stream and the KV buckets
    its service uses (`Uses`)."""

    def __init__(self, nc: Client, js: JetStreamContext, buckets: dict[str, KeyValue]) -> None:
        self.nc = nc
        self.js = js
        self.buckets = buckets
        self.direct = DirectReader(nc)  # batched reads of any stream, no consumer

    def bucket(self, name: str) -> KeyValue:
        try:
            return self.buckets[name]
        except KeyError:
            raise LookupError(f"bucket {name} is not one this service uses") from None

    @property
    def subscriptions(self) -> KeyValue:
        return self.bucket(SUBSCRIPTIONS_BUCKET)

    @property
    def positions(self) -> KeyValue:
        return self.bucket(POSITIONS_BUCKET)

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def close(self) -> None:
        """Drain (finish pending publishes and acks), or just close while NATS is unreachable:
        nats-py refuses to drain while it is reconnecting."""
        if self.nc.is_closed:
            return
        try:
            await self.nc.drain()
        except nats.errors.Error:
            with contextlib.suppress(Exception):  # the socket may be gone already
                await self.nc.close()


async def _on_error(exc: Exception) -> None:
    log.warning("nats error: %s", exc)


async def _on_disconnected() -> None:
    log.warning("nats disconnected")


async def _on_reconnected() -> None:
    log.info("nats reconnected")


async def connect(settings: CommonSettings, name: str) -> Bus:
    """Connect as `settings`' NATS user (retrying until NATS answers) and make sure of what
    service `name` uses (`USES`)."""
    uses = USES.get(name, EVERYTHING)
    nc = Client()
    await nc.connect(
        servers=[s.strip() for s in settings.nats_url.split(",") if s.strip()],
        name=name,
        inbox_prefix=f"_INBOX.{name}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]  # seconds; annotated int, used as float
        allow_reconnect=True,
        error_cb=_on_error,
        disconnected_cb=_on_disconnected,
        reconnected_cb=_on_reconnected,
        user=settings.nats_user or None,
        password=settings.nats_password or None,
    )
    try:
        js = nc.jetstream(timeout=5)
        await _ensure_stream(js, settings, uses.manage)
        buckets = {bucket: await _ensure_bucket(js, settings, bucket) for bucket in uses.buckets}
    except BaseException:  # a caller that retries must not leave reconnecting clients behind
        with contextlib.suppress(Exception):
            await nc.close()
        raise
    return Bus(nc, js, buckets)


def events_stream_config(settings: CommonSettings) -> StreamConfig:
    """The events stream as every service declares it. An installation made when the stream
    was kept by interest is switched to these limits by the first service that starts."""
    return StreamConfig(
        name=EVENTS_STREAM,
        subjects=[EVENT_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        num_replicas=settings.nats_replicas,
        max_age=settings.events_max_age_s,
        max_bytes=settings.events_max_bytes,
        duplicate_window=min(120.0, settings.events_max_age_s),  # may not exceed max_age
        allow_direct=True,
    )


async def _ensure_stream(js: JetStreamContext, settings: CommonSettings, manage: bool) -> None:
    config = events_stream_config(settings)
    for attempt in range(30):
        try:
            await js.add_stream(config)
            return
        except BadRequestError:  # it exists, configured otherwise
            if manage:
                await js.update_stream(config)
            return
        except Exception as exc:  # JetStream may still be electing a leader
            if attempt == 29:
                raise
            log.info("waiting for JetStream: %s", exc)
            await asyncio.sleep(1)


async def ensure_key_value(
    js: JetStreamContext, config: KeyValueConfig, manage: bool = True
) -> KeyValue:
    """Open a KV bucket, creating it if needed. Every bucket answers direct gets (reads with no
    consumer); a bucket that exists with other replicas (an operator changed `NATS_REPLICAS`)
    or without direct gets (made by an older version) has its backing stream updated, if
    `manage`: a user that may only create streams (the chat) uses it as it is and says so."""
    config.direct = True
    try:
        return await js.create_key_value(config)
    except BadRequestError:
        info = await js.stream_info(f"KV_{config.bucket}")
        if info.config.num_replicas != config.replicas or not info.config.allow_direct:
            if not manage:
                log.warning(
                    "bucket %s has %s replicas (direct gets: %s), not %s: this service may not "
                    "change it (docs/operations.md, NATS users)",
                    config.bucket,
                    info.config.num_replicas,
                    info.config.allow_direct,
                    config.replicas,
                )
                return await js.key_value(config.bucket)
            log.info("updating bucket %s: %s replicas, direct gets", config.bucket, config.replicas)
            info.config.num_replicas = config.replicas
            info.config.allow_direct = True
            await js.update_stream(info.config)
        return await js.key_value(config.bucket)


class LazyBucket:
    """A KV bucket opened on first use and then kept: one value a key, on file unless `storage`
    says otherwise, each entry expiring after `ttl` seconds if given. `open` creates it if it is
    missing (`ensure_key_value`, which updates it only if `manage`); `find` opens it only if it
    exists."""

    def __init__(
        self,
        name: str,
        *,
        storage: StorageType = StorageType.FILE,
        ttl: float | None = None,
        manage: bool = True,
    ) -> None:
        self.name = name
        self.storage = storage
        self.ttl = ttl
        self.manage = manage
        self.kv: KeyValue | None = None  # once opened

    async def open(self, js: JetStreamContext, replicas: int) -> KeyValue:
        if self.kv is None:
            config = KeyValueConfig(
                bucket=self.name, history=1, storage=self.storage, replicas=replicas, ttl=self.ttl
            )
            self.kv = await ensure_key_value(js, config, self.manage)
        return self.kv

    async def find(self, js: JetStreamContext) -> KeyValue | None:
        if self.kv is None:
            try:
                self.kv = await js.key_value(self.name)
            except BucketNotFoundError:
                return None
        return self.kv


async def _ensure_bucket(js: JetStreamContext, settings: CommonSettings, name: str) -> KeyValue:
    for attempt in range(30):
        try:
            return await LazyBucket(name).open(js, settings.nats_replicas)
        except Exception as exc:
            if attempt == 29:
                raise
            log.info("waiting for JetStream KV: %s", exc)
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


class BusHolder:
    """A service's bus, connected in the background so the process answers `/healthz` at once
    and `/readyz` only when NATS (and the stream and bucket) are there."""

    def __init__(self, settings: CommonSettings, name: str) -> None:
        self._settings = settings
        self._name = name
        self._bus: Bus | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name=f"{self._name}-nats-connect")

    async def _connect(self) -> None:
        while True:
            try:
                self._bus = await connect(self._settings, self._name)
                self._ready.set()
                return
            except Exception as exc:
                log.warning("cannot set up NATS yet: %s", exc)
                await asyncio.sleep(1)

    async def wait(self) -> Bus:
        await self._ready.wait()
        assert self._bus is not None
        return self._bus

    @property
    def bus(self) -> Bus | None:
        return self._bus

    def ready(self) -> bool:
        return self._bus is not None and self._bus.connected

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._bus is not None:
            await self._bus.close()
