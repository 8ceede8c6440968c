"""The integrators' REST API: register and unregister callbacks (docs/registry-api.md)."""
