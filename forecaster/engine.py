"""The forecast engine: aggregate history to the model step, fit on a schedule, update and
predict every cycle, and calibrate quantiles from rolling-origin residuals.

Contract (implemented by the forecasting work; the scaler layer only uses these names):

    engine = ForecastEngine(settings)                 # ForecastSettings
    fitted = engine.fit(history)                      # expensive; scheduled (e.g. daily)
    fitted = fitted.update(history)                   # cheap: feeds grid points after the last seen
    forecast = fitted.predict(h=None)                 # Forecast after fitted.cutoff, calibrated

``fit`` and ``update`` accept a full History and only use points up to its end; they never
read past it. ``predict`` returns values clamped at zero, quantiles for every level in
settings.levels, and notes explaining fallbacks (cold start, low coverage).
"""
