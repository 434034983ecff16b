"""Forecast models, one module each, chosen by the name used in config.

Modules are imported on first use, because some (Prophet) take a second to import.
"""

from __future__ import annotations

import importlib

from forecaster.models.base import FittedModel, ForecastModel, ModelContext

# Config name -> "module:class". Keep sorted by name.
_REGISTRY: dict[str, str] = {
    "holt_winters": "forecaster.models.holt_winters:HoltWinters",
    "mstl": "forecaster.models.mstl:Mstl",
    "prophet": "forecaster.models.prophet:Prophet",
    "seasonal_naive": "forecaster.models.seasonal_naive:SeasonalNaive",
}

AUTO = "auto"


def model_names() -> list[str]:
    """Return the registered model names, sorted."""
    return sorted(_REGISTRY)


def get_model(name: str) -> ForecastModel:
    """Return a new instance of the model registered as ``name``."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        allowed = ", ".join([*model_names(), AUTO])
        raise KeyError(f"unknown model {name!r}; allowed: {allowed}") from None
    module_name, class_name = target.split(":")
    model_class = getattr(importlib.import_module(module_name), class_name)
    model: ForecastModel = model_class()
    return model


__all__ = ["AUTO", "FittedModel", "ForecastModel", "ModelContext", "get_model", "model_names"]
