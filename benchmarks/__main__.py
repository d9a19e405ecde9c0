"""``python -m benchmarks [NAME ...]``: run the benchmarks, print the figures, write the results.

Exits 0 when the benchmarks ran, whether or not their targets were met (they are reports);
non-zero only when a benchmark itself crashed or an unknown name was given.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks import REGISTRY, RESULTS_DIR, Benchmark, Run, logger, report

# Importing a module registers its benchmarks, in this order.
MODULES = [
    "benchmarks.b0_baseline",
    "benchmarks.b1_slots",
    "benchmarks.b2_engine",
    "benchmarks.b3_providers",
    "benchmarks.b4_fanout",
    "benchmarks.b5_race",
    "benchmarks.b6_scale_out",
    "benchmarks.b7_computed_slots",
    "benchmarks.b8_push",
]


def load() -> list[str]:
    """Import the benchmark modules; returns the problems of those that failed to import."""
    import importlib

    problems = []
    for module in MODULES:
        try:
            importlib.import_module(module)
        except Exception as exc:  # e.g. the product does not import: report it, run the rest
            problems.append(f"{module}: {type(exc).__name__}: {exc}")
            sys.stderr.write(traceback.format_exc())
    return problems


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def metadata(names: list[str], started: datetime.datetime, seconds: float) -> dict[str, Any]:
    return {
        "date": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "git_commit": git_commit(),
        "benchmarks": names,
    }


def run_one(item: Benchmark) -> Run:
    run = Run(item.name, item.title)
    report(f"{item.name} — {item.title}")
    started = time.perf_counter()
    try:
        item.run(run)
    except Exception as exc:
        run.error = f"{type(exc).__name__}: {exc}"
        report(f"{item.name} CRASHED: {run.error}")
        logger.debug("%s", traceback.format_exc())
        sys.stderr.write(traceback.format_exc())
    run.seconds = time.perf_counter() - started
    verdict = {True: "all targets met", False: "targets missed", None: "no targets"}[run.passed]
    if run.error is not None:
        verdict = "crashed"
    report(f"{item.name} done in {run.seconds:.1f} s: {verdict}")
    return run


def write_json(path: Path, runs: list[Run], meta: dict[str, Any], *, keep_others: bool = False) -> None:
    """``keep_others``: benchmarks not run now keep their entries from the file's earlier run,
    each marked with that run's date, so running a few does not wipe the others' figures."""
    results = {run.name: run.as_dict() for run in runs}
    if keep_others and path.exists():
        try:
            earlier = json.loads(path.read_text())
        except ValueError:
            earlier = {}
        date = earlier.get("metadata", {}).get("date")
        for name, entry in earlier.get("benchmarks", {}).items():
            if name not in results:
                results[name] = {**entry, "from_run": entry.get("from_run", date)}
        results = {name: results[name] for name in sorted(results, key=benchmark_order)}
    document = {"metadata": meta, "benchmarks": results}
    path.write_text(json.dumps(finite(document), indent=2, allow_nan=False, default=str) + "\n")


def benchmark_order(name: str) -> tuple[int, str]:
    """B0, B1, ... B10 in number order."""
    digits = "".join(character for character in name if character.isdigit())
    return (int(digits) if digits else 1_000, name)


def finite(value: Any) -> Any:
    """NaN and infinities become null: strict JSON for any reader."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def write_chart(path: Path, runs: list[Run], meta: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(runs), 1, figsize=(10, 4.2 * len(runs)), squeeze=False)
    for ax, run in zip(axes[:, 0], runs, strict=True):
        plotter = REGISTRY[run.name].plot
        if run.error is not None:
            ax.text(0.5, 0.5, f"{run.name} crashed:\n{run.error[:200]}", ha="center", va="center", wrap=True)
            ax.set_axis_off()
        elif plotter is not None:
            plotter(ax, run)
        else:
            default_plot(ax, run)
    figure.suptitle(f"Kokous benchmarks {meta['date']} · Python {meta['python']} · {meta['cpu_count']} CPUs")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def default_plot(ax: Any, run: Run) -> None:
    """Every figure in milliseconds as a horizontal bar, coloured by its verdict."""
    figures = [figure for figure in run.figures if figure.unit == "ms"]
    colours = {True: "#55a868", False: "#c44e52", None: "#4c72b0"}
    ax.barh(
        [figure.name for figure in figures],
        [figure.value for figure in figures],
        color=[colours[f.passed] for f in figures],
    )
    ax.set_xlabel("ms")
    ax.set_title(f"{run.name} {run.title}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    problems = load()
    for problem in problems:
        report(f"cannot import {problem}")
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(REGISTRY)})")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR, help="folder for latest.json and latest.png")
    args = parser.parse_args(argv)
    names = [name.upper() for name in args.names] or list(REGISTRY)
    unknown = [name for name in names if name not in REGISTRY]
    if unknown:
        if problems:
            return 1
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")

    started_at = datetime.datetime.now(datetime.UTC)
    started = time.perf_counter()
    runs = [run_one(REGISTRY[name]) for name in names]
    meta = metadata(names, started_at, time.perf_counter() - started)

    args.output.mkdir(parents=True, exist_ok=True)
    write_json(args.output / "latest.json", runs, meta, keep_others=bool(args.names))
    try:
        write_chart(args.output / "latest.png", runs, meta)
    except Exception as exc:  # the numbers are already saved; a chart problem is reported, not fatal
        report(f"chart not written: {type(exc).__name__}: {exc}")
        return 1
    report(f"wrote {args.output / 'latest.json'} and {args.output / 'latest.png'}")
    return 1 if problems or any(run.error is not None for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
