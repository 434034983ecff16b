"""Hysteresis: a signal raises a floor only after it has stayed over its threshold long enough.

A run is the sequence of consecutive samples over the threshold that ends with the newest
sample. It holds when it contains at least ``min_samples`` samples and spans at least
``hold_seconds`` from its first to its newest sample. A sample under the threshold or without
data (NaN) ends a run, so one noisy sample cannot raise anything, and neither can a gap.

``SampleBuffer`` keeps the samples of each signal between reads, for sources that supply one
sample per read (the Kubernetes API). Sources that supply the whole window in one read (a range
query over Thanos) simply overwrite the buffered samples at the same times.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from scaler.signals.base import Sample
from scaler.signals.settings import HysteresisSettings

# Samples kept per signal. A run longer than this is reported at this length, which still holds
# for any hysteresis shorter than the cap (about 4 h of 15 s samples).
MAX_BUFFERED_SAMPLES = 1024


@dataclass(frozen=True)
class Run:
    """The trailing run of samples over the threshold."""

    samples: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None

    @property
    def seconds(self) -> float:
        if self.start is None or self.end is None:
            return 0.0
        return (self.end - self.start).total_seconds()

    def holds(self, rule: HysteresisSettings) -> bool:
        """Tell whether the run is long enough, in samples and in time, to raise a floor."""
        return self.samples >= rule.min_samples and self.seconds >= rule.hold_seconds


NO_RUN = Run(0, None, None)


def trailing_run(samples: Sequence[Sample]) -> Run:
    """Return the run of samples over the threshold that ends with the newest sample.

    ``samples`` must be sorted by time.
    """
    count = 0
    for sample in reversed(samples):
        if not sample.over:
            break
        count += 1
    if count == 0:
        return NO_RUN
    return Run(count, samples[-count].at, samples[-1].at)


class SampleBuffer:
    """The samples of each signal that can still belong to its trailing run."""

    def __init__(self) -> None:
        self._samples: dict[Hashable, dict[pd.Timestamp, Sample]] = {}

    def add(self, key: Hashable, samples: Iterable[Sample]) -> Run:
        """Merge ``samples`` into the signal's buffer and return its trailing run.

        A new sample replaces a buffered one at the same time. Samples before the run are
        dropped, except the one that ended it, and so are samples beyond
        ``MAX_BUFFERED_SAMPLES``.
        """
        buffered = self._samples.setdefault(key, {})
        for sample in samples:
            buffered[sample.at] = sample
        ordered = [buffered[at] for at in sorted(buffered)][-MAX_BUFFERED_SAMPLES:]
        run = trailing_run(ordered)
        keep = ordered[-(run.samples + 1) :]
        self._samples[key] = {sample.at: sample for sample in keep}
        return run

    def reset(self, key: Hashable) -> None:
        """Forget the signal's samples, for example after a read failed (a gap ends a run)."""
        self._samples.pop(key, None)
