"""Explicit gap filling for models that cannot take missing values (statsmodels fits)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def fill_from_seasons(y: np.ndarray, season_length: int) -> np.ndarray:
    """Fill each NaN from the same slot in the nearest earlier season that has a value.

    Slots missing in every earlier season stay NaN; ``impute`` fills those too.
    """
    values = np.asarray(y, dtype=float)
    if season_length <= 0 or not np.isnan(values).any():
        return values.copy()
    cycles = -(-len(values) // season_length)
    grid = np.full(cycles * season_length, np.nan)
    grid[: len(values)] = values
    table = pd.DataFrame(grid.reshape(cycles, season_length)).ffill(axis=0)
    return table.to_numpy().ravel()[: len(values)]


def impute(y: np.ndarray, season_length: int = 0) -> np.ndarray:
    """Fill every NaN: from earlier seasons, then later seasons, then by linear interpolation.

    Ends that interpolation cannot reach take the nearest observed value. Raises ValueError
    when ``y`` has no observed value at all.
    """
    values = np.asarray(y, dtype=float)
    if not np.isfinite(values).any():
        raise ValueError("cannot impute a series without any observed value")
    filled = fill_from_seasons(values, season_length)
    if season_length > 0 and np.isnan(filled).any():
        filled = fill_from_seasons(filled[::-1], season_length)[::-1]
    if np.isnan(filled).any():
        series = pd.Series(filled).interpolate(method="linear", limit_direction="both")
        filled = series.to_numpy(dtype=float)
    return filled
