"""The start grid: instants whose local wall clock is a whole number of increments after local midnight.

Counted on the wall clock, not in elapsed time, so with a 15-minute increment starts fall on :00,
:15, :30 and :45 local every day: across DST changes, at half-hour offsets (Asia/Kolkata) and
across a 30-minute DST shift (Australia/Lord_Howe). The grid restarts at each local midnight, so
an increment that does not divide the day still starts every day at 00:00.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from scheduling.engine.epoch import DAY
from scheduling.engine.offsets import OffsetTable


def grid_runs(table: OffsetTable, step: int, spans: Sequence[tuple[int, int]], duration: int) -> list[range]:
    """Grid starts ``s`` with ``start <= s`` and ``s + duration <= end`` in each span, in epoch seconds.

    Returned as sorted runs of evenly spaced instants (one per span, offset and local day), which
    callers walk with one timedelta addition per slot instead of one time-zone conversion.
    """
    runs: list[range] = []
    changes, offsets = table.changes, table.offsets
    for span_start, span_end in spans:
        stop = span_end - duration + 1  # starts lie in [span_start, stop)
        start = span_start
        index = bisect_right(changes, start)
        while start < stop:
            offset = offsets[index]
            piece_stop = min(stop, changes[index]) if index < len(changes) else stop
            local, local_stop = start + offset, piece_stop + offset
            midnight = local - local % DAY
            while midnight < local_stop:
                first = max(local, midnight)
                first += -(first - midnight) % step
                last = min(local_stop, midnight + DAY)
                if first < last:
                    runs.append(range(first - offset, last - offset, step))
                midnight += DAY
            start, index = piece_stop, index + 1
    return runs
