"""Seasonal periods: configured as durations, used by models as a number of model steps."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

# A period must span at least this many model steps to describe a shape within it.
MIN_SEASON_STEPS = 2
# A period is kept only when the history contains this many full cycles of it.
MIN_CYCLES = 2


def describe_duration(seconds: float) -> str:
    """Format a duration for notes and logs, e.g. ``7 d``, ``12 h`` or ``90 s``."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def season_steps(
    season_seconds: Sequence[int], step: pd.Timedelta, n_steps: int
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Convert periods to model steps and keep those the history contains at least twice.

    Returns the kept periods in steps, ascending, and one note per dropped period. A period
    that is not a whole number of steps is rounded to the nearest step.
    """
    step_seconds = step.total_seconds()
    kept: list[int] = []
    notes: list[str] = []
    for seconds in sorted(set(season_seconds)):
        steps = round(seconds / step_seconds)
        period = describe_duration(seconds)
        if steps < MIN_SEASON_STEPS:
            notes.append(
                f"season of {period} dropped: it spans fewer than {MIN_SEASON_STEPS} model steps "
                f"of {describe_duration(step_seconds)}"
            )
        elif n_steps < MIN_CYCLES * steps:
            notes.append(
                f"season of {period} dropped: history has {n_steps} model steps, fewer than "
                f"{MIN_CYCLES} cycles ({MIN_CYCLES * steps} steps)"
            )
        else:
            kept.append(steps)
    return tuple(kept), tuple(notes)
