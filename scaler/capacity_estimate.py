"""Estimate the throughput one replica sustains at its latency SLO from measured history.

Each step of history gives a per-replica load (demand / serving replicas) and a p95 latency.
Latency stays nearly flat while replicas have headroom and rises steeply once requests queue.
A two-segment linear fit, ``latency = a + b * load + c * max(0, load - knee)``, with the knee
chosen by least squares over a grid of load quantiles, models that bend. The estimate is the
load at which the fitted latency reaches the SLO. A moving-block bootstrap (blocks of
consecutive steps, because neighbouring steps are correlated) gives its interval.

Demand must count arrivals, including queued and rejected requests. Completions stop growing
at capacity, so a history of completions never shows load beyond it.

After a model version change the old samples describe another model, so ``estimate_newest``
uses only the steps after the newest change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecaster.errors import DataError, InsufficientHistoryError

FloatArray = npt.NDArray[np.float64]

_KNOT_QUANTILES = np.linspace(0.05, 0.95, 61)
_REFINE_POINTS = 21  # knees tried between the neighbours of the best coarse knee
# A crossing further than this multiple of the highest measured load is rejected, because the
# fit carries no information about latency that far beyond the data.
MAX_EXTRAPOLATION = 2.0


@dataclass(frozen=True)
class KneeFit:
    """A two-segment linear fit of latency against per-replica load."""

    intercept: float
    slope: float
    extra_slope: float  # added to ``slope`` above the knee
    knee: float

    def latency_at(self, load: float) -> float:
        return self.intercept + self.slope * load + self.extra_slope * max(0.0, load - self.knee)

    def load_at(self, latency: float) -> float | None:
        """Return the smallest load at which the fit reaches ``latency``; None if it never does."""
        at_knee = self.latency_at(self.knee)
        if at_knee >= latency:
            if self.slope <= 0:
                return None
            return max(0.0, (latency - self.intercept) / self.slope)
        upper_slope = self.slope + self.extra_slope
        if upper_slope <= 0:
            return None
        return self.knee + (latency - at_knee) / upper_slope


@dataclass(frozen=True)
class CapacityEstimate:
    """Throughput one replica sustains at the SLO, in the demand's unit, with its interval."""

    throughput_per_replica: float
    lower: float
    upper: float
    level: float
    knee: float
    slo_seconds: float
    samples: int
    max_observed_load: float
    bootstrap_failures: int
    since: pd.Timestamp | None = None
    version: str | None = None

    @property
    def extrapolated(self) -> bool:
        """Tell whether the SLO is reached only beyond the highest load in the history."""
        return self.throughput_per_replica > self.max_observed_load


