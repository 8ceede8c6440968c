"""Websocket chat for web clients; every accepted room event goes onto NATS."""
