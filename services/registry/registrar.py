"""Registering a callback, as the REST call and the VolanoChat servlet both do it: the
whitelist check, the store, and the counting."""

from __future__ import annotations

from dataclasses import dataclass

from services.registry.metrics import REGISTRATIONS
from services.registry.prefix import PrefixList, Url
from services.registry.upkeep import Upkeep
from shared.bus import Bus
from shared.since import Since
from shared.subscriptions import Subscription, create_subscription

__all__ = ["Registrar"]


@dataclass(frozen=True, slots=True)
class Registrar:
    bus: Bus
    prefixes: PrefixList
    replicas: int  # NATS_REPLICAS, for the objects a registration creates
    upkeep: Upkeep

    def admits(self, url: str | Url) -> bool:
        """Whether `EVENT_CALLBACK_PREFIX` admits `url` (a refusal is counted)."""
        if self.prefixes.admits(url):
            return True
        REGISTRATIONS.labels("unauthorized_url").inc()
        return False

    async def register(
        self, room: str, url: str, since: Since | None = None
    ) -> tuple[Subscription, bool]:
        """Store the registration of an admitted URL (starting at `since` if given and new);
        returns it and whether it is new."""
        sub, created = await create_subscription(self.bus, room, url, self.replicas, since)
        REGISTRATIONS.labels("created" if created else "existing").inc()
        if created:
            self.upkeep.changed()
        return sub, created
