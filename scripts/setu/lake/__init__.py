"""The data lake: `setu export` (Parquet, exactly once) and its measurements (docs/lake.md)."""
