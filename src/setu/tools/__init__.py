"""Tools the runtime never imports: the fleet simulator, the demo, benchmarks and the soak."""
