"""Set algebra on sorted ``(start, end)`` pairs of any ordered type (datetimes or epoch seconds).

One implementation serves both the public :class:`Interval` functions and the slot engine's
integer sweep. Every function takes and returns *normalised* lists: sorted, half-open, and with
a real gap between neighbours (touching spans are joined). Each is a single linear sweep.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar


class Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __le__(self, other: Any, /) -> bool: ...


T = TypeVar("T", bound=Ordered)


def merge_spans(spans: Iterable[tuple[T, T]]) -> list[tuple[T, T]]:
    """The union of any spans (unsorted, overlapping, touching; empty ones are dropped), normalised."""
    merged: list[tuple[T, T]] = []
    for start, end in sorted(spans):
        if not start < end:
            continue
        if merged and start <= merged[-1][1]:
            if merged[-1][1] < end:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def subtract_spans(base: Sequence[tuple[T, T]], remove: Sequence[tuple[T, T]]) -> list[tuple[T, T]]:
    """``base`` minus ``remove``; a removed span may cover several base spans."""
    result: list[tuple[T, T]] = []
    first, count = 0, len(remove)
    for start, end in base:
        while first < count and remove[first][1] <= start:
            first += 1  # ends before this and (base being sorted) every later base span
        cursor, index = start, first
        while index < count and remove[index][0] < end:
            cut_start, cut_end = remove[index]
            if cursor < cut_start:
                result.append((cursor, cut_start))
            if cursor < cut_end:
                cursor = cut_end
            if not cursor < end:
                break
            index += 1
        if cursor < end:
            result.append((cursor, end))
    return result


def intersect_spans(a: Sequence[tuple[T, T]], b: Sequence[tuple[T, T]]) -> list[tuple[T, T]]:
    """Instants in both ``a`` and ``b``."""
    result: list[tuple[T, T]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        a_start, a_end = a[i]
        b_start, b_end = b[j]
        start = b_start if a_start < b_start else a_start
        end = a_end if a_end < b_end else b_end
        if start < end:
            result.append((start, end))
        if a_end < b_end:
            i += 1
        else:
            j += 1
    return result


def clip_spans(spans: Sequence[tuple[T, T]], start: T, end: T) -> list[tuple[T, T]]:
    """The parts of ``spans`` inside [start, end)."""
    return intersect_spans(spans, [(start, end)]) if start < end else []
