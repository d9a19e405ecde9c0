"""The scheduling domain: the pure engine, services, events and pub/sub."""
