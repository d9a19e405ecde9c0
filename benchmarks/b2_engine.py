"""B2 in the harness: the slot engine against a naive per-slot checker (``engine_b2`` measures)."""

from __future__ import annotations

from benchmarks import Run, benchmark
from benchmarks.engine_b2 import run as measure


@benchmark("B2", "slot engine vs a naive per-slot overlap checker (1,000 calendar-months with DST)")
def b2(run: Run) -> None:
    result = measure()
    for item in result["figures"]:
        run.figure(
            item["name"],
            float(item["value"]),
            item["unit"],
            comparison=item["comparison"],
            target=item["target"],
            passed=item["passed"] if item["target"] is not None else None,
        )
