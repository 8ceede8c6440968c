"""Consumes room events from JetStream and POSTs them as XML to the registered callbacks."""
