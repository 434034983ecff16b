"""Actuators turn a CycleDecision into changes: printed (dry-run) or written to the cluster."""
