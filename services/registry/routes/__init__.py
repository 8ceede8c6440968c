"""The registry's routes, one module per group: `subscriptions` (the REST API), `servlet`
(VolanoChat's call) and `health` (probes and metrics)."""
