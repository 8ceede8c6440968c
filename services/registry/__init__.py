"""The integrators' REST API: register and unregister callbacks (SPEC §3)."""
