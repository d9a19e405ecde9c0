"""A clock a test moves by hand, for the server's services (the tests' "now" until moved)."""

from __future__ import annotations

from datetime import datetime, timedelta


class MovableClock:
    """Fixed at ``now`` until the test moves it: caches grow old, backoffs pass, without waiting."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
