"""The registry's Prometheus metrics (served at `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["COUNT_EVERY_S", "CURRENT", "DELETIONS", "REGISTRATIONS"]

COUNT_EVERY_S = 30.0  # the current-count gauge is at most this old

REGISTRATIONS = Counter(
    "registry_registrations_total",
    "Registration requests (REST and servlet) by outcome: created, existing, "
    "unauthorized_url, malformed, unavailable",
    ["outcome"],
)
DELETIONS = Counter("registry_deletions_total", "DELETE requests by outcome", ["outcome"])
CURRENT = Gauge(
    "registry_subscriptions",
    f"Registrations stored in JetStream (at most {COUNT_EVERY_S:.0f} s old)",
)
