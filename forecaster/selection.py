"""Model choice for ``model: auto``: the lowest pinball loss in a rolling-origin backtest.

Every registered model is fitted once at the oldest backtest cutoff of the recent history and
then updated along the later cutoffs, as between scheduled refits. Each forecast is scored by
the pinball loss of its quantile at the planning level. The model with the lowest mean loss
wins. One fit per candidate keeps selection affordable (Prophet and MSTL dominate the cost,
about 1-2 s per series on 28 days at 30-minute steps). All scores are logged and returned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecaster.calibration import calibration_cutoffs
from forecaster.errors import DataError
from forecaster.fitting import MODEL_ERRORS
from forecaster.history import History
from forecaster.models import model_names
from forecaster.models.base import ModelContext
from forecaster.settings import ForecastSettings

logger = logging.getLogger(__name__)

# Backtest windows per candidate; one fit each, the later ones cost only an update.
SELECTION_WINDOWS = 7
# Chosen when the history is too short for any backtest window.
DEFAULT_CHOICE = "holt_winters"
# Failures a candidate may still raise; it is then skipped. Model failures inside a fit are
# already turned into a fallback by forecaster.fitting.
CANDIDATE_ERRORS = (*MODEL_ERRORS, DataError)


@dataclass(frozen=True)
class Selection:
    """The chosen model, the mean scaled pinball loss of every candidate, and a note."""

    name: str
    scores: dict[str, float]
    notes: tuple[str, ...]


def select_model(
    y: pd.Series,
    context: ModelContext,
    settings: ForecastSettings,
    model_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Selection:
    """Score every registered model on ``y`` (complete model steps) and pick the best."""
    from forecaster.engine import ForecastEngine
    from forecaster.evaluation import evaluate

    h = ForecastEngine(settings).h
    longest = max(context.season_lengths, default=0)
    min_train = max(2 * longest, 2 * h)
    positions = calibration_cutoffs(len(y), h, SELECTION_WINDOWS, max(1, h // 2), min_train)
    if len(positions) < 2 or positions[-1] + h >= len(y):
        note = f"auto: {len(y)} steps are too short to compare models; {DEFAULT_CHOICE} is used"
        return Selection(DEFAULT_CHOICE, {}, (note,))

    history = _as_history(y, context.step)
    cutoffs = [y.index[p] for p in positions]
    level = settings.planning_level
    scores: dict[str, float] = {}
    for name in model_names():
        engine = ForecastEngine(settings.model_copy(update={"model": name}), model_options)
        try:
            evaluation = evaluate(engine, history, cutoffs, h, refit_every=len(cutoffs))
        except CANDIDATE_ERRORS as error:
            logger.warning("auto: skipping %s for %r: %s", name, y.name, error)
            continue
        scores[name] = evaluation.pinball(level)

    finite = {name: score for name, score in scores.items() if np.isfinite(score)}
    if not finite:
        note = f"auto: no model could be scored; {DEFAULT_CHOICE} is used"
        return Selection(DEFAULT_CHOICE, scores, (note,))

    chosen = min(finite, key=finite.__getitem__)
    listed = ", ".join(f"{name}={score:.4g}" for name, score in sorted(scores.items()))
    note = (
        f"auto chose {chosen} by scaled pinball loss at {level:g} over {len(cutoffs)} windows: "
        f"{listed}"
    )
    logger.info("Model selection for %r: %s", y.name, note)
    return Selection(chosen, scores, (note,))


def _as_history(y: pd.Series, step: pd.Timedelta) -> History:
    return History(str(y.name), y, step)
