"""Pure slot arithmetic: standard library only, no IO, no clock (``now`` is an argument).

Time goes in and out as aware datetimes (stored in UTC); wall-clock rules are read in the
rules' IANA zone. Modules, one concept each:

* ``interval`` / ``intervals`` - the [start, end) value and its set algebra (``spans`` does the sweeps);
* ``weekly`` / ``hours`` - weekly hours and overrides, and ``open_hours`` (DST choices documented there);
* ``offsets`` - a zone's offsets sampled once so conversions are integer arithmetic;
* ``policy`` / ``bookable`` - duration, grid, buffers, notice, horizon, and ``bookable_range``;
* ``busy`` / ``grid`` / ``slots`` - ``free_slots``: one sort-and-sweep, no per-slot scans; busy time as
  Intervals or as ``MicroSpans``, integer microseconds read straight from the database;
* ``nearest`` - ``nearest_free``, the alternatives offered when a slot was just taken;
* ``coverage`` - how far busy time is kept (the longest horizon) and the time every calendar holds.
"""

from scheduling.engine.bookable import bookable_range, stable_until
from scheduling.engine.busy import MicroSpans
from scheduling.engine.hours import open_hours
from scheduling.engine.interval import Interval
from scheduling.engine.intervals import clip, intersect, merge, subtract
from scheduling.engine.nearest import nearest_free
from scheduling.engine.policy import FixedHorizon, Horizon, RollingHorizon, SlotRules
from scheduling.engine.slots import free_slots
from scheduling.engine.weekly import TimeRange, WeeklyRules

__all__ = [
    "FixedHorizon",
    "Horizon",
    "Interval",
    "MicroSpans",
    "RollingHorizon",
    "SlotRules",
    "TimeRange",
    "WeeklyRules",
    "bookable_range",
    "clip",
    "free_slots",
    "intersect",
    "merge",
    "nearest_free",
    "open_hours",
    "stable_until",
    "subtract",
]
