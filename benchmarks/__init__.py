"""Kokous benchmarks: reports of the speed bars (each a ratio measured side by side in one run), not tests.

Every benchmark is a function registered with :func:`benchmark`. It gets a :class:`Run` to
record figures on (a value, what it was compared with, the target and whether it was met) and
to keep extra data for the chart. ``python -m benchmarks [NAME ...]`` runs them, prints one
line per figure and writes ``benchmarks/results/latest.json`` and ``latest.png``.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("benchmarks")

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def report(line: str) -> None:
    """One line of the human report on standard output."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass
class Figure:
    """One measured number, optionally compared with another and checked against a target."""

    name: str
    value: float
    unit: str
    comparison: str | None = None
    target: str | None = None
    passed: bool | None = None  # None: no target (a baseline or an informative figure)
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self, benchmark: str) -> str:
        parts = []
        if self.comparison:
            parts.append(self.comparison)
        if self.target:
            verdict = "PASS" if self.passed else "FAIL"
            parts.append(f"target {self.target}: {verdict}")
        text = f"{benchmark} {self.name}: {format_value(self.value, self.unit)}"
        return f"{text} ({', '.join(parts)})" if parts else text

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": None if math.isnan(self.value) else self.value,
            "unit": self.unit,
            "comparison": self.comparison,
            "target": self.target,
            "passed": self.passed,
            **({"extra": self.extra} if self.extra else {}),
        }


def format_value(value: float, unit: str) -> str:
    if math.isnan(value):
        return f"n/a {unit}".rstrip()
    if float(value).is_integer() or unit == "req/s" or abs(value) >= 100:
        number = f"{value:,.0f}"
    elif abs(value) >= 10:
        number = f"{value:.1f}"
    else:
        number = f"{value:.2f}"
    return f"{number} {unit}".rstrip()


@dataclass
class Run:
    """What one benchmark recorded: figures (printed as they come), notes and chart data."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chart: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def figure(
        self,
        name: str,
        value: float,
        unit: str,
        *,
        comparison: str | None = None,
        target: str | None = None,
        passed: bool | None = None,
        **extra: Any,
    ) -> Figure:
        if target is not None and passed is None:
            raise ValueError("a figure with a target needs passed=True/False")
        item = Figure(name, value, unit, comparison, target, passed, dict(extra))
        self.figures.append(item)
        report(item.line(self.name))
        return item

    def note(self, text: str) -> None:
        """A remark printed under the figures and kept in the JSON (e.g. what was measured how)."""
        self.notes.append(text)
        report(f"{self.name}   note: {text}")

    @property
    def passed(self) -> bool | None:
        """False if the run crashed or any target was missed; None if it has no targets."""
        if self.error is not None:
            return False
        verdicts = [figure.passed for figure in self.figures if figure.passed is not None]
        return all(verdicts) if verdicts else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "passed": self.passed,
            "error": self.error,
            "seconds": round(self.seconds, 2),
            "figures": [figure.as_dict() for figure in self.figures],
            "notes": self.notes,
            "data": self.chart,
        }


BenchmarkFunction = Callable[[Run], None]
PlotFunction = Callable[[Any, Run], None]  # (matplotlib Axes, run)


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    run: BenchmarkFunction
    plot: PlotFunction | None = None


REGISTRY: dict[str, Benchmark] = {}


def benchmark(
    name: str, title: str, *, plot: PlotFunction | None = None
) -> Callable[[BenchmarkFunction], BenchmarkFunction]:
    """Register ``function`` as benchmark ``name`` (e.g. ``"B0"``); runs in registration order."""

    def register(function: BenchmarkFunction) -> BenchmarkFunction:
        key = name.upper()
        if key in REGISTRY:
            raise ValueError(f"benchmark {key} is registered twice")
        REGISTRY[key] = Benchmark(key, title, function, plot)
        return function

    return register
