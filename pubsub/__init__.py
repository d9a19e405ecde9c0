"""Live-update pub/sub: a supervised hub over broadcaster backends (memory, Redis, PostgreSQL)."""

from pubsub.hub import EventHub, HubStats, PubSubUnavailable

__all__ = ["EventHub", "HubStats", "PubSubUnavailable"]
