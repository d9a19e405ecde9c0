"""When a visitor may book at all: from now plus the minimum notice to the end of the horizon."""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduling.engine.epoch import DAY, floor_seconds, from_seconds, require_aware
from scheduling.engine.interval import Interval
from scheduling.engine.offsets import OffsetTable, day_number, offset_at
from scheduling.engine.policy import FixedHorizon, SlotRules
from scheduling.engine.weekly import WeeklyRules


def _day_start(rules: WeeklyRules, day: int) -> int:
    """The first instant of a local day (the first after the gap, should midnight not exist)."""
    midnight = day * DAY
    return OffsetTable.around(rules.zone, midnight).to_utc(midnight, latest=False)


def bookable_range(rules: WeeklyRules, slot_rules: SlotRules, now: datetime) -> Interval | None:
    """[now + minimum notice, horizon end), within the fixed dates if any; None when that is empty.

    Dates are read in the rules' zone: "60 days ahead" ends at the page's local midnight.
    """
    now = require_aware(now, "now")
    earliest = now + timedelta(minutes=slot_rules.minimum_notice)
    horizon = slot_rules.horizon
    if isinstance(horizon, FixedHorizon):
        earliest = max(earliest, from_seconds(_day_start(rules, day_number(horizon.first))))
        last_day = day_number(horizon.last)
    else:
        instant = floor_seconds(now)
        today = (instant + offset_at(rules.zone, instant)) // DAY
        last_day = today + horizon.days
    end = from_seconds(_day_start(rules, last_day + 1))
    return Interval(earliest, end) if earliest < end else None


def stable_until(rules: WeeklyRules, slot_rules: SlotRules, now: datetime, slots: list[Interval]) -> datetime | None:
    """The first instant after ``now`` at which the mere passing of time changes these slots.

    With busy time and rules unchanged, slots change only when the first one falls inside the
    minimum notice, or (rolling horizon) when the next local day opens at the far end. None
    means never (a fixed horizon and no slots left).
    """
    now = require_aware(now, "now")
    moments: list[datetime] = []
    if slots:
        # A slot stays while now + notice <= its start, so it goes one tick after that instant.
        moments.append(slots[0].start - timedelta(minutes=slot_rules.minimum_notice, microseconds=-1))
    if not isinstance(slot_rules.horizon, FixedHorizon):
        instant = floor_seconds(now)
        today = (instant + offset_at(rules.zone, instant)) // DAY
        moments.append(from_seconds(_day_start(rules, today + 1)))
    later = [moment for moment in moments if moment > now]
    return min(later) if later else None
