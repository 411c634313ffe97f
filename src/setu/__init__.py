"""SETU: open telemetry warehouse for machine shops."""
