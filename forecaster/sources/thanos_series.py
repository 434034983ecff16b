"""Place range-query results on the grid and merge series that differ only by replica labels.

Every series is a float array over the whole grid with NaN where no sample came back. A
value the server sends as NaN or +/-Inf is also NaN here and is counted, because a ratio
such as 0/0 means "no data", never zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecaster.sources.thanos_chunks import Chunk

LabelSet = tuple[tuple[str, str], ...]
METRIC_NAME_LABEL = "__name__"


@dataclass
class GridSeries:
    """One series over the whole grid; NaN marks a grid point without a value."""

    labels: dict[str, str]
    values: np.ndarray


@dataclass
class PlacementCounts:
    """Samples of one response that were not placed as values, by reason."""

    non_finite: int = 0
    misaligned: int = 0
    duplicates: int = 0
    observed_points: int = 0

    def add(self, other: PlacementCounts) -> None:
        self.non_finite += other.non_finite
        self.misaligned += other.misaligned
        self.duplicates += other.duplicates


@dataclass(frozen=True)
class ReplicaMerge:
    """Series after merging replicas, with what the merge changed."""

    series: dict[LabelSet, GridSeries]
    merged: tuple[str, ...] = ()
    values_dropped: int = 0
    disagreeing_points: int = 0
    series_before: int = 0


@dataclass
class _Group:
    labels: dict[str, str]
    members: list[GridSeries] = field(default_factory=list)


def label_key(labels: dict[str, str]) -> LabelSet:
    return tuple(sorted(labels.items()))


def format_labels(labels: dict[str, str]) -> str:
    """Format a label set the way PromQL writes it, e.g. ``gpu_util{node="a"}``."""
    name = labels.get(METRIC_NAME_LABEL, "")
    pairs = ", ".join(
        f'{key}="{value}"' for key, value in sorted(labels.items()) if key != METRIC_NAME_LABEL
    )
    return f"{name}{{{pairs}}}"


def place_chunk(
    result: Iterable[dict[str, Any]],
    chunk: Chunk,
    step_seconds: int,
    total_points: int,
    series: dict[LabelSet, GridSeries],
) -> PlacementCounts:
    """Put the samples of one chunk's response into ``series``, adding new series as needed.

    A timestamp off the step grid or outside the chunk is dropped and counted as misaligned.
    """
    counts = PlacementCounts()
    observed = np.zeros(chunk.points, dtype=bool)
    step_ms = step_seconds * 1000
    chunk_start_ms = chunk.start.value // 1_000_000
    for item in result:
        labels = {str(key): str(value) for key, value in (item.get("metric") or {}).items()}
        pairs = item.get("values") or []
        if not pairs:
            continue
        times_ms = np.rint(np.array([pair[0] for pair in pairs], dtype=float) * 1000)
        # float() reads the API's "NaN", "+Inf" and "-Inf" strings.
        values = np.array([float(pair[1]) for pair in pairs], dtype=float)
        offsets = times_ms.astype(np.int64) - chunk_start_ms
        positions = offsets // step_ms
        valid = (offsets % step_ms == 0) & (positions >= 0) & (positions < chunk.points)
        counts.misaligned += int((~valid).sum())
        positions, values = positions[valid], values[valid]

        finite = np.isfinite(values)
        counts.non_finite += int((~finite).sum())
        values = np.where(finite, values, np.nan)

        key = label_key(labels)
        target = series.get(key)
        if target is None:
            target = GridSeries(labels, np.full(total_points, np.nan))
            series[key] = target
        window = target.values[chunk.first : chunk.stop]
        clash = ~np.isnan(window[positions]) & finite
        counts.duplicates += int(clash.sum())
        window[positions] = np.where(np.isnan(window[positions]), values, window[positions])
        observed[positions[finite]] = True
    counts.observed_points = int(observed.sum())
    return counts


def merge_replicas(
    series: dict[LabelSet, GridSeries], replica_labels: Sequence[str]
) -> ReplicaMerge:
    """Merge series whose labels are equal once ``replica_labels`` are removed.

    Each grid point of a merged series is the median of the replicas that have a value, so
    identical replicas give the same series and one deviating replica of three is outvoted.
    """
    groups: dict[LabelSet, _Group] = {}
    for item in series.values():
        labels = {key: value for key, value in item.labels.items() if key not in replica_labels}
        groups.setdefault(label_key(labels), _Group(labels)).members.append(item)

    merged: dict[LabelSet, GridSeries] = {}
    notes: list[str] = []
    dropped = 0
    disagreeing = 0
    for key, group in groups.items():
        if len(group.members) == 1:
            merged[key] = GridSeries(group.labels, group.members[0].values)
            continue
        stack = np.vstack([member.values for member in group.members])
        values = _median_present(stack)
        present = ~np.isnan(stack)
        dropped += int(present.sum() - (~np.isnan(values)).sum())
        disagreeing += _disagreeing_points(stack, present)
        merged[key] = GridSeries(group.labels, values)
        notes.append(
            f"merged {len(group.members)} series that differ only by replica labels into "
            f"{format_labels(group.labels)}"
        )
    return ReplicaMerge(merged, tuple(notes), dropped, disagreeing, len(series))


def _median_present(stack: np.ndarray) -> np.ndarray:
    """Median over axis 0 of the non-NaN values; NaN where a column has none."""
    ordered = np.sort(stack, axis=0)  # NaN sorts last
    count = (~np.isnan(stack)).sum(axis=0)
    low = np.clip((count - 1) // 2, 0, None)
    high = np.clip(count // 2, 0, len(stack) - 1)
    low_values = np.take_along_axis(ordered, low[np.newaxis, :], axis=0)[0]
    high_values = np.take_along_axis(ordered, high[np.newaxis, :], axis=0)[0]
    median = (low_values + high_values) / 2
    median[count == 0] = np.nan
    return median


def _disagreeing_points(stack: np.ndarray, present: np.ndarray) -> int:
    several = present.sum(axis=0) >= 2
    if not several.any():
        return 0
    columns = stack[:, several]
    spread = np.nanmax(columns, axis=0) - np.nanmin(columns, axis=0)
    scale = np.maximum(np.nanmax(np.abs(columns), axis=0), 1.0)
    return int((spread > 1e-9 * scale).sum())
