"""What a finished span weighs while it waits for export (a collector that is down fills the
export queue with them), measured with tracemalloc: allocation sizes, not time."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import truefoundry_tracing as tt

ATTRIBUTES = {
    "traceloop.span.kind": "task",
    "traceloop.entity.name": "step",
    "traceloop.workflow.name": "bench",
    "traceloop.entity.path": "step",
    "traceloop.entity.input": '{"args": [1], "kwargs": {}}',
    "traceloop.entity.output": "2",
}


class Holding(SpanExporter):
    """Holds every span it gets, as a full export queue does."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def test_a_span_waiting_for_export_weighs_under_1_5_kb() -> None:
    holding = Holding()
    tt.init("weight", exporter=holding, disable_batch=True, console=False, instruments=())
    tracer = trace.get_tracer("weight")
    for _ in range(50):  # warm-up: caches and interned strings
        tracer.start_span("span", attributes=ATTRIBUTES).end()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(2000):
            tracer.start_span("span", attributes=ATTRIBUTES).end()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    per_span = sum(s.size_diff for s in after.compare_to(before, "filename")) / 2000
    assert len(holding.spans) == 2050
    # OpenTelemetry's own finished span weighs about 2.9 KB, most of it an empty events list
    # and links list; the pipeline hands exporters the span without them (about 0.8 KB).
    assert per_span < 1500, f"{per_span:.0f} bytes per span"
    assert dict(holding.spans[-1].attributes) == ATTRIBUTES