def per_replica_load(
    demand: npt.ArrayLike, replicas: npt.ArrayLike, latency: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Return (per-replica load, latency) of the steps with finite values and replicas > 0."""
    d = np.asarray(demand, dtype=np.float64)
    r = np.asarray(replicas, dtype=np.float64)
    y = np.asarray(latency, dtype=np.float64)
    if not (d.shape == r.shape == y.shape):
        raise ValueError(
            f"demand, replicas and latency must have the same length, got {d.shape}, "
            f"{r.shape} and {y.shape}"
        )
    keep = np.isfinite(d) & np.isfinite(r) & np.isfinite(y) & (r > 0) & (d >= 0) & (y > 0)
    return d[keep] / r[keep], y[keep]


def fit_knee(load: FloatArray, latency: FloatArray) -> KneeFit:
    """Fit the two-segment line: knees on a grid of load quantiles, then on a finer grid
    around the best of them."""
    knots = np.unique(np.quantile(load, _KNOT_QUANTILES))
    coarse = _best_fit(load, latency, knots)
    position = int(np.searchsorted(knots, coarse.knee))
    low = knots[max(0, position - 1)]
    high = knots[min(len(knots) - 1, position + 1)]
    if high <= low:
        return coarse
    return _best_fit(load, latency, np.linspace(low, high, _REFINE_POINTS))


def _best_fit(load: FloatArray, latency: FloatArray, knots: FloatArray) -> KneeFit:
    """Return the least-squares fit over the candidate ``knots``, all solved at once."""
    hinge = np.maximum(0.0, load[None, :] - knots[:, None])  # one row per candidate knee
    n = float(len(load))
    sx, sxx = load.sum(), (load * load).sum()
    sh, shh, sxh = hinge.sum(axis=1), (hinge * hinge).sum(axis=1), hinge @ load
    sy, sxy, shy = latency.sum(), load @ latency, hinge @ latency

    k = len(knots)
    gram = np.empty((k, 3, 3))
    gram[:, 0] = np.stack([np.full(k, n), np.full(k, sx), sh], axis=1)
    gram[:, 1] = np.stack([np.full(k, sx), np.full(k, sxx), sxh], axis=1)
    gram[:, 2] = np.stack([sh, sxh, shh], axis=1)
    moments = np.stack([np.full(k, sy), np.full(k, sxy), shy], axis=1)
    # A tiny ridge keeps knees at the edge of the data (an all-zero hinge) solvable.
    gram += np.eye(3)[None] * 1e-9 * max(1.0, n)
    beta = np.linalg.solve(gram, moments[..., None])[..., 0]
    sse = (latency @ latency) - np.einsum("ki,ki->k", beta, moments)
    best = int(np.argmin(sse))
    a, b, c = (float(v) for v in beta[best])
    return KneeFit(a, b, c, float(knots[best]))


def estimate_capacity(
    demand: npt.ArrayLike,
    replicas: npt.ArrayLike,
    latency: npt.ArrayLike,
    slo_seconds: float,
    *,
    level: float = 0.9,
    bootstrap_samples: int = 200,
    min_samples: int = 100,
    seed: int = 0,
) -> CapacityEstimate:
    """Estimate the per-replica load at which p95 latency reaches ``slo_seconds``.

    The arrays are one value per step, oldest first. Raises ``InsufficientHistoryError`` with
    fewer than ``min_samples`` usable steps and ``DataError`` when latency does not rise with
    load, so no crossing can be found.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1, got {level}")
    if slo_seconds <= 0:
        raise ValueError(f"slo_seconds must be positive, got {slo_seconds}")
    load, p95 = per_replica_load(demand, replicas, latency)
    if len(load) < min_samples:
        raise InsufficientHistoryError(
            f"only {len(load)} usable steps (finite demand, latency and replicas > 0); "
            f"{min_samples} are needed for a capacity estimate"
        )
    fit = fit_knee(load, p95)
    point = fit.load_at(slo_seconds)
    limit = MAX_EXTRAPOLATION * float(load.max())
    if point is None or not math.isfinite(point) or point > limit:
        raise DataError(
            f"p95 latency does not rise with per-replica load enough in this history (loads "
            f"{load.min():.3g} to {load.max():.3g}) to reach the {slo_seconds:g} s SLO within "
            f"{MAX_EXTRAPOLATION:g} times the highest load; measure at higher load"
        )
    draws, failures = _bootstrap(load, p95, slo_seconds, bootstrap_samples, seed)
    tail = (1 - level) / 2
    lower, upper = np.quantile(draws, [tail, 1 - tail]) if len(draws) else (point, point)
    # NOTE: a percentile interval can miss the full-sample estimate when the fit is biased
    # (the knee sits on a grid), so it is widened to contain the estimate.
    lower, upper = min(lower, point), max(upper, point)
    return CapacityEstimate(
        throughput_per_replica=point,
        lower=float(lower),
        upper=float(upper),
        level=level,
        knee=fit.knee,
        slo_seconds=slo_seconds,
        samples=len(load),
        max_observed_load=float(load.max()),
        bootstrap_failures=failures,
    )


def _bootstrap(
    load: FloatArray, latency: FloatArray, slo_seconds: float, samples: int, seed: int
) -> tuple[FloatArray, int]:
    """Refit on moving-block resamples; return the crossings found and the failed refits."""
    rng = np.random.default_rng(seed)
    n = len(load)
    block = max(5, round(n ** (1 / 3)))
    blocks = math.ceil(n / block)
    crossings: list[float] = []
    for _ in range(samples):
        starts = rng.integers(0, n - block + 1, size=blocks)
        rows = (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]
        found = fit_knee(load[rows], latency[rows]).load_at(slo_seconds)
        if found is not None and math.isfinite(found):
            crossings.append(found)
    return np.asarray(crossings, dtype=np.float64), samples - len(crossings)


def version_segments(versions: pd.Series) -> list[tuple[str, int, int]]:
    """Return (version, first row, end row) of each run of equal consecutive versions."""
    values = versions.astype(str).to_numpy()
    segments: list[tuple[str, int, int]] = []
    start = 0
    for row in range(1, len(values) + 1):
        if row == len(values) or values[row] != values[start]:
            segments.append((str(values[start]), start, row))
            start = row
    return segments


def estimate_newest(
    frame: pd.DataFrame,
    slo_seconds: float,
    *,
    demand: str,
    replicas: str,
    latency: str,
    version: str | None = None,
    since: pd.Timestamp | None = None,
    **options: float | int,
) -> CapacityEstimate:
    """Estimate from the rows after the newest model version change (or after ``since``).

    ``frame`` is indexed by time, oldest first; ``options`` go to ``estimate_capacity``.
    """
    rows = frame
    if since is not None:
        rows = rows.loc[rows.index >= since]
    label = None
    if version is not None and len(rows):
        label, first, end = version_segments(rows[version])[-1]
        rows = rows.iloc[first:end]
    if not len(rows):
        raise InsufficientHistoryError("no rows are left after the cut at the version change")
    result = estimate_capacity(
        rows[demand].to_numpy(),
        rows[replicas].to_numpy(),
        rows[latency].to_numpy(),
        slo_seconds,
        **options,  # type: ignore[arg-type]
    )
    start = rows.index[0] if isinstance(rows.index, pd.DatetimeIndex) else None
    return replace(result, since=start, version=label)
