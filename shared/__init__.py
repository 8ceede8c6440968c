"""What the chat, registry and dispatcher services share: events, XML, subjects, settings."""
