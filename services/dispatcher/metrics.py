"""The dispatcher's Prometheus metrics (served on `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "DELIVERIES",
    "ENDED",
    "EXPIRED",
    "LATENCY",
    "MEMBERS",
    "OLDEST",
    "PARTITIONS",
    "PARTITION_LAG",
    "REGISTRATIONS",
    "RETRIES",
    "UNREADABLE",
]

DELIVERIES = Counter(
    "dispatcher_deliveries_total",
    "POST attempts by outcome: delivered (200), refused (other status), unreachable (no answer)",
    ["outcome"],
)
RETRIES = Counter("dispatcher_retries_total", "Retries of callbacks that did not answer")
ENDED = Counter(
    "dispatcher_registrations_ended_total",
    "Registrations ended by the dispatcher, by reason (status, unreachable)",
    ["reason"],
)
EXPIRED = Counter(
    "dispatcher_events_expired_total",
    "Times a registration's next events had aged out of the stream before it received them "
    "(it goes on with the oldest event still held)",
)
LATENCY = Histogram(
    "dispatcher_delivery_seconds",
    "From event stored in JetStream to callback answered 200",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UNREADABLE = Counter(
    "dispatcher_unreadable_registrations_total",
    "Entries of the registrations bucket that are not registrations (skipped)",
)
REGISTRATIONS = Gauge("dispatcher_registrations", "Registrations this replica serves")
PARTITIONS = Gauge("dispatcher_partitions", "Partitions of the rooms this replica serves")
MEMBERS = Gauge("dispatcher_replicas", "Live dispatcher replicas as this replica sees them")
PARTITION_LAG = Gauge(
    "dispatcher_partition_lag",
    "Stream sequences between the tail and the partition's watermark (0: every registration "
    "of the partition has received everything the tail has read)",
    ["partition"],
)
OLDEST = Gauge(
    "dispatcher_oldest_undelivered_seconds",
    "Age of the oldest event in hand and not yet answered 200, over this replica's registrations",
)

for _outcome in ("delivered", "refused", "unreachable"):
    DELIVERIES.labels(_outcome)  # exported as 0 from the start
for _reason in ("status", "unreachable"):
    ENDED.labels(_reason)
