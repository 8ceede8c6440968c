"""The three services: chat, registry and dispatcher."""
