"""The root processor calls a delegate's ``on_start`` only when it does something."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from truefoundry_tracing._pipeline import Pipeline, PipelineConfig


class Starting(SpanProcessor):
    def __init__(self) -> None:
        self.started: list[str] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(span.name)


def test_only_delegates_whose_on_start_does_something_are_called_at_start() -> None:
    exporter = InMemorySpanExporter()
    batch, simple, starting = (
        BatchSpanProcessor(exporter),
        SimpleSpanProcessor(exporter),
        Starting(),
    )
    config = PipelineConfig(delegates=(batch, simple, starting))
    assert config.starters == (starting,)
    pipeline = Pipeline()
    pipeline.config = config
    provider = TracerProvider()
    provider.add_span_processor(pipeline.root)
    provider.get_tracer("t").start_span("s").end()
    assert starting.started == ["s"]
    assert [s.name for s in exporter.get_finished_spans()] == ["s"]  # from the simple one
    batch.shutdown()
