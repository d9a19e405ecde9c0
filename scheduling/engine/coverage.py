"""How far busy time is kept, and which part of a window is known (slots only where it is).

One number decides both the longest horizon a page may have and the range the sync keeps
fetched, so a page can never offer time the cache was never asked about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_HORIZON_DAYS = 365
MAX_HORIZON = timedelta(days=MAX_HORIZON_DAYS)
# Kept beyond a page's last bookable day: the owner's zone, buffers and the minutes between two
# refreshes never push a bookable slot past what was fetched.
MARGIN = timedelta(days=3)
PAST = timedelta(days=1)
MAX_AHEAD = MAX_HORIZON + MARGIN


@dataclass(frozen=True)
class Known:
    """The part of time whose busy time every counted calendar holds (None: nothing is known)."""

    start: datetime | None
    end: datetime | None

    def covers(self, start: datetime, end: datetime) -> bool:
        return self.start is not None and self.end is not None and self.start <= start and end <= self.end


def known_range(ranges: list[tuple[datetime | None, datetime | None]]) -> Known | None:
    """Where every calendar's fetched range overlaps; None when no calendar counts."""
    if not ranges:
        return None
    starts = [start for start, _ in ranges]
    ends = [end for _, end in ranges]
    if any(start is None for start in starts) or any(end is None for end in ends):
        return Known(start=None, end=None)
    return Known(start=max(s for s in starts if s is not None), end=min(e for e in ends if e is not None))
