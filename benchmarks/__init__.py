"""Performance benchmarks: this library measured side by side with traceloop and raw OpenTelemetry.

Run ``bash scripts/bench`` (or ``python -m benchmarks``) from the repository root; see
``docs/performance.md`` for the figures, their targets and how each one is measured.
"""
