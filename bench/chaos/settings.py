"""The chaos run's knobs, each from the environment with a default (docs/reliability.md)."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ChaosSettings"]


@dataclass(frozen=True, slots=True)
class ChaosSettings:
    seconds: float  # CHAOS_SECONDS: how long faults are injected
    seed: int  # CHAOS_SEED: the fault schedule's and the clients' seed (random if unset)
    min_faults: int  # CHAOS_MIN_FAULTS: fewer injected fails the run
    interval_s: float  # CHAOS_FAULT_INTERVAL_S: mean time between faults
    spread: bool  # CHAOS_SPREAD_ROOMS: one room's clients on different chat replicas
    rooms: int  # CHAOS_ROOMS
    users: int  # CHAOS_USERS: client slots per room
    pause_s: float  # CHAOS_PAUSE_S: mean pause between a client's messages
    receivers: int  # CHAOS_RECEIVERS: callback receivers; each room is registered at each
    register_every_s: float  # CHAOS_REGISTER_EVERY_S: one more registration this often
    settle_s: float  # CHAOS_SETTLE_S: longest wait for deliveries to finish after the faults

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ChaosSettings:
        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise SystemExit(f"{name}={raw!r} is not a number") from None
            if value < 0:
                raise SystemExit(f"{name}={raw!r} must not be negative")
            return value

        spread = env.get("CHAOS_SPREAD_ROOMS", "true").strip().lower()
        if spread not in ("true", "false", "1", "0", "yes", "no"):
            raise SystemExit(f"CHAOS_SPREAD_ROOMS={spread!r} is not true or false")
        settings = cls(
            seconds=number("CHAOS_SECONDS", 300),
            seed=int(number("CHAOS_SEED", random.SystemRandom().randrange(1 << 31))),
            min_faults=int(number("CHAOS_MIN_FAULTS", 50)),
            interval_s=number("CHAOS_FAULT_INTERVAL_S", 4),
            spread=spread in ("true", "1", "yes"),
            rooms=int(number("CHAOS_ROOMS", 4)),
            users=int(number("CHAOS_USERS", 3)),
            pause_s=number("CHAOS_PAUSE_S", 1),
            receivers=int(number("CHAOS_RECEIVERS", 2)),
            register_every_s=number("CHAOS_REGISTER_EVERY_S", 20),
            settle_s=number("CHAOS_SETTLE_S", 90),
        )
        if min(settings.seconds, settings.interval_s, settings.rooms, settings.users) <= 0:
            raise SystemExit("CHAOS_SECONDS, CHAOS_FAULT_INTERVAL_S, CHAOS_ROOMS, CHAOS_USERS > 0")
        if settings.receivers < 1 or settings.register_every_s <= 0:
            raise SystemExit("CHAOS_RECEIVERS >= 1 and CHAOS_REGISTER_EVERY_S > 0")
        return settings
