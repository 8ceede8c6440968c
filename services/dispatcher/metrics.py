"""The dispatcher's Prometheus metrics (served on `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["DELIVERIES", "ENDED", "LAG", "LATENCY", "MEMBERS", "RETRIES", "WORKERS"]

DELIVERIES = Counter(
    "dispatcher_deliveries_total",
    "POST attempts by outcome: delivered (200), refused (other status), unreachable (no answer)",
    ["outcome"],
)
RETRIES = Counter("dispatcher_retries_total", "Retries of callbacks that did not answer")
ENDED = Counter(
    "dispatcher_registrations_ended_total",
    "Registrations ended by the dispatcher, by reason (status, unreachable, no consumer)",
    ["reason"],
)
LATENCY = Histogram(
    "dispatcher_delivery_seconds",
    "From event stored in JetStream to callback answered 200",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
WORKERS = Gauge("dispatcher_workers", "Registrations this replica is serving")
MEMBERS = Gauge("dispatcher_replicas", "Live dispatcher replicas as this replica sees them")
LAG = Gauge(
    "dispatcher_consumer_lag",
    "Events not yet delivered (num_pending + num_ack_pending) summed over the consumers this "
    "replica serves, sampled every DISPATCH_LAG_SAMPLE_S",
)
