"""Keyed random draws: the same seed, stream and indices always give the same number.

A stateful generator hands out numbers in call order, so two policies that request nodes in a
different order would see different delays. Here a draw is a pure function of its key and
indices instead, as in a counter-based generator. numpy's ``SeedSequence`` turns the seed and
the stream's name into a 64-bit key. A SplitMix64-style mixing function then turns the key and
the indices into uniform numbers. So node ``k`` requested in redraw interval ``e`` gets the same
draw in every policy and every run with that seed.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from scaler.core.capacity import FloatArray, IntArray
from scaler.settings_simulator import Duration, FixedDuration, LognormalDuration, UniformDuration

# Mixing constants of the SplitMix64 finaliser.
_INCREMENT = np.uint64(0x9E3779B97F4A7C15)
_MULTIPLIER_1 = np.uint64(0xBF58476D1CE4E5B9)
_MULTIPLIER_2 = np.uint64(0x94D049BB133111EB)
_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31))
_MANTISSA_SHIFT = np.uint64(11)
_TWO_TO_MINUS_53 = 2.0**-53

# z such that P(Z <= z) = 0.95 for a standard normal Z.
_Z_95 = NormalDist().inv_cdf(0.95)


def stream_key(seed: int, *names: str) -> int:
    """Derive the 64-bit key of one named stream, such as ("pool", "cloud-h100", "boot")."""
    entropy = [seed, *(int.from_bytes(name.encode(), "little") for name in names)]
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)
    return int(state[0])


def _mix(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # uint64 arrays wrap around on overflow without a warning, which the mixing relies on.
    mixed = values + _INCREMENT
    mixed = (mixed ^ (mixed >> _SHIFTS[0])) * _MULTIPLIER_1
    mixed = (mixed ^ (mixed >> _SHIFTS[1])) * _MULTIPLIER_2
    return mixed ^ (mixed >> _SHIFTS[2])


def uniforms(key: int, *indices: npt.ArrayLike) -> FloatArray:
    """Return one uniform number in [0, 1) per element of the broadcast, non-negative indices."""
    arrays = np.broadcast_arrays(*(np.asarray(index, dtype=np.int64) for index in indices))
    state = np.full(arrays[0].shape, key, dtype=np.uint64)
    for index in arrays:
        state = _mix(state ^ index.astype(np.uint64))
    return (state >> _MANTISSA_SHIFT).astype(np.float64) * _TWO_TO_MINUS_53


def standard_normals(key: int, *indices: npt.ArrayLike) -> FloatArray:
    """Return one standard normal number per index tuple (Box-Muller on two keyed uniforms)."""
    radius = np.sqrt(-2.0 * np.log1p(-uniforms(key, *indices, 0)))
    return radius * np.cos(2.0 * math.pi * uniforms(key, *indices, 1))


def draw_seconds(duration: Duration, key: int, *indices: npt.ArrayLike) -> FloatArray:
    """Draw ``duration`` once per index tuple, in seconds."""
    shape = np.broadcast_shapes(*(np.shape(index) for index in indices))
    if isinstance(duration, FixedDuration):
        return np.full(shape, duration.seconds, dtype=np.float64)
    if isinstance(duration, UniformDuration):
        spread = duration.max_seconds - duration.min_seconds
        return duration.min_seconds + spread * uniforms(key, *indices)
    sigma = lognormal_sigma(duration)
    return duration.median_seconds * np.exp(sigma * standard_normals(key, *indices))


def lognormal_sigma(duration: LognormalDuration) -> float:
    """Return the log-scale standard deviation that puts the 95th percentile at p95_seconds."""
    return math.log(duration.p95_seconds / duration.median_seconds) / _Z_95


def whole_minutes(seconds: FloatArray) -> IntArray:
    """Round durations in seconds up to whole clock minutes."""
    return np.ceil(np.asarray(seconds) / 60.0).astype(np.int64)
