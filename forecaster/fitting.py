"""Fit the configured model, or a simpler one when the history does not suit it.

Fallbacks, each with a note that ends up in the forecast:

- a constant series (all zero, for example) gets simple exponential smoothing, which repeats
  the constant; a seasonal fit would only add numerical noise;
- history with fewer observed model steps than ``min_coverage`` gets seasonal naive, which
  repeats observed values instead of extrapolating a shape fitted around gaps;
- a model that raises ``InsufficientHistoryError`` (fewer than two seasons) gets simple
  exponential smoothing;
- a model that fails on the data in a third-party library (``MODEL_ERRORS``) also gets simple
  exponential smoothing, and the failure is logged as a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecaster.aggregate import observed_share
from forecaster.errors import ConfigError, InsufficientHistoryError, MissingDataError
from forecaster.models import get_model
from forecaster.models.base import FittedModel, ForecastModel, ModelContext
from forecaster.models.level import Level
from forecaster.models.refilter import model_notes

logger = logging.getLogger(__name__)

SEASONAL_NAIVE = "seasonal_naive"
# Exceptions that statsmodels, SciPy and Prophet's Stan backend raise when a fit fails on odd data.
MODEL_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError)


@dataclass(frozen=True)
class ModelFit:
    """A fitted model, the model kind that produced it, and why it was chosen."""

    model: ForecastModel
    fitted: FittedModel
    notes: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.model.name


def build_model(name: str, options: Mapping[str, Any] | None = None) -> ForecastModel:
    """Return the registered model ``name``, constructed with ``options`` as keyword arguments."""
    model = get_model(name)
    if not options:
        return model
    try:
        return type(model)(**options)
    except TypeError as error:
        raise ConfigError(f"model_options.{name}", dict(options), str(error)) from error


def fit_with_fallback(
    name: str,
    y: pd.Series,
    context: ModelContext,
    min_coverage: float,
    options: Mapping[str, Any] | None = None,
) -> ModelFit:
    """Fit model ``name`` on ``y``, falling back as the module docstring describes."""
    observed = y.to_numpy(dtype=float)
    observed = observed[np.isfinite(observed)]
    if len(observed) == 0:
        raise MissingDataError(f"history {y.name!r} has no observed model step; nothing to fit")

    if np.ptp(observed) == 0:
        note = f"history is constant at {observed[0]:g}; simple exponential smoothing repeats it"
        return _fit(Level(), y, context, (note,))

    notes: tuple[str, ...] = ()
    share = observed_share(y)
    if share < min_coverage and name != SEASONAL_NAIVE and context.season_lengths:
        notes = (
            f"only {share:.0%} of model steps are observed (below {min_coverage:.0%}); "
            f"{SEASONAL_NAIVE} is used instead of {name}",
        )
        logger.warning("Falling back for %r: %s", y.name, notes[0])
        name = SEASONAL_NAIVE

    model = build_model(name, options)
    try:
        return _fit(model, y, context, notes)
    except InsufficientHistoryError as error:
        note = f"{name} cannot be fitted ({error}); simple exponential smoothing is used"
        logger.warning("Falling back for %r: %s", y.name, note)
    except MODEL_ERRORS as error:
        note = (
            f"{name} failed ({type(error).__name__}: {error}); simple exponential smoothing is used"
        )
        logger.warning("Fitting %s for %r failed; falling back: %s", name, y.name, error)
    return _fit(Level(), y, context, (*notes, note))


def _fit(
    model: ForecastModel, y: pd.Series, context: ModelContext, notes: tuple[str, ...]
) -> ModelFit:
    fitted = model.fit(y, context)
    return ModelFit(model, fitted, (*notes, *model_notes(fitted)))
