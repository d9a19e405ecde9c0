"""The alternatives offered when a wanted slot was just taken."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime

from scheduling.engine.epoch import require_aware
from scheduling.engine.interval import Interval


def nearest_free(slots: Sequence[Interval], wanted: datetime, limit: int = 3) -> list[Interval]:
    """Up to ``limit`` slots whose start is closest to ``wanted`` (ties: the earlier), sorted by start."""
    wanted = require_aware(wanted, "wanted")
    closest = heapq.nsmallest(limit, slots, key=lambda slot: (abs(slot.start - wanted), slot.start))
    return sorted(closest, key=lambda slot: slot.start)
